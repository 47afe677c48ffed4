"""The storm's measured impact in numbers: posts per minute around T per platform, distinct
authors (a count), languages, our accounts' share, and the most reshared posts by link.

Pure: from a kept `Measurement` (ops/impact.py), so it can be rebuilt offline at any time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stormer.channels.search import SeenPost
    from stormer.ops.impact import Measurement

TOP = 10  # the most reshared posts listed
AROUND = range(-5, 16)  # the minutes around T shown in the text (JSON holds them all)


@dataclass
class PlatformImpact:
    platform: str
    posts: int = 0
    authors: int = 0
    ours: int = 0
    per_minute: Counter[int] = field(default_factory=Counter)  # minutes from T → posts
    languages: Counter[str] = field(default_factory=Counter)

    @property
    def peak(self) -> tuple[int, int] | None:
        """(minute from T, posts) of the busiest minute."""
        if not self.per_minute:
            return None
        minute, count = max(self.per_minute.items(), key=lambda kv: (kv[1], -kv[0]))
        return minute, count


@dataclass
class Impact:
    hashtag: str
    at: datetime
    since: datetime
    until: datetime
    measured_at: datetime
    platforms: list[PlatformImpact]
    top: list[SeenPost]
    ours: set[str]  # the uris of our own posts among `top`
    show_authors: bool
    sources: list[str]

    def named(self, post: SeenPost) -> bool:
        """Whether `post`'s link may be shown: a link names its author (…/@handle/…), so
        only our own posts' links are shown unless the organizer asked for authors."""
        return self.show_authors or post.uri in self.ours

    def as_json(self) -> dict[str, Any]:
        return {
            "hashtag": self.hashtag,
            "at": self.at.isoformat(),
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "measured_at": self.measured_at.isoformat(),
            "sources": self.sources,
            "platforms": [
                {
                    "platform": p.platform,
                    "posts": p.posts,
                    "authors": p.authors,
                    "ours": p.ours,
                    "others": p.posts - p.ours,
                    "per_minute": {str(m): n for m, n in sorted(p.per_minute.items())},
                    "languages": dict(p.languages.most_common()),
                }
                for p in self.platforms
            ],
            "most_reshared": [
                {"platform": p.platform, "reshares": p.reshares, "ours": p.uri in self.ours}
                | ({"url": p.url} if self.named(p) else {})
                | ({"author": p.author} if self.show_authors else {})
                for p in self.top
            ],
        }


def summarize(
    measurement: Measurement, *, at: datetime, ours: set[str], show_authors: bool = False
) -> Impact:
    """`ours`: the remote ids and permalinks of the storm's own sent posts."""
    by_platform: dict[str, PlatformImpact] = {}
    authors: dict[str, set[str]] = {}
    for post in measurement.posts:
        p = by_platform.setdefault(post.platform, PlatformImpact(post.platform))
        p.posts += 1
        p.ours += post.uri in ours or (post.url is not None and post.url in ours)
        p.per_minute[_minute(post.created_at, at)] += 1
        p.languages[post.lang or "unknown"] += 1
        authors.setdefault(post.platform, set()).add(post.author)
    for name, p in by_platform.items():
        p.authors = len(authors[name])
    top = sorted(
        (p for p in measurement.posts if p.reshares > 0 and p.url),
        key=lambda p: (-p.reshares, p.created_at),
    )[:TOP]
    is_ours = {p.uri for p in top if p.uri in ours or (p.url is not None and p.url in ours)}
    return Impact(
        hashtag=measurement.hashtag,
        at=at,
        since=measurement.since,
        until=measurement.until,
        measured_at=measurement.measured_at,
        platforms=sorted(by_platform.values(), key=lambda p: -p.posts),
        top=top,
        ours=is_ours,
        show_authors=show_authors,
        sources=[s.line() for s in measurement.sources],
    )


def _minute(instant: datetime, at: datetime) -> int:
    """Whole minutes from T, rounded down: T + 0:59 is minute 0, T − 0:01 minute −1."""
    return int((instant - at).total_seconds() // 60)


def render(impact: Impact) -> list[str]:
    """The summary for people."""
    from stormer.timezones import iso_utc

    lines = [
        f"{impact.hashtag}: public posts from {iso_utc(impact.since)} to {iso_utc(impact.until)} "
        f"(read {iso_utc(impact.measured_at)})"
    ]
    total = sum(p.posts for p in impact.platforms)
    if not total:
        lines.append("  no post found under the hashtag in this window")
    for p in impact.platforms:
        share = f"{100 * p.ours / p.posts:.0f}%" if p.posts else "—"
        line = (
            f"  {p.platform}: {p.posts} post(s) by {p.authors} author(s); ours {p.ours} ({share})"
        )
        if p.peak is not None:
            line += f"; busiest minute T{p.peak[0]:+d} with {p.peak[1]}"
        lines.append(line)
        langs = ", ".join(f"{lang} {n}" for lang, n in p.languages.most_common(6))
        lines.append(f"    languages: {langs}")
        minutes = " ".join(f"{p.per_minute.get(m, 0)}" for m in AROUND)
        lines.append(f"    posts per minute, T{AROUND[0]:+d} … T+{AROUND[-1]}: {minutes}")
    lines.append("Where it was read (each Mastodon instance sees only what federated to it):")
    lines += [f"  {s}" for s in impact.sources]
    if impact.top:
        lines.append("Most reshared:")
        for n, post in enumerate(impact.top, 1):
            what = post.url if impact.named(post) else f"a post on {post.platform}"
            by = f" by {post.author}" if impact.show_authors else ""
            mine = ", ours" if post.uri in impact.ours else ""
            lines.append(f"  {n}. {what} ({post.reshares} reshares{mine}{by})")
    if not impact.show_authors:
        lines.append(
            "Authors are counted, never listed: a link names its author, so only our own "
            "posts are linked (--show-authors links every post and names its public handle)."
        )
    return lines
