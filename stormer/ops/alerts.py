"""Alerts to the organizer through Apprise, and the watchdog check that raises them.

A worker that is not running looks exactly like a worker with nothing to do, and it cannot
report its own absence. So the alert is raised from outside the worker, by `stormer
watchdog`: a command that checks once and exits, meant for cron or a systemd timer (every
minute), on another machine when the outbox is PostgreSQL, or at least outside the worker's
process. Each run (`watch`):

1. reads the outbox and the workers' heartbeats (`due_summary`);
2. asks `unstaged_alert_due` whether T − `[alerts] unstaged_before` has passed while items
   due are not staged or claimed by a live worker (or nothing is scheduled, or the outbox
   cannot be read at all);
3. if so, takes the marker file of that storm instant, created exclusively (two overlapping
   runs cannot both send), and sends the alert through Apprise (`alert`). If no URL took it
   the marker is removed, so the next run tries again.

So the alert goes out once per storm instant, remembered on disk (`.stormer/alerts/` in the
storm folder), not in memory: every cron run is a new process. Apprise URLs carry secrets:
config.toml only names the environment variables holding them, and each URL is registered
as a `Secret`, so it is redacted from every log line (Apprise's own included).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stormer.errors import AlertFailed, StormerError
from stormer.notify.sender import apprise_module, apprise_quiet, usable_url
from stormer.notify.sender import env_urls as alert_urls  # the URLs named in [alerts]
from stormer.outbox.models import TO_FIRE, State
from stormer.private import private_folder, write_private
from stormer.secrets import Secret, redact
from stormer.settings import GRACE, duration_text

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from stormer.storm import Storm

STATE_DIR: Final = Path(".stormer") / "alerts"
SHOWN: Final = 5  # accounts named per reason in a message


class Alerted(StrEnum):
    """What a watchdog run did about an alert (`alerted` in `stormer watchdog --json`)."""

    SENT = "sent"  # at least one alert URL took it
    ALREADY = "already"  # sent by an earlier run for this storm instant
    FAILED = "failed"  # no URL took it: the next run tries again
    NOT_CONFIGURED = "not-configured"  # no [alerts] apprise URLs: nobody can be told


def check_urls(urls: Sequence[str | Secret]) -> list[tuple[int, str]]:
    """(position, reason) of each URL Apprise cannot use; sends nothing."""
    bad = []
    for i, url in enumerate([_secret(u) for u in urls]):
        if not usable_url(url.reveal()):
            bad.append((i, "not a usable Apprise URL (see https://github.com/caronc/apprise/wiki)"))
    return bad


def alert(urls: Sequence[str | Secret], title: str, body: str) -> None:
    """Send `title` and `body` to every Apprise URL in `urls`.

    Every URL is tried, one at a time (so one slow service does not hide another's answer).
    Raises AlertFailed, after trying them all, when any URL is unusable or did not take the
    alert; its `delivered` says how many did. URLs never appear in messages or logs.
    """
    apprise = apprise_module()
    secrets = [_secret(u) for u in urls]  # registered before Apprise sees (and logs) any
    title, body = redact(title), redact(body)
    failed: list[tuple[int, str]] = []
    for i, url in enumerate(secrets):
        notifier = apprise.Apprise()
        with apprise_quiet():
            usable = notifier.add(url.reveal())
        if not usable:
            failed.append((i, "not a usable Apprise URL"))
            continue
        if not notifier.notify(title=title, body=body):
            failed.append((i, f"{notifier[0].service_name} did not take the alert"))
    if failed:
        raise AlertFailed(failed, delivered=len(secrets) - len(failed))


def _secret(url: str | Secret) -> Secret:
    return url if isinstance(url, Secret) else Secret(url)


# --- is an alert due? ----------------------------------------------------------------------


def due_summary(
    *, engine: Engine, storm: str, now: datetime, threshold: timedelta
) -> dict[str, Any]:
    """`stormer.outbox.status.status_summary` plus `due`: the items still to fire (pending,
    staged, claimed, failed) by `now + threshold`, and those refused for good before their
    time (dead at staging), each a dict of id, account, fire_at, state, lease_owner,
    lease_until, next_attempt_at and error."""
    from sqlalchemy import and_, or_, select

    from stormer.outbox.models import Outbox
    from stormer.outbox.status import status_summary

    summary = status_summary(engine=engine, storm=storm, now=now)
    with engine.begin() as conn:
        rows = conn.execute(
            select(
                Outbox.id,
                Outbox.account,
                Outbox.fire_at,
                Outbox.state,
                Outbox.lease_owner,
                Outbox.lease_until,
                Outbox.next_attempt_at,
                Outbox.error,
            )
            .where(
                Outbox.storm == storm,
                or_(
                    Outbox.state.in_(TO_FIRE),
                    and_(Outbox.state == State.DEAD, Outbox.fire_at > now),
                ),
                Outbox.fire_at <= now + threshold,
            )
            .order_by(Outbox.fire_at, Outbox.id)
        ).all()
    summary["due"] = [dict(r._mapping) for r in rows]
    return summary


def unstaged_alert_due(
    summary: Mapping[str, Any], now: datetime, threshold: timedelta
) -> str | None:
    """The alert message when T − `threshold` has passed and items due at T are not all
    staged or claimed by a live worker; None when all is well.

    `summary` is `due_summary`'s. An item is ready when it is claimed under a live lease by a
    live worker whose heartbeat says it has staged through the item's time, or when it is
    staged and some worker is alive to claim it at its next pass (within seconds).
    """
    waiting = _waiting(summary, now, threshold)
    if not waiting:
        return None
    live = {w["worker_id"] for w in summary["workers"]}
    rows = [r for group in waiting.values() for r in group]
    t = min(r["fire_at"] for r in rows)
    lines = [
        f"{len(rows)} item(s) of storm {summary['storm']!r} due from {_at(t)} "
        f"({_when(t, now)}) are not staged by a live worker:"
    ]
    for why, group in sorted(waiting.items(), key=lambda kv: -len(kv[1])):
        accounts = Counter(r["account"] for r in group)
        shown = ", ".join(sorted(accounts)[:SHOWN]) + (
            f" and {len(accounts) - SHOWN} more" if len(accounts) > SHOWN else ""
        )
        line = f"  - {len(group)} {why} ({shown})"
        if why.startswith(RETRYING):
            line += (
                f"; next attempt at {_at(min(r['next_attempt_at'] or now for r in group))}, "
                + give_up_text(min(r["fire_at"] for r in group))
            )
        lines.append(line)
    if live:
        lines.append(f"Workers alive: {', '.join(sorted(live))}.")
        lines.append(
            "Fix: see what the worker logs (credentials, media, rate limits), or run "
            "`stormer doctor`."
        )
    else:
        lines.append("No worker is alive (no heartbeat in the last minute).")
        lines.append(
            "Fix: start `stormer run` for this storm now and keep it running through "
            "T; `stormer doctor` says what else is wrong."
        )
    return redact("\n".join(lines))


def _waiting(
    summary: Mapping[str, Any], now: datetime, threshold: timedelta
) -> dict[str, list[Mapping[str, Any]]]:
    """The items due by `now + threshold` that are not ready, by reason."""
    live = {w["worker_id"]: w for w in summary["workers"]}
    waiting: dict[str, list[Mapping[str, Any]]] = {}
    for row in summary["due"]:
        due = row["fire_at"] - threshold <= now
        if due and (row["state"] in TO_FIRE or row["state"] == State.DEAD):
            why = _not_ready(row, live, now)
            if why is not None:
                waiting.setdefault(why, []).append(row)
    return waiting


def _not_ready(
    row: Mapping[str, Any], live: Mapping[str, Mapping[str, Any]], now: datetime
) -> str | None:
    state = row["state"]
    if state == State.DEAD:  # refused for good before its time: nothing will send it
        error = _first_line((row["error"] or "no error recorded").removeprefix("staging: "))
        return f"refused at staging and will not be sent: {error}"
    if state == State.CLAIMED:
        owner = live.get(row["lease_owner"] or "")
        if owner is None or row["lease_until"] is None or row["lease_until"] < now:
            return "held by a worker that stopped (taken over only if a worker runs)"
        staged = owner["staged_through"]
        if staged is None or staged < row["fire_at"]:
            return "claimed by a live worker, still not staged"
        return None
    if state == State.STAGED:
        return None if live else "staged, but no worker is alive to fire them"
    if state == State.FAILED:
        error = _first_line((row["error"] or "no error recorded").removeprefix("staging: "))
        retry, give_up = row["next_attempt_at"], row["fire_at"] + GRACE
        if retry is not None and retry > give_up:
            return (
                f"failed staging and will not be sent: its next attempt ({_at(retry)}) is "
                f"after it is given up ({_at(give_up)}): {error}"
            )
        if not live:
            return f"failed staging, and no worker is alive to try again: {error}"
        return f"{RETRYING}: {error}"
    return "not claimed by any worker"


# A failed item a live worker will try again at its `next_attempt_at`.
RETRYING: Final = "failed staging, being retried by a live worker"


def give_up_text(fire_at: datetime) -> str:
    """When a worker gives up an item still not sent: `GRACE` after its time, with `stormer
    run`'s default --grace (the outbox does not record a worker's own)."""
    return (
        f"given up if not sent by {_at(fire_at + GRACE)} (its time + "
        f"{duration_text(GRACE)}, `stormer run`'s default --grace)"
    )


def _first_line(text: str, limit: int = 160) -> str:
    """The first line of `text` in at most `limit` characters. A longer one loses its middle,
    not its end: stormer's errors say what is wrong first and how to fix it last ("…: run
    `stormer login campaign-x`"), and an alert without the fix leaves the organizer guessing."""
    line = text.strip().splitlines()[0] if text.strip() else text
    if len(line) <= limit:
        return line
    head = limit // 2
    return line[:head] + "…" + line[len(line) - (limit - head - 1) :]


