"""The dispatcher behind `stormer run`: the database is the truth, the scheduler an alarm clock.

Every few seconds `sync` reads the outbox: it recovers expired leases, marks items past their
grace as missed, reconciles unknown outcomes, claims what fires within the staging window and
stages it (credentials, media, final requests), and sets an APScheduler alarm for each fire
time. At an alarm, `fire` records the attempts (state `sending`, before any request leaves),
waits for the exact instant — never a millisecond early — and sends the burst on the pooled
aiohttp engine with per-platform and per-account limits; outcomes are written in one batch.

A crash at any point loses nothing and sends nothing twice: claims expire and are released,
and an item that was `sending` is reconciled with its platform before anything else.

Here: the life cycle and the periodic pass. The work on items is in staging.py (before T,
and reconciling after a crash) and firing.py (the burst at T); tracker.py keeps what this
worker holds, item by item; connect.py gives each item its channel and connection.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from stormer.dispatch.clock import CLOCK, utcnow
from stormer.dispatch.connect import Credentials, Routes, Save
from stormer.dispatch.crew import Crew
from stormer.dispatch.firing import Firing
from stormer.dispatch.outage import Outage
from stormer.dispatch.pacing import Gates
from stormer.dispatch.staging import Staging
from stormer.dispatch.tracker import Tracker
from stormer.outbox import claims, workers
from stormer.outbox.db import server_clock
from stormer.outbox.models import WAITING
from stormer.outbox.status import status_summary
from stormer.secrets import resolve, store
from stormer.settings import CLAIM_BATCH, GRACE, LEASE, POLL_SECONDS, STAGING_WINDOW
from stormer.timezones import iso_utc

if TYPE_CHECKING:
    from pathlib import Path

    import httpx
    from sqlalchemy import Engine

    from stormer.storm import Storm

log = logging.getLogger("stormer.dispatch")


@dataclass(frozen=True)
class Settings:
    # Shared with `stormer run`'s options: each value, and why, is in stormer.settings.
    staging_window: timedelta = STAGING_WINDOW  # stage this long before T
    grace: timedelta = GRACE  # later than this: missed, never fired late
    lease: timedelta = LEASE  # renewed on every pass while held
    poll_seconds: float = POLL_SECONDS
    # Wake this early to record the attempts (one batched write), then wait for T exactly.
    # Short: a crash inside this window leaves items whose sending cannot be ruled out.
    lead_seconds: float = 0.5
    claim_limit: int = CLAIM_BATCH  # items claimed per pass
    # Requests in flight per platform, by name, where a benchmark overrides what the
    # platform's plugin declares (`Channel.concurrency`).
    per_platform: Mapping[str, int] = field(default_factory=dict)
    per_account: int = 2
    attempts: int = 4
    retry_after_staging_failure: timedelta = timedelta(seconds=60)
    # How long one request of a burst may take, answer included, before its outcome is
    # unknown (and reconciled): the burst engine's whole-request timeout.
    request_timeout: float = 60.0


class Dispatcher:
    """One worker of `stormer run` for `storm` (see the module docstring); `run` works until
    stopped or, with `until_done`, until every item is final."""

    def __init__(
        self,
        storm: Storm,
        engine: Engine,
        *,
        settings: Settings | None = None,
        worker: str | None = None,
        http: httpx.AsyncClient | None = None,
        credentials: Credentials = resolve,
        save: Save = store,
        limits_folder: Path | None = None,
    ) -> None:
        self.storm = storm
        self.engine = engine
        self.settings = settings or Settings()
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._http = http
        # Opened by `run`.
        self._routes = Routes(
            storm,
            credentials=credentials,
            save=save,
            grace=self.settings.grace,
            limits_folder=limits_folder,
        )
        self.items = Tracker()  # this worker's items: held, ready, in flight
        self.fired: list[str] = []  # ids whose requests left, in order (for tests and reports)
        s = self.settings
        gates = Gates(per_account=s.per_account, overrides=s.per_platform)
        crew = Crew(
            engine,
            storm=storm.slug,
            worker=self.worker,
            routes=self._routes,
            gates=gates,
            items=self.items,
            grace=s.grace,
            attempts=s.attempts,
        )
        self._staging = Staging(crew, retry_after=s.retry_after_staging_failure)
        self._firing = Firing(crew, fired=self.fired)
        self._sync_lock = asyncio.Lock()
        self._outage = Outage()  # the database not answering, told once
        self._done = asyncio.Event()
        self._stopping = asyncio.Event()  # set: no pass or burst starts any more
        self._work: set[asyncio.Task[None]] = set()  # passes and bursts under way
        self._scheduler: Any = None

    # --- life cycle ------------------------------------------------------------------------

    async def run(self, *, until_done: bool = False, stop: asyncio.Event | None = None) -> None:
        """Work until `stop` is set (or, with `until_done`, until every item is final)."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        from stormer.dispatch.burst import AiohttpSender
        from stormer.dispatch.connect import client

        await asyncio.to_thread(
            workers.register_worker,
            engine=self.engine,
            worker=self.worker,
            storm=self.storm.slug,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            now=utcnow(),
        )
        log.info("worker %s started on %s", self.worker, self.storm.slug)
        own_http = self._http is None
        self._http = self._http or client()
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_job(
            self._alarm,
            "interval",
            args=[self.sync],
            seconds=self.settings.poll_seconds,
            next_run_time=utcnow(),
            id="sync",
            # The alarm returns at once (the pass is a task of its own), but on a loaded
            # machine the next one may come before the loop has noted that: with
            # max_instances=1 the scheduler would log a "skipped" warning instead.
            max_instances=2,
            coalesce=True,
            misfire_grace_time=None,
        )
        try:
            async with AiohttpSender(timeout=self.settings.request_timeout) as sender:
                self._routes.open(self._http, sender)
                self._scheduler.start()
                renewer = asyncio.create_task(self._renew_leases())
                waiters = [asyncio.create_task(self._done.wait())] if until_done else []
                if stop is not None:
                    waiters.append(asyncio.create_task(stop.wait()))
                if not waiters:
                    waiters.append(asyncio.create_task(asyncio.Event().wait()))
                _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                await self._stop_alarms()
                # The pass in progress and a burst in flight finish and are recorded.
                while self._work:
                    await asyncio.wait(self._work)
                renewer.cancel()
        finally:
            if self._scheduler.running:
                self._scheduler.shutdown(wait=False)
            unsent = self.items.unsent()
            if unsent:
                await asyncio.to_thread(
                    claims.release, engine=self.engine, worker=self.worker, ids=unsent, now=utcnow()
                )
            await asyncio.to_thread(
                workers.stop_worker, engine=self.engine, worker=self.worker, now=utcnow()
            )
            if own_http:
                await self._http.aclose()
            log.info("worker %s stopped", self.worker)

    async def _alarm(self, work: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        """What the scheduler runs: `work(*args)` (a pass, a burst) started as a task of this
        worker, and returning at once. A job the scheduler runs itself would be cancelled
        when it shuts down, midway, and logged with a traceback: a burst half sent and not
        recorded, a traceback on the live view."""
        self._start(work, *args)

    def _start(self, work: Callable[..., Coroutine[Any, Any, None]], *args: Any) -> None:
        """Run `work(*args)` as a task that stopping waits for; none once stopping."""
        if self._stopping.is_set():
            return
        task = asyncio.get_running_loop().create_task(work(*args))
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def _stop_alarms(self) -> None:
        """No alarm goes off from now on, and none is left half started."""
        self._stopping.set()
        self._scheduler.pause()
        # A job the scheduler has just handed to the loop runs its first step (and returns,
        # see `_alarm`) before `shutdown` cancels what has not: that would log a traceback.
        await asyncio.sleep(0)
        self._scheduler.shutdown(wait=False)

    async def _renew_leases(self) -> None:
        """Keep this worker's claims alive however long staging or a burst takes; a worker
        that dies stops renewing, and its items are taken over once the lease runs out."""
        every = max(self.settings.lease.total_seconds() / 3, 0.1)
        while True:
            await asyncio.sleep(every)
            held = self.items.held
            if held:
                try:
                    await asyncio.to_thread(
                        claims.renew,
                        engine=self.engine,
                        worker=self.worker,
                        ids=list(held),
                        now=utcnow(),
                        lease=self.settings.lease,
                    )
                except Exception as e:
                    if not self._outage.failed("renewing leases", e):
                        log.exception("renewing leases failed")

    # --- the periodic pass over the outbox -------------------------------------------------

    async def sync(self) -> None:
        if self._sync_lock.locked():
            return
        async with self._sync_lock:
            try:
                await self._sync()
            except Exception as e:
                if not self._outage.failed("reading the outbox", e):
                    log.exception("sync failed; retrying in %.0f s", self.settings.poll_seconds)
            else:
                self._outage.answered()

    async def _sync(self) -> None:
        s, slug, engine, worker = self.settings, self.storm.slug, self.engine, self.worker
        await asyncio.to_thread(CLOCK.check_server, lambda: server_clock(engine))
        now = utcnow()
        released, unknown = await asyncio.to_thread(
            claims.recover_expired, engine=engine, worker=worker, storm=slug, now=now
        )
        if released or unknown:
            log.warning(
                "recovered %d expired claim(s); %d item(s) with an unknown outcome",
                len(released),
                len(unknown),
            )
        missed = await asyncio.to_thread(
            claims.mark_missed, engine=engine, storm=slug, now=now, grace=s.grace
        )
        if missed:
            log.error("%d item(s) MISSED: not sent within %s of their time", len(missed), s.grace)
        unknown_items = await asyncio.to_thread(
            claims.claim_unknown,
            engine=engine,
            worker=worker,
            storm=slug,
            now=now,
            limit=1000,
            lease=s.lease,
        )
        # One still in flight here (its lease ran out while the database was away) is its
        # burst's to record: that burst knows the outcome, a reconciliation would guess.
        unknown_items = [c for c in unknown_items if not self.items.holds(c.id)]
        if unknown_items:
            await asyncio.gather(*(self._staging.reconcile(c) for c in unknown_items))
        # A worker whose clock is off takes nothing: a worker with a good one will.
        claimed = await asyncio.to_thread(
            claims.claim_due,
            engine=engine,
            worker=worker,
            storm=slug,
            now=now,
            horizon=s.staging_window,
            limit=0 if CLOCK.refusal else s.claim_limit,
            lease=s.lease,
        )
        # An item this worker still holds came back when its lease ran out while the database
        # stalled (renewals unwritten): it is staged or in flight here already, and staging it
        # again would race the burst that holds it.
        claimed = [c for c in claimed if not self.items.holds(c.id)]
        self.items.hold(c.id for c in claimed)
        if claimed:
            await self._staging.stage(claimed)
        for instant in self.items.arm():
            self._set_alarm(instant)
        await asyncio.to_thread(
            workers.heartbeat,
            engine=engine,
            worker=worker,
            now=utcnow(),
            staged_through=self.items.staged_through(),
        )
        if not self.items.ready:  # (nothing ready: nothing in flight either)
            summary = await asyncio.to_thread(
                status_summary, engine=engine, storm=slug, now=utcnow()
            )
            if not any(summary["counts"].get(state, 0) for state in WAITING):
                self._done.set()

    def _set_alarm(self, instant: datetime) -> None:
        wake = instant - timedelta(seconds=self.settings.lead_seconds)
        if wake <= utcnow():
            self._start(self.fire, instant)
            return
        self._scheduler.add_job(
            self._alarm,
            "date",
            run_date=wake,
            args=[self.fire, instant],
            id=f"fire-{instant.isoformat()}",
            replace_existing=True,
            # However late the loop wakes, `fire` runs: past the grace, it says so and
            # releases the items (APScheduler would only warn, and leave them armed).
            misfire_grace_time=None,
        )

    async def fire(self, instant: datetime) -> None:
        """The alarm for `instant` (see `Firing.fire`)."""
        left = len(self.fired)
        try:
            await self._firing.fire(instant)
        except Exception as e:
            # The database failed it: no longer held, the items are taken up again once
            # their claims expire, and one that was `sending` is first asked about.
            if not self._outage.burst_failed(iso_utc(instant), len(self.fired) - left, e):
                log.exception("the burst for %s failed", iso_utc(instant))
