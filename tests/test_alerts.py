"""Alerts through Apprise, delivered for real (a local SMTP server, a local HTTP server), and
the watchdog that raises them: when, once, and never showing an alert URL."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from example import copy_example, example_against
from fixtures_sinks import JsonSink, SmtpSink
from ports import free_port
from sqlalchemy import Engine, update
from timing import PATIENCE
from typer.testing import CliRunner, Result

from stormer.cli import app
from stormer.dispatch.dispatcher import Dispatcher, Settings
from stormer.errors import AlertFailed, ConfigError
from stormer.ops.alerts import alert, due_summary, unstaged_alert_due, watch
from stormer.outbox import workers
from stormer.outbox.models import Outbox
from stormer.storm import Storm, load_storm
from stormer.timezones import iso_utc

runner = CliRunner()
T = datetime(2031, 3, 13, 18, 0, tzinfo=UTC)
FIVE = timedelta(minutes=5)


def body_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


# --- alert ------------------------------------------------------------------------------------


def test_an_alert_arrives_by_email(smtp: SmtpSink) -> None:
    alert([smtp.url()], "storm not staged", "8 item(s) are not staged\nstart `stormer run`")
    (message,) = smtp.messages
    assert message["Subject"] == "storm not staged"
    assert message["To"] == "organizer@example.org"
    assert "8 item(s) are not staged" in body_of(message)


def test_the_alert_url_never_reaches_a_log(
    json_sink: JsonSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = json_sink.url(auth="stormer:hook-pw-SECRET@")
    alert([url], "title", "body")
    (headers, doc) = json_sink.received[0]
    assert (doc["title"], doc["message"]) == ("title", "body")
    assert base64.b64decode(headers["Authorization"].split()[1]) == b"stormer:hook-pw-SECRET"
    # A failing delivery (nothing listens there) logs more, and still no URL.
    dead = f"json://stormer:dead-pw-SECRET@127.0.0.1:{free_port()}/alerts"
    with pytest.raises(AlertFailed) as failed:
        alert([dead], "title", "body")
    assert failed.value.delivered == 0
    assert "SECRET" not in str(failed.value)
    assert caplog.records and "SECRET" not in caplog.text


def test_every_url_is_tried_and_the_failures_named_by_position(
    smtp: SmtpSink, json_sink: JsonSink
) -> None:
    nobody = f"mailto://127.0.0.1:{free_port()}?from=s@example.org&to=a@example.org"
    urls = ["notaservice://nothing", nobody, smtp.url(), json_sink.url()]
    with pytest.raises(AlertFailed) as failed:
        alert(urls, "title", "body")
    assert failed.value.delivered == 2
    assert [i for i, _ in failed.value.failed] == [0, 1]
    assert "not a usable Apprise URL" in failed.value.failed[0][1]
    assert "E-Mail did not take the alert" in failed.value.failed[1][1]
    assert len(smtp.messages) == 1 and len(json_sink.received) == 1


# --- when is an alert due? -----------------------------------------------------------------------


def worker(worker_id: str = "w1", staged_through: datetime | None = T) -> dict[str, Any]:
    return {"worker_id": worker_id, "staged_through": staged_through}


def item(
    state: str,
    *,
    account: str = "campaign-x",
    fire_at: datetime = T,
    lease_owner: str | None = None,
    lease_until: datetime | None = None,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
) -> dict[str, Any]:
    return {
        "id": f"{account}-{state}",
        "account": account,
        "fire_at": fire_at,
        "state": state,
        "lease_owner": lease_owner,
        "lease_until": lease_until,
        "next_attempt_at": next_attempt_at,
        "error": error,
    }


LEASED = {"lease_owner": "w1", "lease_until": T}
RETRY = {"next_attempt_at": T - FIVE + timedelta(seconds=30)}


@pytest.mark.parametrize(
    ("now", "workers", "due", "expected"),
    [
        # Before T − 5 min: not yet, whatever the state.
        (T - FIVE - timedelta(seconds=1), [], [item("pending")], None),
        (T - FIVE, [], [item("pending")], "1 not claimed by any worker (campaign-x)"),
        # Claimed by a live worker that has staged through T: all is well.
        (T - FIVE, [worker()], [item("claimed", **LEASED)], None),
        (
            T - FIVE,
            [worker(staged_through=None)],
            [item("claimed", **LEASED)],
            "claimed by a live worker, still not staged",
        ),
        (
            T - FIVE,
            [worker(staged_through=T - timedelta(seconds=1))],
            [item("claimed", **LEASED)],
            "claimed by a live worker, still not staged",
        ),
        # Its worker is no longer alive, or its lease ran out.
        (T - FIVE, [], [item("claimed", **LEASED)], "held by a worker that stopped"),
        (
            T - FIVE,
            [worker()],
            [item("claimed", lease_owner="w1", lease_until=T - 2 * FIVE)],
            "held by a worker that stopped",
        ),
        # Staged and released: fine while some worker is alive to claim it again.
        (T - FIVE, [worker("w2", None)], [item("staged")], None),
        (T - FIVE, [], [item("staged")], "staged, but no worker is alive to fire them"),
        # Failed staging: retried while a worker lives, until it would be given up.
        (
            T - FIVE,
            [worker()],
            [item("failed", error="staging: credentials rejected (401)\nmore", **RETRY)],
            "1 failed staging, being retried by a live worker: credentials rejected (401) "
            "(campaign-x); next attempt at 2031-03-13T17:55:30Z, given up if not sent by "
            "2031-03-13T18:10:00Z (its time + 10m, `stormer run`'s default --grace)",
        ),
        (
            T - FIVE,
            [],
            [item("failed", error="staging: 503", **RETRY)],
            "1 failed staging, and no worker is alive to try again: 503 (campaign-x)",
        ),
        (
            T + FIVE,
            [worker()],
            [item("failed", error="staging: 429", next_attempt_at=T + 3 * FIVE)],
            "1 failed staging and will not be sent: its next attempt (2031-03-13T18:15:00Z) is "
            "after it is given up (2031-03-13T18:10:00Z): 429 (campaign-x)",
        ),
        # Refused for good at staging (too long for the server's own limit): never sent.
        (
            T - FIVE,
            [worker()],
            [item("dead", error="staging: text 312 > 280 characters\nmore")],
            "1 refused at staging and will not be sent: text 312 > 280 characters (campaign-x)",
        ),
        # Past T and still pending: said too (nobody sent it).
        (T + FIVE, [], [item("pending")], "(5 min ago)"),
    ],
)
def test_unstaged_alert_due(
    now: datetime, workers: list[dict[str, Any]], due: list[dict[str, Any]], expected: str | None
) -> None:
    summary = {"storm": "s", "workers": workers, "due": due}
    message = unstaged_alert_due(summary, now, FIVE)
    if expected is None:
        assert message is None
    else:
        assert message is not None and expected in message, message


def test_the_message_counts_by_reason_and_says_what_to_do() -> None:
    due = [item("pending", account=f"acct-{i}") for i in range(7)] + [
        item("failed", account="campaign-bluesky", error="staging: rate limited", **RETRY)
    ]
    message = unstaged_alert_due({"storm": "fps", "workers": [], "due": due}, T - FIVE, FIVE)
    assert message == (
        "8 item(s) of storm 'fps' due from 2031-03-13T18:00:00Z (in 5 min) are not staged by "
        "a live worker:\n"
        "  - 7 not claimed by any worker (acct-0, acct-1, acct-2, acct-3, acct-4 and 2 more)\n"
        "  - 1 failed staging, and no worker is alive to try again: rate limited "
        "(campaign-bluesky)\n"
        "No worker is alive (no heartbeat in the last minute).\n"
        "Fix: start `stormer run` for this storm now and keep it running through T; "
        "`stormer doctor` says what else is wrong."
    )


# --- the watchdog, end to end --------------------------------------------------------------------


@pytest.fixture
def storm_files(
    tmp_path: Path, simulator: str, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The example storm 4 minutes from now, against the simulator, alerting by e-mail; its
    database (SQLite) does not exist yet."""
    at = (datetime.now(UTC) + timedelta(minutes=4)).replace(microsecond=0)
    root = example_against(tmp_path / "storm", simulator, monkeypatch, at=iso_utc(at))
    with (root / "config.toml").open("a", encoding="utf-8") as f:
        f.write('\n[alerts]\napprise = ["FPS_ALERT_URL"]\nunstaged_before = "5m"\n')
    monkeypatch.setenv("FPS_ALERT_URL", smtp.url())
    return root


