"""`stormer impact`: the storm's measured size across platforms (ops/impact.py)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from stormer.cli._common import (
    JsonFlag,
    StormDir,
    load,
    note,
    open_engine,
    print_json,
    valid_duration,
)
from stormer.cli.app import app


@app.command()
def impact(
    before: Annotated[
        str,
        typer.Option(
            "--before",
            metavar="DURATION",
            help="Start the window this long before T.",
            callback=valid_duration,
        ),
    ] = "1h",
    after: Annotated[
        str,
        typer.Option(
            "--after",
            metavar="DURATION",
            help="End the window this long after T.",
            callback=valid_duration,
        ),
    ] = "3h",
    instances: Annotated[
        list[str] | None,
        typer.Option(
            "--instance",
            metavar="HOST",
            help="Also read this Mastodon instance's tag timeline (repeatable).",
            callback=_instances,
        ),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Summarize what earlier runs read; no network.")
    ] = False,
    show_authors: Annotated[
        bool,
        typer.Option(
            "--show-authors", help="Name the authors of the most reshared posts (public handles)."
        ),
    ] = False,
    as_json: JsonFlag = False,
    storm_dir: StormDir = Path("."),
) -> None:
    """Count the hashtag's public posts around T on every platform that can be searched
    (Mastodon tag timelines, Bluesky, X where its access allows): posts per minute, authors
    (a count), languages, our share. Kept for the report; counts only, unless --show-authors."""
    from stormer.errors import ConfigError, StormerError
    from stormer.ops import impact as ops
    from stormer.ops.impact_summary import render, summarize
    from stormer.outbox.status import published
    from stormer.timezones import parse_duration

    storm = load(storm_dir)
    if storm.errors:
        raise ConfigError(storm.errors)
    if storm.at is None:
        raise StormerError("the storm has no time: set [storm] at in config.toml")
    if offline:
        measurement = ops.load_stored(storm)
        if measurement is None:
            raise StormerError(
                f"nothing measured yet ({ops.stored_path(storm)} is missing): run `stormer impact`"
            )
    else:
        since, until = storm.at - parse_duration(before), storm.at + parse_duration(after)
        import asyncio

        with _Progress() as progress:
            measurement = asyncio.run(
                ops.measure(
                    storm,
                    since=since,
                    until=until,
                    instances=[*storm.impact_instances, *(instances or ())],
                    on_page=progress.page,
                    wait=progress.wait,
                )
            )
        kept = ops.store(storm, measurement)
        measurement = ops.load_stored(storm) or measurement
        note(f"kept in {kept}")
    from sqlalchemy.orm import Session

    engine = open_engine(storm)
    try:
        with Session(engine) as session:
            ours = published(session=session, storm=storm.slug)
    finally:
        engine.dispose()
    summary = summarize(measurement, at=storm.at, ours=ours, show_authors=show_authors)
    if as_json:
        print_json(summary.as_json())
    else:
        print("\n".join(render(summary)))


def _instances(values: list[str] | None) -> list[str] | None:
    from stormer.storm.schema import MASTODON_INSTANCE

    for value in values or []:
        if len(value) > 253 or not re.match(MASTODON_INSTANCE, value):
            raise typer.BadParameter(
                f"{value[:60]!r} is not a Mastodon instance: write its host, e.g. mastodon.social"
            )
    return values


class _Progress:
    """On a terminal, a bar per place read (posts so far) and the rate-limit waits as
    countdowns; elsewhere, one line per wait and nothing per page."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.tasks: dict[str, Any] = {}
        self.read: dict[str, int] = {}  # posts read so far, by place

    def __enter__(self) -> _Progress:
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def page(self, where: str, found: int) -> None:
        if self.bar is None:
            return
        if where not in self.tasks:
            self.tasks[where] = self.bar.add_task(where, total=None)
        self.read[where] = self.read.get(where, 0) + found
        self.bar.update(
            self.tasks[where], description=f"reading {where}: {self.read[where]} post(s)"
        )

    async def wait(self, seconds: float, why: str) -> None:
        import asyncio

        if self.bar is None:
            note(f"  {why}: waiting {seconds:.0f} s, as the platform asks")
            await asyncio.sleep(seconds)
            return
        task = self.bar.add_task(why, total=seconds)
        waited = 0.0
        while waited < seconds:
            left = seconds - waited
            self.bar.update(task, description=f"{why}: {left:.0f} s to wait, as the platform asks")
            await asyncio.sleep(min(0.5, left))
            waited += 0.5
        self.bar.remove_task(task)
