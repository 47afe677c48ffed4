"""`stormer rehearse`: the whole storm in miniature, on this machine, in seconds.

A copy of the storm fires at now + a short delay against the local platform simulator (in
this process), with an SQLite outbox of its own: staging, the burst at T and the outcomes run
through the real dispatcher, and the lateness of every post is read from the simulator's own
receive times. Nothing leaves the machine; no credential is needed or read.

What it proves is the storm's timing and the dispatcher, against the simulator; not the real
credentials, reminder senders or platforms (`stormer doctor`, `stormer check --online` do).
It is kept to inspect in `.stormer/rehearsals/<time>/` (`stormer report --rehearsal`): its
outbox, where participants' reminders went to the simulator's inbox (so the outbox holds a
hash of that inbox, never a participant's address), and what the simulator received.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stormer.errors import StormerError
from stormer.private import private_folder, write_private
from stormer.secrets import Secret
from stormer.storm import Account, Storm

if TYPE_CHECKING:
    from stormer.ops.crowd import Crowd
    from stormer.ops.impact import Measurement

# Planning, scheduling and staging (logins, uploads) happen before T, as in a real storm
# hours ahead: with less than this, items are still being staged when T comes.
MIN_DELAY: Final = timedelta(seconds=5)
REHEARSALS: Final = Path(".stormer") / "rehearsals"
KEPT: Final = 20  # the newest rehearsals kept; older ones are removed
OUTBOX: Final = "outbox.db"
SIMULATOR_LOG: Final = "simulator.json"
IMPACT: Final = "impact.json"  # what `impact` read back of the storm and its crowd
REPORT: Final = "report.html"  # the rehearsal's report, with its figures and impact
# The crowd's storm minutes, in rehearsal seconds: an hour of stragglers in half a minute.
CROWD_SECONDS_PER_MINUTE: Final = 0.5
CROWD_AT_LEAST: Final = 20  # people posting by hand, at least (else one per participant)
PROVES: Final = (
    "a rehearsal proves the storm's timing and the dispatcher against the local simulator "
    "(made-up credentials; reminders to its inbox)",
    "it does not prove the real credentials, reminder senders or platforms: run "
    "`stormer doctor` and `stormer check --online`",
)


@dataclass
class Rehearsal:
    at: datetime
    items: int
    landed: int
    early: int
    duplicates: int
    lost: int
    lateness_ms: dict[str, float]
    states: dict[str, int]
    # Participants' reminders, delivered to the simulator's inbox instead of the participants.
    reminders: dict[str, int] = field(default_factory=dict)
    # What went wrong, item by item (platform/account, or a participant's row: no contact).
    failures: list[str] = field(default_factory=list)
    folder: str = ""  # where it is kept, relative to the storm's folder
    report: str = ""  # its HTML report, relative to the storm's folder
    # The simulated crowd (people posting by hand around T) and what `impact` read back.
    crowd: dict[str, int] = field(default_factory=dict)
    impact: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        late = self.lateness_ms
        return [
            f"rehearsal at {self.at:%H:%M:%S} UTC: {self.items} item(s), {self.landed} landed",
            f"  lateness from the simulator's receive times: p50 {late['p50']:.0f} ms, "
            f"p99 {late['p99']:.0f} ms, max {late['max']:.0f} ms",
            f"  early: {self.early}   duplicates: {self.duplicates}   lost: {self.lost}",
            *(
                [
                    f"  reminders to {r['participants']} participant(s): {r['planned']} planned, "
                    f"{r['delivered']} delivered to the simulator's inbox (none to the real "
                    f"participants); early: {r['early']}   duplicates: {r['duplicates']}   "
                    f"lost: {r['lost']}"
                ]
                if (r := self.reminders)
                else []
            ),
            *(
                [
                    f"  crowd: {c['landed']} of {c['planned']} hand-made post(s) around T "
                    f"(from {c['first_ms'] / 1000:+.1f} s to {c['last_ms'] / 1000:+.1f} s), "
                    "read back by `stormer impact`:"
                ]
                if (c := self.crowd)
                else []
            ),
            *(f"    {line}" for line in self.impact),
            "  outbox: " + ", ".join(f"{n} {s}" for s, n in sorted(self.states.items())),
            "  verdict: " + ("OK" if self.ok else f"PROBLEMS ({len(self.failures)}):"),
            *(f"    {f}" for f in self.failures),
            *(
                [f"  kept in {self.folder}: `stormer report --rehearsal` shows every item"]
                if self.folder
                else []
            ),
            *([f"  the report with its figures: {self.report}"] if self.report else []),
            *(f"  {line}" for line in PROVES),
        ]

    @property
    def ok(self) -> bool:
        r = self.reminders
        return not (
            self.early
            or self.duplicates
            or self.lost
            or r.get("early")
            or r.get("duplicates")
            or r.get("lost")
        )


def simulated(storm: Storm, sim: str, at: datetime, delay: timedelta) -> Storm:
    """The storm moved to `at`, every account pointed at the simulator, and every
    participant's contacts replaced by the simulator's inbox (one per participant, so that
    each is counted), with the reminder offsets scaled down to fit before `at`."""
    accounts = [replace(a, base_url=sim) for a in storm.accounts]
    inbox = sim.replace("http://", "json://", 1) + "/_sim/reminders"
    participants = [
        replace(p, contacts=(f"{inbox}?+X-Rehearsal-To={p.row}",))
        for p in storm.participants
        if p.contacts
    ]
    offsets = storm.reminder_offsets
    if offsets:
        # The earliest reminder goes out after 40% of the delay, the others in proportion.
        scale = 0.6 * delay.total_seconds() / max(o.total_seconds() for o in offsets)
        offsets = [timedelta(seconds=round(o.total_seconds() * scale, 3)) for o in offsets]
    return replace(
        storm,
        at=at,
        accounts=accounts,
        participants=participants,
        reminder_offsets=offsets,
        reminder_senders={},
        database_url=None,
        problems=[],
    )


def fake_credentials(sim: str) -> Any:
    """Credentials the simulator accepts: made up per account, never read from anywhere."""

    def credentials(
        account: Account,
        fields: tuple[str, ...],
        *,
        optional: tuple[str, ...] = (),
        public: tuple[str, ...] = (),
    ) -> dict[str, Secret]:
        out = {}
        for n, name in enumerate(fields):  # no optional ones: a rehearsal logs in afresh
            value = f"rehearsal-{account.name}-{n}"
            if name == "webhook_url":
                value = f"{sim}/api/webhooks/{abs(hash(account.name)) % 10**9}/{value}"
            elif name == "bot_token":
                value = f"{abs(hash(account.name)) % 10**9}:{value}"
            out[name] = Secret(value)
        return out

    return credentials


def rehearsal_folder(root: Path, name: str = "latest") -> Path:
    """The kept rehearsal `name` (a folder of `.stormer/rehearsals/`), or the newest."""
    base = root / REHEARSALS
    kept = sorted(f.parent.name for f in base.glob(f"*/{OUTBOX}"))  # named by time: in order
    if name == "latest":
        if not kept:
            raise StormerError(f"no rehearsal is kept in {REHEARSALS}/: run `stormer rehearse`")
        return base / kept[-1]
    if name not in kept:
        shown = ", ".join(kept[-5:]) or "none"
        raise StormerError(
            f"no rehearsal {name!r} in {REHEARSALS}/ (the newest: {shown}); "
            "`stormer report --rehearsal` shows the latest"
        )
    return base / name


def _new_folder(root: Path, at: datetime) -> Path:
    """A private folder for the rehearsal at `at`; the oldest beyond `KEPT` are removed."""
    base = private_folder(root / REHEARSALS)
    folder = private_folder(base / f"{at:%Y%m%dT%H%M%SZ}")
    for old in sorted(f for f in base.iterdir() if f.is_dir())[:-KEPT]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def rehearse(storm: Storm, *, delay: timedelta, say: Any = print) -> Rehearsal:
    """Run the storm against an in-process simulator `delay` from now; report what landed.
    Kept in `.stormer/rehearsals/`: its outbox and what the simulator received."""
    import httpx
    from sqlalchemy.orm import Session

    from stormer.dispatch.dispatcher import Dispatcher, Settings
    from stormer.outbox.db import make_engine, upgrade
    from stormer.outbox.schedule import schedule
    from stormer.plan import plan
    from stormer.preview import with_payloads
    from stormer.simulator.background import serve_simulator

    server = serve_simulator()
    try:
        at = (datetime.now(UTC) + delay).replace(microsecond=0)
        copy = simulated(storm, server.url, at, delay)
        items = with_payloads(copy, plan(copy))
        folder = _new_folder(storm.root, at)
        engine = make_engine(f"sqlite:///{folder / OUTBOX}")
        try:
            upgrade(engine)
            with Session(engine) as session, session.begin():
                # As of the rehearsal's start: planning may take longer than the first
                # reminder's scaled offset, and a late item is sent late, not dropped.
                schedule(items, session=session, storm=copy.slug, now=at - delay)
            crowd = _crowd(copy, server.url, at)
            say(
                f"rehearsing {len(items)} item(s) and {len(crowd.posts)} hand-made crowd "
                f"post(s) at {at:%H:%M:%S} UTC "
                f"(in {delay.total_seconds():.0f} s) against the local simulator…"
            )
            settings = Settings(
                staging_window=delay + timedelta(minutes=1),
                grace=timedelta(minutes=2),
                poll_seconds=1.0,
            )
            dispatcher = Dispatcher(
                copy,
                engine,
                settings=settings,
                credentials=fake_credentials(server.url),
                # Made-up credentials the simulator rotates stay in memory: a
                # rehearsal never writes to the organizer's keyring.
                save=lambda account, values: None,
                # The simulator's limits are no instance's: kept with the rehearsal.
                limits_folder=folder,
            )
            asyncio.run(dispatcher.run(until_done=True))
            states = _states(engine)
            fates = _fates(engine)
            rows = _rows(engine, copy.slug)
        finally:
            engine.dispose()
        crowd.join(timeout=LAST_CROWD_WAIT)
        landed = httpx.get(f"{server.url}/_sim/posts", timeout=30).json()
        inbox = httpx.get(f"{server.url}/_sim/reminders", timeout=30).json()
        # The crowd's posts are not the storm's: judged apart, and counted apart by impact.
        ours = [p for p in landed if p["remote_id"] not in crowd.remote_ids]
        ids = {v for p in ours for v in (p["remote_id"], p.get("url")) if v}
        impact_lines, measurement = _impact(
            copy, crowd, folder, server.url, since=at - delay, ours=ids
        )
    finally:
        server.stop()
    log = {"posts": landed, "reminders": inbox}
    write_private(folder / SIMULATOR_LOG, json.dumps(log, ensure_ascii=False, indent=1).encode())
    posts = [i for i in items if i.kind == "post"]
    result = _judge(at, posts, ours, states)
    result.crowd = _crowd_counts(crowd, at)
    result.impact = impact_lines
    report = _write_report(storm, copy, rows, folder, (measurement, ids))
    result.report = str(report.relative_to(storm.root))
    reminders = [i for i in items if i.kind == "reminder"]
    result.reminders, reminder_failures = _judge_reminders(copy, reminders, inbox, fates)
    result.failures = _post_failures(at, posts, ours, fates) + reminder_failures
    result.folder = str(folder.relative_to(storm.root))
    return result


LAST_CROWD_WAIT: Final = 90.0  # seconds: the crowd's last post is at most 30 s after T


def _crowd(storm: Storm, sim: str, at: datetime) -> Crowd:
    """People posting by hand around T, one per participant (at least `CROWD_AT_LEAST`),
    the same crowd for the same storm (seeded by its slug)."""
    import random

    from stormer.ops.crowd import Crowd, plan_crowd

    people = max(len(storm.participants), CROWD_AT_LEAST)
    posts = plan_crowd(storm, people, random.Random(storm.slug))
    return Crowd(sim, at, posts, CROWD_SECONDS_PER_MINUTE).start()


def _crowd_counts(crowd: Crowd, at: datetime) -> dict[str, int]:
    if not crowd.posts:
        return {}
    offsets = [(crowd.instant(p) - at.timestamp()) * 1000 for p in crowd.posts]
    return {
        "planned": len(crowd.posts),
        "landed": len(crowd.remote_ids),
        "first_ms": round(min(offsets)),
        "last_ms": round(max(offsets)),
    }


def _impact(
    storm: Storm, crowd: Crowd, folder: Path, sim: str, *, since: datetime, ours: set[str]
) -> tuple[list[str], Measurement]:
    """`stormer impact` against the simulator, after the crowd's last post: kept in the
    rehearsal's folder, summarized in lines (counts only)."""
    from stormer.ops.impact import measure, write_measurement
    from stormer.ops.impact_summary import render, summarize

    assert storm.at is not None
    last = max((crowd.instant(p) for p in crowd.posts), default=storm.at.timestamp())
    until = datetime.fromtimestamp(last + 2, UTC)
    measurement = asyncio.run(
        measure(storm, since=since, until=until, credentials_of=fake_credentials(sim))
    )
    write_measurement(folder / IMPACT, measurement)
    summary = summarize(measurement, at=storm.at, ours=ours, show_authors=False)
    lines = [line.strip() for line in render(summary)[1:] if "Authors are counted" not in line]
    return lines, measurement


