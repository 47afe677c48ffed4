"""The storm as loaded: the plain dataclasses that the rest of stormer reads.

No pydantic here: these are what a plugin, the planner and the commands receive. All are
frozen but `Storm`, whose `problems` the loader fills last.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from stormer.errors import Problem
from stormer.timezones import AnnounceZone


@dataclass(frozen=True, slots=True)
class Image:
    """An image a post attaches, with its alt text; type and size read from the file."""

    path: str  # as written, relative to posts/
    alt: str
    mime: str = "image/png"
    width: int | None = None
    height: int | None = None
    line: int | None = None  # of the post's `images` front matter (where problems point)


@dataclass(frozen=True, slots=True)
class Post:
    """One sample post (posts/*.md): its text, images and optional platform/account limits."""

    file: str  # relative to the storm root, e.g. "posts/en-01.md"
    lang: str
    text: str
    text_line: int  # line of the first line of text in the file
    images: tuple[Image, ...] = ()
    platforms: tuple[str, ...] | None = None
    accounts: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Account:
    """An account the storm posts through ([[accounts]] in config.toml).

    `credentials` names where each secret is (an environment variable or `keyring:NAME`);
    it never holds a secret itself.
    """

    name: str
    platform: str
    langs: tuple[str, ...]
    base_url: str | None
    target: str | None
    handle: str | None
    credentials: tuple[tuple[str, str], ...]  # (field, environment variable or keyring ref)
    line: int | None


@dataclass(frozen=True, slots=True)
class Participant:
    """One row of participants.csv: who is reminded, in which zone and language, and how."""

    row: int  # line in the CSV file
    name: str
    zone: str
    lang: str
    contacts: tuple[str, ...] = field(default=(), repr=False)  # never printed by default
    public: bool = False  # named among the storm kit's endorsers (participants.csv `public`)


@dataclass
class Storm:
    """A loaded storm; `problems` holds everything wrong with it, errors and warnings."""

    root: Path
    name: str
    slug: str
    hashtag: str
    at: datetime | None  # UTC; None when the configured time is unusable
    default_lang: str
    announce: list[AnnounceZone]
    accounts: list[Account]
    posts: list[Post]
    participants: list[Participant]
    reminder_offsets: list[timedelta]
    posts_per_account: int
    post_interval: timedelta
    kit_url: str | None
    database_url: str | None
    at_line: int | None = None  # where config.toml sets the storm time
    # [alerts]: environment variables holding the organizer's Apprise URLs, and how long
    # before T every item due must be staged by a live worker (`stormer watchdog`).
    alert_vars: list[str] = field(default_factory=list)
    unstaged_before: timedelta = timedelta(minutes=5)
    # [reminders] senders: sender (mailto, tgram, matrix) → environment variable holding its URL
    reminder_senders: dict[str, str] = field(default_factory=dict)
    participants_file: str = "participants.csv"  # relative to the storm folder
    # [impact] instances: Mastodon instances `stormer impact` reads besides the accounts' own
    impact_instances: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def zones(self) -> list[str]:
        """Announce zones first, then every participant zone, without repeats."""
        return list(
            dict.fromkeys([a.zone for a in self.announce] + [p.zone for p in self.participants])
        )
