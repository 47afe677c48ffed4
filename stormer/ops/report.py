"""What happened to a storm, item by item, and how it is going: pure functions, no I/O.

`report_rows` turns outbox rows into plain dicts (instants as ISO UTC strings, durations in
seconds), `summary` finds what the organizer must look at, `to_csv` and `report_lines` render
them. `stormer.ops.status` does the same for `stormer status` (the live view).

What may never be shown: secrets (error texts go through `stormer.secrets.redact`, and the
usual credential shapes are masked as well, because `redact` only knows the secrets resolved
in this process) and participants' contacts. An item whose channel is private (a reminder:
`Channel.private`) shows the participant's name (`account`) and what its channel allows as
`platform` (`Channel.label`: the kind of contact only), no permalink, and any address in its
error text is masked.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol

from stormer.channels.registry import channel_class
from stormer.outbox.models import HELD, WAITING, State
from stormer.outbox.status import percentile
from stormer.secrets import clean_error
from stormer.timezones import iso_utc

if TYPE_CHECKING:
    from stormer.storm import Storm

# The columns of a report row, in CSV order.
COLUMNS: Final = (
    "id",
    "kind",
    "account",
    "platform",
    "state",
    "fire_at",
    "sent_at",
    "lateness_s",
    "overdue_s",
    "permalink",
    "error",
    "attempts",
    "next_attempt_at",
    "worker",
    "post",
    "look_at",
)
# How far past its time an unsent item may be before status calls it overdue: a normal burst
# takes a few seconds, and a worker polls often.
OVERDUE_AFTER: Final = timedelta(seconds=60)
_OVERDUE_S: Final = OVERDUE_AFTER.total_seconds()
EMPTY: Final = "nothing scheduled yet: run `stormer schedule`"
ALERT: Final = "!!! "  # lines for people that must not be missed start with this
NO_WORKER_FIX: Final = "start one with `stormer run`"

# OWASP "CSV injection": a cell starting with one of these is a formula in spreadsheet apps.
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


class Item(Protocol):
    """What `report_rows` reads of an outbox row (`stormer.models.Outbox`)."""

    id: str
    kind: str
    account: str
    platform: str
    state: str
    fire_at: datetime
    sent_at: datetime | None
    permalink: str | None
    error: str | None
    source: str | None
    text: str
    attempts: int
    next_attempt_at: datetime | None
    lease_owner: str | None
    lease_until: datetime | None

    @property
    def payload(self) -> dict[str, Any] | None: ...  # read only: a reminder's channel kind


# --- the report ------------------------------------------------------------------------------


LookByHand = Callable[[Item], str | None]


def report_rows(
    items: Iterable[Item], now: datetime, look: LookByHand | None = None
) -> list[dict[str, Any]]:
    """One JSON-ready dict per item (keys: `COLUMNS`), in the order given.

    `lateness_s` is `sent_at - fire_at` in seconds (None until sent; negative = sent EARLY).
    `overdue_s` is how long past its time an item still waiting to be sent is at `now`
    (None when it is settled or not yet due). `next_attempt_at`: when a failed item is tried
    again. `worker`: the worker holding the item under a lease still running at `now`.
    `post`: the post file it came from. `look_at`: for an unconfirmed item, where to look
    for it by hand, from `look` (`hand_checks`).
    """
    return [_row(item, now, look) for item in items]


def hand_checks(storm: Storm) -> LookByHand:
    """Where each unconfirmed item of `storm` can be looked for by hand: its platform's page
    for its account and text (`Platform.look_by_hand_at`)."""
    from stormer.channels import registry

    accounts = {a.name: a for a in storm.accounts}

    def look(item: Item) -> str | None:
        account = accounts.get(item.account)
        if account is None or item.kind != "post":
            return None  # an account removed from config.toml since: nothing to fill in
        return registry.get(item.platform).look_by_hand_at(account, item.text, storm.hashtag)

    return look


def _row(item: Item, now: datetime, look: LookByHand | None) -> dict[str, Any]:
    channel = channel_class(item.kind)
    private = channel.private  # a participant's reminder: no address, no permalink
    lateness = (item.sent_at - item.fire_at).total_seconds() if item.sent_at else None
    overdue = (
        (now - item.fire_at).total_seconds()
        if item.state in WAITING and item.fire_at < now
        else None
    )
    error = clean_error(item.error, contacts=private) if item.error else None
    held = item.state in HELD and item.lease_until is not None and item.lease_until >= now
    return {
        "id": item.id,
        "kind": item.kind,
        # A reminder's "account" is the participant's name: a name, never masked as if it
        # were an address ("@SUM(1+1) At Group" is an organization); contacts are in `error`
        # at most, and masked there.
        "account": item.account,
        "platform": channel.label(item.platform, item.payload),
        "state": item.state,
        "fire_at": iso_utc(item.fire_at),
        "sent_at": iso_utc(item.sent_at) if item.sent_at else None,
        "lateness_s": lateness,
        "overdue_s": overdue,
        "permalink": None if private else item.permalink,
        "error": error,
        "attempts": item.attempts,
        "next_attempt_at": (
            iso_utc(item.next_attempt_at)
            if item.state == State.FAILED and item.next_attempt_at
            else None
        ),
        "worker": item.lease_owner if held else None,
        "post": item.source,
        "look_at": (
            look(item)
            if look is not None and item.state == State.UNCONFIRMED and not private
            else None
        ),
    }


def summary(rows: Sequence[Mapping[str, Any]], live: Collection[str] = ()) -> dict[str, Any]:
    """Counts by state and what the organizer must look at, from `report_rows`; `live`: the
    ids of the workers alive (`stormer.outbox.workers.live_workers`).

    `early`: ids sent before their time, most early first — a bug, never to be hidden in the
    statistics. `unconfirmed`: may or may not have been posted, check by hand. `dead` (with
    the reason), `missed`. Of the items still not sent `OVERDUE_AFTER` past their time:
    `retrying`, in a live worker's hands (held under its lease, or failed and due to be tried
    again while a worker is alive), and `overdue`, nobody's; `workers_alive` says whether
    any worker could take them.
    """
    counts = dict.fromkeys(State, 0)
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    late = sorted((r["lateness_s"], r["id"]) for r in rows if r["lateness_s"] is not None)
    seconds = [s for s, _ in late]
    late_rows = [r for r in rows if r["overdue_s"] is not None and r["overdue_s"] > _OVERDUE_S]
    return {
        "total": len(rows),
        "counts": counts,
        State.SENT: counts[State.SENT],
        "lateness": {
            State.SENT: len(seconds),
            "min_s": seconds[0] if seconds else None,
            "p50_s": percentile(seconds, 0.50),
            "p99_s": percentile(seconds, 0.99),
            "max_s": seconds[-1] if seconds else None,
        },
        "early": [i for s, i in late if s < 0],
        State.UNCONFIRMED: _ids(rows, State.UNCONFIRMED),
        State.DEAD: [
            {"id": r["id"], "error": r["error"]} for r in rows if r["state"] == State.DEAD
        ],
        State.MISSED: _ids(rows, State.MISSED),
        "retrying": [r["id"] for r in late_rows if _in_hand(r, live)],
        "overdue": [r["id"] for r in late_rows if not _in_hand(r, live)],
        "workers_alive": len(live),
    }


def _in_hand(row: Mapping[str, Any], live: Collection[str]) -> bool:
    """Whether a live worker will try `row` again: it holds it, or it failed with a time to
    be tried again and some worker is alive to claim it then."""
    if row["worker"] is not None:
        return row["worker"] in live
    return row["state"] == State.FAILED and row["next_attempt_at"] is not None and bool(live)


def _ids(rows: Sequence[Mapping[str, Any]], state: str) -> list[str]:
    return [r["id"] for r in rows if r["state"] == state]


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """The rows as CSV (header first), safe to open in a spreadsheet.

    Every text cell starting with `=`, `+`, `-`, `@`, tab or carriage return gets a leading
    `'`, so that it is shown, not evaluated (OWASP CSV injection). Numbers stay numbers;
    None is an empty cell.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in COLUMNS])
    return out.getvalue()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def problem_lines(summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Every problem (early!, dead, unconfirmed, missed, retrying, overdue), each item with
    what to do about it; none: an empty list."""
    by_id = {r["id"]: r for r in rows}
    lines: list[str] = []

    def problem(title: str, ids: Sequence[str], detail: Any) -> None:
        if ids:
            lines.append(title.format(n=len(ids)))
            lines.extend(f"    {i}  {_who(by_id[i])}  {detail(by_id[i])}".rstrip() for i in ids)

    problem(
        ALERT + "EARLY: {n} item(s) were sent BEFORE their time. This must never happen: "
        "report it as a bug in stormer (or the platform's clock is behind).",
        summary["early"],
        lambda r: f"{duration(-r['lateness_s'])} early",
    )
    problem(
        ALERT + "DEAD: {n} item(s) were given up and will not be sent:",
        [d["id"] for d in summary[State.DEAD]],
        lambda r: _with_fix(r),
    )
    problem(
        "UNCONFIRMED: {n} item(s) may or may not have been posted; check them by hand:",
        summary[State.UNCONFIRMED],
        lambda r: _with_fix(r),
    )
    problem(
        "MISSED: {n} item(s) were not sent in time and were given up:",
        summary[State.MISSED],
        lambda r: f"due {r['fire_at']}",
    )
    problem(
        "RETRYING: {n} item(s) are past their time and being retried by a live worker:",
        summary["retrying"],
        lambda r: f"{duration(r['overdue_s'])} late, {_retry_text(r)}",
    )
    nobody = (
        "no live worker holds them: see the worker's log, and `stormer status`"
        if summary["workers_alive"]
        else f"no worker is alive: {NO_WORKER_FIX}"
    )
    problem(
        ALERT + "OVERDUE: {n} item(s) are past their time and not sent, and " + nobody + ":",
        summary["overdue"],
        lambda r: f"{r['state']}, {duration(r['overdue_s'])} late",
    )
    return lines


def report_lines(summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The report for people: the summary per platform and account, then every problem with
    what to do, then the totals, then one line per item."""
    if not rows:
        return [EMPTY]
    lines = ["per platform and account:", *_per_account_table(rows), ""]
    lines += problem_lines(summary, rows) or ["No problems."]
    lines.append("")
    lines.append(f"{summary['total']} item(s): {counts_text(summary['counts'])}")
    lateness = summary["lateness"]
    if lateness[State.SENT]:
        lines.append(f"lateness: {percentiles_text(lateness)}")
    lines.append("")
    lines.extend(_table(rows))
    return lines


def per_account(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Sent, lateness p50/p99/max, failed, unconfirmed and missed, per platform and account
    (posts); per channel for reminders (never per participant)."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        key = (
            (str(row["platform"]), str(row["account"]))
            if row["kind"] == "post"
            else (str(row["platform"]), "reminders")
        )
        groups.setdefault(key, []).append(row)
    out = []
    for (platform, account), group in sorted(groups.items()):
        late = sorted(float(r["lateness_s"]) for r in group if r["lateness_s"] is not None)
        out.append(
            {
                "platform": platform,
                "account": account,
                "items": len(group),
                State.SENT: sum(r["state"] == State.SENT for r in group),
                "p50_s": percentile(late, 0.5),
                "p99_s": percentile(late, 0.99),
                "max_s": late[-1] if late else None,
                # failed: given up for good (dead) or waiting for a retry (failed)
                State.FAILED: sum(r["state"] in (State.FAILED, State.DEAD) for r in group),
                State.UNCONFIRMED: sum(r["state"] == State.UNCONFIRMED for r in group),
                State.MISSED: sum(r["state"] == State.MISSED for r in group),
            }
        )
    return out


def _per_account_table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    def late(value: float | None) -> str:
        return "-" if value is None else f"{value:+.2f}"

    # The column names are the states they count (State, never a state's name as a string).
    heading: tuple[str, ...] = ("platform/account", State.SENT, "p50 s", "p99 s", "max s")
    table: list[tuple[str, ...]] = [(*heading, State.FAILED, "unconf.", State.MISSED)]
    table += [
        (
            f"{r['platform']}/{r['account']}",
            f"{r[State.SENT]}/{r['items']}",
            late(r["p50_s"]),
            late(r["p99_s"]),
            late(r["max_s"]),
            str(r[State.FAILED]),
            str(r[State.UNCONFIRMED]),
            str(r[State.MISSED]),
        )
        for r in per_account(rows)
    ]
    widths = [max(len(t[i]) for t in table) for i in range(len(table[0]))]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)).rstrip() for t in table
    ]


