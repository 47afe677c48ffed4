"""Storm → queue items. Pure and deterministic: the same storm always plans the same items.

Which account posts which sample: each account gets the posts it may carry (its languages,
the post's platform and account restrictions) and, among those, the ones used least so far
on its platform, so that accounts on one platform do not all post the same text (X forbids
that outright; elsewhere it just looks like spam).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from operator import attrgetter
from typing import TYPE_CHECKING

from .queue import MediaRef, QueueItem, item_ids
from .storm import Account, Post, Storm

if TYPE_CHECKING:
    from datetime import datetime


def media_refs(post: Post) -> tuple[MediaRef, ...]:
    """The post's images as queue items carry them."""
    return tuple(MediaRef(i.path, i.alt, i.width, i.height, i.mime) for i in post.images)


def eligible(post: Post, account: Account) -> bool:
    if post.platforms is not None and account.platform not in post.platforms:
        return False
    if post.accounts is not None and account.name not in post.accounts:
        return False
    return not account.langs or post.lang in account.langs


def assign(storm: Storm) -> dict[str, list[Post]]:
    """For each account (by name), the posts it will send, in order."""
    uses_on_platform: dict[str, Counter[int]] = {}
    uses_overall: Counter[int] = Counter()
    posts = storm.posts
    # Which posts an account may carry depends only on its platform and languages (and on
    # its name, if some post names accounts): thousands of accounts share a few answers.
    by_name = any(p.accounts is not None for p in posts)
    eligible_cache: dict[tuple, list[int]] = {}
    plan: dict[str, list[Post]] = {}
    for account in storm.accounts:
        key = (account.platform, account.langs, account.name if by_name else None)
        candidates = eligible_cache.get(key)
        if candidates is None:
            candidates = [i for i, p in enumerate(posts) if eligible(p, account)]
            eligible_cache[key] = candidates
        on_platform = uses_on_platform.setdefault(account.platform, Counter())
        # Least used on this platform first, then least used anywhere, then file order.
        ranked = sorted(candidates, key=lambda i: (on_platform[i], uses_overall[i], i))
        chosen = ranked[: storm.posts_per_account]
        for i in chosen:
            on_platform[i] += 1
            uses_overall[i] += 1
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
            )


def plan(storm: Storm) -> list[QueueItem]:
    """The whole queue, sorted by fire time then id."""
    items = list(plan_posts(storm))
    # Two stable sorts give the order of one by (fire_at, id), in half the time.
    items.sort(key=attrgetter("id"))
    items.sort(key=attrgetter("fire_at"))
    return items
