"""`stormer doctor`: every pre-flight check against the simulator and both database backends,
each failure saying what to fix, no secret ever shown."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from example import CREDENTIALS, copy_example, point_accounts_at, set_reminder_offsets
from fixtures_sim import png_bytes
from fixtures_sinks import JsonSink
from ports import free_port
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from stormer.cli import app
from stormer.ops.doctor import (
    Finding,
    alerts_finding,
    clock_finding,
    media_finding,
    send_test_alert,
    worker_finding,
)
from stormer.outbox import workers
from stormer.outbox.models import State
from stormer.storm import Storm, load_storm
from stormer.timezones import iso_utc

runner = CliRunner()
CHECKS = [
    "config",
    "credentials",
    "media",
    "clock",
    "database",
    "schedule",
    "worker",
    "reminders",
    "alerts",
]


@pytest.fixture
def storm_files(
    tmp_path: Path,
    simulator: str,
    json_sink: JsonSink,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The example storm an hour from now, against the simulator, with alerts configured; its
    SQLite database does not exist yet."""
    at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    root = copy_example(tmp_path / "storm", at=iso_utc(at))
    point_accounts_at(root, simulator)
    with (root / "config.toml").open("a", encoding="utf-8") as f:
        f.write('\n[alerts]\napprise = ["FPS_ALERT_URL"]\n')
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FPS_DISCORD_WEBHOOK_URL", f"{simulator}/api/webhooks/7/tok-d-SECRET")
    monkeypatch.setenv("FPS_ALERT_URL", json_sink.url(auth="stormer:alert-pw-SECRET@"))
    # Only X's refresh token is in the keyring (`stormer login campaign-x` keeps it): with it
    # the X token is renewed at staging and holds until T + grace.
    stored = {"campaign-x/refresh_token": "x-refresh-SECRET"}
    monkeypatch.setattr("keyring.get_password", lambda service, name: stored.get(name))
    return root