# What to do about an item given up or unconfirmed, from its error's words (the outbox keeps
# the platform's message; the organizer needs the next step).
_RETRY_AT = re.compile(r"retry at (\S+?Z)")
_TOO_LONG = re.compile(r"(\d+)\s*(?:>|is over|exceeds)\s*(?:the limit of\s*)?(\d+)")


def _with_fix(row: Mapping[str, Any]) -> str:
    error = str(row["error"] or "")
    fix = fix_for(row)
    return f"{error} → {fix}" if fix else error


def fix_for(row: Mapping[str, Any]) -> str | None:
    """The next step for a dead or unconfirmed item, in words."""
    error = str(row["error"] or "").lower()
    account = row["account"]
    resend = (
        f"`stormer post --account {account} --post {row['post']}`"
        if row["post"]
        else ("`stormer post`")
    )
    if row["state"] == State.UNCONFIRMED:
        where = (
            row["permalink"]
            or row["look_at"]
            or f"the account {account}'s page on {row['platform']}"
        )
        return f"look at {where}: if the post is not there, send it with {resend}"
    if row["kind"] == "reminder":
        return "the server's reason is above; correct that contact in participants.csv"
    if any(w in error for w in ("credential", "401", "403", "revoked", "expired", "login")):
        return (
            f"run `stormer login {account}` (or set its credentials), check with "
            f"`stormer check --online`, then send it with {resend}"
        )
    if found := _TOO_LONG.search(error):
        over = int(found.group(1)) - int(found.group(2))
        return f"the post is {over} character(s) over the limit of {found.group(2)}: shorten it"
    if "rate limit" in error:
        asked = _RETRY_AT.search(str(row["error"]))
        when = f" (it asked for {asked.group(1)})" if asked else ""
        return (
            f"tried {row['attempts']} time(s); the platform limited the rate until after the "
            f"grace{when}, so it was given up: send it with {resend}"
        )
    return None


