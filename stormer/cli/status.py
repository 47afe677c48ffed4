"""`stormer status` and `stormer report`: how the storm is going, and how it went."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stormer.cli._common import JsonFlag, StormDir, load, note, open_engine, print_json
from stormer.cli.app import app

if TYPE_CHECKING:
    from stormer.storm import Storm

# `status`'s exit status when no worker is running and an item needs one (README, --help):
# not 1 (the storm cannot be read) or 2 (an error), so a script can tell them apart.
NO_WORKER_EXIT = 3

_sleep = time.sleep  # tests replace it (and `_now`): the clock is theirs to control


def _now() -> datetime:
    return datetime.now(UTC)


@app.command()
def status(
    as_json: JsonFlag = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", "-w", help="Refresh until Ctrl-C (with --json: one JSON line each time)."
        ),
    ] = False,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            min=0.1,
            max=86_400,  # a day; longer overflowed the sleep ("timestamp out of range")
            metavar="S",
            help="Seconds between refreshes with --watch.",
        ),
    ] = 2.0,
    count: Annotated[
        int | None,
        typer.Option("--count", min=1, metavar="N", help="With --watch: stop after N refreshes."),
    ] = None,
    storm_dir: StormDir = Path("."),
) -> None:
    """How the storm is going: items by state, the next fire time, lateness so far, live
    workers. Says loudly when items are waiting and no worker is running.

    Exit status: 0, or 3 when no worker is running and an item needs one — it fires (or is
    retried) within the 10 minutes a worker stages ahead, or is overdue. Not when the storm
    is over and nothing is left to send. With --watch: as of the last refresh.
    """
    from stormer.ops.status import status_doc
    from stormer.outbox.status import status_summary

    storm = load(storm_dir)
    engine = open_engine(storm)

    shown: list[dict[str, Any]] = []  # the last one decides the exit status

    def snapshot() -> dict[str, Any]:
        doc = status_doc(status_summary(engine=engine, storm=storm.slug, now=_now()))
        shown[:] = [doc]
        return doc

    try:
        if not watch:
            _show_status(snapshot(), as_json)
        else:
            _watch(snapshot, as_json, interval, count)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how --watch ends: not an error
    finally:
        engine.dispose()
    if shown and any(a["code"] == "no-worker" for a in shown[0]["alerts"]):
        raise typer.Exit(NO_WORKER_EXIT)


def _show_status(doc: dict[str, Any], as_json: bool) -> None:
    from stormer.ops.report import EMPTY
    from stormer.ops.status import status_lines

    if as_json:
        print_json(doc)
        if not doc["total"]:
            note(EMPTY)
        return
    _print_lines(status_lines(doc))


def _watch(
    snapshot: Callable[[], dict[str, Any]], as_json: bool, interval: float, count: int | None
) -> None:
    from stormer.ops.status import status_lines

    if as_json or not sys.stdout.isatty():

        def show(doc: dict[str, Any]) -> None:
            if as_json:
                print(json.dumps(doc, ensure_ascii=False), flush=True)
            else:  # a log, one block per refresh
                _print_lines([*status_lines(doc), ""])
                sys.stdout.flush()

        _refresh(snapshot, show, interval, count)
        return
    # Only a watch in a terminal needs rich.live.
    from rich.live import Live
    from rich.text import Text

    from stormer.cli._common import console
    from stormer.cli.live import status_text

    with Live(Text(), console=console(), auto_refresh=False) as live:
        _refresh(snapshot, lambda doc: live.update(status_text(doc), refresh=True), interval, count)


def _refresh(
    snapshot: Callable[[], dict[str, Any]],
    show: Callable[[dict[str, Any]], None],
    interval: float,
    count: int | None,
) -> None:
    shown = 0
    while True:
        show(snapshot())
        shown += 1
        if count is not None and shown >= count:
            return
        _sleep(interval)


@app.command()
def report(
    as_json: JsonFlag = False,
    as_csv: Annotated[
        bool, typer.Option("--csv", help="Print CSV, safe to open in a spreadsheet.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            dir_okay=False,
            help="Write to FILE instead of stdout (CSV gets a UTF-8 BOM, for spreadsheets).",
        ),
    ] = None,
    rehearsal: Annotated[
        str | None,
        typer.Option(
            "--rehearsal",
            metavar="latest|NAME",
            help="Report a rehearsal kept in .stormer/rehearsals/ (`latest`, or its NAME) "
            "instead of the storm.",
        ),
    ] = None,
    html_out: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            dir_okay=False,
            help="Also write one self-contained HTML file: the summary, the problems, the "
            "figures (each with its text summary) and the measured impact.",
        ),
    ] = None,
    plot_out: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="FILE.png",
            dir_okay=False,
            help="Also write the main figure as PNG (the hashtag per minute if measured, "
            "else the posts around T).",
        ),
    ] = None,
    storm_dir: StormDir = Path("."),
) -> None:
    """What happened to every item: problems first (sent early, dead, unconfirmed, missed,
    being retried by a live worker, overdue with nobody to send them), lateness, then one
    line per item; `--html` and `--plot` draw it."""
    if as_json and as_csv:
        raise typer.BadParameter("choose --json or --csv, not both", param_hint="--csv")
    from sqlalchemy.orm import Session

    from stormer.ops.report import (
        EMPTY,
        hand_checks,
        report_lines,
        report_rows,
        summary,
        to_csv,
    )
    from stormer.outbox.schedule import items
    from stormer.outbox.status import published
    from stormer.outbox.workers import live_workers
    from stormer.timezones import iso_utc

    storm = load(storm_dir)
    now = _now()
    if rehearsal is None:
        engine = open_engine(storm)
    else:
        from stormer.ops.rehearse import OUTBOX, rehearsal_folder
        from stormer.outbox.db import make_engine

        folder = rehearsal_folder(storm.root, rehearsal)
        note(f"rehearsal {folder.name} ({folder.relative_to(storm.root)})")
        engine = make_engine(f"sqlite:///{folder / OUTBOX}")
    try:
        with Session(engine) as session:
            # A rehearsal's items went to the simulator: no real page to look at.
            look = hand_checks(storm) if rehearsal is None else None
            rows = report_rows(items(session=session, storm=storm.slug), now, look)
            ours = published(session=session, storm=storm.slug)
        live = [w.worker_id for w in live_workers(engine=engine, storm=storm.slug, now=now)]
    finally:
        engine.dispose()
    totals = summary(rows, live)
    if html_out is not None or plot_out is not None:
        _draw(storm, rows, totals, ours, folder if rehearsal else None, html_out, plot_out)
    if as_csv:
        text = to_csv(rows)
    elif as_json:
        text = (
            json.dumps(
                {"storm": storm.slug, "now": iso_utc(now), "summary": totals, "rows": rows},
                ensure_ascii=False,
                indent=2,
            )
            + "\n"
        )
    elif out is None:
        _print_lines(report_lines(totals, rows))
        return
    else:
        text = "\n".join(report_lines(totals, rows)) + "\n"
    if not rows and (as_json or as_csv):
        note(EMPTY)
    if out is None:
        sys.stdout.write(text)
        return
    # newline="": the csv module's CRLF line ends are written as they are.
    out.write_text(text, encoding="utf-8-sig" if as_csv else "utf-8", newline="")
    note(f"report written to {out}")


def _draw(
    storm: Storm,
    rows: list[dict[str, Any]],
    totals: dict[str, Any],
    ours: set[str],
    rehearsal: Path | None,
    html_out: Path | None,
    plot_out: Path | None,
) -> None:
    """The HTML report and the PNG figure, with the impact measured for this storm (or kept
    with the rehearsal)."""
    from stormer.errors import StormerError
    from stormer.ops.impact import load_stored, read_measurement
    from stormer.ops.report import problem_lines
    from stormer.ops.report_html import write_report_files

    if rehearsal is not None:
        from stormer.ops.rehearse import IMPACT

        measurement = read_measurement(rehearsal / IMPACT)
    else:
        measurement = load_stored(storm)
    fired = [datetime.fromisoformat(r["fire_at"]) for r in rows if r["kind"] == "post"]
    at = min(fired) if rehearsal is not None and fired else storm.at
    if at is None:
        raise StormerError("the storm has no time: set [storm] at in config.toml")
    title = f"{storm.name}: " + ("rehearsal " + rehearsal.name if rehearsal else "report")
    for path in write_report_files(
        title=title,
        at=at,
        rows=rows,
        problems=problem_lines(totals, rows),
        measurement=measurement,
        ours=ours,
        html_path=html_out,
        png_path=plot_out,
    ):
        note(f"written: {path}")


def _alert(line: str) -> bool:
    from stormer.ops.report import ALERT

    return line.startswith(ALERT)


def _print_lines(lines: list[str]) -> None:
    for line in lines:
        if _alert(line):
            typer.secho(line, fg="red", bold=True)
        else:
            print(line)
