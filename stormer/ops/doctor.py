"""`stormer doctor`: every pre-flight check at once, each saying what to fix.

Each check returns a `Finding` (name, ok, severity, message, fix). The checks: config (every
error of `stormer check`), credentials (each account verified with its platform, nothing
posted), media (every image readable and within each platform's size limit), clock (this
machine's clock against the platforms' servers: `stormer.ops.clock`), database (reachable and
migrated), schedule (the storm is in the outbox), worker (one alive before the first item is
sent: the first reminder, or the storm) and alerts (the organizer can be told when no worker
stages the storm).

Doctor only reads: it never migrates, schedules or creates a database file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from stormer.errors import Problem, StormerError
from stormer.ops.clock import clock_finding, utcnow
from stormer.ops.findings import Finding, failed, passed, warned
from stormer.secrets import Secret, redact
from stormer.settings import STAGING_WINDOW

if TYPE_CHECKING:
    import httpx
    from sqlalchemy.engine import Engine

    from stormer.storm import Storm

SHOWN: Final = 3  # problems quoted in a message; `stormer check` lists them all


async def diagnose(
    storm: Storm,
    *,
    http: httpx.AsyncClient | None = None,
    now: Callable[[], datetime] = utcnow,
    environ: Mapping[str, str] | None = None,
) -> list[Finding]:
    """Every check, in a stable order. Network and database checks run concurrently."""
    from stormer.dispatch.connect import client

    own = http is None
    http = http or client()
    config, media = config_finding(storm, now()), media_finding(storm)
    alerts = alerts_finding(storm, environ)
    reminders = reminders_finding(storm, environ)
    try:
        credentials, clock, stored = await asyncio.gather(
            credentials_finding(storm, http),
            clock_finding(storm, http, now),
            asyncio.to_thread(database_findings, storm, now()),
        )
    finally:
        if own:
            await http.aclose()
    return [config, credentials, media, clock, *stored, reminders, alerts]


def send_test_alert(storm: Storm, environ: Mapping[str, str] | None = None) -> Finding:
    """Send a test alert through every configured URL (`stormer doctor --test-alert`)."""
    from stormer.errors import AlertFailed
    from stormer.notify.sender import env_urls as alert_urls
    from stormer.ops.alerts import alert

    urls, missing = alert_urls(storm.alert_vars, environ)
    if not urls:
        return failed(
            "test alert",
            "no alert URL is set, nothing was sent",
            "configure [alerts] apprise and set its variables (see the alerts check)",
        )
    names = list(urls)
    try:
        alert(
            list(urls.values()),
            f"stormer: test alert for {storm.name!r}",
            f"This is a test from `stormer doctor` for storm {storm.slug!r}. If the storm "
            "is not staged in time, alerts will come here.",
        )
    except AlertFailed as e:
        return failed(
            "test alert",
            "; ".join(f"${names[i]}: {why}" for i, why in e.failed),
            "check the URL (service, credentials, recipient) in that variable",
        )
    return passed(
        "test alert",
        f"delivered through {', '.join(f'${n}' for n in names)}"
        + (f" (not set: {', '.join(missing)})" if missing else ""),
    )


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity == "error" for f in findings)


# --- config, credentials, media ------------------------------------------------------------


def config_finding(storm: Storm, now: datetime) -> Finding:
    from stormer.ops.checks import check

    problems = check(storm, now=now)
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    fix = "run `stormer check` to see each problem with its file and line"
    if errors:
        return failed("config", f"{len(errors)} error(s): {_quote(errors)}", fix)
    if warnings:
        return warned("config", f"{len(warnings)} warning(s): {_quote(warnings)}", fix)
    return passed(
        "config", f"{len(storm.posts)} posts, {len(storm.accounts)} accounts: no problem found"
    )


def _quote(problems: list[Problem]) -> str:
    shown = "; ".join(str(p) for p in problems[:SHOWN])
    return shown + (f"; and {len(problems) - SHOWN} more" if len(problems) > SHOWN else "")


async def credentials_finding(storm: Storm, http: httpx.AsyncClient) -> Finding:
    from stormer.ops.online import check_credentials

    if not storm.accounts:
        return warned(
            "credentials",
            "no authorized accounts: the storm posts nothing by API",
            "add [[accounts]] to config.toml",
        )
    checked = await check_credentials(storm, http=http)
    problems = [p for c in checked for p in c.problems]
    fix = (
        "set each variable named in config.toml (or run `stormer login ACCOUNT`); replace "
        "revoked or expired credentials; `stormer check --online` checks again"
    )
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        return failed(
            "credentials",
            f"{len(errors)} of {len(storm.accounts)} account(s): {_quote(errors)}",
            fix,
        )
    if problems:
        return warned(
            "credentials",
            f"{len(problems)} account(s) could not be verified: {_quote(problems)}",
            "try again; if it persists, check the platform's status and base_url",
        )
    renewed = sum(c.status is not None and c.status.renewal is not None for c in checked)
    lasting = f"; {renewed} renewed by stormer before T" if renewed else ""
    return passed(
        "credentials",
        f"all {len(storm.accounts)} account(s) accepted by their platforms, none expiring "
        f"before T + grace{lasting} (`stormer check --online` shows each)",
    )


def media_finding(storm: Storm) -> Finding:
    from stormer.channels import registry
    from stormer.plan import Eligibility

    # Every platform a post may go to, as `check` judges lengths (which account gets which
    # post can change with any edit to the storm), through the index `check` uses: not every
    # post against every account. A file many posts attach is read once.
    index, known = Eligibility(storm.posts, storm.accounts), set(registry.installed())
    sizes: dict[str, int | OSError] = {}
    problems, count = [], 0
    for post in storm.posts:
        platforms = sorted(p for p in index.platforms_of(post) if p in known)
        for image in post.images:
            count += 1
            where = f"{post.file}: {image.path}"
            if image.path not in sizes:
                try:
                    sizes[image.path] = len((storm.root / "posts" / image.path).read_bytes())
                except OSError as e:
                    sizes[image.path] = e
            size = sizes[image.path]
            if isinstance(size, OSError):
                problems.append(f"{where} cannot be read ({size.strerror or size})")
                continue
            for platform in platforms:  # an unknown one is reported by `check`
                plugin = registry.get(platform)
                limit = plugin.image_limits.max_bytes  # as the platform's plugin declares it
                if limit is not None and size > limit:
                    problems.append(
                        f"{where} is {_size(size)}, over {plugin.title}'s {_size(limit)}"
                    )
    if problems:
        return failed(
            "media",
            f"{len(problems)} problem(s): "
            + "; ".join(problems[:SHOWN])
            + (f"; and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""),
            "make the file readable, or shrink it (resize, or save as JPEG), or keep "
            "the post off that platform with platforms = [...] in its front matter",
        )
    if not count:
        return passed("media", "no images")
    return passed("media", f"{count} image(s) readable and within every platform's limit")


def _size(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n / 1000:.0f} kB"


# --- database, schedule, worker ------------------------------------------------------------


def database_findings(storm: Storm, now: datetime) -> list[Finding]:
    """database (reachable, migrated), then schedule and worker, which need it."""
    engine, finding = _database(storm)
    if engine is None:
        skipped = "not checked: the database is not usable"
        return [finding, warned("schedule", skipped), warned("worker", skipped)]
    from sqlalchemy.exc import SQLAlchemyError

    from stormer.outbox.status import status_summary

    try:
        summary = status_summary(engine=engine, storm=storm.slug, now=now)
    except SQLAlchemyError as e:  # it went away since the database check
        skipped = f"not checked: {type(e).__name__} reading the outbox"
        return [finding, warned("schedule", skipped), warned("worker", skipped)]
    finally:
        engine.dispose()
    return [finding, schedule_finding(storm, summary), worker_finding(storm, summary)]


def read_engine(storm: Storm) -> Engine | None:
    """An engine on the storm's database, NOT migrated (doctor and the watchdog only read),
    or None when its SQLite file does not exist yet: connecting would create it."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    from stormer.outbox.db import database_url, make_engine

    url = make_url(database_url(storm.database_url, storm.root))
    if url.password:
        Secret(str(url.password))  # never in a message: drivers may quote the URL
    if (
        url.get_backend_name() == "sqlite"
        and url.database not in (None, "", ":memory:")
        and not url.database.startswith("file:")
        and not Path(url.database).is_file()
    ):
        return None
    return make_engine(url.render_as_string(hide_password=False))


