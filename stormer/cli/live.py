"""What a long-running command tells the person (or the log collector) watching it.

`stormer run` shows, in a terminal, a live view of the storm (the same lines as `status
--watch`: counts by state, the next fire time and its countdown, lateness so far) with its
own events printed above it; elsewhere, or with `--log-format text|json`, one line per
event (JSON lines with `json`). Libraries (Alembic, Apprise, APScheduler, httpx, uvicorn)
say only what is wrong unless `--verbose` asks for more. When the worker stops, a summary of
the outcome and what to run next.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

LOG_FORMATS: Final = ("text", "json")
# Each logs a line per migration step, notification, job or request at INFO.
LIBRARIES: Final = ("alembic", "apprise", "apscheduler", "httpx", "httpcore", "uvicorn")
# The live view reads the outbox at most this often: `status_summary` is one read of it.
REFRESH_SECONDS: Final = 1.0
# Nor while a burst is this close: its thread must not take the interpreter from the burst.
QUIET_BEFORE_FIRE_SECONDS: Final = 2.0


def quiet_libraries(verbose: int) -> None:
    """Libraries at WARNING (only what is wrong); `verbose` 1: INFO, 2 or more: DEBUG."""
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(level)


# The handler `log_to` installed: a second call replaces it (tests run commands many times in
# one process) and leaves everyone else's handlers alone.
_installed: list[logging.Handler] = []


def log_to(log_format: str | None, verbose: int, console: Console | None = None) -> None:
    """Where log records go: above the live view on `console` (log_format None), one line
    each on stderr ("text"), or one JSON object per line on stdout ("json")."""
    handler: logging.Handler
    if log_format == "json":
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonLines())
    elif console is not None:
        from rich.highlighter import NullHighlighter
        from rich.logging import RichHandler

        handler = RichHandler(
            console=console, show_path=False, markup=False, highlighter=NullHighlighter()
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    while _installed:
        root.removeHandler(_installed.pop())
    root.addHandler(handler)
    _installed.append(handler)
    root.setLevel(logging.DEBUG if verbose >= 2 else logging.INFO)
    quiet_libraries(verbose)


class JsonLines(logging.Formatter):
    """A record as one JSON object: `at` (ISO UTC), `level`, `logger`, `message`, and
    `error` (the exception: its type and text, secrets and contacts masked) when there is
    one."""

    def format(self, record: logging.LogRecord) -> str:
        from stormer.secrets import redact

        doc: dict[str, Any] = {
            "at": _iso(datetime.fromtimestamp(record.created, UTC)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            # The message is redacted when the record is made (stormer.secrets); this is not.
            doc["error"] = redact(f"{type(error).__name__}: {error}")
        return json.dumps(doc, ensure_ascii=False)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- the live view ---------------------------------------------------------------------------


def status_text(doc: Mapping[str, Any]) -> Text:
    """`status_lines` for a terminal: alerts in bold red. `status --watch` and `run` show it."""
    from rich.text import Text

    from stormer.ops.report import ALERT
    from stormer.ops.status import status_lines

    text = Text()
    for line in status_lines(doc):
        text.append(line + "\n", style="bold red" if line.startswith(ALERT) else "")
    return text


async def keep_showing(
    live: Live,
    read: Callable[[], dict[str, Any]],
    busy: Callable[[], bool],
) -> None:
    """Show in `live`, every second until cancelled, the storm as `read()` (a
    `status_summary`, read in a thread) found it last, counting down to the next fire time.
    The outbox is read at most once a second, and not while `busy()`: a burst is near or in
    flight, and no read may compete with it for the interpreter."""
    from stormer.ops.status import status_doc

    found: dict[str, Any] | None = None
    while True:
        if found is None or not busy():
            found = await asyncio.to_thread(read)
        doc = status_doc({**found, "now": datetime.now(UTC)})
        live.update(status_text(doc), refresh=True)
        await asyncio.sleep(REFRESH_SECONDS)


# --- when the worker stops -------------------------------------------------------------------


def exit_summary(doc: Mapping[str, Any], storm_dir: Path) -> dict[str, Any]:
    """What the organizer must know when `run` stops, from a `status_doc`: the outcomes,
    lateness, what is still waiting, and the command to run next."""
    from stormer.outbox.models import OUTCOMES

    lateness = doc["lateness"]
    return {
        "event": "summary",
        "storm": doc["storm"],
        "total": doc["total"],
        **{state: doc["counts"].get(state, 0) for state in OUTCOMES},
        "waiting": doc["waiting"],
        "lateness": {q: lateness[f"{q}_s"] for q in ("p50", "p99", "max")},
        "next": "stormer report" + ("" if storm_dir == Path(".") else f" --storm {storm_dir}"),
    }


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """`exit_summary` for people."""
    from stormer.ops.report import ALERT, duration
    from stormer.outbox.models import OUTCOMES, State

    outcomes = ", ".join(f"{summary[state]} {state}" for state in OUTCOMES)
    lines = [f"worker stopped: {summary['total']} item(s) in {summary['storm']}: {outcomes}"]
    late = summary["lateness"]
    if late["max"] is not None:
        lines.append(
            "lateness: "
            + ", ".join(f"{q} {'-' if late[q] < 0 else '+'}{duration(late[q])}" for q in late)
        )
    if summary["waiting"]:
        lines.append(
            f"{ALERT}{summary['waiting']} item(s) still waiting: nothing sends them until "
            "a worker runs (`stormer run`)"
        )
    if any(summary[state] for state in (State.DEAD, State.UNCONFIRMED, State.MISSED)):
        lines.append(f"{ALERT}some items were not posted: see why with `{summary['next']}`")
    else:
        lines.append(f"every item, one by one: `{summary['next']}`")
    return lines


def print_summary(summary: Mapping[str, Any], log_format: str | None, out: TextIO) -> None:
    if log_format == "json":
        print(json.dumps(summary, ensure_ascii=False), file=out, flush=True)
        return
    for line in summary_lines(summary):
        print(line, file=out)
    out.flush()
