"""`stormer check` and `stormer preview`: read-only looks at a storm."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stormer.cli._common import JsonFlag, StormDir, exit_if_check_fails, load, note, print_json
from stormer.cli.app import app

if TYPE_CHECKING:
    from stormer.ops.fit_images import Fixed


class ItemKind(StrEnum):
    post = "post"
    reminder = "reminder"


@app.command()
def check(
    as_json: JsonFlag = False,
    online: Annotated[
        bool,
        typer.Option(
            "--online",
            help="Also verify every account's credentials with its platform (nothing is posted).",
        ),
    ] = False,
    fix_images: Annotated[
        bool,
        typer.Option(
            "--fix-images",
            help="Write a copy of each image a platform would refuse (or that says where it "
            "was taken), re-encoded to fit, next to it as NAME.fit.EXT; say which post lines "
            "to point at it. Originals and posts are not changed.",
        ),
    ] = False,
    storm_dir: StormDir = Path("."),
) -> None:
    """Check config, posts, images and participants; report every problem at once.

    Exit status 1 when there is any error (warnings alone exit 0).
    """
    from stormer.cli.progress import Steps
    from stormer.errors import ConfigError
    from stormer.ops.checks import check as run_checks

    with Steps(quiet=as_json) as progress:
        try:
            storm = load(storm_dir, progress)
        except ConfigError as e:
            if not as_json:
                raise
            print_json([p.as_dict() for p in e.problems])  # unreadable storm: still JSON
            raise typer.Exit(1) from None
        if fix_images:
            from stormer.ops.fit_images import fix_images as write_copies

            say = note if as_json else print  # stdout stays one JSON document
            for line in fix_lines(write_copies(storm), str(storm.root)):
                say(line)
        problems = run_checks(storm, progress=progress)
    credentials = []
    if online:
        import asyncio

        from stormer.ops.online import check_credentials, nothing_verified
        from stormer.storm.problems import in_reading_order

        credentials = asyncio.run(check_credentials(storm))
        problems += [p for c in credentials for p in c.problems] + nothing_verified(credentials)
        problems = in_reading_order(problems, storm.root)
    errors = sum(p.severity == "error" for p in problems)
    if as_json:
        print_json([p.as_dict() for p in problems])
    else:
        for p in problems:
            print(p)
        for c in credentials:
            print(c.line())
        warnings = len(problems) - errors
        summary = (
            f"{storm.name}: {len(storm.posts)} posts, {len(storm.accounts)} accounts, "
            f"{len(storm.participants)} participants — {errors} error(s), "
            f"{warnings} warning(s)"
        )
        print(summary if problems else f"{summary}. Ready.")
    if errors:
        raise typer.Exit(1)


def fix_lines(fixed: list[Fixed], folder: str) -> list[str]:
    """What --fix-images did, for people: each copy and the exact lines to change, the files
    named from where the user is (`folder`: the storm folder as they gave it)."""
    from stormer.errors import shown_path

    if not fixed:
        return ["fix-images: every image fits every platform its posts go to; nothing to do"]

    def posts(path: str) -> str:
        return shown_path(folder, f"posts/{path}")

    lines = []
    for f in fixed:
        if f.copy is None:
            lines.append(f"fix-images: {posts(f.image)} cannot be made to fit: {f.error}")
            continue
        lines.append(
            f"fix-images: wrote {posts(f.copy)} from {posts(f.image)} ({'; '.join(f.done)}); "
            "the original is unchanged. To use the copy, change in each post (stormer edits "
            "no post):"
        )
        lines += [
            f"  {shown_path(folder, file)}{f':{line}' if line else ''}: "
            f'path = "{f.image}"  →  path = "{f.copy}"'
            for file, line in f.uses
        ]
    return lines


@app.command()
def preview(
    as_json: JsonFlag = False,
    limit: Annotated[
        int | None,
        # islice's bound: a larger N is a usage error, not a crash.
        typer.Option("--limit", "-n", min=0, max=sys.maxsize, help="Show only the first N items."),
    ] = None,
    kind: Annotated[
        ItemKind | None, typer.Option("--kind", help="Only posts, or only participants' reminders.")
    ] = None,
    show_contacts: Annotated[
        bool,
        typer.Option(
            "--show-contacts",
            help="Show each reminder's recipient address (participants' "
            "contacts are hidden by default: they may be at risk).",
        ),
    ] = False,
    storm_dir: StormDir = Path("."),
) -> None:
    """Dry run: every queued item (posts and participants' reminders) in firing order, with
    its exact platform payload or message.

    Opens no network connection and writes nothing. Where `check --online` read a server's
    own limits, posts are measured against them (each limit used is named with its source).
    """
    from itertools import islice

    from stormer.channels.limits import LimitsCache
    from stormer.cli.progress import Steps
    from stormer.errors import ConfigError
    from stormer.plan import plan, plan_posts
    from stormer.preview import item_record, preview_lines, rendered

    with Steps(quiet=as_json) as progress:  # gone before the preview itself is printed
        storm = load(storm_dir, progress)
        if storm.at is None:
            raise ConfigError(storm.errors)
        progress.spin("planning")
        posts = list(plan_posts(storm))  # once, for the preview and the check after it
        items = plan(storm, posts=posts)
    if kind is not None:
        items = [i for i in items if i.kind == kind.value]
    limits = LimitsCache(storm.root / ".stormer").for_accounts(list(storm.accounts))
    shown = islice(rendered(storm, items, show_contacts=show_contacts, limits=limits), limit)
    if as_json:
        _stream_json(item_record(item, payload) for item, payload in shown)
    else:
        import shutil

        width = shutil.get_terminal_size((100, 24)).columns
        for line in preview_lines(
            storm.name, len(items), shown, width=width, show_contacts=show_contacts
        ):
            print(line)
    with Steps(quiet=as_json) as progress:
        exit_if_check_fails(storm, posts, progress)


def _stream_json(records) -> None:  # type: ignore[no-untyped-def]
    # Streamed in batches: a storm of 200,000 items must not be built in memory as one
    # document, and one write per item costs more than the encoding.
    import orjson

    out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
    chunks: list[bytes] = []
    sep = b"[\n  "
    for record in records:
        chunks.append(sep + orjson.dumps(record))
        sep = b",\n  "
        if len(chunks) >= 1000:
            _write(out, b"".join(chunks))
            chunks.clear()
    chunks.append(b"[]\n" if sep == b"[\n  " else b"\n]\n")
    _write(out, b"".join(chunks))


def _write(buffer, data: bytes) -> None:  # type: ignore[no-untyped-def]
    if buffer is not None:
        sys.stdout.flush()  # keep order with anything already written as text
        buffer.write(data)
    else:  # a text-only stream (tests' capture): decode
        sys.stdout.write(data.decode())