def _database(storm: Storm) -> tuple[Engine | None, Finding]:
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    from stormer.outbox.db import migrations_current

    try:
        engine = read_engine(storm)
    except StormerError as e:
        return None, failed("database", str(e), "fix [database] url or STORMER_DATABASE_URL")
    if engine is None:
        return None, failed(
            "database",
            "no database yet",
            "run `stormer schedule` (it creates the database and fills it)",
        )
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current = migrations_current(engine)
    except (SQLAlchemyError, OSError, StormerError) as e:
        engine.dispose()
        reason = redact(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__)
        return None, failed(
            "database",
            f"cannot use {where}: {reason}",
            "start the database server, or fix [database] url / "
            "STORMER_DATABASE_URL (every worker must reach the same one)",
        )
    if not current:
        engine.dispose()
        return None, failed(
            "database",
            f"{where} is not at the newest schema",
            "run `stormer db upgrade` (or `stormer schedule`, which migrates)",
        )
    return engine, passed("database", f"{where} reachable, schema up to date")


def schedule_finding(storm: Storm, summary: Mapping[str, Any]) -> Finding:
    from stormer.outbox.models import WAITING

    counts = summary["counts"]
    if not summary["total"]:
        return failed(
            "schedule",
            "nothing is scheduled for this storm: no post will be sent",
            "run `stormer schedule` (again after any change to the storm)",
        )
    waiting = sum(counts[s] for s in WAITING)
    shown = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    nxt = summary["next_fire_at"]
    return passed(
        "schedule",
        f"{summary['total']} item(s) in the outbox ({shown}); "
        f"{waiting} still to send" + (f", the next at {_iso(nxt)}" if nxt else ""),
    )


