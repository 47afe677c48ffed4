"""`stormer times`: the storm instant on every clock, and the announcement line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from stormer.cli._common import (
    JsonFlag,
    StormDir,
    exit_if_check_fails,
    load,
    print_json,
    valid_lang,
)
from stormer.cli.app import app

if TYPE_CHECKING:
    from stormer.timezones import LocalTime


@app.command()
def times(
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="WHEN",
            help="An instant (2021-03-11T18:00:00Z, 2021-03-11T20:00:00+02:00) or, with --tz, "
            "a wall time ('2021-03-11 20:00'). Default: the storm time in config.toml.",
        ),
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option("--tz", metavar="ZONE", help="The zone of a wall time given with --at."),
    ] = None,
    zone: Annotated[
        list[str] | None,
        typer.Option(
            "--zone",
            "-z",
            metavar="Z",
            help="A zone to show (repeatable). Default: the announce zones and every "
            "participant's zone.",
        ),
    ] = None,
    announce: Annotated[
        bool, typer.Option("--announce", help="Print only the announcement line.")
    ] = False,
    lang: Annotated[
        str,
        typer.Option(
            "--lang",
            "-l",
            help="Language of the announcement and table: en, es, fr, it, ar…",
            callback=valid_lang,
        ),
    ] = "en",
    list_zones: Annotated[
        bool,
        typer.Option("--list-zones", help="List every IANA time zone name stormer knows."),
    ] = False,
    as_json: JsonFlag = False,
    storm_dir: StormDir = Path("."),
) -> None:
    """Turn the one storm time into every participant's local time."""
    if list_zones:
        from stormer.timezones import known_zones

        names = known_zones()
        if as_json:
            print_json(names)
        else:
            print("\n".join(names))
        return
    from stormer.timezones import AnnounceZone, announcement, iso_utc, local_times, parse_when

    storm = None
    if at is None or not zone or announce:
        storm = load(storm_dir)
    if at is not None:
        instant = parse_when(at, tz)
    else:
        if tz:
            raise typer.BadParameter("--tz only makes sense with --at", param_hint="--tz")
        assert storm is not None
        if storm.at is None:
            from stormer.errors import ConfigError

            raise ConfigError(storm.errors)
        instant = storm.at
    zones = list(zone) if zone else (storm.zones() if storm else [])
    zones = zones or ["UTC"]
    announce_zones = storm.announce if storm else [AnnounceZone(z) for z in zones]
    line = announcement(instant, announce_zones, lang)
    if announce and not as_json:
        print(line)
    elif as_json:
        rows = local_times(instant, zones)
        print_json(
            {"at_utc": iso_utc(instant), "times": [r.as_dict() for r in rows], "announcement": line}
        )
    else:
        _print_table(line, local_times(instant, zones), lang)
    if storm is not None:
        exit_if_check_fails(storm)


def _print_table(line: str, rows: list[LocalTime], lang: str) -> None:
    from rich.table import Table

    from stormer.cli._common import console
    from stormer.timezones import format_clock, format_day, utc_offset

    table = Table(title=line, title_justify="left")
    for column in ("zone", "local time", "date", "abbr.", "UTC offset"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.zone,
            format_clock(r.local, lang),
            format_day(r.local, lang),
            r.abbreviation,
            utc_offset(r.local),
        )
    console().print(table)
