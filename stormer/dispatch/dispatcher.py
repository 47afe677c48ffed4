"""The dispatcher behind `stormer run`: the database is the truth, the scheduler an alarm clock.

Every few seconds `sync` reads the outbox: it recovers expired leases, marks items past their
grace as missed, reconciles unknown outcomes, claims what fires within the staging window and
stages it (credentials, media, final requests), and sets an APScheduler alarm for each fire
time. At an alarm, `fire` records the attempts (state `sending`, before any request leaves),
waits for the exact instant — never a millisecond early — and sends the burst on the pooled
aiohttp engine with per-platform and per-account limits; outcomes are written in one batch.

A crash at any point loses nothing and sends nothing twice: claims expire and are released,
and an item that was `sending` is reconciled with its platform before anything else.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from stormer.channels.base import NotPosted, Published, Staged
from stormer.dispatch.connect import AnyRoute, Credentials, Routes
from stormer.dispatch.pacing import Gates
from stormer.dispatch.tracker import Ready, Tracker
from stormer.errors import AuthError, PlatformError, RateLimited, StormerError, Transient
from stormer.outbox import claims
from stormer.queue import Kind, MediaRef, QueueItem
from stormer.secrets import redact, resolve

if TYPE_CHECKING:
    import httpx
    from sqlalchemy import Engine

    from stormer.storm.loader import Storm

log = logging.getLogger("stormer.dispatch")


@dataclass(frozen=True)
class Settings:
    staging_window: timedelta = timedelta(minutes=10)  # stage this long before T
    grace: timedelta = timedelta(minutes=10)  # later than this: missed, never fired late
    # Renewed on every pass while held; short, so that after a crash (kill -9) another worker
    # or a restart takes the items over within a minute, well inside the grace.
    lease: timedelta = timedelta(seconds=60)
    poll_seconds: float = 5.0
    # Wake this early to record the attempts (one batched write), then wait for T exactly.
    # Short: a crash inside this window leaves items whose sending cannot be ruled out.
    lead_seconds: float = 0.5
    # Items claimed per pass: several workers on one database interleave their claims, and a
    # 10,000-item storm is staged in a few passes, well inside the staging window.
    claim_limit: int = 2_000
    # Requests in flight per platform, by name, where a benchmark overrides what the
    # platform's plugin declares (`Channel.concurrency`).
    per_platform: Mapping[str, int] = field(default_factory=dict)
    per_account: int = 2
    attempts: int = 4
    retry_after_staging_failure: timedelta = timedelta(seconds=60)


def utcnow() -> datetime:
    return datetime.now(UTC)


async def sleep_until(instant: datetime, now: Callable[[], datetime] = utcnow) -> None:
    """Return at `instant` or just after — never before, whatever the timer's resolution."""
    while True:
        delta = (instant - now()).total_seconds()
        if delta <= 0:
            return
        await asyncio.sleep(delta if delta > 0.002 else 0.0005)


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


def item_of(c: claims.ClaimedItem) -> QueueItem:
    """The queue item a claimed row stands for (what plugins stage)."""
    media = tuple(
        MediaRef(
            m["path"], m.get("alt", ""), m.get("width"), m.get("height"), m.get("mime", "image/png")
        )
        for m in c.media
    )
    return QueueItem(
        id=c.id,
        kind=cast("Kind", c.kind),  # the outbox stores a QueueItem's kind
        fire_at=c.fire_at,
        platform=c.platform,
        account=c.account,
        lang=c.lang,
        text=c.text,
        media=media,
        payload=c.payload,
    )


