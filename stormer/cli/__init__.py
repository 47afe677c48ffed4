"""The `stormer` command line. Thin: parse, call the pieces, render.

Heavy packages (pydantic, Babel, SQLAlchemy, httpx, plugins) are imported inside command
bodies so that `stormer --help` stays fast; tests/test_cli_startup.py holds that line.
"""

from __future__ import annotations

import sys

import typer

from stormer.errors import ConfigError, StormerError

app = typer.Typer(
    name="stormer",
    help="Coordinated social-media storms: one hashtag, one moment, every time zone.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold tokens
    rich_markup_mode=None,
)

from . import (  # noqa: E402  (commands register on app)
    accounts,
    check_preview,
    doctor,
    init,
    participants,
    rehearse,
    run,
    schedule,
    simulator,
    status,
    times,
)

__all__ = [
    "accounts",
    "app",
    "check_preview",
    "doctor",
    "init",
    "main",
    "participants",
    "rehearse",
    "run",
    "schedule",
    "simulator",
    "status",
    "times",
]


def main() -> None:
    """Entry point: library errors become one-line messages and a non-zero exit code."""
    try:
        app()
    except ConfigError as e:
        for problem in e.problems:
            print(f"stormer: {problem}", file=sys.stderr)
        sys.exit(1)
    except StormerError as e:
        print(f"stormer: error: {e}", file=sys.stderr)
        sys.exit(2)
