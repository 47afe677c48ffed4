"""What `stormer run` says: one line per event (text or JSON lines) when not in a terminal,
libraries quiet unless --verbose, a summary when it stops; the live view a terminal gets."""

from __future__ import annotations

import json
import logging
import os
import pty
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fixtures_workers import ITEMS, kill_hard, registered_workers, schedule, set_t, wait_for
from rich.console import Console
from timing import far_ahead

from stormer.cli.live import (
    LIBRARIES,
    JsonLines,
    exit_summary,
    log_to,
    status_text,
    summary_lines,
)
from stormer.ops.status import status_doc

RUN = ("run", "--until-done", "--poll", "0.3", "--staging-window", "1m", "--grace", "2m")


def run_storm_soon(
    env: dict[str, str], root: Path, *extra: str, terminal: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a worker until done on the storm, with T moved a few seconds ahead once the
    worker is up (`set_t`): it stages, counts down and fires. In a pseudo-terminal with
    `terminal` (then `stdout` holds all it showed, stderr included)."""
    start = far_ahead()
    schedule(env, root, start)
    command = [sys.executable, "-m", "stormer", *RUN, *extra, "--storm", str(root)]
    if terminal:
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            command, env={**env, "COLUMNS": "120"}, stdout=follower, stderr=follower
        )
        os.close(follower)
        shown = bytearray()
        # Read as it comes: a full terminal would block the worker.
        reader = threading.Thread(target=read_all, args=(leader, shown), daemon=True)
        reader.start()
    else:
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    try:
        wait_for(env, "the worker to start", lambda: registered_workers(env) == 1, [proc])
        set_t(env, root, start, [proc])
        if not terminal:
            out, err = proc.communicate(timeout=120)
            return subprocess.CompletedProcess(command, proc.returncode, out, err)
        proc.wait(timeout=120)
        reader.join(timeout=10)
        return subprocess.CompletedProcess(
            command, proc.returncode, shown.decode("utf-8", "replace"), ""
        )
    finally:
        if proc.poll() is None:
            kill_hard(proc)
            if proc.stderr is not None:
                proc.stderr.close()
        if terminal:
            os.close(leader)


def read_all(fd: int, into: bytearray) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: every writer has closed the terminal
            return
        if not chunk:
            return
        into += chunk


def test_json_lines_one_per_event_and_a_summary(burst_storm: tuple[Path, dict[str, str]]) -> None:
    root, env = burst_storm
    ran = run_storm_soon(env, root, "--log-format", "json")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    docs = [json.loads(line) for line in ran.stdout.splitlines()]  # every line is JSON
    events = docs[:-1]
    messages = [d["message"] for d in events]
    assert any(m.startswith("worker ") and " started on " in m for m in messages)
    assert any(m.startswith("staged ") for m in messages)
    assert any(m.startswith("fired ") for m in messages)
    assert {d["level"] for d in events} <= {"info", "warning", "error"}
    # Libraries are quiet: no Alembic migration steps, no Apprise, no APScheduler job lines.
    assert {d["logger"].split(".")[0] for d in events} == {"stormer"}, events
    summary = docs[-1]
    assert summary["event"] == "summary"
    assert summary["total"] == ITEMS
    assert summary["sent"] + summary["unconfirmed"] == ITEMS
    assert summary["failed"] == summary["missed"] == summary["dead"] == 0
    assert summary["lateness"]["p50"] >= 0
    assert summary["lateness"]["p50"] <= summary["lateness"]["p99"] <= summary["lateness"]["max"]
    assert summary["next"] == f"stormer report --storm {root}"
    assert "Traceback" not in ran.stderr


def test_sigterm_stops_the_worker_with_a_summary(
    burst_storm: tuple[Path, dict[str, str]],
) -> None:
    root, env = burst_storm
    schedule(env, root, far_ahead())
    command = [sys.executable, "-m", "stormer", "run", "--log-format", "json", "--storm", str(root)]
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_for(env, "the worker to start", lambda: registered_workers(env) == 1, [proc])
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            kill_hard(proc)
    assert proc.returncode == 0, out + err
    *events, summary = (json.loads(line) for line in out.splitlines())
    assert events[-1]["message"].endswith(" stopped")
    assert summary["event"] == "summary"
    assert summary["waiting"] == summary["total"] == ITEMS
    assert summary["sent"] == 0
    assert summary["lateness"] == {"p50": None, "p99": None, "max": None}
    assert registered_workers(env) == 0


def test_text_lines_when_not_a_terminal(burst_storm: tuple[Path, dict[str, str]]) -> None:
    root, env = burst_storm
    ran = run_storm_soon(env, root)  # stdout is a pipe: not a terminal
    assert ran.returncode == 0, ran.stdout + ran.stderr
    events = ran.stderr.splitlines()
    assert any(" INFO fired " in line for line in events), ran.stderr
    assert not any("alembic" in line.lower() or "apscheduler" in line for line in events)
    assert len(events) < 30, ran.stderr  # a line per event, not per library step
    out = ran.stdout.splitlines()
    assert out[0].startswith(f"worker stopped: {ITEMS} item(s) in ")
    assert out[1].startswith("lateness: p50 +")
    assert out[-1].endswith(f"`stormer report --storm {root}`")


def test_a_terminal_gets_the_live_view_then_the_summary(
    burst_storm: tuple[Path, dict[str, str]],
) -> None:
    root, env = burst_storm
    ran = run_storm_soon(env, root, terminal=True)
    assert ran.returncode == 0, ran.stdout
    screen = ran.stdout
    assert "next fire: " in screen and "(in " in screen  # the countdown, before T
    assert f"free-palestinian-students-2021: {ITEMS} item(s): " in screen
    assert "INFO" in screen and "fired " in screen  # events, printed above the view
    assert f"worker stopped: {ITEMS} item(s) in " in screen
    assert "Traceback" not in screen


def test_verbose_restores_the_libraries_lines() -> None:
    root = logging.getLogger()
    libraries = {name: logging.getLogger(name).level for name in LIBRARIES}
    handlers, level = root.handlers[:], root.level
    try:
        log_to("text", 0)
        assert logging.getLogger("alembic").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("apscheduler").getEffectiveLevel() == logging.WARNING
        log_to("text", 1)
        assert logging.getLogger("apprise").getEffectiveLevel() == logging.INFO
        log_to("json", 2)
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.DEBUG
        assert root.getEffectiveLevel() == logging.DEBUG
        added = [h for h in root.handlers if h not in handlers]  # one: each call replaces it
        assert [type(h.formatter).__name__ for h in added] == ["JsonLines"]
    finally:  # this process's logging as it was, for the tests that follow
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, was in libraries.items():
            logging.getLogger(name).setLevel(was)


def test_json_lines_redact_secrets_in_errors() -> None:
    from stormer.secrets import REDACTED, Secret

    Secret("s3cret-t0ken-value")  # known from now on, as a resolved credential is
    try:
        raise ValueError("refused s3cret-t0ken-value")
    except ValueError:
        record = logging.getLogger("stormer.dispatch").makeRecord(
            "stormer.dispatch", logging.ERROR, __file__, 1, "sync failed", (), sys.exc_info()
        )
    doc = json.loads(JsonLines().format(record))
    assert doc["level"] == "error" and doc["message"] == "sync failed"
    assert doc["error"] == f"ValueError: refused {REDACTED}"


def test_a_bad_log_format_is_a_usage_error() -> None:
    from typer.testing import CliRunner

    from stormer.cli import app

    result = CliRunner().invoke(app, ["run", "--log-format", "xml"])
    assert result.exit_code == 2
    assert "'xml': choose text or json" in result.output


# --- the live view and the summary, rendered -------------------------------------------------

NOW = datetime(2031, 3, 13, 17, 58, 30, tzinfo=UTC)


def a_status(**changes: object) -> dict[str, object]:
    status: dict[str, object] = {
        "storm": "demo",
        "now": NOW,
        "counts": {
            "pending": 0,
            "staged": 0,
            "claimed": 3,
            "sending": 0,
            "sent": 5,
            "failed": 0,
            "dead": 1,
            "unconfirmed": 0,
            "missed": 0,
            "cancelled": 0,
        },
        "total": 9,
        "kinds": {"post": 9},
        "next_fire_at": NOW + timedelta(seconds=90),
        "next_retry_at": None,
        "workers": [],
        "expired_leases": 0,
        "unknown_outcomes": [],
        "lateness": {
            "sent": 5,
            "min_s": 0.1,
            "p50_s": 0.2,
            "p99_s": 0.9,
            "max_s": 0.9,
            "early": [],
        },
    }
    return {**status, **changes}


def test_the_live_view_shows_counts_countdown_and_lateness() -> None:
    console = Console(record=True, width=100)
    console.print(status_text(status_doc(a_status())))
    shown = console.export_text()
    assert "demo: 9 item(s): 3 claimed, 5 sent, 1 dead" in shown
    assert "next fire: 2031-03-13T18:00:00Z (in 1 min 30 s)" in shown
    assert "lateness so far: 5 sent, p50 +0.20 s, p99 +0.90 s, max +0.90 s" in shown
    # Waiting items and no worker: the alert, in bold red.
    assert "!!! NO WORKER IS RUNNING: 3 item(s) are waiting" in shown
    console = Console(record=True, width=100, force_terminal=True)
    console.print(status_text(status_doc(a_status())))
    assert "\x1b[1;31m!!! NO WORKER" in console.export_text(styles=True)


def test_the_exit_summary_names_what_went_wrong_and_what_to_run() -> None:
    summary = exit_summary(status_doc(a_status()), Path("."))
    assert summary == {
        "event": "summary",
        "storm": "demo",
        "total": 9,
        "sent": 5,
        "failed": 0,
        "missed": 0,
        "unconfirmed": 0,
        "dead": 1,
        "waiting": 3,
        "lateness": {"p50": 0.2, "p99": 0.9, "max": 0.9},
        "next": "stormer report",
    }
    assert summary_lines(summary) == [
        "worker stopped: 9 item(s) in demo: 5 sent, 0 failed, 1 dead, 0 unconfirmed, 0 missed",
        "lateness: p50 +0.20 s, p99 +0.90 s, max +0.90 s",
        "!!! 3 item(s) still waiting: nothing sends them until a worker runs (`stormer run`)",
        "!!! some items were not posted: see why with `stormer report`",
    ]
    nothing_sent = a_status(lateness={**a_status()["lateness"], "min_s": None, "p50_s": None,
                                      "p99_s": None, "max_s": None, "sent": 0})  # fmt: skip
    lines = summary_lines(exit_summary(status_doc(nothing_sent), Path("storm")))
    assert not any(line.startswith("lateness") for line in lines)
    assert (
        lines[-1] == "!!! some items were not posted: see why with `stormer report --storm storm`"
    )
