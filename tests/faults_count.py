"""Counting a storm's outcome for the fault matrix: the simulator's own record of what landed
against the outbox, item by item. One place counts; every cell asserts on its `Tally`.

An item is matched to what landed by platform and text (a Matrix post with an image is two
events, only one of which carries the text, so it counts once); the texts of one storm are
distinct per platform, and `count` refuses a storm where they are not, rather than count
wrong.

- early: a post the simulator received before its item's fire time.
- duplicates: landings beyond the first, per item.
- lost: an item neither on its platform nor final with a reason for the organizer (`dead` or
  `unconfirmed` with its error, `missed`), or one the outbox calls `sent` that never landed.
- strays: posts that landed and match no item (they would be duplicates nobody can count).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from stormer.outbox.models import Outbox

# Where the organizer has been told what became of an item, and why.
FINAL_WITH_REASON = ("dead", "unconfirmed")


@dataclass
class Tally:
    """What a storm under one fault came to."""

    items: int = 0
    states: Counter[str] = field(default_factory=Counter)
    early: list[str] = field(default_factory=list)  # "platform/account"
    duplicates: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    # Unconfirmed items, by whether the post is in fact there (the organizer must look).
    unconfirmed_landed: list[str] = field(default_factory=list)
    unconfirmed_not_landed: list[str] = field(default_factory=list)
    dead: dict[str, str] = field(default_factory=dict)  # "platform/account" → its reason

    def summary(self) -> str:
        """One line for the matrix: the counts that matter, then the states."""
        states = ", ".join(f"{n} {s}" for s, n in sorted(self.states.items()))
        return (
            f"{self.items} items: {len(self.early)} early, {len(self.duplicates)} duplicates, "
            f"{len(self.lost)} lost, {len(self.strays)} strays; {states}; unconfirmed "
            f"{len(self.unconfirmed_landed)} landed / {len(self.unconfirmed_not_landed)} not"
        )

    def assert_promise(self, *, unconfirmed_on: frozenset[str] = frozenset()) -> None:
        """Never early, never twice, never lost; `unconfirmed` only on `unconfirmed_on`
        platforms (those that offer no way to ask whether a post landed)."""
        assert not self.early, f"early: {self.early} ({self.summary()})"
        assert not self.duplicates, f"twice: {self.duplicates} ({self.summary()})"
        assert not self.strays, f"strays: {self.strays} ({self.summary()})"
        assert not self.lost, f"lost: {self.lost} ({self.summary()})"
        unconfirmed = self.unconfirmed_landed + self.unconfirmed_not_landed
        outside = [u for u in unconfirmed if u.split("/")[0] not in unconfirmed_on]
        assert not outside, f"unconfirmed where the platform can be asked: {outside}"


def landed(simulator: str) -> list[dict[str, Any]]:
    return httpx.get(f"{simulator}/_sim/posts", timeout=30).json()  # type: ignore[no-any-return]


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def count(rows: list[Outbox], posts: list[dict[str, Any]]) -> Tally:
    """The tally of `rows` (the outbox at the end) against `posts` (`/_sim/posts`)."""
    keys = Counter((r.platform, r.text) for r in rows)
    shared = [k for k, n in keys.items() if n > 1]
    assert not shared, f"texts shared by several items cannot be counted apart: {shared}"
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for post in posts:
        by_key.setdefault((post["platform"], post["text"]), []).append(post)
    tally = Tally(items=len(rows), states=Counter(r.state for r in rows))
    for row in rows:
        name = f"{row.platform}/{row.account}"
        found = by_key.pop((row.platform, row.text), [])
        tally.early += [name for p in found if instant(p["received_at"]) < row.fire_at]
        tally.duplicates += [name] * max(0, len(found) - 1)
        if row.state == "unconfirmed":
            (tally.unconfirmed_landed if found else tally.unconfirmed_not_landed).append(name)
        if row.state == "dead":
            tally.dead[name] = row.error or ""
        if row.state == "sent":
            if not found:
                tally.lost.append(f"{name} (sent, but not on the platform)")
        elif found and row.state != "unconfirmed":
            tally.lost.append(f"{name} (landed, but the outbox says {row.state})")
        elif not found and not _told(row):
            tally.lost.append(f"{name} ({row.state}: {row.error})")
    # A Matrix image is an event of its own, without the post's text (simulator/matrix.py).
    tally.strays = [
        f"{platform}: {text!r}"
        for (platform, text), found in by_key.items()
        if not (platform == "matrix" and not text)
        for _ in found
    ]
    return tally


def _told(row: Outbox) -> bool:
    """Final, and the organizer can read why it was not sent."""
    if row.state == "missed":
        return True
    return row.state in FINAL_WITH_REASON and bool(row.error)
