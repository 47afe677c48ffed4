"""Storm → queue items. Pure and deterministic: the same storm always plans the same items.

Which account posts which sample: each account gets the posts it may carry (its languages,
the post's platform and account restrictions) and, among those, the ones used least so far
on its platform, so that accounts on one platform do not all post the same text (X forbids
that outright; elsewhere it just looks like spam).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from operator import attrgetter
from typing import TYPE_CHECKING

from stormer.queue import MediaRef, QueueItem, item_ids
from stormer.storm import Account, Post, Storm

if TYPE_CHECKING:
    from datetime import datetime


def media_refs(post: Post) -> tuple[MediaRef, ...]:
    """The post's images as queue items carry them."""
    return tuple(MediaRef(i.path, i.alt, i.width, i.height, i.mime) for i in post.images)


def single_post(post: Post, account: Account, *, id: str, fire_at: datetime) -> QueueItem:
    """`post` from `account` as one queue item outside the plan: `stormer post`'s smoke
    test, or measuring a post against a server's published limits."""
    return QueueItem(
        id=id,
        kind="post",
        fire_at=fire_at,
        platform=account.platform,
        account=account.name,
        lang=post.lang,
        text=post.text,
        media=media_refs(post),
        source=post.file,
    )


def eligible(post: Post, account: Account) -> bool:
    if post.platforms is not None and account.platform not in post.platforms:
        return False
    if post.accounts is not None and account.name not in post.accounts:
        return False
    return not account.langs or post.lang in account.langs


class Eligibility:
    """Which posts each account may carry, and which accounts each post may go to, without
    testing every post against every account: accounts are grouped by (platform,
    languages) — thousands share a few such keys — and posts and keys are indexed by
    language. Planning, `stormer check` and the image checks all ask through this one index.
    """

    def __init__(self, posts: list[Post], accounts: list[Account]) -> None:
        self.posts = posts
        self._by_name: dict[str, list[Account]] = {}  # names may repeat (check says so)
        self._keys: dict[tuple[str, tuple[str, ...]], None] = {}  # (platform, langs), in order
        for account in accounts:
            self._by_name.setdefault(account.name, []).append(account)
            self._keys.setdefault((account.platform, account.langs))
        self._keys_by_lang: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        self._any_lang: list[tuple[str, tuple[str, ...]]] = []  # keys taking every language
        for key in self._keys:
            if not key[1]:
                self._any_lang.append(key)
            for lang in dict.fromkeys(key[1]):
                self._keys_by_lang.setdefault(lang, []).append(key)
        self._open: list[int] = []  # posts naming no accounts
        self._open_by_lang: dict[str, list[int]] = {}
        self._named: dict[str, list[int]] = {}  # account name → posts naming it
        for i, post in enumerate(posts):
            if post.accounts is None:
                self._open.append(i)
                self._open_by_lang.setdefault(post.lang, []).append(i)
            for name in dict.fromkeys(post.accounts or ()):
                self._named.setdefault(name, []).append(i)
        # Whether some post naming no accounts names platforms: if none does, accounts of
        # the same languages share their candidates whatever their platform.
        self._any_on_platforms = any(posts[i].platforms is not None for i in self._open)
        self._in_langs: dict[frozenset[str], list[int]] = {}
        self._shared: dict[tuple[str, tuple[str, ...]], list[int]] = {}
        self._platforms_by_lang: dict[str, frozenset[str]] = {}

    def shared(self, account: Account) -> list[int]:
        """The posts naming no accounts that `account` may carry (indexes into `posts`, in
        file order): the same list for every account of its platform and languages, which
        callers must not change."""
        key = (account.platform, account.langs)
        found = self._shared.get(key)
        if found is None:
            langs = frozenset(account.langs)
            found = self._in_langs.get(langs)
            if found is None:
                by_lang = self._open_by_lang
                found = (
                    self._open
                    if not langs
                    else sorted(i for lang in langs for i in by_lang.get(lang, ()))
                )
                self._in_langs[langs] = found
            if self._any_on_platforms:
                found = [i for i in found if _on(self.posts[i], key[0])]
            self._shared[key] = found
        return found

    def own(self, account: Account) -> list[int]:
        """The posts naming `account` that it may carry, in file order."""
        posts = self.posts
        return [i for i in self._named.get(account.name, ()) if eligible(posts[i], account)]

    def carries_any(self, account: Account) -> bool:
        """Whether `account` may carry any post at all."""
        return bool(self.shared(account)) or bool(self.own(account))

    def platforms(self) -> set[str]:
        """The platforms of all the accounts."""
        return {platform for platform, _ in self._keys}

    def accounts_named(self, name: str) -> list[Account]:
        return self._by_name.get(name, [])

    def platforms_of(self, post: Post) -> frozenset[str]:
        """The platforms of the accounts that may carry `post` (empty: no account may)."""
        if post.accounts is not None:
            return frozenset(
                account.platform
                for name in dict.fromkeys(post.accounts)
                for account in self._by_name.get(name, ())
                if eligible(post, account)
            )
        found = self._platforms_by_lang.get(post.lang)
        if found is None:
            keys = [*self._keys_by_lang.get(post.lang, ()), *self._any_lang]
            found = self._platforms_by_lang[post.lang] = frozenset(p for p, _ in keys)
        return found if post.platforms is None else found.intersection(post.platforms)


