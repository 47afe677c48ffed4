"""Storm → queue items. Pure and deterministic: the same storm always plans the same items.

Which account posts which sample: each account gets the posts it may carry (its languages,
the post's platform and account restrictions) and, among those, the ones used least so far
on its platform, so that accounts on one platform do not all post the same text (X forbids
that outright; elsewhere it just looks like spam).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
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


# An account sorts its candidates when they are at most this many per post it takes; more
# are kept in a heap (measured on bench/assign_time.py's storm and gen_storm.py's).
_SORT_AT_MOST = 8


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
    shared: dict[tuple[str, tuple[str, ...]], list[int]] = {}
    heaps: dict[tuple[str, tuple[str, ...]], list[tuple[int, int, int]]] = {}
    named: dict[str, list[int]] = {}
    for i, p in enumerate(posts):
        for name in dict.fromkeys(p.accounts or ()):
            named.setdefault(name, []).append(i)
    plan: dict[str, list[Post]] = {}
    for account in storm.accounts:
        on_platform = uses_on_platform.get(account.platform)
        if on_platform is None:
            on_platform = uses_on_platform[account.platform] = [0] * len(posts)
        key = (account.platform, account.langs)
        candidates = shared.get(key)
        if candidates is None:
            candidates = [
                i for i, p in enumerate(posts) if p.accounts is None and eligible(p, account)
            ]
            if len(candidates) > _SORT_AT_MOST * per_account:
                heaps[key] = [(on_platform[i], uses_overall[i], i) for i in candidates]
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
                i = heap[0][2]
                true = (on_platform[i], uses_overall[i], i)
                if heap[0] == true:
                    taken.append(heapq.heappop(heap)[2])
                else:
                    heapq.heapreplace(heap, true)
        chosen = taken
        own = [i for i in named.get(account.name, ()) if eligible(posts[i], account)]
        if own:
            chosen = sorted(taken + own, key=lambda i: (on_platform[i], uses_overall[i], i))[
                :per_account
            ]
        for i in chosen:
            on_platform[i] += 1
            uses_overall[i] += 1
        if heap is not None:
            for i in taken:  # back into the heap, with the new counts if chosen
                heapq.heappush(heap, (on_platform[i], uses_overall[i], i))
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


def plan(storm: Storm) -> list[QueueItem]:
    """The whole queue (posts and participants' reminders), sorted by fire time then id."""
    from stormer.reminders import plan_reminders

    items = [*plan_posts(storm), *plan_reminders(storm)]
    # Two stable sorts give the order of one by (fire_at, id), in half the time.
    items.sort(key=attrgetter("id"))
    items.sort(key=attrgetter("fire_at"))
    return items