def worker_finding(storm: Storm, summary: Mapping[str, Any]) -> Finding:
    from stormer.ops.report import duration
    from stormer.outbox.models import WAITING

    now: datetime = summary["now"]
    workers = summary["workers"]
    if workers:
        names = ", ".join(
            f"{w['worker_id']} (heartbeat "
            f"{duration((now - w['heartbeat_at']).total_seconds())} ago"
            + (f", staged through {_iso(w['staged_through'])})" if w["staged_through"] else ")")
            for w in workers
        )
        return passed("worker", f"{len(workers)} alive: {names}")
    start = (
        "start `stormer run` for this storm on a machine that stays up through T (and "
        "check that it keeps running: `stormer status`)"
    )
    if storm.at is None:
        return warned("worker", "no worker is alive, and the storm has no usable time", start)
    if summary.get("total") and not sum(summary["counts"][s] for s in WAITING):
        return passed("worker", "none alive, and nothing is left to send")
    first, what = first_send(storm, summary)
    if now < first - STAGING_WINDOW:
        return passed(
            "worker",
            f"none alive yet; start `stormer run` at least "
            f"{duration(STAGING_WINDOW.total_seconds())} before {when_text(first, now)}, when "
            f"{what} is sent: a worker stages each item that far ahead",
        )
    return failed(
        "worker",
        f"NO WORKER IS ALIVE (no heartbeat in the last minute) and {what} is due "
        f"{when_text(first, now)}: nothing will be sent",
        start,
    )


def first_send(storm: Storm, summary: Mapping[str, Any]) -> tuple[datetime, str]:
    """When the first item still to send goes out, and what it is: from the outbox (the next
    fire or retry), or, before `schedule`, from the plan (the first reminder still ahead,
    else the storm). Only reminders go out before T."""
    assert storm.at is not None
    now: datetime = summary["now"]
    due = [t for t in (summary.get("next_fire_at"), summary.get("next_retry_at")) if t]
    if due:
        first = min(due)
    elif summary.get("total"):
        first = now  # only outcomes to reconcile are left: a worker is needed now
    else:
        reminders = storm.reminder_offsets if any(p.contacts for p in storm.participants) else []
        first = min([storm.at - o for o in reminders if storm.at - o > now], default=storm.at)
    if first < storm.at:
        return first, "the next reminder to participants"
    return first, "the storm's first post" if first <= storm.at else "the next item"