@pytest.fixture
def storm(storm_files: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STORMER_DATABASE_URL", db_url)
    return storm_files


def doctor(storm: Path, *args: str) -> tuple[Result, dict[str, Finding]]:
    result = runner.invoke(app, ["doctor", "--json", *args, "--storm", str(storm)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] == (result.exit_code == 0)
    assert "SECRET" not in result.output
    return result, {c["name"]: Finding(**c) for c in doc["checks"]}


def schedule(storm: Path) -> None:
    result = runner.invoke(app, ["schedule", "--storm", str(storm)])
    assert result.exit_code == 0, result.output


def live_worker(engine: Engine, storm: Storm) -> None:
    now = datetime.now(UTC)
    workers.register_worker(
        engine=engine, worker="w-live", storm=storm.slug, hostname="host-a", pid=101, now=now
    )
    workers.heartbeat(engine=engine, worker="w-live", now=now, staged_through=storm.at)


# --- the whole doctor ---------------------------------------------------------------------------


def test_a_ready_storm_passes_every_check(storm: Path, engine: Engine) -> None:
    schedule(storm)
    live_worker(engine, load_storm(storm))
    result, found = doctor(storm)
    assert result.exit_code == 0, result.output
    assert list(found) == CHECKS
    assert all(f.ok and f.severity == "info" and f.fix is None for f in found.values()), found
    assert found["credentials"].message.startswith(
        "all 8 account(s) accepted by their platforms, none expiring before T + grace"
    )
    assert found["worker"].message.startswith("1 alive: w-live (heartbeat ")
    assert "8 item(s) in the outbox (8 pending)" in found["schedule"].message
    # For people: one line per check, and the verdict.
    lines = runner.invoke(app, ["doctor", "--storm", str(storm)]).stdout.splitlines()
    assert [line.split("]")[0] for line in lines[:-1]] == ["[ok  "] * len(CHECKS)
    assert lines[-1] == "all checks passed"


def test_each_failure_says_what_to_fix(
    storm: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FPS_X_TOKEN", "invalid-x-SECRET")
    monkeypatch.delenv("FPS_MATRIX_TOKEN")
    monkeypatch.delenv("FPS_ALERT_URL")
    result, found = doctor(storm)  # migrated, nothing scheduled, no worker
    assert result.exit_code == 1
    failed = {name: f.severity for name, f in found.items() if not f.ok}
    assert failed == {
        "credentials": "error",
        "schedule": "error",
        "worker": "error",
        "alerts": "error",
    }
    assert all(found[name].fix for name in failed)
    assert "2 of 8 account(s)" in found["credentials"].message
    assert "campaign-x" in found["credentials"].message
    assert "FPS_MATRIX_TOKEN" in found["credentials"].message
    assert "stormer schedule" in found["schedule"].fix  # type: ignore[operator]
    assert found["worker"].message.startswith("NO WORKER IS ALIVE")
    assert "stormer run" in found["worker"].fix  # type: ignore[operator]
    assert found["alerts"].message == "$FPS_ALERT_URL is not set"
    out = runner.invoke(app, ["doctor", "--storm", str(storm)]).stdout
    assert "[FAIL] worker: NO WORKER IS ALIVE" in out and "       fix: start `stormer run`" in out
    assert out.splitlines()[-1] == "4 error(s), 0 warning(s)" and "SECRET" not in out


def test_an_unreadable_config_is_a_failed_check(storm_files: Path) -> None:
    (storm_files / "config.toml").write_text("[storm\n", encoding="utf-8")
    result, found = doctor(storm_files)
    assert result.exit_code == 1
    assert list(found) == ["config"] and "not valid TOML" in found["config"].message


# --- database ---------------------------------------------------------------------------------


def test_no_database_yet_is_reported_and_not_created(storm_files: Path) -> None:
    result, found = doctor(storm_files)
    assert result.exit_code == 1
    assert (found["database"].severity, found["database"].message) == ("error", "no database yet")
    assert "stormer schedule" in found["database"].fix  # type: ignore[operator]
    assert found["schedule"].severity == found["worker"].severity == "warning"
    assert not (storm_files / "stormer.db").exists()


def test_a_database_behind_its_migrations(storm: Path, db_url: str) -> None:
    from stormer.outbox.db import make_engine

    engine = make_engine(db_url)
    with engine.begin():  # the database exists (SQLite: the file), its schema does not
        pass
    engine.dispose()
    result, found = doctor(storm)
    assert result.exit_code == 1
    assert found["database"].message.endswith("is not at the newest schema")
    assert "stormer db upgrade" in found["database"].fix  # type: ignore[operator]


def test_an_unreachable_database_never_shows_its_password(
    storm_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "STORMER_DATABASE_URL", f"postgresql://stormer:db-pw-SECRET@127.0.0.1:{free_port()}/outbox"
    )
    result, found = doctor(storm_files)  # `doctor` asserts SECRET is nowhere in the output
    assert result.exit_code == 1
    assert found["database"].message.startswith(
        "cannot use postgresql+psycopg://stormer:***@127.0.0.1:"
    )
    assert "Connection refused" in found["database"].message


# --- worker -------------------------------------------------------------------------------------

T = datetime(2031, 3, 13, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "waiting", "severity", "says"),
    [
        (T - timedelta(hours=25), 8, "info", "none alive; the storm is in 1 d 1 h: start"),
        (
            T - timedelta(hours=23),
            8,
            "error",
            "NO WORKER IS ALIVE (no heartbeat in the last minute) and the storm is in 23 h",
        ),
        (T + timedelta(minutes=2), 3, "error", "the storm is 2 min past"),
        (T + timedelta(minutes=2), 0, "info", "none alive, and nothing is left to send"),
    ],
)
def test_a_worker_must_be_alive_within_24_hours(
    tmp_path: Path, now: datetime, waiting: int, severity: str, says: str
) -> None:
    storm = load_storm(copy_example(tmp_path / "storm", at=iso_utc(T)))
    counts = dict.fromkeys(State, 0) | {"pending": waiting, "sent": 8 - waiting}
    found = worker_finding(storm, {"now": now, "workers": [], "counts": counts})
    assert (found.severity, found.ok) == (severity, severity == "info")
    assert says in found.message


# --- clock ----------------------------------------------------------------------------------------


def test_the_simulator_answers_with_a_date_header(simulator: str) -> None:
    # The clock check reads `Date`; uvicorn (which serves the simulator) sets it on every
    # response, to the second, refreshed once a second.
    response = httpx.head(simulator + "/")
    assert response.headers["date"].endswith(" GMT")


def shifted(seconds: float) -> Callable[[], datetime]:
    return lambda: datetime.now(UTC) + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("shift", "severity", "says"),
    [
        (0, "info", "within 2 s of the platforms (127.0.0.1:"),
        (10, "warning", "AHEAD of the platforms: posts would go out that much BEFORE"),
        (-10, "warning", "behind the platforms: posts would go out that much late"),
        (60, "error", "AHEAD"),
        (-60, "error", "behind"),
    ],
)
def test_the_clock_against_the_platforms_date_headers(
    storm_files: Path, shift: float, severity: str, says: str
) -> None:
    storm = load_storm(storm_files)

    async def measure() -> Finding:
        async with httpx.AsyncClient() as http:
            return await clock_finding(storm, http, shifted(shift))

    found = asyncio.run(measure())
    assert found.severity == severity and says in found.message, found.message
    if shift:  # the offset is measured to within the Date header's second
        offset = float(found.message.split(" s ")[0].split()[-1])
        assert abs(offset - abs(shift)) < 2.5, found.message


def test_no_answer_means_the_clock_is_not_measured(
    storm_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = storm_files / "config.toml"
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("FPS_DISCORD_WEBHOOK_URL", f"{closed}/api/webhooks/7/tok-d")
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace(text.split('base_url = "')[1].split('"')[0], closed), encoding="utf-8"
    )
    storm = load_storm(storm_files)

    async def measure() -> Finding:
        async with httpx.AsyncClient() as http:
            return await clock_finding(storm, http)

    found = asyncio.run(measure())
    assert found.severity == "warning" and found.message.startswith("could not measure")
    assert f"{closed}: no answer (ConnectError)" in found.message


# --- media ----------------------------------------------------------------------------------------


def test_images_over_a_platform_limit_or_unreadable(storm_files: Path) -> None:
    images = storm_files / "posts" / "images"
    # en-01 carries flag-book.png; an English Bluesky account may post it.
    (images / "flag-book.png").write_bytes(png_bytes(padding=1_100_000))
    storm = load_storm(storm_files)
    assert storm.errors == []
    (images / "globe-ring.png").unlink()  # gone after loading: moved, or no permission
    (images / "globe-ring.png").mkdir()
    found = media_finding(storm)
    assert found.severity == "error"
    assert (
        "posts/en-01-right-to-education.md: images/flag-book.png is 1.1 MB, over Bluesky's 1.0 MB"
    ) in found.message
    assert "images/globe-ring.png cannot be read (Is a directory)" in found.message
    assert "Mastodon" not in found.message  # 16 MB there


def test_no_images_is_fine(storm_files: Path) -> None:
    for post in (storm_files / "posts").glob("*.md"):
        text = post.read_text(encoding="utf-8")
        post.write_text(
            "\n".join(line for line in text.splitlines() if not line.startswith("images")) + "\n",
            encoding="utf-8",
        )
    shutil.rmtree(storm_files / "posts" / "images")
    found = media_finding(load_storm(storm_files))
    assert (found.ok, found.message) == (True, "no images")


# --- alerts ---------------------------------------------------------------------------------------


def test_alerts_must_be_configured_set_and_usable(
    storm_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    storm = load_storm(storm_files)
    found = alerts_finding(storm)
    assert found.ok and "1 alert URL(s) set; alerts go out 0:05:00 before T" in found.message
    monkeypatch.setenv("FPS_ALERT_URL", "notaservice://SECRET")
    found = alerts_finding(storm)
    assert (found.severity, found.message) == (
        "error",
        "$FPS_ALERT_URL is not a usable Apprise URL",
    )
    storm.unstaged_before = timedelta(minutes=10)
    monkeypatch.setenv("FPS_ALERT_URL", "json://127.0.0.1/")
    assert alerts_finding(storm).severity == "warning"
    storm.alert_vars = []
    found = alerts_finding(storm)
    assert found.severity == "warning" and "stormer watchdog" in found.fix  # type: ignore[operator]


def test_a_test_alert_is_delivered(storm: Path, engine: Engine, json_sink: JsonSink) -> None:
    schedule(storm)
    live_worker(engine, load_storm(storm))
    result, found = doctor(storm, "--test-alert")
    assert result.exit_code == 0
    assert found["test alert"].message == "delivered through $FPS_ALERT_URL"
    ((_, doc),) = json_sink.received
    assert doc["title"] == "stormer: test alert for 'Free Palestinian Students'"


def test_a_test_alert_that_fails_is_an_error(
    storm_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FPS_ALERT_URL", f"json://x:hook-SECRET@127.0.0.1:{free_port()}/alerts")
    found = send_test_alert(load_storm(storm_files))
    assert (found.severity, found.message) == (
        "error",
        "$FPS_ALERT_URL: JSON did not take the alert",
    )


def test_reminders_need_their_senders_set(
    storm_files: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    set_reminder_offsets(storm_files, ["24h", "1h", "10m"])
    monkeypatch.setenv("STORMER_DATABASE_URL", f"sqlite:///{tmp_path / 'doctor.db'}")
    monkeypatch.delenv("FPS_SMTP_URL", raising=False)
    _, found = doctor(storm_files)
    reminders = found["reminders"]
    assert (reminders.ok, reminders.severity) == (False, "error")
    assert reminders.message == "$FPS_SMTP_URL (the `mailto` sender) is not set"
    assert "mailtos://" in (reminders.fix or "")
    monkeypatch.setenv(
        "FPS_SMTP_URL", "mailtos://storm:pw-SECRET@smtp.example.org?from=storm@example.org"
    )
    _, found = doctor(storm_files)
    assert found["reminders"].ok
    assert found["reminders"].message == (
        "3 reminder(s) before T to 42 email, 1 json, 1 ntfy contact(s); every sender is set"
    )
