"""`stormer doctor`: every pre-flight check against the simulator and both database backends,
each failure saying what to fix, no secret ever shown."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from example import CREDENTIALS, copy_example, point_accounts_at, set_reminder_offsets
from fixtures_sim import png_bytes
from fixtures_sinks import JsonSink
from ports import free_port
from sqlalchemy import Engine
from typer.testing import CliRunner, Result

from stormer.cli import app
from stormer.ops.clock import clock_finding
from stormer.ops.doctor import alerts_finding, media_finding, send_test_alert, worker_finding
from stormer.ops.findings import Finding
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
    assert failed == {"credentials": "error", "schedule": "error", "alerts": "error"}
    assert all(found[name].fix for name in failed)
    assert "2 of 8 account(s)" in found["credentials"].message
    assert "campaign-x" in found["credentials"].message
    assert "FPS_MATRIX_TOKEN" in found["credentials"].message
    assert "stormer schedule" in found["schedule"].fix  # type: ignore[operator]
    # T is an hour away: a worker is not needed yet, and the finding says by when.
    assert found["worker"].message.startswith("none alive yet; start `stormer run` at least ")
    assert found["alerts"].message == "$FPS_ALERT_URL is not set"
    out = runner.invoke(app, ["doctor", "--storm", str(storm)]).stdout
    assert "[FAIL] alerts: $FPS_ALERT_URL is not set" in out
    assert out.splitlines()[-1] == "3 error(s), 0 warning(s)" and "SECRET" not in out


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


@pytest.fixture
def zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Set this machine's zone (TZ) for the test, and restore it after."""

    def set_zone(name: str) -> None:
        monkeypatch.setenv("TZ", name)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()


H = timedelta(hours=1)
WAIT_DAY = "none alive yet; start `stormer run` at least 10 min before"


@pytest.mark.parametrize(
    ("now", "offsets", "outbox", "severity", "says"),
    [
        # Not scheduled yet: the plan says what goes first.
        (
            T - 25 * H,
            [],
            {},
            "info",
            f"{WAIT_DAY} 2031-03-13 18:00:00 UTC = 2031-03-13 19:00:00 CET here (in 1 d 1 h), "
            "when the storm's first post is sent: a worker stages each item that far ahead",
        ),
        (
            T - 25 * H,
            ["24h", "1h"],
            {},
            "info",
            f"{WAIT_DAY} 2031-03-12 18:00:00 UTC = 2031-03-12 19:00:00 CET here (in 1 h), "
            "when the next reminder to participants is sent",
        ),
        # The 24 h reminder's time has passed: the plan holds only the 1 h one now.
        (T - 23 * H, ["24h", "1h"], {}, "info", "(in 22 h), when the next reminder"),
        # Scheduled: the outbox says, and an item due with no worker is an error.
        (
            T - 23 * H,
            ["24h", "1h"],
            {"pending": 9, "next_fire_at": T - 24 * H},
            "error",
            "NO WORKER IS ALIVE (no heartbeat in the last minute) and the next reminder to "
            "participants is due 2031-03-12 18:00:00 UTC = 2031-03-12 19:00:00 CET here "
            "(1 h ago): nothing will be sent",
        ),
        (
            T - 5 * timedelta(minutes=1),
            [],
            {"pending": 8, "next_fire_at": T},
            "error",
            "(in 5 min)",
        ),
        (
            T + 2 * timedelta(minutes=1),
            [],
            {"pending": 3, "next_fire_at": T},
            "error",
            "(2 min ago)",
        ),
        (T + 2 * timedelta(minutes=1), [], {"sent": 8}, "info", "none alive, and nothing is left"),
    ],
)
def test_a_worker_must_run_before_the_first_item_is_sent(
    tmp_path: Path,
    zone: Callable[[str], None],
    now: datetime,
    offsets: list[str],
    outbox: dict[str, Any],
    severity: str,
    says: str,
) -> None:
    zone("Europe/Rome")
    root = copy_example(tmp_path / "storm", at=iso_utc(T))
    set_reminder_offsets(root, offsets)
    storm = load_storm(root)
    next_fire_at = outbox.pop("next_fire_at", None)
    counts = dict.fromkeys(State, 0) | outbox
    summary = {
        "now": now,
        "workers": [],
        "counts": counts,
        "total": sum(counts.values()),
        "next_fire_at": next_fire_at,
        "next_retry_at": None,
    }
    found = worker_finding(storm, summary)
    assert (found.severity, found.ok) == (severity, severity == "info"), found.message
    assert says in found.message


