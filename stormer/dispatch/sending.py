"""Sending one item through its channel (a platform plugin, the reminder channel): publish,
reconcile, confirm — with the rules that keep an item from being lost or posted twice.

- RateLimited and Transient mean the request did not take effect: wait (Retry-After) and
  send the same request again, up to `attempts`.
- OutcomeUnknown means it may have landed: never resend blindly; `reconcile` asks the
  platform (idempotency key, record key, read-back). Only if the platform answers that it is
  not there is the request sent again; if it cannot say, the result is `unconfirmed` and the
  organizer decides.
- AuthError and Rejected are final.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from stormer.channels.base import Channel, Connection, ConnT, NotPosted, Platform, Published, Staged
from stormer.errors import OutcomeUnknown, PlatformError, RateLimited, Transient
from stormer.outbox.models import State

Outcome = Literal[State.SENT, State.UNCONFIRMED]
MAX_WAIT = 120.0  # seconds: a longer Retry-After is the caller's to schedule, not to sleep


@dataclass(frozen=True, slots=True)
class SendResult:
    outcome: Outcome
    published: Published | None
    attempts: int


async def send_staged(
    plugin: Channel[ConnT],
    staged: Staged,
    conn: ConnT,
    *,
    attempts: int = 3,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> SendResult:
    """Publish `staged`, retrying only what is safe to retry, reconciling what is unknown."""
    tries = 0
    while True:
        tries += 1
        try:
            published = await plugin.publish(staged, conn)
            return SendResult(State.SENT, published, tries)
        except (RateLimited, Transient) as e:
            if tries >= attempts:
                raise
            wait = e.retry_after if isinstance(e, RateLimited) else 0.5 * 2 ** (tries - 1)
            if wait > MAX_WAIT:
                raise
            await sleep(wait)
        except OutcomeUnknown:
            found = await reconcile(plugin, staged, conn, attempts=attempts, sleep=sleep)
            if isinstance(found, NotPosted) and tries < attempts:
                continue  # the platform says it never arrived: sending again is safe
            if isinstance(found, Published):
                return SendResult(State.SENT, found, tries)
            return SendResult(State.UNCONFIRMED, None, tries)


async def reconcile(
    plugin: Channel[ConnT],
    staged: Staged,
    conn: ConnT,
    *,
    attempts: int,
    sleep: Callable[[float], Awaitable[None]],
) -> Published | NotPosted | None:
    """Ask the platform whether an unknown send landed; transient failures of the question
    itself are retried (asking is always safe). None: nobody can tell."""
    for attempt in range(1, attempts + 1):
        try:
            return await plugin.reconcile(staged, conn)
        except (RateLimited, Transient, OutcomeUnknown) as e:
            if attempt == attempts:
                return None
            await sleep(min(e.retry_after if isinstance(e, RateLimited) else 1.0, MAX_WAIT))
    return None


async def post_now(plugin: Platform, staged: Staged, conn: Connection) -> SendResult:
    """The organizer's smoke test: publish, then read the post back for its permalink."""
    result = await send_staged(plugin, staged, conn)
    if result.published is not None:
        try:
            confirmed = await plugin.confirm(result.published, conn)
        except PlatformError:
            confirmed = result.published  # posted; only the read-back failed
        return SendResult(result.outcome, confirmed, result.attempts)
    return result
