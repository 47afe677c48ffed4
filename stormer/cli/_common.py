"""Helpers shared by the command modules: the --storm option, loading, output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rich.console import Console
    from sqlalchemy.engine import Engine

    from stormer.queue import QueueItem
    from stormer.storm import Storm

StormDir = Annotated[
    Path,
    typer.Option(
        "--storm",
        "-s",
        envvar="STORMER_STORM",
        help="The storm folder (holding config.toml and posts/).",
        show_default=True,
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]


def valid_duration(value: str) -> str:
    """Typer callback for a duration option ("10m"): a bad one is a usage error naming the
    option, before the command starts."""
    from stormer.timezones import parse_duration

    try:
        parse_duration(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    return value


def valid_lang(value: str) -> str:
    """Typer callback for --lang: a language code Babel knows, or a usage error."""
    from stormer.timezones import known_language

    if not known_language(value):
        raise typer.BadParameter(
            f"{value!r} is not a language code: write e.g. en, es, fr, it, ar or pt_BR"
        ) from None
    return value


def load(storm_dir: Path, progress: Callable[[str, int, int], None] | None = None) -> Storm:
    from stormer.channels import registry
    from stormer.storm import load_storm

    return load_storm(storm_dir, known_platforms=set(registry.installed()), progress=progress)


def open_engine(storm: Storm) -> Engine:
    """An engine on the storm's database, its schema migrated to the newest version.

    The caller disposes of it. Imports SQLAlchemy and Alembic: call it inside command bodies.
    """
    from stormer.outbox.db import database_url, make_engine, upgrade

    engine = make_engine(database_url(storm.database_url, storm.root))
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def exit_if_check_fails(
    storm: Storm,
    posts: Sequence[QueueItem] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> None:
    """For a command that reads the storm but is not `check` (preview, times): after its
    output, say plainly on stderr that `check` rejects the storm, with its first errors, and
    exit 1 — a storm that cannot be scheduled must not look fine here. `posts`, `progress`:
    as `checks.check` takes them."""
    from stormer.ops.checks import check

    errors = [p for p in check(storm, posts=posts, progress=progress) if p.severity == "error"]
    if not errors:
        return
    for problem in errors[:3]:
        note(f"stormer: {problem}")
    more = f" ({len(errors) - 3} more)" if len(errors) > 3 else ""
    note(f"stormer: `stormer check` rejects this storm: {len(errors)} error(s){more}")
    raise typer.Exit(1)


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def note(message: str) -> None:
    """Diagnostics go to stderr, so stdout stays clean data."""
    print(message, file=sys.stderr)


def console() -> Console:
    from rich.console import Console

    return Console(highlight=False)
