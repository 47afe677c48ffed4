"""`stormer status` and `stormer report` on a storm in progress, on SQLite and PostgreSQL.

The example storm is scheduled for the future, then rows are set directly to what a storm
looks like 90 s after T; the commands' clock is set to that moment.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from example import copy_example
from sqlalchemy import Engine, select, update
from typer.testing import CliRunner, Result

from stormer.cli import app
from stormer.cli import status as status_cli
from stormer.ops.report import COLUMNS, EMPTY
from stormer.outbox import claims
from stormer.outbox import workers as worker_registry  # `workers` is a flag below
from stormer.outbox.models import Outbox, State

runner = CliRunner()
T = datetime(2031, 3, 13, 18, 0, tzinfo=UTC)
NOW = T + timedelta(seconds=90)
SLUG = "free-palestinian-students-2021"
TG_TOKEN = "123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
UNKNOWN = f"{claims.UNKNOWN_OUTCOME} (noticed by w-fresh)"

# What each account's item holds 90 s into the storm.
IN_PROGRESS: dict[str, dict[str, Any]] = {
    "campaign-x": {
        "state": "sent",
        "sent_at": T + timedelta(seconds=0.25),
        "attempts": 1,
        "permalink": "https://x.example/campaign/status/1",
        "remote_id": "1",
    },
    "campaign-bluesky": {
        "state": "sent",
        "sent_at": T + timedelta(seconds=1.5),
        "attempts": 1,
        "permalink": "https://bsky.example/profile/c/post/3k",
    },
    "solidarity-mastodon-fr": {
        "state": "sent",
        "sent_at": T - timedelta(seconds=1),
        "attempts": 1,
        "permalink": "https://m.example/@fr/2",
    },
    "campaign-mastodon": {
        "state": "dead",
        "attempts": 1,
        "error": '=HYPERLINK("http://evil.example","401")',
    },
    "campaign-telegram": {
        "state": "unconfirmed",
        "attempts": 1,
        "error": f"timeout after POST https://api.telegram.org/bot{TG_TOKEN}/sendMessage",
    },
    "campaign-matrix": {
        "state": "sending",
        "attempts": 1,
        "lease_owner": "w-stale",
        "lease_until": None,
        "error": UNKNOWN,
    },
    "students-bluesky-es": {"state": "missed", "error": "missed: not sent within 0:01:00"},
    "campaign-discord": {
        "state": "claimed",
        "claimed_from": "staged",
        "lease_owner": "w-stale",
        "lease_until": NOW - timedelta(seconds=10),
    },
}


@pytest.fixture
def storm(tmp_path: Path, db_url: str, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STORMER_DATABASE_URL", db_url)
    monkeypatch.setattr(status_cli, "_now", lambda: NOW)
    return copy_example(tmp_path / "storm", at="2031-03-13T18:00:00Z")


def stormer(storm: Path, *args: str) -> Result:
    result = runner.invoke(app, [*args, "--storm", str(storm)])
    assert result.exit_code == 0, result.output
    return result


def in_progress(storm: Path, engine: Engine, *, workers: bool = True) -> dict[str, str]:
    """Schedule, then make the outbox look 90 s into the storm; returns account → item id."""
    scheduled = json.loads(stormer(storm, "schedule", "--json").stdout)
    assert scheduled["storm"] == SLUG and len(scheduled["added"]) == 8
    with engine.begin() as conn:
        ids = dict(conn.execute(select(Outbox.account, Outbox.id)).all())
        for account, values in IN_PROGRESS.items():
            conn.execute(update(Outbox).where(Outbox.id == ids[account]).values(**values))
    if workers:
        register(
            engine,
            "w-fresh",
            started=NOW - timedelta(seconds=10),
            heartbeat=NOW - timedelta(seconds=5),
        )
    # Stale: silent for 2 min. Stopped: a fresh heartbeat, but stopped cleanly.
    register(
        engine, "w-stale", started=NOW - timedelta(minutes=10), heartbeat=NOW - timedelta(minutes=2)
    )
    register(
        engine,
        "w-stopped",
        started=NOW - timedelta(minutes=1),
        heartbeat=NOW - timedelta(seconds=2),
    )
    worker_registry.stop_worker(engine=engine, worker="w-stopped", now=NOW - timedelta(seconds=1))
    return ids


def register(engine: Engine, worker: str, *, started: datetime, heartbeat: datetime) -> None:
    worker_registry.register_worker(
        engine=engine, worker=worker, storm=SLUG, hostname="host-a", pid=101, now=started
    )
    worker_registry.heartbeat(engine=engine, worker=worker, now=heartbeat, staged_through=T)


def counts(**n: int) -> dict[str, int]:
    return dict.fromkeys(State, 0) | n


# --- status ------------------------------------------------------------------------------------


def test_status_json_of_a_storm_in_progress(storm: Path, engine: Engine) -> None:
    ids = in_progress(storm, engine)
    doc = json.loads(stormer(storm, "status", "--json").stdout)
    assert doc == {
        "storm": SLUG,
        "now": "2031-03-13T18:01:30Z",
        "total": 8,
        "kinds": {"post": 8},
        "counts": counts(claimed=1, sending=1, sent=3, dead=1, unconfirmed=1, missed=1),
        "waiting": 2,
        # The staging window before the first item due (T): a worker is needed now.
        "worker_needed_at": "2031-03-13T17:50:00Z",
        "next_fire_at": "2031-03-13T18:00:00Z",
        "next_fire_in_s": -90.0,
        "next_retry_at": None,
        # w-stale (silent for 2 min) and w-stopped are not alive.
        "workers": [
            {
                "worker_id": "w-fresh",
                "hostname": "host-a",
                "pid": 101,
                "started_at": "2031-03-13T18:01:20Z",
                "heartbeat_at": "2031-03-13T18:01:25Z",
                "heartbeat_age_s": 5.0,
                "staged_through": "2031-03-13T18:00:00Z",
            }
        ],
        "expired_leases": 1,
        "unknown_outcomes": [ids["campaign-matrix"]],
        "lateness": {
            "sent": 3,
            "min_s": -1.0,
            "p50_s": 0.25,
            "p99_s": 1.5,
            "max_s": 1.5,
            "early": [ids["solidarity-mastodon-fr"]],
        },
        "alerts": [
            {
                "code": "early",
                "message": "1 item(s) were sent BEFORE their time: a bug, report "
                f"it ({ids['solidarity-mastodon-fr']})",
            },
            {"code": "overdue", "message": "items due since 2031-03-13T18:00:00Z are not sent yet"},
            {
                "code": "unknown-outcome",
                "message": "1 item(s) may have been posted: awaiting reconciliation",
            },
            {
                "code": "expired-lease",
                "message": "1 lease(s) expired: a worker died or stalled mid-burst",
            },
        ],
    }


def test_status_for_people(storm: Path, engine: Engine) -> None:
    ids = in_progress(storm, engine)
    out = stormer(storm, "status").stdout.splitlines()
    assert out == [
        (
            "!!! 1 item(s) were sent BEFORE their time: a bug, report it "
            f"({ids['solidarity-mastodon-fr']})"
        ),
        f"{SLUG}: 8 item(s): 1 claimed, 1 sending, 3 sent, 1 dead, 1 unconfirmed, 1 missed",
        "next fire: 2031-03-13T18:00:00Z (1 min 30 s ago: OVERDUE)",
        "workers alive: 1",
        (
            "    w-fresh on host-a (pid 101), heartbeat 5.00 s ago, staged through "
            "2031-03-13T18:00:00Z"
        ),
        "lateness so far: 3 sent, p50 +0.25 s, p99 +1.50 s, max +1.50 s",
        f"unknown outcomes (1), being reconciled: {ids['campaign-matrix']}",
        "expired leases: 1 (a worker died or stalled)",
    ]


def test_no_live_worker_is_said_loudly_and_in_the_exit_status(storm: Path, engine: Engine) -> None:
    in_progress(storm, engine, workers=False)  # only the stale and the stopped worker
    result = runner.invoke(app, ["status", "--json", "--storm", str(storm)])
    assert result.exit_code == status_cli.NO_WORKER_EXIT == 3, result.output
    doc = json.loads(result.stdout)
    assert doc["workers"] == []
    assert doc["alerts"][0] == {
        "code": "no-worker",
        "message": "NO WORKER IS RUNNING: 2 item(s) are waiting, the first due 1 min 30 s ago, "
        "and nothing will send them; start a worker with `stormer run`",
    }
    result = runner.invoke(app, ["status", "--storm", str(storm)])
    assert result.exit_code == 3
    assert result.stdout.startswith("!!! NO WORKER IS RUNNING: 2 item(s)")
    assert "unknown outcomes (1), to reconcile when a worker runs: " in result.stdout
    # --watch: the exit status of its last refresh.
    result = runner.invoke(app, ["status", "--watch", "--count", "1", "--storm", str(storm)])
    assert result.exit_code == 3 and "NO WORKER IS RUNNING" in result.stdout


def scheduled_without_worker(storm: Path, now: datetime, monkeypatch: pytest.MonkeyPatch) -> Result:
    monkeypatch.setattr(status_cli, "_now", lambda: now)
    stormer(storm, "schedule")
    return runner.invoke(app, ["status", "--storm", str(storm)])


def test_no_worker_days_before_the_storm_says_by_when_one_must_run(
    storm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = scheduled_without_worker(storm, T - timedelta(days=2), monkeypatch)
    assert result.exit_code == 0, result.output
    assert "!!!" not in result.stdout
    assert (
        "workers alive: none yet; start `stormer run` by 2031-03-13T17:50:00Z (in 1 d 23 h), "
        "10 min before the next item fires: a worker stages each item that far ahead"
    ) in result.stdout.splitlines()


@pytest.mark.parametrize("before", [timedelta(minutes=10), timedelta(seconds=1)])
def test_no_worker_within_the_staging_window_is_exit_status_3(
    storm: Path, monkeypatch: pytest.MonkeyPatch, before: timedelta
) -> None:
    result = scheduled_without_worker(storm, T - before, monkeypatch)
    assert result.exit_code == 3, result.output
    assert result.stdout.startswith(
        "!!! NO WORKER IS RUNNING: 8 item(s) are waiting, the first due in "
    )


def test_no_worker_after_the_storm_with_everything_done_is_fine(
    storm: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = scheduled_without_worker(storm, T - timedelta(days=1), monkeypatch)
    with engine.begin() as conn:
        conn.execute(update(Outbox).values(state="sent", sent_at=T + timedelta(seconds=1)))
    monkeypatch.setattr(status_cli, "_now", lambda: T + timedelta(hours=1))
    result = runner.invoke(app, ["status", "--storm", str(storm)])
    assert result.exit_code == 0, result.output
    assert "workers alive: none (nothing is waiting)" in result.stdout
    assert "!!!" not in result.stdout


def test_status_before_anything_is_scheduled(storm: Path) -> None:
    result = stormer(storm, "status", "--json")
    doc = json.loads(result.stdout)
    assert (doc["total"], doc["counts"], doc["alerts"]) == (0, counts(), [])
    assert EMPTY in result.stderr
    assert stormer(storm, "status").stdout.splitlines()[0] == f"{SLUG}: {EMPTY}"


def test_watch_refreshes_until_its_count(
    storm: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_progress(storm, engine)
    slept: list[float] = []
    monkeypatch.setattr(status_cli, "_sleep", slept.append)
    result = stormer(storm, "status", "--watch", "--json", "--count", "3", "--interval", "0.5")
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(docs) == 3 and docs[0] == docs[2] and docs[0]["total"] == 8
    assert slept == [0.5, 0.5]
    # For people outside a terminal: one block per refresh.
    result = stormer(storm, "status", "--watch", "--count", "2")
    assert result.stdout.count(f"{SLUG}: 8 item(s)") == 2


def test_watch_ends_cleanly_on_ctrl_c(
    storm: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_progress(storm, engine)

    def interrupt(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(status_cli, "_sleep", interrupt)
    result = stormer(storm, "status", "--watch", "--json")
    assert len(result.stdout.splitlines()) == 1


# --- report ------------------------------------------------------------------------------------


TELEGRAM_PAGE = "https://t.me/freepalestinianstudents_example"  # the example's public chat


def post_files(engine: Engine) -> dict[str, str]:
    """account → the post file its item came from."""
    with engine.begin() as conn:
        return dict(conn.execute(select(Outbox.account, Outbox.source)).all())


def expected_rows(ids: dict[str, str], posts: dict[str, str]) -> list[dict[str, Any]]:
    def row(account: str, platform: str, state: str, **kw: Any) -> dict[str, Any]:
        return {
            "id": ids[account],
            "kind": "post",
            "account": account,
            "platform": platform,
            "state": state,
            "fire_at": "2031-03-13T18:00:00Z",
            "sent_at": None,
            "lateness_s": None,
            "overdue_s": None,
            "permalink": None,
            "error": None,
            "attempts": 0,
            "next_attempt_at": None,
            "worker": None,
            "post": posts[account],
            "look_at": None,
        } | kw

    rows = [
        row(
            "campaign-x",
            "x",
            "sent",
            sent_at="2031-03-13T18:00:00.250000Z",
            lateness_s=0.25,
            permalink="https://x.example/campaign/status/1",
            attempts=1,
        ),
        row(
            "campaign-bluesky",
            "bluesky",
            "sent",
            sent_at="2031-03-13T18:00:01.500000Z",
            lateness_s=1.5,
            permalink="https://bsky.example/profile/c/post/3k",
            attempts=1,
        ),
        row(
            "solidarity-mastodon-fr",
            "mastodon",
            "sent",
            sent_at="2031-03-13T17:59:59Z",
            lateness_s=-1.0,
            permalink="https://m.example/@fr/2",
            attempts=1,
        ),
        row(
            "campaign-mastodon",
            "mastodon",
            "dead",
            attempts=1,
            error='=HYPERLINK("http://evil.example","401")',
        ),
        row(
            "campaign-telegram",
            "telegram",
            "unconfirmed",
            attempts=1,
            error="timeout after POST https://api.telegram.org/bot<redacted>/sendMessage",
            look_at=TELEGRAM_PAGE,
        ),
        row("campaign-matrix", "matrix", "sending", attempts=1, overdue_s=90.0, error=UNKNOWN),
        row("students-bluesky-es", "bluesky", "missed", error="missed: not sent within 0:01:00"),
        row("campaign-discord", "discord", "claimed", overdue_s=90.0),
    ]
    return sorted(rows, key=lambda r: r["id"])  # all fire at T: then by id


def test_report_json(storm: Path, engine: Engine) -> None:
    ids = in_progress(storm, engine)
    doc = json.loads(stormer(storm, "report", "--json").stdout)
    rows = expected_rows(ids, post_files(engine))
    assert doc == {
        "storm": SLUG,
        "now": "2031-03-13T18:01:30Z",
        "summary": {
            "total": 8,
            "counts": counts(claimed=1, sending=1, sent=3, dead=1, unconfirmed=1, missed=1),
            "sent": 3,
            "lateness": {"sent": 3, "min_s": -1.0, "p50_s": 0.25, "p99_s": 1.5, "max_s": 1.5},
            "early": [ids["solidarity-mastodon-fr"]],
            "unconfirmed": [ids["campaign-telegram"]],
            "dead": [
                {"id": ids["campaign-mastodon"], "error": '=HYPERLINK("http://evil.example","401")'}
            ],
            "missed": [ids["students-bluesky-es"]],
            # Neither is held by a live worker: w-stale's lease ran out, the sending one is
            # an unknown outcome (no lease).
            "retrying": [],
            "overdue": [r["id"] for r in rows if r["overdue_s"] is not None],
            "workers_alive": 1,
        },
        "rows": rows,
    }
    assert TG_TOKEN not in json.dumps(doc)


def test_report_csv(storm: Path, engine: Engine, tmp_path: Path) -> None:
    ids = in_progress(storm, engine)
    lines = {
        "campaign-x": "post,campaign-x,x,sent,2031-03-13T18:00:00Z,2031-03-13T18:00:00.250000Z,"
        "0.25,,https://x.example/campaign/status/1,,1,,",
        "campaign-bluesky": "post,campaign-bluesky,bluesky,sent,2031-03-13T18:00:00Z,"
        "2031-03-13T18:00:01.500000Z,1.5,,"
        "https://bsky.example/profile/c/post/3k,,1,,",
        "solidarity-mastodon-fr": "post,solidarity-mastodon-fr,mastodon,sent,"
        "2031-03-13T18:00:00Z,2031-03-13T17:59:59Z,-1.0,,"
        "https://m.example/@fr/2,,1,,",
        "campaign-mastodon": "post,campaign-mastodon,mastodon,dead,2031-03-13T18:00:00Z,,,,,"
        '"\'=HYPERLINK(""http://evil.example"",""401"")",1,,',
        "campaign-telegram": "post,campaign-telegram,telegram,unconfirmed,2031-03-13T18:00:00Z,"
        ",,,,timeout after POST https://api.telegram.org/bot<redacted>"
        "/sendMessage,1,,",
        "campaign-matrix": "post,campaign-matrix,matrix,sending,2031-03-13T18:00:00Z,,,90.0,,"
        f'"{UNKNOWN}",1,,',  # a comma in it: quoted
        "students-bluesky-es": "post,students-bluesky-es,bluesky,missed,2031-03-13T18:00:00Z,"
        ",,,,missed: not sent within 0:01:00,0,,",
        "campaign-discord": "post,campaign-discord,discord,claimed,2031-03-13T18:00:00Z,,,90.0,,,"
        "0,,",
    }
    posts = post_files(engine)
    expected = "".join(
        line + "\r\n"
        for line in [
            ",".join(COLUMNS),
            *sorted(
                f"{ids[account]},{rest},{posts[account]},"
                + (TELEGRAM_PAGE if account == "campaign-telegram" else "")
                for account, rest in lines.items()
            ),
        ]
    )
    # Bytes: `Result.stdout` turns the CRLF line ends of CSV (RFC 4180) into LF.
    assert stormer(storm, "report", "--csv").stdout_bytes.decode() == expected

    out = tmp_path / "report.csv"
    result = stormer(storm, "report", "--csv", "--out", str(out))
    assert result.stdout == "" and str(out) in result.stderr
    # With a BOM, spreadsheet apps read it as UTF-8 (names may be Arabic).
    assert out.read_bytes() == b"\xef\xbb\xbf" + expected.encode()
    with out.open(encoding="utf-8-sig", newline="") as f:
        assert [r[0] for r in csv.reader(f)][1:] == sorted(ids.values())


def test_report_for_people_lists_problems_first(storm: Path, engine: Engine) -> None:
    ids = in_progress(storm, engine)
    whole = stormer(storm, "report").stdout.splitlines()
    fr, dead = ids["solidarity-mastodon-fr"], ids["campaign-mastodon"]
    # The summary per platform and account comes first, then the problems.
    assert whole[0] == "per platform and account:"
    assert any(line.split()[:2] == ["mastodon/campaign-mastodon", "0/1"] for line in whole)
    out = whole[whole.index("") + 1 :]
    assert out[0].startswith("!!! EARLY: 1 item(s) were sent BEFORE their time")
    assert out[1] == f"    {fr}  mastodon/solidarity-mastodon-fr  1.00 s early"
    assert out[2] == "!!! DEAD: 1 item(s) were given up and will not be sent:"
    assert out[3].startswith(
        f'    {dead}  mastodon/campaign-mastodon  =HYPERLINK("http://evil.example","401") → '
        "run `stormer login campaign-mastodon`"
    )
    titles = [line.split(":")[0] for line in out if line and not line.startswith(" ")]
    assert titles[:5] == ["!!! EARLY", "!!! DEAD", "UNCONFIRMED", "MISSED", "!!! OVERDUE"]
    assert "8 item(s): 1 claimed, 1 sending, 3 sent, 1 dead, 1 unconfirmed, 1 missed" in out
    assert [line.split()[0] for line in out[-8:]] == sorted(ids.values())  # one line per item
    assert all(TG_TOKEN not in line for line in out)


def test_report_tells_items_being_retried_from_items_nobody_sends(
    storm: Path, engine: Engine
) -> None:
    ids = in_progress(storm, engine)  # w-fresh is alive
    discord, matrix = ids["campaign-discord"], ids["campaign-matrix"]
    with engine.begin() as conn:
        conn.execute(
            update(Outbox)
            .where(Outbox.id == discord)
            .values(
                state="failed",
                attempts=2,
                error="503 Service Unavailable",
                next_attempt_at=NOW + timedelta(seconds=20),
                lease_owner=None,
                lease_until=None,
            )
        )
        conn.execute(
            update(Outbox)
            .where(Outbox.id == matrix)
            .values(state="claimed", lease_owner="w-fresh", lease_until=NOW + timedelta(seconds=30))
        )
    out = stormer(storm, "report").stdout.splitlines()
    at = out.index("RETRYING: 2 item(s) are past their time and being retried by a live worker:")
    assert set(out[at + 1 : at + 3]) == {
        f"    {discord}  discord/campaign-discord  1 min 30 s late, attempt 2 failed, next try "
        "at 2031-03-13T18:01:50Z",
        f"    {matrix}  matrix/campaign-matrix  1 min 30 s late, held by w-fresh (claimed)",
    }
    assert not any("OVERDUE" in line for line in out)
    rows = json.loads(stormer(storm, "report", "--json").stdout)
    assert (rows["summary"]["retrying"], rows["summary"]["overdue"]) == (
        sorted([discord, matrix]),
        [],
    )
    # The worker stops: the same items are overdue, and the report says why.
    worker_registry.stop_worker(engine=engine, worker="w-fresh", now=NOW)
    out = stormer(storm, "report").stdout.splitlines()
    assert not any(line.startswith("RETRYING") for line in out)
    at = out.index(
        "!!! OVERDUE: 2 item(s) are past their time and not sent, and no worker is alive: "
        "start one with `stormer run`:"
    )
    assert out[at + 1].endswith(("failed, 1 min 30 s late", "claimed, 1 min 30 s late"))


def test_report_before_anything_is_scheduled(storm: Path) -> None:
    assert stormer(storm, "report").stdout == EMPTY + "\n"
    result = stormer(storm, "report", "--csv")
    assert result.stdout.splitlines() == [
        (
            "id,kind,account,platform,state,fire_at,sent_at,lateness_s,overdue_s,permalink,error,"
            "attempts,next_attempt_at,worker,post,look_at"
        )
    ]
    assert EMPTY in result.stderr
    assert json.loads(stormer(storm, "report", "--json").stdout)["rows"] == []


def test_report_json_and_csv_exclude_each_other(storm: Path) -> None:
    result = runner.invoke(app, ["report", "--json", "--csv", "--storm", str(storm)])
    assert result.exit_code == 2 and "not both" in result.output
