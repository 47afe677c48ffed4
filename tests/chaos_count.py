"""Counting one chaos run from the simulator's own post log, item by item against the outbox,
and the table of many runs (per kill moment and platform) that bench/chaos_bench.py
prints.

An item is named in the post log by its text (each post of a chaos storm has its own) on its
platform. A post of several images on Matrix is one m.image event per image, the first
captioned with the text and the others with their alt text (channels/matrix.py): the others
are parts of that post, counted once with it."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SETTLED = ("sent", "unconfirmed")  # where every item must end


class LostItems(AssertionError):
    """Items lost: they never reached the platform, and the outbox does not say they were
    sent, nor that they may have been (unconfirmed although no request can have left)."""


@dataclass
class Row:
    """What the harness reads of one outbox item."""

    id: str
    platform: str
    text: str
    state: str
    remote_id: str | None
    error: str | None


@dataclass
class Counted:
    """One run, counted. Lists name the items (id, platform, what was wrong)."""

    items: Counter[str] = field(default_factory=Counter)  # per platform
    landed: Counter[str] = field(default_factory=Counter)  # items the platform has, per platform
    early: list[str] = field(default_factory=list)
    duplicates: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    lost: list[str] = field(default_factory=list)
    unconfirmed: Counter[str] = field(default_factory=Counter)  # per platform
    unconfirmed_unsent: Counter[str] = field(default_factory=Counter)  # …never on the platform
    disagreements: list[str] = field(default_factory=list)  # the outbox vs the platform
    other: list[str] = field(default_factory=list)  # posts no item explains

    def summary(self) -> str:
        dups = {p: len(ids) for p, ids in self.duplicates.items() if ids}
        return (
            f"{sum(self.items.values())} items {dict(self.items)}; early {len(self.early)}, "
            f"duplicates {dups}, lost {len(self.lost)}, unconfirmed {dict(self.unconfirmed)} "
            f"(never sent {dict(self.unconfirmed_unsent)}), disagreements "
            f"{len(self.disagreements)}, other posts {len(self.other)}"
        )


def when(post: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(post["received_at"]).replace("Z", "+00:00"))


def count(
    rows: list[Row],
    posts: list[dict[str, Any]],
    *,
    at: datetime,
    burst_may_have_started: bool,
    image_captions: frozenset[str] = frozenset(),
) -> Counted:
    """Count a run whose items were all due at `at`. `burst_may_have_started`: the worker was
    killed at or after T, so a request of its burst may have left (an item it held may rightly
    end unconfirmed without the platform having it). `image_captions`: the alt texts of the
    storm's images, which caption a Matrix post's further image events."""
    counted = Counted()
    landings: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for post in posts:
        landings[(str(post["platform"]), str(post["text"]))].append(post)
        if when(post) < at:
            counted.early.append(f"{post['platform']} {post['remote_id']} at {post['received_at']}")
    explained: set[tuple[str, str]] = set()
    for row in rows:
        key = (row.platform, row.text)
        explained.add(key)
        found = landings.get(key, [])
        counted.items[row.platform] += 1
        counted.landed[row.platform] += bool(found)
        name = f"{row.id} ({row.platform}, {row.state})"
        if len(found) > 1:
            counted.duplicates[row.platform].append(f"{name}: {len(found)} times")
        if row.state == "unconfirmed":
            counted.unconfirmed[row.platform] += 1
            counted.unconfirmed_unsent[row.platform] += not found
            if not row.error:
                counted.disagreements.append(f"{name}: unconfirmed without a reason")
        # Unconfirmed, and not on the platform: lost unless its request may have left.
        may_have_left = row.state == "unconfirmed" and burst_may_have_started
        if not found and row.state != "sent" and not may_have_left:
            counted.lost.append(f"{name}: never on the platform; {row.error}")
        if row.state == "sent":
            if not found:
                counted.disagreements.append(f"{name}: sent, but not on the platform")
            elif row.remote_id not in {str(p["remote_id"]) for p in found}:
                counted.disagreements.append(f"{name}: its remote id {row.remote_id} is not there")
        elif row.state not in SETTLED:
            counted.disagreements.append(f"{name}: ended {row.state} ({row.error})")
    for (platform, text), found in landings.items():
        if (platform, text) in explained:
            continue
        if platform == "matrix" and text in image_captions:
            continue  # a further image of a Matrix post: part of that post
        counted.other.extend(f"{platform} {p['remote_id']}: {text[:40]!r}" for p in found)
    return counted


# --- the table of many runs -----------------------------------------------------------------


@dataclass
class Cell:
    """One kill moment on one platform, over the runs killed at it."""

    runs: int = 0
    items: int = 0
    early: int = 0
    duplicates: int = 0
    lost: int = 0
    unconfirmed: int = 0
    unconfirmed_unsent: int = 0
    worst: int = 0  # the most items of this platform one kill left unconfirmed


@dataclass
class Table:
    """Runs added one by one; `render` prints them per kill moment and platform."""

    cells: dict[tuple[str, str], Cell] = field(default_factory=lambda: defaultdict(Cell))
    runs: int = 0
    kills: int = 0
    seeds: set[tuple[str, int]] = field(default_factory=set)
    missed: int = 0  # runs whose kill did not land in the moment planned

    def add(
        self, *, mix: str, seed: int, moment: str, counted: Counted, kills: int, hit: bool
    ) -> None:
        self.runs += 1
        self.kills += kills
        self.seeds.add((mix, seed))
        self.missed += not hit
        early_by = Counter(e.split(" ", 1)[0] for e in counted.early)
        for platform, n in counted.items.items():
            cell = self.cells[(moment, platform)]
            cell.runs += 1
            cell.items += n
            cell.early += early_by[platform]
            cell.duplicates += len(counted.duplicates.get(platform, []))
            cell.lost += sum(1 for lost in counted.lost if f"({platform}," in lost)
            cell.unconfirmed += counted.unconfirmed[platform]
            cell.unconfirmed_unsent += counted.unconfirmed_unsent[platform]
            cell.worst = max(cell.worst, counted.unconfirmed[platform])

    def render(self, moments: tuple[str, ...], platforms: tuple[str, ...]) -> str:
        head = (
            "| kill moment | platform | runs | items | early | duplicates | lost | "
            "unconfirmed (never sent) | most unconfirmed by one kill |"
        )
        lines = [head, "|" + "---|" * 9]
        for moment in moments:
            for platform in platforms:
                c = self.cells.get((moment, platform))
                if c is None:
                    continue
                lines.append(
                    f"| {moment} | {platform} | {c.runs} | {c.items} | {c.early} | "
                    f"{c.duplicates} | {c.lost} | {c.unconfirmed} ({c.unconfirmed_unsent}) | "
                    f"{c.worst} |"
                )
        total = Cell()
        for c in self.cells.values():
            total.items += c.items
            total.early += c.early
            total.duplicates += c.duplicates
            total.lost += c.lost
            total.unconfirmed += c.unconfirmed
            total.unconfirmed_unsent += c.unconfirmed_unsent
        lines.append(
            f"\n{self.runs} runs ({len(self.seeds)} seeds, {self.missed} whose kill missed its "
            f"moment: counted at the moment it hit), {self.kills} kills, {total.items} items: "
            f"{total.early} early, {total.duplicates} duplicates, {total.lost} lost, "
            f"{total.unconfirmed} unconfirmed ({total.unconfirmed_unsent} never sent)"
        )
        return "\n".join(lines)