def _retry_text(row: Mapping[str, Any]) -> str:
    if row["worker"] is not None:
        return f"held by {row['worker']} ({row['state']})"
    return f"attempt {row['attempts']} failed, next try at {row['next_attempt_at']}"


def _who(row: Mapping[str, Any]) -> str:
    return f"{row['platform']}/{row['account']}"


def counts_text(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in counts.items() if n) or "none"


def _table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    header = ("id", "fire at (UTC)", "state", "kind", "platform/account", "lateness", "result")
    cells = [header] + [
        (
            r["id"],
            r["fire_at"],
            r["state"],
            r["kind"],
            _who(r),
            _signed(r["lateness_s"]) if r["lateness_s"] is not None else "",
            r["permalink"] or r["error"] or "",
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header) - 1)]
    return [
        "  ".join([*(c.ljust(w) for c, w in zip(cell, widths, strict=False)), cell[-1]]).rstrip()
        for cell in cells
    ]


def percentiles_text(lateness: Mapping[str, Any]) -> str:
    return ", ".join(f"{q} {_signed(lateness[f'{q}_s'])}" for q in ("p50", "p99", "max"))


def _signed(seconds: float) -> str:
    return ("-" if seconds < 0 else "+") + duration(seconds)


def duration(seconds: float) -> str:
    """A duration for people, sign dropped: `0.42 s`, `45 s`, `3 min 20 s`, `2 h 5 min`."""
    s = abs(seconds)
    if s < 10:
        return f"{s:.2f} s"
    whole = round(s)
    if whole < 60:
        return f"{whole} s"
    parts = [
        (whole // 86_400, "d"),
        (whole % 86_400 // 3600, "h"),
        (whole % 3600 // 60, "min"),
        (whole % 60, "s"),
    ]
    first = next(i for i, (n, _) in enumerate(parts) if n)
    return " ".join(f"{n} {unit}" for n, unit in parts[first : first + 2] if n)
