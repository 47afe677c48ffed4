"""`stormer rehearse`: the storm in miniature against the local simulator."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stormer.cli._common import JsonFlag, StormDir, load, print_json, valid_duration
from stormer.cli.app import app


@app.command()
def rehearse(
    in_: Annotated[
        str,
        typer.Option(
            "--in",
            help="Fire the rehearsal this long from now (e.g. 20s).",
            callback=valid_duration,
        ),
    ] = "15s",
    as_json: JsonFlag = False,
    storm_dir: StormDir = Path("."),
) -> None:
    """Rehearse the whole storm now: a copy fires in a few seconds against the local platform
    simulator (nothing leaves this machine, no credential is read), through the real
    dispatcher; prints the posts' lateness as the simulator received them (p50, p99, max),
    and keeps the rehearsal in .stormer/rehearsals/ (every item: `stormer report
    --rehearsal`). It
    proves the timing and the dispatcher, not the real credentials, senders or platforms:
    `stormer doctor` and `stormer check --online` do."""
    import dataclasses
    import logging

    from stormer.errors import ConfigError
    from stormer.ops.rehearse import MIN_DELAY
    from stormer.ops.rehearse import rehearse as run_rehearsal
    from stormer.timezones import parse_duration

    delay = parse_duration(in_)
    if delay < MIN_DELAY:
        raise typer.BadParameter(
            f"at least {MIN_DELAY.total_seconds():.0f}s: before T the rehearsal plans, "
            "schedules and stages every item (logins, uploads), as a real storm does hours "
            "ahead; with less, T comes while items are still being staged",
            param_hint="--in",
        )
    storm = load(storm_dir)
    if storm.errors:
        raise ConfigError(storm.errors)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    result = run_rehearsal(storm, delay=delay, say=(lambda _: None) if as_json else print)
    if as_json:
        doc = dataclasses.asdict(result)
        doc["at"] = result.at.isoformat().replace("+00:00", "Z")
        print_json(doc)
    else:
        for line in result.lines():
            print(line)
    if not result.ok:
        raise typer.Exit(1)
