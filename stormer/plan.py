"""Storm → queue items. Pure and deterministic: the same storm always plans the same items.

Which account posts which sample: each account gets the posts it may carry (its languages,
the post's platform and account restrictions) and, among those, the ones used least so far
on its platform, so that accounts on one platform do not all post the same text (X forbids
that outright; elsewhere it just looks like spam).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from .queue import MediaRef, QueueItem, item_id
from .storm import Account, Post, Storm


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
    index = {id(p): i for i, p in enumerate(storm.posts)}
    plan: dict[str, list[Post]] = {}
    for account in storm.accounts:
        candidates = [p for p in storm.posts if eligible(p, account)]
        on_platform = uses_on_platform.setdefault(account.platform, Counter())
        # Least used on this platform first, then least used anywhere, then file order.
        candidates.sort(key=lambda p: (on_platform[index[id(p)]], uses_overall[index[id(p)]],
                                       index[id(p)]))
        chosen = candidates[: storm.posts_per_account]
        for p in chosen:
            on_platform[index[id(p)]] += 1
            uses_overall[index[id(p)]] += 1
        plan[account.name] = chosen
    return plan


def plan_posts(storm: Storm) -> Iterator[QueueItem]:
    """Every post item of the storm (unsorted; accounts in config order)."""
    if storm.at is None:
        return
    media_cache: dict[int, tuple[MediaRef, ...]] = {}
    assignment = assign(storm)
    for account in storm.accounts:
        for seq, post in enumerate(assignment[account.name]):
            media = media_cache.get(id(post))
            if media is None:
                media = tuple(MediaRef(i.path, i.alt, i.width, i.height, i.mime)
                              for i in post.images)
                media_cache[id(post)] = media
            yield QueueItem(
                id=item_id(storm.slug, "post", account.name, seq),
                kind="post",
                fire_at=storm.at + storm.post_interval * seq,
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
    items.sort(key=lambda i: (i.fire_at, i.id))
    return items
