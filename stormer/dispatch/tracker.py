"""What one worker holds, item by item: the dispatcher's bookkeeping, kept consistent in one
place.

An item this worker has claimed is *held* (its lease is renewed) until its outcome is
written, it is released, or another worker has taken it over: then it is *forgotten*, in one
step, from everything below. A held item that staged is *ready* for its instant, and *in
flight* once the burst for that instant has started. An instant is *armed* from the moment
an alarm is set for it until the alarm is spent (its burst is over, or there was nothing
left to send).

Invariants (tests/test_tracker.py): in flight ⊆ ready ⊆ held; a ready item's instant is
armed once `arm` has been called, until `disarm`; `forget` leaves no trace of an item.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from stormer.channels.base import Staged
    from stormer.outbox.claims import ClaimedItem

Ready: TypeAlias = "tuple[ClaimedItem, Staged]"  # a staged item, waiting for its instant


class Tracker:
    """This worker's items: held, ready, in flight; and its armed instants."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._ready: dict[str, Ready] = {}
        self._in_flight: set[str] = set()
        self._armed: set[datetime] = set()

    # --- what is held ----------------------------------------------------------------------

    def hold(self, ids: Iterable[str]) -> None:
        """Claimed by this worker: their leases are renewed from now on."""
        self._held.update(ids)

    def staged(self, item: ClaimedItem, staged: Staged) -> bool:
        """`item` staged: ready for its instant if this worker still holds it; False if it
        was let go while it was being staged (its lease ran out during a database outage,
        and whoever holds it now stages it again)."""
        if item.id not in self._held:
            return False
        self._ready[item.id] = (item, staged)
        return True

    def forget(self, ids: Iterable[str]) -> None:
        """Settled, released or lost: no longer held, ready or in flight."""
        for item_id in ids:
            self._held.discard(item_id)
            self._ready.pop(item_id, None)
            self._in_flight.discard(item_id)

    @property
    def held(self) -> frozenset[str]:
        """What to renew the leases of (a copy: a snapshot for a thread)."""
        return frozenset(self._held)

    def holds(self, item_id: str) -> bool:
        """Whether `item_id` is held, without copying `held` (a pass asks it per item)."""
        return item_id in self._held

    @property
    def ready(self) -> Mapping[str, Ready]:
        """The ready items by id (a read-only view)."""
        return MappingProxyType(self._ready)

    @property
    def in_flight(self) -> frozenset[str]:
        return frozenset(self._in_flight)

    def unsent(self) -> list[str]:
        """Ready, and no burst has taken them: what to release when the worker stops."""
        return [i for i in self._ready if i not in self._in_flight]

    def staged_through(self) -> datetime | None:
        """The latest instant staged for (what the worker's heartbeat reports)."""
        return max((c.fire_at for c, _ in self._ready.values()), default=None)

    # --- instants and bursts ---------------------------------------------------------------

    def arm(self) -> list[datetime]:
        """The instants of ready items that have no alarm yet, in order: they count as armed
        from now on, so each gets one alarm."""
        new = sorted({c.fire_at for c, _ in self._ready.values()} - self._armed)
        self._armed.update(new)
        return new

    @property
    def armed(self) -> frozenset[datetime]:
        return frozenset(self._armed)

    def disarm(self, instant: datetime) -> None:
        """The alarm for `instant` is spent; what is still ready for it is armed again by the
        next `arm`."""
        self._armed.discard(instant)

    def due(self, instant: datetime) -> list[Ready]:
        """The ready items for `instant` that no burst has taken yet."""
        return [
            (c, st)
            for c, st in self._ready.values()
            if c.fire_at == instant and c.id not in self._in_flight
        ]

    def waiting_for(self, instant: datetime) -> bool:
        """Whether anything is ready for `instant`, in flight or not."""
        return any(c.fire_at == instant for c, _ in self._ready.values())

    def launch(self, ids: Iterable[str]) -> None:
        """A burst takes these ready items: in flight until forgotten."""
        taken = list(ids)
        missing = [i for i in taken if i not in self._ready]
        if missing:
            raise ValueError(f"not ready: {', '.join(missing)}")
        self._in_flight.update(taken)
