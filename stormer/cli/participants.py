"""`stormer participants import|list|export` and `stormer ics`: the people a storm reminds.

Contacts are shown nowhere but in the file `participants export` writes on request: a leaked
participant list endangers the people on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stormer.cli._common import JsonFlag, StormDir, load, note, print_json
from stormer.cli.app import app

participants_app = typer.Typer(
    name="participants",
    no_args_is_help=True,
    rich_markup_mode=None,
    help="The storm's participants: import a sign-up form, list them, export them.",
)
app.add_typer(participants_app)

OutFile = Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="The file to write.")]


@participants_app.command("import")
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help="A CSV export of the sign-up form (name/organisation, time zone "
            "or country code, language, e-mail or Apprise URL).",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and count; write nothing.")
    ] = False,
    as_json: JsonFlag = False,
    storm_dir: StormDir = Path("."),
) -> None:
    """Merge a sign-up form's CSV into the participants file: known names are updated, new
    ones appended, bad rows reported by line (exit 1) and left out."""
    from stormer.ops.roster import import_file

    storm = load(storm_dir)
    report = import_file(storm, file, dry_run=dry_run)
    if as_json:
        print_json({**report.as_dict(), "dry_run": dry_run})
    else:
        used = ", ".join(
            f"{column} ← {' + '.join(repr(h) for h in headers)}"
            for column, headers in report.columns.items()
        )
        note(f"read {file.name}: {used}")
        for problem in report.problems:
            note(str(problem))
        print(
            f"{report.file}: {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.bad} bad"
            + (" (dry run: nothing written)" if dry_run else "")
        )
    if report.problems:
        raise typer.Exit(1)


@participants_app.command("list")
def list_(as_json: JsonFlag = False, storm_dir: StormDir = Path(".")) -> None:
    """Every participant: name, zone, language and the kinds of their contacts (never the
    addresses)."""
    from stormer.ops.roster import listing

    rows = listing(load(storm_dir))
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    from stormer.cli._common import console

    table = Table(title=f"{len(rows)} participant(s)", title_justify="left")
    for column in ("row", "name", "zone", "lang", "contacts"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r["row"]), r["name"], r["zone"], r["lang"], ", ".join(r["contacts"]) or "-"
        )
    console().print(table)


@participants_app.command()
def export(
    out: OutFile,
    force: Annotated[bool, typer.Option("--force", help="Replace FILE if it exists.")] = False,
    storm_dir: StormDir = Path("."),
) -> None:
    """Write every participant WITH their contacts to FILE, readable by you alone (0600)."""
    from stormer.ops.roster import export_text, write_private

    storm = load(storm_dir)
    try:
        write_private(out, export_text(storm), force=force)
    except FileExistsError:
        note(f"stormer: {out} exists; pass --force to replace it")
        raise typer.Exit(1) from None
    note(
        f"warning: {out} holds the contacts of {len(storm.participants)} participant(s), "
        "people at risk if it leaks: keep it off shared drives, chats and e-mail, and delete "
        "it when done"
    )


@app.command()
def ics(out: OutFile, storm_dir: StormDir = Path(".")) -> None:
    """Write the storm as a calendar event (.ics) with an alarm 10 minutes before."""
    from stormer.errors import ConfigError
    from stormer.reminders import storm_calendar

    storm = load(storm_dir)
    if storm.at is None:
        raise ConfigError(storm.errors)
    out.write_bytes(storm_calendar(storm))
    note(f"wrote {out}")
