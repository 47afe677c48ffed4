"""`stormer run`: the worker that stages and fires the storm."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from rich.live import Live

    from stormer.dispatch.dispatcher import Settings
    from stormer.storm import Storm


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
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            metavar="text|json",
            help="One line per event (json: a JSON object per line on stdout) instead of the "
            "live view a terminal gets.",
            callback=valid_log_format,
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose",
            "-v",
            count=True,
            help="Also the libraries' own lines (Alembic, Apprise, APScheduler, httpx): "
            "-v for INFO, -vv for DEBUG.",
        ),
    ] = 0,
    event_loop: Annotated[
        str,
        typer.Option(
            "--event-loop",
            hidden=True,
            metavar="uvloop|asyncio",
            help="The worker's event loop: Python's own asyncio loop, or uvloop (compiled; "
            "asyncio where it is not installed).",
            callback=valid_event_loop,
        ),
    ] = "asyncio",
    storm_dir: StormDir = Path("."),
) -> None:
    """Run the worker: stage before T, fire at T, record every outcome. Start it well before
    the storm and leave it running; `stormer status` shows whether it is alive. In a terminal
    it shows the storm live; when it stops, a summary and what to run next."""
    import sys

    from stormer.cli.live import log_to
    from stormer.dispatch.dispatcher import Settings
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
    live = log_format is None and sys.stdout.isatty()
    if not live:
        log_to(log_format or "text", verbose)
        _work(storm, settings, until_done, log_format, storm_dir, event_loop)
        return
    from rich.live import Live
    from rich.text import Text

    from stormer.cli._common import console

    screen = console()
    log_to(None, verbose, screen)
    with Live(Text("starting…"), console=screen, auto_refresh=False) as view:
        _work(storm, settings, until_done, None, storm_dir, event_loop, view)


def valid_log_format(value: str | None) -> str | None:
    from stormer.cli.live import LOG_FORMATS

    if value is not None and value not in LOG_FORMATS:
        raise typer.BadParameter(f"{value!r}: choose {' or '.join(LOG_FORMATS)}")
    return value


def valid_event_loop(value: str) -> str:
    if value not in EVENT_LOOPS:
        raise typer.BadParameter(f"{value!r}: choose {' or '.join(EVENT_LOOPS)}")
    return value


# The burst is CPU-bound in the worker's event loop, but mostly in aiohttp's own Python
# code: on uvloop the loop spent 0-8 % less CPU on the same burst, within the spread between
# runs (bench/README.md, "Scale"), so Python's loop stays the default and uvloop is a choice
# to measure with. Without uvloop installed (it has no Windows build) asyncio is used.
EVENT_LOOPS = ("asyncio", "uvloop")


def loop_factory(name: str) -> tuple[str, Callable[[], asyncio.AbstractEventLoop] | None]:
    """The event loop `name` asks for, as (the one used, its factory for asyncio.Runner)."""
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            return "asyncio", None
        return "uvloop", uvloop.new_event_loop
    return "asyncio", None


def _work(
    storm: Storm,
    settings: Settings,
    until_done: bool,
    log_format: str | None,
    storm_dir: Path,
    event_loop: str,
    view: Live | None = None,
) -> None:
    """Run the dispatcher until done or stopped (Ctrl-C, SIGTERM), refreshing `view` if
    there is one; then say how it went."""
    import asyncio
    import logging
    import signal
    import sys
    from datetime import UTC, datetime, timedelta

    from stormer.cli._common import open_engine
    from stormer.cli.live import (
        QUIET_BEFORE_FIRE_SECONDS,
        exit_summary,
        keep_showing,
        print_summary,
        status_text,
    )
    from stormer.dispatch.dispatcher import Dispatcher
    from stormer.ops.status import status_doc
    from stormer.outbox.status import status_summary

    engine = open_engine(storm)
    dispatcher = Dispatcher(storm, engine, settings=settings)

    def read() -> dict[str, Any]:
        return status_summary(engine=engine, storm=storm.slug, now=datetime.now(UTC))

    def busy() -> bool:
        """A burst in flight or about to start: no outbox read may compete with it."""
        items = dispatcher.items
        soon = datetime.now(UTC) + timedelta(seconds=QUIET_BEFORE_FIRE_SECONDS)
        return bool(items.in_flight) or any(c.fire_at <= soon for c, _ in items.ready.values())

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        shown = asyncio.create_task(keep_showing(view, read, busy)) if view else None
        try:
            await dispatcher.run(until_done=until_done, stop=stop)
        finally:
            if shown is not None:
                shown.cancel()

    used, factory = loop_factory(event_loop)
    logging.getLogger(__name__).info("event loop: %s", used)
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())
        last = status_doc(read())
        if view is not None:  # the storm as it stands, left on the screen above the summary
            view.update(status_text(last), refresh=True)
            view.stop()
        print_summary(exit_summary(last, storm_dir), log_format, sys.stdout)
    finally:
        engine.dispose()