def when_text(t: datetime, now: datetime) -> str:
    """`t` for the organizer: in UTC, in this machine's zone (the organizer's, where doctor
    runs), and how far from `now`."""
    from stormer.ops.report import duration

    utc = f"{t.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    local = t.astimezone()  # the zone of this machine (TZ, /etc/localtime)
    if local.utcoffset() != timedelta(0):
        utc += f" = {local:%Y-%m-%d %H:%M:%S} {local.tzname()} here"
    seconds = (t - now).total_seconds()
    ahead = f"in {duration(seconds)}" if seconds >= 0 else f"{duration(seconds)} ago"
    return f"{utc} ({ahead})"


def _iso(value: datetime) -> str:
    from stormer.timezones import iso_utc

    return iso_utc(value)


# --- alerts ----------------------------------------------------------------------------------


def reminders_finding(storm: Storm, environ: Mapping[str, str] | None = None) -> Finding:
    from stormer.notify.sender import sender_problems

    if not storm.reminder_offsets or not any(p.contacts for p in storm.participants):
        return passed("reminders", "no participants' reminders planned")
    kinds, wrong = sender_problems(storm, environ)
    if wrong:
        return failed(
            "reminders",
            "; ".join(wrong),
            "set each [reminders] senders variable to the organizer's Apprise URL "
            "(mailtos://user:password@smtp.example.org?from=..., tgram://BOT_TOKEN, "
            "matrixs://user:password@server) in the worker's environment",
        )
    shown = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    return passed(
        "reminders",
        f"{len(storm.reminder_offsets)} reminder(s) before T to "
        f"{shown} contact(s); every sender is set",
    )


def alerts_finding(storm: Storm, environ: Mapping[str, str] | None = None) -> Finding:
    from stormer.notify.sender import env_urls as alert_urls
    from stormer.ops.alerts import check_urls
    from stormer.ops.report import duration

    cron = "run `stormer watchdog --quiet` every minute from cron on another machine"
    if not storm.alert_vars:
        return warned(
            "alerts",
            "no alerts configured: if no worker stages the storm, nobody is told",
            'add [alerts] apprise = ["STORMER_ALERT_URL"] to config.toml, set '
            "that variable to an Apprise URL (mailto://, tgram://, ntfy://…), and " + cron,
        )
    urls, missing = alert_urls(storm.alert_vars, environ)
    names = list(urls)
    unusable = [names[i] for i, _ in check_urls(list(urls.values()))]
    if missing or unusable:
        wrong = [f"${n} is not set" for n in missing] + [
            f"${n} is not a usable Apprise URL" for n in unusable
        ]
        return failed(
            "alerts",
            "; ".join(wrong),
            "set each variable to an Apprise URL (see the Apprise wiki), in the "
            "environment of the watchdog",
        )
    if storm.unstaged_before >= STAGING_WINDOW:
        window = duration(STAGING_WINDOW.total_seconds())
        return warned(
            "alerts",
            f"unstaged_before = {storm.unstaged_before} is not shorter "
            f"than the worker's default staging window ({window}): the "
            "watchdog would alert before any worker stages",
            "set [alerts] unstaged_before below the worker's --staging-window",
        )
    return passed(
        "alerts",
        f"{len(urls)} alert URL(s) set; alerts go out "
        f"{storm.unstaged_before} before T if nothing is staged ({cron})",
    )


# --- rendering ---------------------------------------------------------------------------------

MARKS: Final = {"info": "ok  ", "warning": "WARN", "error": "FAIL"}


def doctor_lines(findings: list[Finding]) -> list[str]:
    """The findings for people: one line each, and the fix under it."""
    lines = []
    for f in findings:
        lines.append(f"[{MARKS[f.severity]}] {f.name}: {f.message}")
        if f.fix and not f.ok:
            lines.append(f"       fix: {f.fix}")
    errors = sum(f.severity == "error" for f in findings)
    warnings = sum(f.severity == "warning" for f in findings)
    lines.append(
        f"{errors} error(s), {warnings} warning(s)" if errors or warnings else "all checks passed"
    )
    return lines