def _on(post: Post, platform: str) -> bool:
    return post.platforms is None or platform in post.platforms


# An account sorts its candidates when they are at most this many per post it takes; more
# are kept in a heap (measured on bench/assign_time.py's storm and gen_storm.py's).
_SORT_AT_MOST = 8
# Bits of each field of a packed heap key: counts and indexes stay far below 2**32.
_FIELD = 32


def assign(storm: Storm) -> dict[str, list[Post]]:
    """For each account (by name), the posts it will send, in order.

    Each account takes, among the posts it may carry, the `posts_per_account` least used so
    far on its platform, then least used anywhere, then first in file order.
    """
    posts = storm.posts
    per_account = storm.posts_per_account
    uses_overall = [0] * len(posts)
    uses_on_platform: dict[str, list[int]] = {}
    # Which posts an account may carry, among those naming no accounts, depends only on its
    # platform and languages: thousands of accounts share a few answers. A few candidates are
    # simply sorted for each account. Many (every X account with a text of its own) are kept
    # in a heap of (uses on platform, uses overall, index): counts only grow, so an entry's
    # key is never above the truth, and a popped entry whose key is still true is the least;
    # one that is not is pushed back with its true key (lazy re-keying). Posts naming
    # accounts are ranked for the accounts they name only.
    # A heap entry is its key packed in one int, (uses on platform, uses overall, index) as
    # _FIELD-bit fields: ints compare and are built faster than tuples, and a stale entry
    # costs a comparison and a replacement.
    index = Eligibility(posts, storm.accounts)
    shared: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    heaps: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    plan: dict[str, list[Post]] = {}
    mask = (1 << _FIELD) - 1
    for account in storm.accounts:
        on_platform = uses_on_platform.get(account.platform)
        if on_platform is None:
            on_platform = uses_on_platform[account.platform] = [0] * len(posts)
        key = (account.platform, account.langs)
        candidates = shared.get(key)
        if candidates is None:
            candidates = index.shared(account)
            if len(candidates) > _SORT_AT_MOST * per_account:
                heaps[key] = [
                    (on_platform[i] << _FIELD | uses_overall[i]) << _FIELD | i for i in candidates
                ]
                heapq.heapify(heaps[key])
                candidates = []
            shared[key] = candidates
        heap = heaps.get(key)
        if heap is None:
            taken = sorted(candidates, key=lambda i: (on_platform[i], uses_overall[i], i))[
                :per_account
            ]
        else:
            taken = []  # the least used, least first
            while heap and len(taken) < per_account:
                i = heap[0] & mask
                true = (on_platform[i] << _FIELD | uses_overall[i]) << _FIELD | i
                if heap[0] == true:
                    taken.append(heapq.heappop(heap) & mask)
                else:
                    heapq.heapreplace(heap, true)
        chosen = taken
        own = index.own(account)
        if own:
            chosen = sorted(taken + own, key=lambda i: (on_platform[i], uses_overall[i], i))[
                :per_account
            ]
        for i in chosen:
            on_platform[i] += 1
            uses_overall[i] += 1
        if heap is not None:
            for i in taken:  # back into the heap, with the new counts if chosen
                heapq.heappush(heap, (on_platform[i] << _FIELD | uses_overall[i]) << _FIELD | i)
        plan[account.name] = [posts[i] for i in chosen]
    return plan


def plan_posts(storm: Storm) -> Iterator[QueueItem]:
    """Every post item of the storm (unsorted; accounts in config order)."""
    if storm.at is None:
        return
    media_cache: dict[int, tuple[MediaRef, ...]] = {}
    fire_times: list[datetime] = []  # storm.at + post_interval * seq, once per seq
    assignment = assign(storm)
    post_id = item_ids(storm.slug, "post")
    for account in storm.accounts:
        for seq, post in enumerate(assignment[account.name]):
            media = media_cache.get(id(post))
            if media is None:
                media = media_refs(post)
                media_cache[id(post)] = media
            while len(fire_times) <= seq:
                fire_times.append(storm.at + storm.post_interval * len(fire_times))
            yield QueueItem(
                id=post_id(account.name, seq),
                kind="post",
                fire_at=fire_times[seq],
                platform=account.platform,
                account=account.name,
                lang=post.lang,
                text=post.text,
                media=media,
                source=post.file,
                seq=seq,
            )


def plan(storm: Storm, *, posts: Iterable[QueueItem] | None = None) -> list[QueueItem]:
    """The whole queue (posts and participants' reminders), sorted by fire time then id.
    `posts`: the storm's `plan_posts`, when the caller has them already (planning is the
    costly part: a command that checks and schedules plans once)."""
    from stormer.reminders import plan_reminders

    items = [*(plan_posts(storm) if posts is None else posts), *plan_reminders(storm)]
    # Two stable sorts give the order of one by (fire_at, id), in half the time.
    items.sort(key=attrgetter("id"))
    items.sort(key=attrgetter("fire_at"))
    return items
