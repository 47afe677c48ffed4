"""`stormer run`: the worker that stages and fires the storm."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from stormer.cli._common import StormDir, load, valid_duration
from stormer.cli.app import app
from stormer.settings import (
    CLAIM_BATCH,
    GRACE,
    LEASE,
    POLL_SECONDS,
    STAGING_WINDOW,
    duration_text,
)


@app.command()
def run(
    until_done: Annotated[
        bool,
        typer.Option(
            "--until-done", help="Stop once every item is sent, dead, missed or unconfirmed."
        ),
    ] = False,
    staging_window: Annotated[
        str,
        typer.Option(
            help="Stage (log in, upload media) this long before each fire time.",
            callback=valid_duration,
        ),
    ] = duration_text(STAGING_WINDOW),
    grace: Annotated[
        str,
        typer.Option(
            help="An item not sent within this long after its time is missed, never sent late.",
            callback=valid_duration,
        ),
    ] = duration_text(GRACE),
    lease: Annotated[
        str,
        typer.Option(
            hidden=True,
            help="How long a claim lasts without renewal (a dead worker's items are "
            "taken over after it).",
            callback=valid_duration,
        ),
    ] = duration_text(LEASE),
    poll: Annotated[
        float, typer.Option(hidden=True, help="Seconds between passes over the outbox.")
    ] = POLL_SECONDS,
    claim_batch: Annotated[
        int,
        typer.Option(
            hidden=True, help="Items claimed per pass (workers sharing a database interleave)."
        ),
    ] = CLAIM_BATCH,
    storm_dir: StormDir = Path("."),
) -> None:
    """Run the worker: stage before T, fire at T, record every outcome. Start it well before
    the storm and leave it running; `stormer status` shows whether it is alive."""
    import asyncio
    import logging
    import signal
    import sys

    from stormer.cli._common import open_engine
    from stormer.dispatch.dispatcher import Dispatcher, Settings
    from stormer.errors import ConfigError
    from stormer.timezones import parse_duration

    storm = load(storm_dir)
    if storm.errors:
        raise ConfigError(storm.errors)
    settings = Settings(
        staging_window=parse_duration(staging_window),
        grace=parse_duration(grace),
        lease=parse_duration(lease),
        poll_seconds=poll,
        claim_limit=claim_batch,
    )
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    for chatty in ("apscheduler", "httpx", "httpcore"):  # a line per job or request
        logging.getLogger(chatty).setLevel(logging.WARNING)
    engine = open_engine(storm)
    dispatcher = Dispatcher(storm, engine, settings=settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await dispatcher.run(until_done=until_done, stop=stop)

    try:
        asyncio.run(main())
    finally:
        engine.dispose()
