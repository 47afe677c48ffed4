"""How a storm is going, for `stormer status` and `stormer run`'s live view: pure functions.

`status_doc` makes `stormer.outbox.status.status_summary` JSON-ready and says what is wrong
(`alerts`); `status_lines` renders it for people.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from stormer.ops.report import (
    ALERT,
    EMPTY,
    OVERDUE_AFTER,
    counts_text,
    duration,
    percentiles_text,
)
from stormer.outbox.models import WAITING, State
from stormer.settings import STAGING_WINDOW
from stormer.timezones import iso_utc

NO_WORKER_HINT: Final = "start a worker with `stormer run`"


def status_doc(status: Mapping[str, Any]) -> dict[str, Any]:
    """`stormer.outbox.status.status_summary` made JSON-ready, with `alerts` for what is wrong.

    Each alert is `{"code", "message"}`; codes: `no-worker` (no worker is alive and an item
    needs one now: nothing will send it), `early`, `overdue`, `unknown-outcome`,
    `expired-lease`. `worker_needed_at` is when the first waiting item needs a live worker:
    `STAGING_WINDOW` before the next fire or retry (a worker stages that far ahead), or now
    for an outcome to reconcile; None when nothing waits. Before it, no worker is no alert.
    """
    now: datetime = status["now"]
    counts: Mapping[str, int] = status["counts"]
    waiting = sum(counts[s] for s in WAITING)
    nxt: datetime | None = status["next_fire_at"]
    lateness = dict(status["lateness"])
    workers = [
        {
            "worker_id": w["worker_id"],
            "hostname": w["hostname"],
            "pid": w["pid"],
            "started_at": iso_utc(w["started_at"]),
            "heartbeat_at": iso_utc(w["heartbeat_at"]),
            "heartbeat_age_s": (now - w["heartbeat_at"]).total_seconds(),
            "staged_through": _iso(w["staged_through"]),
        }
        for w in status["workers"]
    ]
    needed = _worker_needed_at(status, waiting)
    alerts: list[tuple[str, str]] = []
    if needed is not None and needed <= now and not workers:
        alerts.append(
            (
                "no-worker",
                (
                    f"NO WORKER IS RUNNING: {waiting} item(s) are waiting, the first due "
                    f"{_relative(_first_due(status, now), now)}, and nothing will send them; "
                    f"{NO_WORKER_HINT}"
                ),
            )
        )
    if lateness["early"]:
        early = ", ".join(lateness["early"])
        alerts.append(
            (
                "early",
                (
                    f"{len(lateness['early'])} item(s) were sent BEFORE their "
                    f"time: a bug, report it ({early})"
                ),
            )
        )
    if nxt is not None and now - nxt > OVERDUE_AFTER:
        alerts.append(("overdue", f"items due since {iso_utc(nxt)} are not sent yet"))
    if status["unknown_outcomes"]:
        alerts.append(
            (
                "unknown-outcome",
                (
                    f"{len(status['unknown_outcomes'])} item(s) may "
                    "have been posted: awaiting reconciliation"
                ),
            )
        )
    if status["expired_leases"]:
        alerts.append(
            (
                "expired-lease",
                (
                    f"{status['expired_leases']} lease(s) expired: a "
                    "worker died or stalled mid-burst"
                ),
            )
        )
    return {
        "storm": status["storm"],
        "now": iso_utc(now),
        "total": status["total"],
        "kinds": dict(status.get("kinds", {})),
        "counts": dict(counts),
        "waiting": waiting,
        "worker_needed_at": _iso(needed),
        "next_fire_at": _iso(nxt),
        "next_fire_in_s": (nxt - now).total_seconds() if nxt is not None else None,
        "next_retry_at": _iso(status["next_retry_at"]),
        "workers": workers,
        "expired_leases": status["expired_leases"],
        "unknown_outcomes": list(status["unknown_outcomes"]),
        "lateness": lateness,
        "alerts": [{"code": c, "message": m} for c, m in alerts],
    }


def _first_due(status: Mapping[str, Any], now: datetime) -> datetime:
    """When the first waiting item is due: its fire time or its retry, or now for an outcome
    to reconcile (or a failed item with no retry time: claimable at once)."""
    counts: Mapping[str, int] = status["counts"]
    times: list[datetime] = [
        t for t in (status["next_fire_at"], status["next_retry_at"]) if t is not None
    ]
    if counts[State.SENDING] or status["unknown_outcomes"] or not times:
        times.append(now)
    return min(times)


def _worker_needed_at(status: Mapping[str, Any], waiting: int) -> datetime | None:
    if not waiting:
        return None
    return _first_due(status, status["now"]) - STAGING_WINDOW


def _relative(t: datetime, now: datetime) -> str:
    seconds = (t - now).total_seconds()
    if abs(seconds) < 1:
        return "now"
    return f"in {duration(seconds)}" if seconds > 0 else f"{duration(seconds)} ago"


def _iso(value: datetime | None) -> str | None:
    return iso_utc(value) if value is not None else None


def status_lines(doc: Mapping[str, Any]) -> list[str]:
    """`status_doc` for people. Lines that must not be missed start with `ALERT`."""
    alerts = {a["code"]: a["message"] for a in doc["alerts"]}
    lines = [ALERT + m for c, m in alerts.items() if c in ("no-worker", "early")]
    if not doc["total"]:
        lines.append(f"{doc['storm']}: {EMPTY}")
    else:
        kinds = doc.get("kinds") or {}
        split = (
            f" ({kinds.get('post', 0)} posts, {kinds.get('reminder', 0)} reminders)"
            if kinds.get("reminder")
            else ""
        )
        lines.append(f"{doc['storm']}: {doc['total']} item(s){split}: {counts_text(doc['counts'])}")
    if doc["next_fire_in_s"] is not None:
        ahead = doc["next_fire_in_s"]
        if ahead >= 0:
            when = f"in {duration(ahead)}"
        else:
            when = f"{duration(ahead)} ago" + (": OVERDUE" if "overdue" in alerts else "")
        lines.append(f"next fire: {doc['next_fire_at']} ({when})")
    elif doc["total"]:
        lines.append("next fire: none, nothing left to fire")
    if doc["next_retry_at"]:
        lines.append(f"next retry: {doc['next_retry_at']}")
    if doc["workers"]:
        lines.append(f"workers alive: {len(doc['workers'])}")
        lines.extend(
            f"    {w['worker_id']} on {w['hostname']} (pid {w['pid']}), heartbeat "
            f"{duration(w['heartbeat_age_s'])} ago"
            + (f", staged through {w['staged_through']}" if w["staged_through"] else "")
            for w in doc["workers"]
        )
    elif doc["worker_needed_at"] is None:
        lines.append("workers alive: none (nothing is waiting)")
    elif "no-worker" not in alerts:
        needed = datetime.fromisoformat(doc["worker_needed_at"])
        lines.append(
            f"workers alive: none yet; start `stormer run` by {doc['worker_needed_at']} "
            f"({_relative(needed, datetime.fromisoformat(doc['now']))}), "
            f"{duration(STAGING_WINDOW.total_seconds())} before the next item fires: a worker "
            "stages each item that far ahead"
        )
    lateness = doc["lateness"]
    if lateness[State.SENT]:
        lines.append(f"lateness so far: {lateness[State.SENT]} sent, {percentiles_text(lateness)}")
    if doc["unknown_outcomes"]:
        lines.append(
            f"unknown outcomes ({len(doc['unknown_outcomes'])}), "
            + ("being reconciled: " if doc["workers"] else "to reconcile when a worker runs: ")
            + ", ".join(doc["unknown_outcomes"])
        )
    if doc["expired_leases"]:
        lines.append(f"expired leases: {doc['expired_leases']} (a worker died or stalled)")
    return lines
