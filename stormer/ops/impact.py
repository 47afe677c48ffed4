"""`stormer impact`: how big the storm was — every public post under its hashtag that the
platforms' searches return in a window around T, ours and everyone else's.

Read through the storm's own accounts (a Mastodon instance's tag timeline, Bluesky's search
signed in, X's recent search where the app's access includes it) and any Mastodon instances
the organizer names. What was read is kept in `.stormer/impact/<storm>.json` (owner-only), so
the report and its plots can be rebuilt offline; a later run adds to it.

Participants are at risk: the summary holds counts. Handles are public, but they are kept
out of everything shown unless the organizer asks (`show_authors`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from stormer.channels.search import SearchUnavailable, SeenPost
from stormer.errors import MissingCredential, PlatformError, StormerError

if TYPE_CHECKING:
    from pathlib import Path

    import httpx

    from stormer.dispatch.connect import Credentials
    from stormer.storm import Account, Storm

BEFORE = timedelta(hours=1)  # the default window: T - 1 h …
AFTER = timedelta(hours=3)  # … to T + 3 h

OnPage = Callable[[str, int], None]  # where (a source's name), posts found on the page
Wait = Callable[[float, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Source:
    """One place searched: measured, or not and why (never silently "no posts")."""

    platform: str
    where: str  # an instance's host, or the platform's name
    measured: bool
    posts: int = 0
    reason: str | None = None

    def line(self) -> str:
        if self.measured:
            return f"{self.where}: {self.posts} post(s) read"
        return f"{self.where}: not measured — {self.reason}"


@dataclass
class Measurement:
    """What one or more runs of `impact` read, as kept on disk."""

    storm: str
    hashtag: str
    since: datetime
    until: datetime
    measured_at: datetime
    sources: list[Source] = field(default_factory=list)
    posts: list[SeenPost] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "storm": self.storm,
            "hashtag": self.hashtag,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "measured_at": self.measured_at.isoformat(),
            "sources": [vars_of(s) for s in self.sources],
            "posts": [p.as_json() for p in self.posts],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        return cls(
            storm=data["storm"],
            hashtag=data["hashtag"],
            since=datetime.fromisoformat(data["since"]),
            until=datetime.fromisoformat(data["until"]),
            measured_at=datetime.fromisoformat(data["measured_at"]),
            sources=[Source(**s) for s in data["sources"]],
            posts=[SeenPost.from_json(p) for p in data["posts"]],
        )


def vars_of(source: Source) -> dict[str, Any]:
    return {k: getattr(source, k) for k in Source.__slots__}


def stored_path(storm: Storm) -> Path:
    return storm.root / ".stormer" / "impact" / f"{storm.slug}.json"


def load_stored(storm: Storm) -> Measurement | None:
    return read_measurement(stored_path(storm))


def read_measurement(path: Path) -> Measurement | None:
    """The measurement kept at `path` (a storm's, or a rehearsal's); None if there is none."""
    if not path.exists():
        return None
    try:
        return Measurement.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as e:
        raise StormerError(
            f"{path}: not a measurement stormer can read ({e}); delete it and run "
            "`stormer impact` again"
        ) from None


def store(storm: Storm, measurement: Measurement) -> Path:
    """Keep `measurement`, merged with what earlier runs read (a post read twice counts once,
    with its latest reshare count)."""
    from stormer.private import private_folder

    earlier = load_stored(storm)
    if earlier is not None:
        measurement = merged(earlier, measurement)
    path = stored_path(storm)
    private_folder(path.parent)
    write_measurement(path, measurement)
    return path


def write_measurement(path: Path, measurement: Measurement) -> None:
    from stormer.private import write_private

    write_private(path, json.dumps(measurement.as_json(), ensure_ascii=False).encode())


def merged(earlier: Measurement, later: Measurement) -> Measurement:
    posts = {(p.platform, p.uri): p for p in earlier.posts}
    posts.update({(p.platform, p.uri): p for p in later.posts})
    sources = {(s.platform, s.where): s for s in earlier.sources}
    sources.update({(s.platform, s.where): s for s in later.sources})
    return Measurement(
        storm=later.storm,
        hashtag=later.hashtag,
        since=min(earlier.since, later.since),
        until=max(earlier.until, later.until),
        measured_at=later.measured_at,
        sources=list(sources.values()),
        posts=sorted(posts.values(), key=lambda p: (p.created_at, p.platform, p.uri)),
    )


def searchers(storm: Storm) -> list[Account]:
    """The accounts to search with: one per Mastodon instance (each sees what federated to
    it), and one per other platform (its search covers the whole platform)."""
    from stormer.channels import registry

    chosen: dict[str, Account] = {}
    for account in storm.accounts:
        plugin = registry.get(account.platform)
        key = plugin.base_url(account) if account.platform == "mastodon" else account.platform
        chosen.setdefault(key, account)
    return list(chosen.values())


async def measure(
    storm: Storm,
    *,
    since: datetime,
    until: datetime,
    instances: Iterable[str] = (),
    http: httpx.AsyncClient | None = None,
    on_page: OnPage = lambda where, n: None,
    wait: Wait | None = None,
    credentials_of: Credentials | None = None,
) -> Measurement:
    """Read every searchable platform's posts under the storm's hashtag in [since, until),
    with the accounts' credentials (`credentials_of`: a rehearsal's own; rotated ones are
    then kept nowhere)."""
    from stormer.channels import registry
    from stormer.channels.http import Request, Response, send
    from stormer.channels.mastodon_tags import tag_timeline
    from stormer.dispatch.connect import client, connect

    wait = wait or (lambda seconds, why: asyncio.sleep(seconds))
    own = http is None
    http = http or client()
    posts: dict[tuple[str, str], SeenPost] = {}
    sources: list[Source] = []

    async def read(platform: str, where: str, pages: Any) -> None:
        count = 0
        async for found in pages:
            for post in found:
                posts[(post.platform, post.uri)] = post
            count += len(found)
            on_page(where, len(found))
        sources.append(Source(platform, where, True, count))

    try:
        searched: set[str] = set()
        for account in searchers(storm):
            plugin = registry.get(account.platform)
            where = _where(
                account.platform, plugin.base_url(account) if plugin.needs_base_url else None
            )
            searched.add(where)
            try:
                async with (
                    connect(storm, account, http)
                    if credentials_of is None
                    else connect(
                        storm,
                        account,
                        http,
                        credentials_of=credentials_of,
                        save=lambda name, values: None,
                    )
                ) as (plugin, conn):
                    pages = plugin.hashtag_posts(conn, storm.hashtag, since, until, wait=wait)
                    await read(account.platform, where, pages)
            except (SearchUnavailable, MissingCredential, PlatformError) as e:
                sources.append(Source(account.platform, where, False, reason=str(e)))

        async def plain(request: Request) -> Response:
            return await send(http, request, platform="mastodon", mutating=False)

        for host in instances:
            base = host if "://" in host else f"https://{host}"
            where = _where("mastodon", base)
            if where in searched:
                continue
            searched.add(where)
            try:
                await read(
                    "mastodon",
                    where,
                    tag_timeline(plain, base, storm.hashtag, since, until, wait=wait),
                )
            except (SearchUnavailable, PlatformError) as e:
                sources.append(Source("mastodon", where, False, reason=str(e)))
    finally:
        if own:
            await http.aclose()
    return Measurement(
        storm=storm.slug,
        hashtag=storm.hashtag,
        since=since,
        until=until,
        measured_at=datetime.now(UTC),
        sources=sources,
        posts=sorted(posts.values(), key=lambda p: (p.created_at, p.platform, p.uri)),
    )


def _where(platform: str, base: str | None) -> str:
    from urllib.parse import urlsplit

    if platform == "mastodon" and base:
        return urlsplit(base).hostname or base
    from stormer.channels import registry

    return registry.get(platform).title