def _at(t: datetime) -> str:
    from stormer.timezones import iso_utc

    return iso_utc(t)


def _when(t: datetime, now: datetime) -> str:
    from stormer.ops.report import duration

    seconds = (t - now).total_seconds()
    return f"in {duration(seconds)}" if seconds >= 0 else f"{duration(seconds)} ago"


# --- the watchdog ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Watch:
    """What one watchdog run found and did. `message` is None when all is well; `instant` is
    the storm instant the alert is about (its marker's key)."""

    message: str | None
    instant: datetime | None = None
    alerted: Alerted | None = None
    error: str | None = None  # why the alert could not be delivered (no URL in it)
    ready: int = 0  # when all is well: the items due within the threshold, all staged


def watch(
    storm: Storm,
    engine: Engine | None,
    *,
    now: datetime,
    environ: Mapping[str, str] | None = None,
    state_dir: Path | None = None,
) -> Watch:
    """One watchdog pass over `storm`: alert the organizer once per storm instant when the
    items due by now + `storm.unstaged_before` are not staged by a live worker, when nothing
    is scheduled by then, or when the outbox cannot be read by then.

    `engine` None means there is no database yet (a SQLite file never created): nothing is
    scheduled."""
    from sqlalchemy.exc import SQLAlchemyError

    threshold = storm.unstaged_before
    near = storm.at is not None and now >= storm.at - threshold
    try:
        summary: dict[str, Any] = (
            due_summary(engine=engine, storm=storm.slug, now=now, threshold=threshold)
            if engine is not None
            else {"total": 0, "due": [], "workers": []}
        )
    except (SQLAlchemyError, OSError) as e:
        failure = f"cannot read the outbox: {type(e).__name__}: {_first_line(redact(str(e)))}"
        if not near:
            raise StormerError(failure) from None
        assert storm.at is not None
        return _raise(
            storm,
            storm.at,
            now,
            environ,
            state_dir,
            (
                f"stormer {failure}\nStorm {storm.slug!r} is due {_at(storm.at)} "
                f"({_when(storm.at, now)}), and a worker that cannot read it sends nothing.\n"
                "Fix: check that the database is up and reachable from the worker's machine and "
                "that the storm is scheduled (`stormer schedule` creates the outbox), then run "
                "`stormer doctor`."
            ),
        )
    message = unstaged_alert_due(summary, now, threshold)
    if message is not None:
        instant = min(
            r["fire_at"] for group in _waiting(summary, now, threshold).values() for r in group
        )
        return _raise(storm, instant, now, environ, state_dir, message)
    if near and not summary["total"]:
        assert storm.at is not None
        return _raise(
            storm,
            storm.at,
            now,
            environ,
            state_dir,
            (
                f"nothing is scheduled for storm {storm.slug!r}, due {_at(storm.at)} "
                f"({_when(storm.at, now)}): no post will be sent.\n"
                "Fix: run `stormer schedule`, then `stormer run`, for this storm now."
            ),
        )
    return Watch(None, ready=len(summary["due"]))


