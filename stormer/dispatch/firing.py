"""At T: the burst. The alarm for an instant records the attempts (state `sending`, naming the
burst) half a second ahead, waits for the exact instant — never a millisecond early —,
records that the burst begins (stormer.outbox.bursts: a worker that dies before this line
has sent nothing, and its items are sent again), and sends every item due then on the pooled
engine, within the gates and paces of its channel.

Items no platform can be asked about afterwards (idempotency "none": Telegram, Discord)
leave first and their outcomes are written as they come, so that a crash mid-burst leaves as
few of them unknown as possible; the rest are written in one batch at the end.

Database calls run in a thread: the event loop (and a burst) never waits on them.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from sqlalchemy.exc import SQLAlchemyError

from stormer.channels.base import Staged
from stormer.dispatch.clock import CLOCK, sleep_until, utcnow
from stormer.dispatch.outage import database_error
from stormer.errors import PlatformError, RateLimited, Transient
from stormer.outbox import bursts, claims
from stormer.outbox.models import State
from stormer.secrets import redact
from stormer.timezones import iso_utc

if TYPE_CHECKING:
    from stormer.dispatch.crew import Crew
    from stormer.dispatch.tracker import Ready

log = logging.getLogger("stormer.dispatch")
BEGIN_RETRY: Final = timedelta(seconds=0.5)  # how often to retry recording a burst's start
OUTCOMES_RETRY: Final = timedelta(seconds=0.5)  # how often to retry writing its outcomes


class Firing:
    """Fires the bursts of the worker named `worker`; `fired` lists the ids whose requests
    left, in order (for tests and reports)."""

    def __init__(self, crew: Crew, *, fired: list[str]) -> None:
        self._crew = crew
        self.fired = fired

    async def fire(self, instant: datetime) -> None:
        """The alarm for `instant`: record the attempts, wait for the instant, send."""
        batch = self._crew.items.due(instant)
        if not batch:
            if not self._crew.items.waiting_for(instant):
                self._crew.items.disarm(instant)  # else a burst for it is still in flight
            return
        ids = [c.id for c, _ in batch]
        now = utcnow()
        if now > instant + self._crew.grace or CLOCK.refusal:
            log.error(
                "%d item(s) for %s not sent by this worker: %s",
                len(batch),
                instant,
                CLOCK.refusal or "past their grace",
            )
            self._crew.items.forget(ids)
            await asyncio.to_thread(
                claims.release, engine=self._crew.engine, worker=self._crew.worker, ids=ids, now=now
            )
            self._crew.items.disarm(instant)
            return
        self._crew.items.launch(ids)
        try:
            with cyclic_gc_paused():
                await self._burst(instant, batch)
        finally:
            self._crew.items.forget(ids)
            self._crew.items.disarm(instant)  # only now: a pass must not re-arm a firing instant

    async def _burst(self, instant: datetime, batch: list[Ready]) -> None:
        """Record the attempts, wait for the instant, record that the burst begins, send
        `batch`, record the outcomes."""
        burst = uuid.uuid4().hex
        marked = set(
            await asyncio.to_thread(
                claims.record_attempt,
                engine=self._crew.engine,
                worker=self._crew.worker,
                ids=[c.id for c, _ in batch],
                now=utcnow(),
                burst=burst,
            )
        )
        lost = [c.id for c, _ in batch if c.id not in marked]
        if lost:
            log.error(
                "%d item(s) lost their lease before %s: not sent by this worker", len(lost), instant
            )
            # Another worker has them now: stop renewing or holding them.
            self._crew.items.forget(lost)
        # Stable: within each group, the order planned.
        sending = sorted(
            ((c, st) for c, st in batch if c.id in marked), key=lambda cs: self._askable(cs[0])
        )
        await sleep_until(instant)
        if not await self._begin(burst, instant):
            return  # (`fire` forgets them)
        outcomes = await self._send_all(instant, sending)
        by_state = Counter(o.state for o in outcomes)
        log.info(
            "fired %d item(s) due %s: %s",
            len(outcomes),
            iso_utc(instant),
            ", ".join(f"{n} {state}" for state, n in sorted(by_state.items())) or "none sent",
        )

    def _askable(self, c: claims.ClaimedItem) -> bool:
        """Whether the platform can be asked afterwards whether `c` landed (reconcile)."""
        return self._crew.routes.of(c.kind, c.account).channel.idempotency != "none"

    async def _begin(self, burst: str, instant: datetime) -> bool:
        """Record that `burst` begins, retrying while the database does not answer (nothing
        may leave before it is recorded) until the grace ends; False, said, if another
        worker took the burst's items over meanwhile, or the grace ended."""
        told = False
        while True:
            try:
                began = await asyncio.to_thread(
                    bursts.begin,
                    engine=self._crew.engine,
                    burst=burst,
                    storm=self._crew.storm,
                    worker=self._crew.worker,
                    now=utcnow(),
                )
            except SQLAlchemyError as e:
                reason = database_error(e) or type(e).__name__
                if utcnow() + BEGIN_RETRY > instant + self._crew.grace:
                    log.error(
                        "the burst for %s was not sent: the database could not record that "
                        "it began before its grace ended (%s); its items are marked missed",
                        iso_utc(instant),
                        reason,
                    )
                    return False
                if not told:
                    log.error(
                        "the burst for %s was held back: the database cannot record that it "
                        "begins (%s), and nothing leaves unrecorded; it goes once the "
                        "database answers, within its grace",
                        iso_utc(instant),
                        reason,
                    )
                    told = True
                await asyncio.sleep(BEGIN_RETRY.total_seconds())
                continue
            if not began:
                log.error(
                    "the burst for %s was taken over by another worker while this one "
                    "waited (its leases ran out): not sent by this worker",
                    iso_utc(instant),
                )
            return began

    async def _send_all(self, instant: datetime, sending: list[Ready]) -> list[claims.Outcome]:
        """Send every item; write the outcomes of those nobody can ask about later as they
        come (a writer batching whatever arrived while it wrote), then all of them, waiting
        for the database as long as it takes: an outcome known here is never thrown away."""
        early: list[claims.Outcome] = []
        arrived = asyncio.Event()

        async def send(c: claims.ClaimedItem, staged: Staged) -> claims.Outcome:
            outcome = await self._send(c, staged)
            if not self._askable(c):
                early.append(outcome)
                arrived.set()
            return outcome

        finished = asyncio.Event()
        writer = asyncio.create_task(self._write_as_they_come(early, arrived, finished))
        try:
            outcomes = await asyncio.gather(*(send(c, st) for c, st in sending))
        finally:
            # Not cancelled mid-write (its thread would go on, its error unheard): told to
            # stop, it ends its write in progress and leaves the rest to the final one.
            finished.set()
            arrived.set()
            await writer
        # Every outcome, once more for those the writer wrote: a written row is no longer
        # held, so record_outcomes leaves it alone.
        told = False
        while True:
            try:
                await self._record(outcomes)
            except SQLAlchemyError as e:
                if not told:
                    log.error(
                        "the burst for %s: %d request(s) left, but their outcomes could not be "
                        "written (%s); they are kept and written once the database answers",
                        iso_utc(instant),
                        len(outcomes),
                        database_error(e) or type(e).__name__,
                    )
                    told = True
                await asyncio.sleep(OUTCOMES_RETRY.total_seconds())
                continue
            if told:
                log.warning("the outcomes of the burst for %s are written", iso_utc(instant))
            return outcomes

    async def _write_as_they_come(
        self, early: list[claims.Outcome], arrived: asyncio.Event, finished: asyncio.Event
    ) -> None:
        while True:
            await arrived.wait()
            arrived.clear()
            if finished.is_set():
                return
            batch, early[:] = early[:], []
            try:
                await self._record(batch)
            except SQLAlchemyError:
                pass  # written with the others at the end of the burst, which tells why not

    async def _record(self, outcomes: list[claims.Outcome]) -> None:
        await asyncio.to_thread(
            claims.record_outcomes,
            engine=self._crew.engine,
            worker=self._crew.worker,
            outcomes=outcomes,
        )

    async def _send(self, c: claims.ClaimedItem, staged: Staged) -> claims.Outcome:
        route = self._crew.routes.of(c.kind, c.account)
        async with self._crew.gates.platform(route.channel), self._crew.gates.account(c.account):
            await sleep_until(c.fire_at)  # never early, even after waiting for a gate
            pacer = self._crew.gates.pacer(c.account, route.channel)
            if pacer is not None:
                await pacer.wait()
            left = utcnow()
            self.fired.append(c.id)
            try:
                result = await route.send(staged, attempts=self._crew.attempts)
            except (RateLimited, Transient) as e:
                retry_at = utcnow() + timedelta(
                    seconds=e.retry_after if isinstance(e, RateLimited) else 30
                )
                if retry_at > c.fire_at + self._crew.grace:
                    # The report tells the organizer when the platform would have let it go.
                    asked = (
                        f"; retry at {iso_utc(retry_at.replace(microsecond=0))}"
                        if isinstance(e, RateLimited)
                        else ""
                    )
                    return claims.Outcome(
                        c.id,
                        State.DEAD,
                        utcnow(),
                        error=redact(f"gave up within the grace: {e}{asked}"),
                    )
                return claims.Outcome(
                    c.id, State.FAILED, utcnow(), error=redact(str(e)), next_attempt_at=retry_at
                )
            except PlatformError as e:  # AuthError, Rejected: final
                return claims.Outcome(c.id, State.DEAD, utcnow(), error=redact(str(e)))
        if result.outcome == State.SENT and result.published is not None:
            return claims.Outcome(
                c.id,
                State.SENT,
                left,
                remote_id=result.published.remote_id,
                permalink=result.published.permalink,
            )
        return claims.Outcome(
            c.id,
            State.UNCONFIRMED,
            utcnow(),
            error="no answer, and the platform offers no way to check: "
            f"{route.channel.where_to_look} before sending it again",
        )


_gc_pauses = 0  # bursts in progress that paused the cyclic garbage collector


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a burst is in flight.

    The burst is CPU-bound, and a 10,000-item burst set off five full (generation 2)
    collections of the worker's whole heap: 1.8–1.9 s of a 5.6 s p99. Paused, the p99 was
    3.6 s (bench/README.md). Reference counting still frees almost everything at once;
    cycles wait the few seconds until the outcomes are written. Overlapping bursts
    (two instants close together) resume collection when the last one ends."""
    global _gc_pauses
    if _gc_pauses == 0 and not gc.isenabled():
        yield  # someone else turned it off: not ours to turn back on
        return
    _gc_pauses += 1
    gc.disable()
    try:
        yield
    finally:
        _gc_pauses -= 1
        if _gc_pauses == 0:
            gc.enable()