def _rows(engine: Any, slug: str) -> list[dict[str, Any]]:
    from sqlalchemy.orm import Session

    from stormer.ops.report import report_rows
    from stormer.outbox.schedule import items

    with Session(engine) as session:
        return report_rows(items(session=session, storm=slug), datetime.now(UTC))


def _write_report(
    storm: Storm,
    copy: Storm,
    rows: list[dict[str, Any]],
    folder: Path,
    measured: tuple[Measurement, set[str]],
) -> Path:
    """The rehearsal's HTML report, with the impact it measured (as `report --html`)."""
    from stormer.ops.report import problem_lines, summary
    from stormer.ops.report_html import write_report_files

    assert copy.at is not None
    measurement, ours = measured
    (path,) = write_report_files(
        title=f"{storm.name}: rehearsal {folder.name}",
        at=copy.at,
        rows=rows,
        problems=problem_lines(summary(rows, []), rows),
        measurement=measurement,
        ours=ours,
        html_path=folder / REPORT,
        png_path=None,
    )
    return path


def _fates(engine: Any) -> dict[str, str]:
    """Each item's end in the outbox: its state, and the error it ended with, if any."""
    from sqlalchemy import select

    from stormer.outbox.models import Outbox

    with engine.connect() as conn:
        rows = conn.execute(select(Outbox.id, Outbox.state, Outbox.error)).all()
    return {i: state + (f": {error[:200]}" if error else "") for i, state, error in rows}


