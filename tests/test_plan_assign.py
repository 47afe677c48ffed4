"""`plan.assign` (heaps, lazy re-keying) chooses exactly what the simple version chose: for
each account in turn, sort every post it may carry by (uses on its platform, uses overall,
file order) and take the first `posts_per_account`."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from stormer import plan
from stormer.plan import assign, eligible
from stormer.storm import Account, Post

PLATFORMS = ("mastodon", "bluesky", "x", "telegram")
LANGS = ("en", "es", "fr", "ar")
NAMES = tuple(f"acc-{n}" for n in range(8))  # few names: accounts share them, posts name them


def simple_assign(storm: Any) -> dict[str, list[Post]]:
    """`assign` as it was before heaps: quadratic when many accounts share many candidates."""
    uses_on_platform: dict[str, Counter[int]] = {}
    uses_overall: Counter[int] = Counter()
    posts = storm.posts
    plan: dict[str, list[Post]] = {}
    for account in storm.accounts:
        candidates = [i for i, p in enumerate(posts) if eligible(p, account)]
        on_platform = uses_on_platform.setdefault(account.platform, Counter())
        ranked = sorted(candidates, key=lambda i: (on_platform[i], uses_overall[i], i))
        chosen = ranked[: storm.posts_per_account]
        for i in chosen:
            on_platform[i] += 1
            uses_overall[i] += 1
        plan[account.name] = [posts[i] for i in chosen]
    return plan


def subset(values: tuple[str, ...], *, max_size: int) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(values), max_size=max_size).map(tuple)


accounts = st.builds(
    lambda name, platform, langs: Account(
        name=name,
        platform=platform,
        langs=langs,
        base_url=None,
        target=None,
        handle=None,
        credentials=(),
        line=None,
    ),
    st.sampled_from(NAMES),
    st.sampled_from(PLATFORMS),
    st.lists(st.sampled_from(LANGS), max_size=3, unique=True).map(tuple),
)

posts = st.builds(
    lambda lang, platforms, names: Post(
        file="posts/p.md", lang=lang, text="t", text_line=1, platforms=platforms, accounts=names
    ),
    st.sampled_from(LANGS),
    st.none() | subset(PLATFORMS, max_size=3),
    st.none() | st.none() | subset(NAMES, max_size=4),
)  # names repeat: that is allowed too


def storm_of(accounts_: list[Account], posts_: list[Post], per_account: int) -> Any:
    return SimpleNamespace(accounts=accounts_, posts=posts_, posts_per_account=per_account)


def same(got: dict[str, list[Post]], want: dict[str, list[Post]]) -> bool:
    # Posts may be equal as values: compare which post objects were chosen, in order.
    return got.keys() == want.keys() and all(
        [id(p) for p in got[name]] == [id(p) for p in want[name]] for name in want
    )


# assign sorts up to plan._SORT_AT_MOST candidates per post taken and keeps more in a heap:
# try both ways (0: always a heap; 1000: always sorted).
sort_at_most = st.sampled_from((0, 1, 3, plan._SORT_AT_MOST, 1000))


@settings(max_examples=400, deadline=None)
@given(
    st.lists(accounts, max_size=40),
    st.lists(posts, max_size=25),
    st.integers(min_value=1, max_value=3),
    sort_at_most,
)
def test_assign_chooses_what_the_simple_version_chose(
    accounts_: list[Account],
    posts_: list[Post],
    per_account: int,
    at_most: int,
) -> None:
    storm = storm_of(accounts_, posts_, per_account)
    with patch.object(plan, "_SORT_AT_MOST", at_most):
        assert same(assign(storm), simple_assign(storm))


@settings(max_examples=50, deadline=None)
@given(
    st.integers(min_value=1, max_value=3),
    st.integers(min_value=0, max_value=2**32 - 1),
    sort_at_most,
)
def test_assign_on_many_accounts_sharing_many_posts(
    per_account: int, seed: int, at_most: int
) -> None:
    """Long runs of accounts on one key, so that heap entries go stale and are re-keyed."""
    import random

    rng = random.Random(seed)
    accounts_ = [
        Account(
            name=f"a{n}",
            platform=rng.choice(PLATFORMS),
            langs=rng.choice(((), ("en",), ("es", "fr"), ("en", "ar"))),
            base_url=None,
            target=None,
            handle=None,
            credentials=(),
            line=None,
        )
        for n in range(300)
    ]
    posts_ = [
        Post(
            file=f"posts/{n}.md",
            lang=rng.choice(LANGS),
            text=f"t{n}",
            text_line=1,
            platforms=rng.choice((None, ("x",), ("mastodon", "bluesky"))),
            accounts=(
                None if rng.random() < 0.9 else tuple(rng.sample([a.name for a in accounts_], 3))
            ),
        )
        for n in range(60)
    ]
    storm = storm_of(accounts_, posts_, per_account)
    with patch.object(plan, "_SORT_AT_MOST", at_most):
        assert same(assign(storm), simple_assign(storm))


def test_each_x_account_gets_a_text_of_its_own() -> None:
    n = 3 * plan._SORT_AT_MOST  # enough texts for a heap (one post each)
    accounts_ = [
        Account(
            name=f"x{k}",
            platform="x",
            langs=(),
            base_url=None,
            target=None,
            handle=None,
            credentials=(),
            line=None,
        )
        for k in range(n)
    ]
    posts_ = [
        Post(file=f"posts/x-{k}.md", lang="en", text=f"voice {k}", text_line=1, platforms=("x",))
        for k in range(n)
    ]
    got = assign(storm_of(accounts_, posts_, 1))
    assert [got[f"x{k}"] for k in range(n)] == [[p] for p in posts_]