class Dispatcher:
    def __init__(
        self,
        storm: Storm,
        engine: Engine,
        *,
        settings: Settings | None = None,
        worker: str | None = None,
        http: httpx.AsyncClient | None = None,
        credentials: Credentials = resolve,
    ) -> None:
        self.storm = storm
        self.engine = engine
        self.settings = settings or Settings()
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._http = http
        self._routes = Routes(storm, credentials=credentials)  # opened by `run`
        self.items = Tracker()  # this worker's items: held, ready, in flight
        self._gates = Gates(
            per_account=self.settings.per_account, overrides=self.settings.per_platform
        )
        self._sync_lock = asyncio.Lock()
        self._done = asyncio.Event()
        self._scheduler: Any = None
        self.fired: list[str] = []  # ids whose requests left, in order (for tests and reports)

    # --- life cycle ------------------------------------------------------------------------

    async def run(self, *, until_done: bool = False, stop: asyncio.Event | None = None) -> None:
        """Work until `stop` is set (or, with `until_done`, until every item is final)."""
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        from stormer.dispatch.burst import AiohttpSender
        from stormer.dispatch.connect import client

        await asyncio.to_thread(
            claims.register_worker,
            engine=self.engine,
            worker=self.worker,
            storm=self.storm.slug,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            now=utcnow(),
        )
        own_http = self._http is None
        self._http = self._http or client()
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_job(
            self.sync,
            "interval",
            seconds=self.settings.poll_seconds,
            next_run_time=utcnow(),
            id="sync",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        try:
            async with AiohttpSender() as sender:
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
                self._scheduler.shutdown(wait=False)
                await self.items.idle()  # let a burst in progress finish and be recorded
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
                claims.stop_worker, engine=self.engine, worker=self.worker, now=utcnow()
            )
            if own_http:
                await self._http.aclose()

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
                except Exception:
                    log.exception("renewing leases failed")

    # --- the periodic pass over the outbox -------------------------------------------------

    async def sync(self) -> None:
        if self._sync_lock.locked():
            return
        async with self._sync_lock:
            try:
                await self._sync()
            except Exception:
                log.exception("sync failed; retrying in %.0f s", self.settings.poll_seconds)

    async def _sync(self) -> None:
        s, slug, now = self.settings, self.storm.slug, utcnow()
        engine, worker = self.engine, self.worker
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
        if unknown_items:
            await asyncio.gather(*(self._reconcile_unknown(c) for c in unknown_items))
        claimed = await asyncio.to_thread(
            claims.claim_due,
            engine=engine,
            worker=worker,
            storm=slug,
            now=now,
            horizon=s.staging_window,
            limit=s.claim_limit,
            lease=s.lease,
        )
        self.items.hold(c.id for c in claimed)
        if claimed:
            # Stage all at once, then store what staging produced in one write.
            results = await asyncio.gather(
                *(self._stage(c) for c in claimed), return_exceptions=True
            )
            staged = [r for r in results if isinstance(r, tuple)]
            if staged:
                await asyncio.to_thread(
                    claims.mark_staged_many,
                    engine=engine,
                    worker=worker,
                    staged=staged,
                    now=utcnow(),
                )
            for r in results:
                if isinstance(r, BaseException):
                    raise r
        for instant in self.items.arm():
            self._set_alarm(instant)
        await asyncio.to_thread(
            claims.heartbeat,
            engine=engine,
            worker=worker,
            now=utcnow(),
            staged_through=self.items.staged_through(),
        )
        if not self.items.ready:  # (nothing ready: nothing in flight either)
            summary = await asyncio.to_thread(
                claims.status_summary, engine=engine, storm=slug, now=utcnow()
            )
            open_states = ("pending", "staged", "claimed", "sending", "failed")
            if not any(summary["counts"].get(state, 0) for state in open_states):
                self._done.set()

    def _set_alarm(self, instant: datetime) -> None:
        wake = instant - timedelta(seconds=self.settings.lead_seconds)
        if wake <= utcnow():
            asyncio.get_running_loop().create_task(self.fire(instant))
            return
        self._scheduler.add_job(
            self.fire,
            "date",
            run_date=wake,
            args=[instant],
            id=f"fire-{instant.isoformat()}",
            replace_existing=True,
            misfire_grace_time=int(self.settings.grace.total_seconds()),
        )

    # --- staging ---------------------------------------------------------------------------

    def _route(self, c: claims.ClaimedItem) -> AnyRoute:
        """The channel and connection that send `c` (see `Routes.of`)."""
        return self._routes.of(c.kind, c.account)

    async def _record(self, outcomes: list[claims.Outcome]) -> None:
        await asyncio.to_thread(
            claims.record_outcomes, engine=self.engine, worker=self.worker, outcomes=outcomes
        )

    async def _stage(self, c: claims.ClaimedItem) -> tuple[str, str, dict[str, Any]] | None:
        """Stage one item; returns what `claims.mark_staged_many` stores, None if it failed."""
        try:
            route = self._route(c)
            async with self._gates.platform(route.channel):
                staged = await route.stage(item_of(c))
        except (AuthError, Transient, RateLimited) as e:
            # Reported now, minutes before T, with time to fix it; tried again shortly — not
            # before the platform's own Retry-After (a Bluesky login window is 5 minutes).
            log.error("staging %s (%s) failed: %s", c.id, c.account, e)
            wait = self.settings.retry_after_staging_failure
            if isinstance(e, RateLimited):
                wait = max(wait, timedelta(seconds=e.retry_after))
            failed = claims.Outcome(
                c.id,
                "failed",
                utcnow(),
                error=redact(f"staging: {e}"),
                next_attempt_at=utcnow() + wait,
            )
            await self._record([failed])
            self.items.forget([c.id])
            return None
        except (PlatformError, StormerError) as e:
            log.error("staging %s (%s) failed for good: %s", c.id, c.account, e)
            await self._record(
                [claims.Outcome(c.id, "dead", utcnow(), error=redact(f"staging: {e}"))]
            )
            self.items.forget([c.id])
            return None
        self.items.staged(c, staged)
        return (c.id, c.content_hash, _json_safe(staged.data))

    # --- firing ----------------------------------------------------------------------------

    async def fire(self, instant: datetime) -> None:
        """The alarm for `instant`: record the attempts, wait for the instant, send."""
        batch = self.items.due(instant)
        if not batch:
            if not self.items.waiting_for(instant):
                self.items.disarm(instant)  # else a burst for it is still in flight
            return
        ids = [c.id for c, _ in batch]
        now = utcnow()
        if now > instant + self.settings.grace:
            log.error("%d item(s) for %s not sent: past their grace", len(batch), instant)
            self.items.forget(ids)
            await asyncio.to_thread(
                claims.release, engine=self.engine, worker=self.worker, ids=ids, now=now
            )
            self.items.disarm(instant)
            return
        self.items.launch(ids)
        try:
            with cyclic_gc_paused():
                await self._burst(instant, batch)
        finally:
            self.items.forget(ids)
            self.items.disarm(instant)  # only now: a pass must not re-arm a firing instant

    async def _burst(self, instant: datetime, batch: list[Ready]) -> None:
        """Record the attempts, wait for the instant, send `batch`, record the outcomes."""
        marked = set(
            await asyncio.to_thread(
                claims.record_attempt,
                engine=self.engine,
                worker=self.worker,
                ids=[c.id for c, _ in batch],
                now=utcnow(),
            )
        )
        lost = [c.id for c, _ in batch if c.id not in marked]
        if lost:
            log.error(
                "%d item(s) lost their lease before %s: not sent by this worker", len(lost), instant
            )
            self.items.forget(lost)  # another worker has them now: stop renewing or holding them
        sending = [(c, st) for c, st in batch if c.id in marked]
        await sleep_until(instant)
        outcomes = await asyncio.gather(*(self._send(c, st) for c, st in sending))
        await self._record(outcomes)

    async def _send(self, c: claims.ClaimedItem, staged: Staged) -> claims.Outcome:
        route = self._route(c)
        async with self._gates.platform(route.channel), self._gates.account(c.account):
            await sleep_until(c.fire_at)  # never early, even after waiting for a gate
            pacer = self._gates.pacer(c.account, route.channel)
            if pacer is not None:
                await pacer.wait()
            left = utcnow()
            self.fired.append(c.id)
            try:
                result = await route.send(staged, attempts=self.settings.attempts)
            except (RateLimited, Transient) as e:
                retry_at = utcnow() + timedelta(
                    seconds=e.retry_after if isinstance(e, RateLimited) else 30
                )
                if retry_at > c.fire_at + self.settings.grace:
                    return claims.Outcome(
                        c.id, "dead", utcnow(), error=redact(f"gave up within the grace: {e}")
                    )
                return claims.Outcome(
                    c.id, "failed", utcnow(), error=redact(str(e)), next_attempt_at=retry_at
                )
            except PlatformError as e:  # AuthError, Rejected: final
                return claims.Outcome(c.id, "dead", utcnow(), error=redact(str(e)))
        if result.outcome == "sent" and result.published is not None:
            return claims.Outcome(
                c.id,
                "sent",
                left,
                remote_id=result.published.remote_id,
                permalink=result.published.permalink,
            )
        return claims.Outcome(
            c.id,
            "unconfirmed",
            utcnow(),
            error="no answer, and the platform offers no way to check: "
            f"{route.channel.where_to_look} before sending it again",
        )

    # --- unknown outcomes ------------------------------------------------------------------

    async def _reconcile_unknown(self, c: claims.ClaimedItem) -> None:
        """A `sending` item whose worker died: ask the platform before anything else."""
        self.items.hold([c.id])
        try:
            await self._reconcile(c)
        finally:
            self.items.forget([c.id])

    async def _reconcile(self, c: claims.ClaimedItem) -> None:
        outcome: claims.Outcome
        try:
            route = self._route(c)
            async with self._gates.platform(route.channel), self._gates.account(c.account):
                outcome = await self._reconciled(c, route)
        except PlatformError as e:
            outcome = claims.Outcome(
                c.id, "unconfirmed", utcnow(), error=redact(f"could not reconcile: {e}")
            )
        await self._record([outcome])
        log.warning("reconciled %s after a stop: %s", c.id, outcome.state)

    async def _reconciled(self, c: claims.ClaimedItem, route: AnyRoute) -> claims.Outcome:
        now = utcnow()
        look = route.channel.where_to_look
        window = route.channel.idempotency_window
        too_late = now > c.fire_at + self.settings.grace or (
            window is not None and (now - c.fire_at).total_seconds() > window - 300
        )
        if too_late:
            # Asking could mean resending (Mastodon, Matrix, Bluesky): not this late.
            return claims.Outcome(
                c.id,
                "unconfirmed",
                now,
                error=(
                    f"the worker stopped while sending and it is too late to resend safely: {look}"
                ),
            )
        staged = await route.stage(item_of(c))
        found = await route.reconcile(staged)
        if isinstance(found, NotPosted):
            result = await route.send(staged, attempts=self.settings.attempts)
            found = result.published if result.outcome == "sent" else None
        if isinstance(found, Published):
            return claims.Outcome(
                c.id, "sent", now, remote_id=found.remote_id, permalink=found.permalink
            )
        return claims.Outcome(
            c.id,
            "unconfirmed",
            now,
            error=(
                f"the worker stopped while sending and the platform offers no way to check: {look}"
            ),
        )


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """What staging returned, minus anything that is not plain JSON (no secrets are kept)."""
    import json

    try:
        safe: dict[str, Any] = json.loads(json.dumps(data, default=str))
    except (TypeError, ValueError):
        return {}
    return safe