def _raise(
    storm: Storm,
    instant: datetime,
    now: datetime,
    environ: Mapping[str, str] | None,
    state_dir: Path | None,
    message: str,
) -> Watch:
    if not storm.alert_vars:
        return Watch(
            message,
            instant,
            Alerted.NOT_CONFIGURED,
            "no [alerts] apprise = [...] in config.toml: nobody was told",
        )
    marker = (state_dir or storm.root / STATE_DIR) / _marker_name(storm.slug, instant)
    if not _claim(marker, now):
        return Watch(message, instant, Alerted.ALREADY)
    urls, missing = alert_urls(storm.alert_vars, environ)
    problems = [f"${name} is not set" for name in missing]
    names = list(urls)
    try:
        alert(
            list(urls.values()),
            f"stormer: storm {storm.name!r} may not go out as planned",
            message,
        )
        delivered = len(urls)
    except AlertFailed as e:
        delivered = e.delivered
        problems += [f"${names[i]}: {why}" for i, why in e.failed]
    except BaseException:
        marker.unlink(missing_ok=True)  # a marker left behind would silence every next run
        raise
    if not delivered:
        marker.unlink(missing_ok=True)  # nobody was told: the next run tries again
        return Watch(message, instant, Alerted.FAILED, "; ".join(problems) or "no alert URL set")
    _write(marker, {"claimed_at": now.isoformat(), "delivered": delivered, "problems": problems})
    return Watch(message, instant, Alerted.SENT, "; ".join(problems) or None)


def _marker_name(slug: str, instant: datetime) -> str:
    from datetime import UTC

    return f"{slug}@{instant.astimezone(UTC):%Y%m%dT%H%M%SZ}.json"


def _claim(marker: Path, now: datetime) -> bool:
    """Create `marker` if it does not exist (atomically); False if it did."""
    private_folder(marker.parent)
    try:
        fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump({"claimed_at": now.isoformat()}, f)
    return True


def _write(marker: Path, data: dict[str, Any]) -> None:
    write_private(marker, json.dumps(data).encode())