def test_doctor_names_the_first_reminder_as_the_worker_deadline(
    storm: Path, zone: Callable[[str], None]
) -> None:
    zone("Asia/Kolkata")  # UTC+05:30
    set_reminder_offsets(storm, ["24h", "30m"])  # T is an hour away: only the 30 min one
    schedule(storm)
    before = datetime.now(UTC)
    _, found = doctor(storm)
    after = datetime.now(UTC)
    at = load_storm(storm).at
    assert at is not None
    first = at - timedelta(minutes=30)
    here = first.astimezone(timezone(timedelta(hours=5, minutes=30)))
    message = found["worker"].message
    assert message.startswith(
        "none alive yet; start `stormer run` at least 10 min before "
        f"{first:%Y-%m-%d %H:%M:%S} UTC = {here:%Y-%m-%d %H:%M:%S} IST here (in "
    ), message
    # How long until then, as doctor read its clock somewhere between `before` and `after`.
    told = re.search(r"\(in (?:(\d+) min)? ?(?:(\d+) s)?\)", message)
    assert told is not None, message
    left = int(told.group(1) or 0) * 60 + int(told.group(2) or 0)
    assert (first - after).total_seconds() - 1 <= left <= (first - before).total_seconds() + 1
    assert message.endswith(
        "when the next reminder to participants is sent: a worker stages each item that far ahead"
    )


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


def test_offline_the_network_is_named_not_the_clock(
    storm_files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing answers: a server whose name does not resolve, every other refusing the
    connection. The clock is not the problem, the network is."""
    config = storm_files / "config.toml"
    closed = f"http://127.0.0.1:{free_port()}"
    # Every account on a closed port (the fixture points them at the simulator)...
    text = re.sub(r'base_url = "[^"]*"', f'base_url = "{closed}"', config.read_text("utf-8"))
    # ...but one, on a name no resolver knows (RFC 6761: `.invalid` never resolves).
    config.write_text(
        text.replace(f'base_url = "{closed}"', 'base_url = "http://stormer-doctor.invalid"', 1),
        encoding="utf-8",
    )
    monkeypatch.setenv("FPS_DISCORD_WEBHOOK_URL", f"{closed}/api/webhooks/7/tok-d")
    result, found = doctor(storm_files)
    assert result.exit_code == 1
    clock = found["clock"]
    assert clock.severity == "warning"
    assert clock.message.startswith("cannot reach any platform server (")
    assert "http://stormer-doctor.invalid: its name does not resolve (DNS)" in clock.message
    assert f"{closed}: connection refused" in clock.message
    assert "this machine is offline, or DNS, a firewall or a proxy is in the way" in clock.message
    assert "clock offset was not measured" in clock.message
    assert clock.fix is not None and "network connection" in clock.fix
    assert "synchronise" not in clock.fix and "NTP" not in clock.fix


def test_a_server_without_a_date_header_is_reached_but_tells_no_time(storm_files: Path) -> None:
    storm = load_storm(storm_files)

    async def measure() -> Finding:
        transport = httpx.MockTransport(lambda request: httpx.Response(200))  # no Date header
        async with httpx.AsyncClient(transport=transport) as http:
            return await clock_finding(storm, http)

    found = asyncio.run(measure())
    assert found.severity == "warning"
    assert found.message.startswith("no platform server gave a time to compare the clock with (")
    assert ": no Date header" in found.message and "cannot reach" not in found.message


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
