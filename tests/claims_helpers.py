"""Outbox rows for claims tests: items of the storm "gaza" at T, scheduled, claimed, sent."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from stormer.outbox import claims
from stormer.outbox import schedule as outbox
from stormer.outbox.claims import Outcome
from stormer.outbox.models import Outbox
from stormer.queue import QueueItem, item_id

T = datetime(2027, 3, 11, 18, 0, tzinfo=UTC)
BEFORE = T - timedelta(minutes=5)  # the staging window: claims are taken ahead of T
LEASE = timedelta(minutes=15)
W1, W2 = "host-a:101", "host-b:202"


def item(n: int, **changes: Any) -> QueueItem:
    base = QueueItem(
        id=item_id("gaza", "post", n),
        kind="post",
        fire_at=T + timedelta(milliseconds=n),
        platform="mastodon",
        account=f"acct{n}",
        lang="en",
        text=f"#storm {n}",
        payload={"status": f"#storm {n}"},
    )
    return replace(base, **changes)


def schedule(
    engine: Engine, items: list[QueueItem], now: datetime = BEFORE - timedelta(days=1)
) -> None:
    with Session(engine) as session, session.begin():
        outbox.schedule(items, session=session, storm="gaza", now=now)


def ids(n: int) -> list[str]:
    return [item(i).id for i in range(n)]


def row(engine: Engine, id_: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(select(Outbox.__table__).where(Outbox.id == id_)).one()._mapping)


def states(engine: Engine) -> Counter[str]:
    with engine.connect() as conn:
        return Counter(conn.execute(select(Outbox.state)).scalars())


def set_row(engine: Engine, id_: str, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(Outbox).where(Outbox.id == id_).values(**values))


def claim(
    engine: Engine,
    worker: str = W1,
    now: datetime = BEFORE,
    limit: int = 100,
    horizon: timedelta = timedelta(minutes=10),
    lease: timedelta = LEASE,
) -> list[claims.ClaimedItem]:
    return claims.claim_due(
        engine=engine,
        storm="gaza",
        worker=worker,
        now=now,
        horizon=horizon,
        limit=limit,
        lease=lease,
    )


def send(engine: Engine, worker: str, some: list[str], now: datetime = T) -> list[str]:
    return claims.record_attempt(engine=engine, ids=some, worker=worker, now=now)


def outcome(
    id_: str, state: str = "sent", at: datetime = T + timedelta(seconds=1), **kw: Any
) -> Outcome:
    return Outcome(id=id_, state=state, at=at, **kw)
