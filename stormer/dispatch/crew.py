"""What the two halves of one worker share: staging (before T) and firing (at T) hold the same
database, items, routes and gates, and judge lateness and retries by the same rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import timedelta

    from sqlalchemy import Engine

    from stormer.dispatch.connect import Routes
    from stormer.dispatch.pacing import Gates
    from stormer.dispatch.tracker import Tracker


@dataclass(frozen=True)
class Crew:
    """One worker's shared parts (`Dispatcher` makes one and hands it to both halves)."""

    engine: Engine
    storm: str  # the storm's slug
    worker: str  # the name its claims and leases carry
    routes: Routes  # each item's channel and connection
    gates: Gates  # requests in flight per channel and account, and paces
    items: Tracker  # what the worker holds, has ready, has in flight
    grace: timedelta  # later than this after T: never sent, never resent
    attempts: int  # sends of one item, retries included