def _post_failures(
    at: datetime, items: list[Any], landed: list[dict[str, Any]], fates: dict[str, str]
) -> list[str]:
    """Posts that did not land once, by platform/account, with their end in the outbox. One
    text on one platform from several accounts is compared in bulk, as in `_judge`."""
    per_key = Counter((p["platform"], p["text"]) for p in landed)
    groups: dict[tuple[str, str], list[Any]] = {}
    for item in items:
        groups.setdefault((item.platform, item.text), []).append(item)
    out = []
    for key, group in groups.items():
        got, want = per_key[key], len(group)
        if got == want:
            continue
        what = f"lost {want - got} of {want}" if got < want else f"landed {got} times for {want}"
        who = "; ".join(f"{i.platform}/{i.account} (outbox: {fates.get(i.id)})" for i in group)
        out.append(f"post {what}: {who}")
    for post in landed:
        received = datetime.fromisoformat(post["received_at"].replace("Z", "+00:00"))
        if received < at:
            early = (at - received).total_seconds() * 1000
            out.append(f"post EARLY on {post['platform']}: received {early:.0f} ms before T")
    return out


def _judge_reminders(
    storm: Storm, items: list[Any], inbox: list[dict[str, Any]], fates: dict[str, str]
) -> tuple[dict[str, int], list[str]]:
    """Per participant, the reminders planned against those the inbox received, in time
    order: each must arrive once, and not before its own time. The counts, and what went
    wrong by participant's row (never a contact)."""
    if not items:
        return {}, []
    row_of = {p.name: str(p.row) for p in storm.participants}
    planned: dict[str, list[Any]] = {}
    for item in items:
        planned.setdefault(row_of[item.account], []).append(item)
    received: dict[str, list[datetime]] = {}
    for message in inbox:
        at = datetime.fromisoformat(message["received_at"].replace("Z", "+00:00"))
        received.setdefault(str(message["to"]), []).append(at)
    early = duplicates = lost = 0
    failures = []
    for row, mine in planned.items():
        got = sorted(received.get(row, []))
        dues = sorted(i.fire_at for i in mine)
        duplicates += max(len(got) - len(dues), 0)
        lost += max(len(dues) - len(got), 0)
        too_soon = sum(1 for due, at in zip(dues, got, strict=False) if at < due)
        early += too_soon
        if len(got) != len(dues) or too_soon:
            ends = ", ".join(sorted({str(fates.get(i.id)) for i in mine}))
            failures.append(
                f"reminders to the participant of row {row}: {len(got)} arrived of "
                f"{len(dues)}, {too_soon} EARLY (outbox: {ends})"
            )
    strays = {k: len(v) for k, v in received.items() if k not in planned}
    duplicates += sum(strays.values())
    failures += [f"{n} reminder(s) for no planned participant (row {k})" for k, n in strays.items()]
    counts = {
        "participants": len(planned),
        "planned": len(items),
        "delivered": len(inbox),
        "early": early,
        "duplicates": duplicates,
        "lost": lost,
    }
    return counts, failures