@pytest.fixture
def storm(storm_files: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`storm_files` on a new database, once per backend."""
    monkeypatch.setenv("STORMER_DATABASE_URL", db_url)
    return storm_files


def watchdog(storm: Path, *args: str) -> tuple[int, dict[str, Any], Result]:
    result = runner.invoke(app, ["watchdog", "--json", *args, "--storm", str(storm)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout), result


def test_no_worker_before_t_alerts_once(storm: Path, engine: Engine, smtp: SmtpSink) -> None:
    assert runner.invoke(app, ["schedule", "--storm", str(storm)]).exit_code == 0
    code, doc, result = watchdog(storm)
    assert (code, doc["due"], doc["alerted"]) == (1, True, "sent")
    assert "8 not claimed by any worker" in doc["message"]
    (message,) = smtp.messages
    assert (
        message["Subject"] == "stormer: storm 'Free Palestinian Students' may not go out as planned"
    )
    assert "8 not claimed by any worker" in body_of(message)
    assert result.stderr.strip() == "alert sent"
    # Cron runs it again a minute later: the alert is not repeated.
    code, doc, _ = watchdog(storm)
    assert (code, doc["alerted"]) == (1, "already")
    assert len(smtp.messages) == 1
    assert [p.name for p in (storm / ".stormer" / "alerts").iterdir()] == [
        f"free-palestinian-students-2021@{doc['instant'].replace('-', '').replace(':', '')}.json"
    ]


def test_a_live_worker_that_staged_keeps_it_quiet_until_it_stops(
    storm: Path, engine: Engine, smtp: SmtpSink
) -> None:
    assert runner.invoke(app, ["schedule", "--storm", str(storm)]).exit_code == 0
    loaded = load_storm(storm)

    async def while_a_worker_runs() -> str | None:
        stop = asyncio.Event()
        dispatcher = Dispatcher(loaded, engine, settings=Settings(poll_seconds=0.5))
        task = asyncio.create_task(dispatcher.run(stop=stop))
        give_up = datetime.now(UTC) + PATIENCE
        try:
            while True:  # until its heartbeat says it staged through T
                await asyncio.sleep(0.1)
                live = workers.live_workers(engine=engine, storm=loaded.slug, now=datetime.now(UTC))
                if live and live[0].staged_through == loaded.at:
                    break
                if datetime.now(UTC) > give_up:
                    pytest.fail(f"the worker did not stage the storm within {PATIENCE}")
            found = await asyncio.to_thread(watch, loaded, engine, now=datetime.now(UTC))
            return found.message
        finally:
            stop.set()
            await task

    assert asyncio.run(while_a_worker_runs()) is None
    assert smtp.messages == []
    code, doc, _ = watchdog(storm, "--quiet")  # the worker stopped: its items are staged
    assert (code, doc["alerted"]) == (1, "sent")
    assert "8 staged, but no worker is alive to fire them" in doc["message"]
    assert len(smtp.messages) == 1


def scheduled_and_staged_by_a_live_worker(storm: Path, engine: Engine) -> tuple[Storm, datetime]:
    """The storm scheduled and a live worker that says it staged everything up to T; → the
    loaded storm (its `at` set) and now."""
    assert runner.invoke(app, ["schedule", "--storm", str(storm)]).exit_code == 0
    loaded = load_storm(storm)
    assert loaded.at is not None
    now = datetime.now(UTC)
    workers.register_worker(
        engine=engine, worker="w-live", storm=loaded.slug, hostname="h", pid=1, now=now
    )
    workers.heartbeat(engine=engine, worker="w-live", now=now, staged_through=loaded.at)
    return loaded, now


def test_a_send_being_retried_is_said_so_and_only_a_final_one_will_not_be_sent(
    storm: Path, engine: Engine, smtp: SmtpSink
) -> None:
    loaded, now = scheduled_and_staged_by_a_live_worker(storm, engine)
    retry = (now + timedelta(seconds=30)).replace(microsecond=0)
    with engine.begin() as conn:
        conn.execute(update(Outbox).values(state="staged"))
        conn.execute(
            update(Outbox)
            .where(Outbox.account == "campaign-bluesky")
            .values(
                state="failed",
                attempts=1,
                next_attempt_at=retry,
                error="staging: rate limited by bluesky: retry after 30 s",
            )
        )
    code, doc, _ = watchdog(storm)
    assert (code, doc["alerted"]) == (1, "sent")
    assert doc["message"].splitlines()[1] == (
        "  - 1 failed staging, being retried by a live worker: rate limited by bluesky: retry "
        f"after 30 s (campaign-bluesky); next attempt at {iso_utc(retry)}, given up if not "
        f"sent by {iso_utc(loaded.at + timedelta(minutes=10))} (its time + 10m, `stormer "
        "run`'s default --grace)"
    )
    assert "will not be sent" not in doc["message"]
    assert "failed staging, being retried" in body_of(smtp.messages[0])
    # Its next attempt would come after it is given up: now it is final, and said so.
    with engine.begin() as conn:
        conn.execute(
            update(Outbox)
            .where(Outbox.account == "campaign-bluesky")
            .values(next_attempt_at=loaded.at + timedelta(minutes=30))
        )
    code, doc, _ = watchdog(storm)
    assert (code, doc["alerted"]) == (1, "already")
    assert "1 failed staging and will not be sent: its next attempt" in doc["message"]


def test_an_item_refused_at_staging_is_alerted_before_t_not_after(
    storm: Path, engine: Engine, smtp: SmtpSink
) -> None:
    loaded, _ = scheduled_and_staged_by_a_live_worker(storm, engine)
    with engine.begin() as conn:
        conn.execute(update(Outbox).values(state="staged"))
        conn.execute(
            update(Outbox)
            .where(Outbox.account == "campaign-x")
            .values(state="dead", error="staging: text 312 > 280 characters")
        )
    code, doc, _ = watchdog(storm)
    assert (code, doc["alerted"]) == (1, "sent")
    assert doc["message"].splitlines()[1] == (
        "  - 1 refused at staging and will not be sent: text 312 > 280 characters (campaign-x)"
    )
    summary = due_summary(
        engine=engine, storm=loaded.slug, now=loaded.at + timedelta(seconds=1), threshold=FIVE
    )
    # Dead after its time is the report's to tell, not the watchdog's.
    assert "dead" not in {r["state"] for r in summary["due"]}


def test_all_well_is_silent_with_quiet(storm: Path, engine: Engine) -> None:
    config = storm / "config.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            'unstaged_before = "5m"', 'unstaged_before = "1m"'
        ),
        encoding="utf-8",
    )
    assert runner.invoke(app, ["schedule", "--storm", str(storm)]).exit_code == 0
    result = runner.invoke(app, ["watchdog", "--quiet", "--storm", str(storm)])
    assert (result.exit_code, result.output) == (0, "")
    result = runner.invoke(app, ["watchdog", "--storm", str(storm)])
    # T is 4 min away: nothing is due within the minute, and no worker is claimed to be alive.
    assert result.exit_code == 0
    assert result.stdout == "free-palestinian-students-2021: ok — nothing is due within 1 min\n"


def test_nothing_scheduled_near_t_is_an_alert(storm_files: Path, smtp: SmtpSink) -> None:
    code, doc, _ = watchdog(storm_files)  # no database at all yet (SQLite: no file)
    assert (code, doc["alerted"]) == (1, "sent")
    assert doc["message"].startswith("nothing is scheduled for storm")
    assert "stormer schedule" in body_of(smtp.messages[0])


def test_an_empty_database_near_t_is_an_alert(storm: Path, db_url: str, smtp: SmtpSink) -> None:
    from stormer.outbox.db import make_engine

    engine = make_engine(db_url)
    with engine.begin():  # the database exists (SQLite: the file), its schema does not
        pass
    engine.dispose()
    code, doc, _ = watchdog(storm)
    assert (code, doc["alerted"]) == (1, "sent")
    assert doc["message"].startswith("stormer cannot read the outbox")
    assert "stormer schedule" in body_of(smtp.messages[0])


def test_an_unreachable_database_near_t_is_an_alert(
    storm_files: Path, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "STORMER_DATABASE_URL", f"postgresql://stormer:db-pw-SECRET@127.0.0.1:{free_port()}/outbox"
    )
    code, doc, result = watchdog(storm_files)
    assert (code, doc["alerted"]) == (1, "sent")
    assert doc["message"].startswith("stormer cannot read the outbox: OperationalError")
    assert "SECRET" not in result.output and "SECRET" not in body_of(smtp.messages[0])


def test_a_failed_delivery_is_tried_again_at_the_next_run(
    storm: Path, engine: Engine, smtp: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["schedule", "--storm", str(storm)]).exit_code == 0
    monkeypatch.setenv(
        "FPS_ALERT_URL", f"mailto://127.0.0.1:{free_port()}?from=s@example.org&to=o@example.org"
    )
    code, doc, result = watchdog(storm)
    assert (code, doc["alerted"]) == (2, "failed")
    assert doc["error"] == "$FPS_ALERT_URL: E-Mail did not take the alert"
    assert "ALERT NOT SENT" in result.stderr
    monkeypatch.setenv("FPS_ALERT_URL", smtp.url())
    code, doc, _ = watchdog(storm)
    assert (code, doc["alerted"]) == (1, "sent")
    assert len(smtp.messages) == 1


def test_without_alert_urls_nobody_is_told_and_the_exit_status_says_so(
    storm: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["schedule", "--storm", str(storm)]).exit_code == 0
    monkeypatch.delenv("FPS_ALERT_URL")
    code, doc, _ = watchdog(storm)
    assert (code, doc["alerted"], doc["error"]) == (2, "failed", "$FPS_ALERT_URL is not set")
    config = storm / "config.toml"
    config.write_text(
        config.read_text(encoding="utf-8").replace('apprise = ["FPS_ALERT_URL"]', ""),
        encoding="utf-8",
    )
    code, doc, result = watchdog(storm)
    assert (code, doc["alerted"]) == (2, "not-configured")
    assert "nobody was told" in result.stderr


def test_far_from_t_nothing_is_due(storm_files: Path, smtp: SmtpSink) -> None:
    loaded = load_storm(storm_files)
    assert loaded.at is not None
    assert watch(loaded, None, now=loaded.at - timedelta(hours=1)).message is None
    assert smtp.messages == [] and not (storm_files / ".stormer").exists()


# --- [alerts] in config.toml ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alerts", "code", "message"),
    [
        (
            'apprise = ["mailto://me:pw-SECRET@mail.example.org"]',
            "secret-in-config",
            "a URL with a password",
        ),
        (
            'apprise = ["json://hooks.example.org/SECRET-path"]',
            "secret-in-config",
            "must be the name of an environment variable",
        ),
        ('apprise = ["not a name"]', "bad-config", "must be the name of an environment variable"),
        ('unstaged_before = "soon"', "bad-config", "is not a duration"),
    ],
)
def test_alerts_config_names_its_secrets_and_never_holds_them(
    tmp_path: Path, alerts: str, code: str, message: str
) -> None:
    root = copy_example(tmp_path / "storm")
    with (root / "config.toml").open("a", encoding="utf-8") as f:
        f.write(f"\n[alerts]\n{alerts}\n")
    storm = load_storm(root)
    (problem,) = [p for p in storm.errors if p.code == code]
    assert message in problem.message and "SECRET" not in problem.message
    assert problem.line is not None and problem.line > 100
    assert storm.alert_vars == []


def test_alerts_config_is_loaded(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "storm")
    with (root / "config.toml").open("a", encoding="utf-8") as f:
        f.write('\n[alerts]\napprise = ["ALERT_MAIL", "ALERT_NTFY"]\nunstaged_before = "3m"\n')
    storm = load_storm(root)
    assert (storm.alert_vars, storm.unstaged_before) == (
        ["ALERT_MAIL", "ALERT_NTFY"],
        timedelta(minutes=3),
    )
    with (root / "config.toml").open("a", encoding="utf-8") as f:
        f.write("surprise = 1\n")
    with pytest.raises(ConfigError):
        load_storm(root)
