"""Before T, and after a crash: staging what a pass claimed, reconciling what a stopped worker
left `sending`.

Staging does everything that can be done early (log in, upload media, find the recipient) so
that at T one request per item remains; a failure is reported minutes before T, with time to
fix it, and staging is tried again. An item whose worker stopped while sending is asked about
(`Channel.reconcile`) before anything else is done with it: never resent blindly.

Database calls run in a thread: the event loop (and a burst) never waits on them.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from stormer.channels.base import Connection, NotPosted, Platform, Published
from stormer.dispatch.clock import sleep_until, utcnow
from stormer.errors import (
    AuthError,
    PlatformError,
    RateLimited,
    Rejected,
    StormerError,
    Transient,
)
from stormer.outbox import claims
from stormer.outbox.models import State
from stormer.queue import MediaRef, QueueItem
from stormer.secrets import redact

if TYPE_CHECKING:
    from stormer.dispatch.connect import AnyRoute
    from stormer.dispatch.crew import Crew

log = logging.getLogger("stormer.dispatch")


class Staging:
    """Stages claimed items and reconciles unknown ones for the worker named `worker`."""

    def __init__(self, crew: Crew, *, retry_after: timedelta) -> None:
        self._crew = crew
        self._retry_after = retry_after  # after a staging failure that may pass

    async def stage(self, claimed: list[claims.ClaimedItem]) -> None:
        """Stage `claimed` (held already) all at once, then store what staging produced in
        one write; the ready ones go to the tracker."""
        results = await asyncio.gather(*(self._stage(c) for c in claimed), return_exceptions=True)
        staged = [r for r in results if isinstance(r, tuple)]
        if staged:
            await asyncio.to_thread(
                claims.mark_staged_many,
                engine=self._crew.engine,
                worker=self._crew.worker,
                staged=staged,
                now=utcnow(),
            )
            log.info("staged %d of %d item(s) claimed", len(staged), len(claimed))
        for r in results:
            if isinstance(r, BaseException):
                raise r

    async def _record(self, outcomes: list[claims.Outcome]) -> None:
        await asyncio.to_thread(
            claims.record_outcomes,
            engine=self._crew.engine,
            worker=self._crew.worker,
            outcomes=outcomes,
        )

    async def _stage(self, c: claims.ClaimedItem) -> tuple[str, str, dict[str, Any]] | None:
        """Stage one item; returns what `claims.mark_staged_many` stores, None if it failed."""
        try:
            route = self._crew.routes.of(c.kind, c.account)
            async with self._crew.gates.platform(route.channel):
                item = item_of(c)
                await self._within_live_limits(route, item)
                staged = await route.stage(item)
        except (AuthError, Transient, RateLimited) as e:
            # Reported now, minutes before T, with time to fix it; tried again shortly — not
            # before the platform's own Retry-After (a Bluesky login window is 5 minutes).
            log.error("staging %s (%s) failed: %s", c.id, c.account, e)
            wait = self._retry_after
            if isinstance(e, RateLimited):
                wait = max(wait, timedelta(seconds=e.retry_after))
            failed = claims.Outcome(
                c.id,
                State.FAILED,
                utcnow(),
                error=redact(f"staging: {e}"),
                next_attempt_at=utcnow() + wait,
            )
            await self._record([failed])
            self._crew.items.forget([c.id])
            return None
        except (PlatformError, StormerError) as e:
            log.error("staging %s (%s) failed for good: %s", c.id, c.account, e)
            await self._record(
                [claims.Outcome(c.id, State.DEAD, utcnow(), error=redact(f"staging: {e}"))]
            )
            self._crew.items.forget([c.id])
            return None
        if not self._crew.items.staged(c, staged):
            log.warning("staged %s, but its lease was lost meanwhile: left to its holder", c.id)
            return None
        return (c.id, c.content_hash, _json_safe(staged.data))

    async def _within_live_limits(self, route: AnyRoute, item: QueueItem) -> None:
        """Rejected, before T, when `item` is over the limits its server publishes (read
        once per server, or kept from `check --online`). Only a server's own limits refuse
        here: where it publishes none, the class data are a default it may not share."""
        from stormer.channels.limits import live_problems

        plugin, conn = route.channel, route.conn
        if not isinstance(plugin, Platform) or not isinstance(conn, Connection):
            return
        cache = self._crew.routes.limits
        try:
            limits = await cache.read(plugin, conn)
        except PlatformError as e:
            log.warning("could not read the limits of %s: %s", plugin.base_url(conn.account), e)
            limits = cache.cached(plugin, conn.account, fresh_for=None)
        if limits is None:
            return
        root = conn.media_root
        size_of = (lambda path: (root / path).stat().st_size) if root is not None else None
        problems = live_problems(plugin.with_limits(limits), item, conn.account, size_of)
        if problems:
            raise Rejected("; ".join(problems), platform=plugin.name)

    async def reconcile(self, c: claims.ClaimedItem) -> None:
        """A `sending` item whose worker died: ask the platform before anything else."""
        self._crew.items.hold([c.id])
        try:
            await self._reconcile(c)
        finally:
            self._crew.items.forget([c.id])

    async def _reconcile(self, c: claims.ClaimedItem) -> None:
        # Asking may mean sending (an idempotency key, a transaction id): never before T,
        # even for an item marked `sending` ahead of it by a worker that then died.
        await sleep_until(c.fire_at)
        outcome: claims.Outcome
        try:
            route = self._crew.routes.of(c.kind, c.account)
            async with (
                self._crew.gates.platform(route.channel),
                self._crew.gates.account(c.account),
            ):
                outcome = await self._reconciled(c, route)
        except PlatformError as e:
            outcome = claims.Outcome(
                c.id, State.UNCONFIRMED, utcnow(), error=redact(f"could not reconcile: {e}")
            )
        await self._record([outcome])
        log.warning("reconciled %s after a stop: %s", c.id, outcome.state)

    async def _reconciled(self, c: claims.ClaimedItem, route: AnyRoute) -> claims.Outcome:
        now = utcnow()
        look = route.channel.where_to_look
        window = route.channel.idempotency_window
        too_late = now > c.fire_at + self._crew.grace or (
            window is not None and (now - c.fire_at).total_seconds() > window - 300
        )
        if too_late:
            # Asking could mean resending (Mastodon, Matrix, Bluesky): not this late.
            return claims.Outcome(
                c.id,
                State.UNCONFIRMED,
                now,
                error=(
                    f"the worker stopped while sending and it is too late to resend safely: {look}"
                ),
            )
        staged = await route.stage(item_of(c))
        found = await route.reconcile(staged)
        if isinstance(found, NotPosted):
            result = await route.send(staged, attempts=self._crew.attempts)
            found = result.published if result.outcome == State.SENT else None
        if isinstance(found, Published):
            return claims.Outcome(
                c.id, State.SENT, now, remote_id=found.remote_id, permalink=found.permalink
            )
        return claims.Outcome(
            c.id,
            State.UNCONFIRMED,
            now,
            error=(
                f"the worker stopped while sending and the platform offers no way to check: {look}"
            ),
        )


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
        kind=c.kind,
        fire_at=c.fire_at,
        platform=c.platform,
        account=c.account,
        lang=c.lang,
        text=c.text,
        media=media,
        payload=c.payload,
        seq=c.seq,
    )


def _json_safe(data: dict[str, Any]) -> dict[str, Any]:
    """What staging returned, minus anything that is not plain JSON (no secrets are kept)."""
    import json

    try:
        safe: dict[str, Any] = json.loads(json.dumps(data, default=str))
    except (TypeError, ValueError):
        return {}
    return safe