def _states(engine: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    from stormer.outbox.models import Outbox

    with engine.connect() as conn:
        return dict(conn.execute(select(Outbox.state, func.count()).group_by(Outbox.state)).all())


def _judge(
    at: datetime, items: list[Any], landed: list[dict[str, Any]], states: dict[str, int]
) -> Rehearsal:
    received = [datetime.fromisoformat(p["received_at"].replace("Z", "+00:00")) for p in landed]
    lateness = sorted((r - at).total_seconds() * 1000 for r in received)
    per_item = Counter((p["platform"], p["text"]) for p in landed)
    wanted = Counter((i.platform, i.text) for i in items)
    # Items with the same text on one platform (different accounts) are compared in bulk;
    # Matrix images land as extra events carrying their alt text, not the post's text.
    duplicates = sum(max(per_item[k] - n, 0) for k, n in wanted.items())
    lost = sum(max(n - per_item[k], 0) for k, n in wanted.items())

    def pct(q: float) -> float:
        return lateness[min(len(lateness) - 1, int(q * len(lateness)))] if lateness else 0.0

    return Rehearsal(
        at=at,
        items=len(items),
        landed=sum(min(per_item[k], n) for k, n in wanted.items()),
        early=sum(1 for r in received if r < at),
        duplicates=duplicates,
        lost=lost,
        lateness_ms={"p50": pct(0.5), "p99": pct(0.99), "max": lateness[-1] if lateness else 0.0},
        states=states,
    )
