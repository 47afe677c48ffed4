"""`stormer check` asks which accounts may carry which posts through `plan.Eligibility` (an
index by platform and languages) instead of testing every post against every account. On
random small storms, what it reports must be exactly what the straightforward pairwise
version (the code as it was before the index, kept here as the reference) reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stormer.channels import registry
from stormer.errors import Problem
from stormer.ops import checks
from stormer.ops.images import _as_problems, breaches_of, image_problems
from stormer.plan import Eligibility, eligible, media_refs
from stormer.storm import CONFIG_NAME, Account, Image, Participant, Post, Storm

PLATFORMS = ("mastodon", "bluesky", "x", "telegram", "discord", "matrix", "friendica")
LANGS = ("en", "es", "ar")
NAMES = tuple(f"acc-{n}" for n in range(6))  # few names: posts name them, and some repeat
FILES = {"small.png": 2_000, "large.png": 1_200_000}  # bytes: over Bluesky's 1 MB, or not

# --- the reference: every post against every account, as `check` did before the index --


def ref_targets(storm: Storm, post: Post) -> list[str]:
    known = registry.installed()
    carried = {a.platform for a in storm.accounts if eligible(post, a)}
    return sorted(name for name in carried.union(post.platforms or ()) if name in known)


def ref_account_problems(storm: Storm) -> list[Problem]:
    """`check._account_problems` reduced to its one pairwise finding (the others look at
    each account alone)."""
    known = registry.installed()
    return [
        Problem(
            "warning",
            "account-without-posts",
            CONFIG_NAME,
            a.line,
            f"no sample post fits account {a.name!r} (languages "
            f"{', '.join(a.langs) or 'any'}); it will post nothing",
        )
        for a in storm.accounts
        if a.platform in known and not any(eligible(p, a) for p in storm.posts)
    ]


def ref_why_unused(storm: Storm, post: Post) -> str:
    accounts = storm.accounts
    where = ""
    if post.platforms is not None:
        where = " on " + ", ".join(post.platforms)
        accounts = [a for a in accounts if a.platform in post.platforms]
        if not accounts:
            return f"its platforms = {list(post.platforms)} match no account in {CONFIG_NAME}"
    if post.accounts is not None:
        accounts = [a for a in accounts if a.name in post.accounts]
        if not accounts:
            return f"its accounts = {list(post.accounts)} name no account{where}"
        where = " among those it names"
    return (
        f"no account{where} takes its language {post.lang!r}: add it to an account's langs, "
        "or change the post's platforms or accounts"
    )


def ref_post_problems(storm: Storm) -> list[Problem]:
    from stormer.reminders import handed_samples, link_platforms

    handed = handed_samples(storm)
    out = []
    for post in storm.posts:
        if storm.accounts and not any(eligible(post, a) for a in storm.accounts):
            fate = (
                "it is only handed to participants as a sample in their reminders"
                if post.file in handed
                else "nor do reminders hand it to anyone: it is not used at all"
            )
            why = ref_why_unused(storm, post)
            message = f"no account will post {post.file} ({why}); {fate}"
            out.append(Problem("warning", "post-unused", post.file, None, message))
        if post.file in handed:
            checked = set(ref_targets(storm, post))
            for name in link_platforms(storm, post):
                if name not in registry.installed() or name in checked:
                    continue
                plugin = registry.get(name)
                length, limit = plugin.length(post.text), plugin.limit(with_media=False)
                if length > limit:
                    title = plugin.title
                    message = (
                        f"{title}: {length} > {limit}: reminders hand this post to "
                        f"participants with a {title} click-to-post link, and they would "
                        f"have to shorten it there; shorten the post, or keep it off "
                        f"{title} (and its link) with platforms = [...]"
                    )
                    out.append(
                        Problem("warning", "sample-too-long", post.file, post.text_line, message)
                    )
        media = media_refs(post)
        for name in ref_targets(storm, post):
            plugin = registry.get(name)
            length, limit = plugin.length(post.text), plugin.limit(with_media=bool(media))
            if length > limit:
                caption = "caption " if media and plugin.media_text_limit else ""
                message = (
                    f"{plugin.title}: {length} > {limit} ({caption}limit); shorten the post "
                    "or restrict it with platforms = [...]"
                )
                out.append(Problem("error", "too-long", post.file, post.text_line, message))
            if len(media) > plugin.max_images:
                message = (
                    f"{plugin.title}: {len(media)} images, at most {plugin.max_images} allowed"
                )
                out.append(Problem("error", "too-many-images", post.file, None, message))
    return out


def ref_image_problems(storm: Storm) -> list[Problem]:
    out = []
    for post in storm.posts:
        for image in post.images:
            size = (storm.root / "posts" / image.path).stat().st_size
            for name in ref_targets(storm, post):
                plugin = registry.get(name)
                out += _as_problems(post, image, plugin, breaches_of(plugin, image, size))
    return out


# --- random small storms ----------------------------------------------------------------


def subset(values: tuple[str, ...], max_size: int) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(values), max_size=max_size).map(tuple)


accounts = st.builds(
    lambda name, platform, langs, line: Account(name, platform, langs, None, None, None, (), line),
    st.sampled_from(NAMES),
    st.sampled_from(PLATFORMS),
    st.lists(st.sampled_from(LANGS), max_size=2, unique=True).map(tuple),
    st.integers(1, 99),
)
images = st.builds(
    lambda path, alt, mime, w, h: Image(path, alt, mime, w, h, 2),
    st.sampled_from(sorted(FILES)),
    st.sampled_from(("a flag", "x" * 1100, "y" * 1600)),
    st.sampled_from(("image/png", "image/bmp")),
    st.sampled_from((800, 9000)),
    st.sampled_from((600, 300)),
)
PostParts = tuple[str, str, tuple[Image, ...], tuple[str, ...] | None, tuple[str, ...] | None]
post_parts = st.tuples(
    st.sampled_from(LANGS),
    st.sampled_from(("short #tag", "l" * 290 + " #tag", "m" * 1100)),
    st.lists(images, max_size=5).map(tuple),
    st.none() | subset(PLATFORMS, 3),
    st.none() | st.none() | subset(NAMES, 3),
)


def storm_of(
    root: Path, accounts_: list[Account], parts: list[PostParts], *, reminded: bool
) -> Storm:
    """A storm of these accounts and posts; `reminded`: participants in each language get
    reminders handing them samples (so click-to-post links are checked too)."""
    posts = [
        Post(f"posts/p{i:02d}.md", lang, text, 5, imgs, platforms, names)
        for i, (lang, text, imgs, platforms, names) in enumerate(parts)
    ]
    contact = ("mailto://a@example.org",)
    people = [Participant(i + 2, f"p{i}", "UTC", lang, contact) for i, lang in enumerate(LANGS)]
    return Storm(
        root=root,
        name="Random",
        slug="random",
        hashtag="#tag",
        at=datetime(2030, 1, 1, tzinfo=UTC),
        default_lang="en",
        announce=[],
        accounts=accounts_,
        posts=posts,
        participants=people if reminded else [],
        reminder_offsets=[timedelta(hours=1)] if reminded else [],
        posts_per_account=1,
        post_interval=timedelta(0),
        kit_url="https://kit.example.org" if reminded else None,
        database_url=None,
    )


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(accounts, max_size=8), st.lists(post_parts, max_size=8), st.booleans())
def test_check_finds_what_pairwise_checking_finds(
    tmp_path: Path, accounts_: list[Account], parts: list[PostParts], reminded: bool
) -> None:
    (tmp_path / "posts").mkdir(exist_ok=True)
    for name, size in FILES.items():
        (tmp_path / "posts" / name).write_bytes(b"\0" * size)
    storm = storm_of(tmp_path, accounts_, parts, reminded=reminded)
    index = Eligibility(storm.posts, storm.accounts)
    pairwise = [
        p for p in checks._account_problems(storm, index) if p.code == "account-without-posts"
    ]
    assert pairwise == ref_account_problems(storm)
    assert checks._post_platform_problems(storm, index) == ref_post_problems(storm)
    assert image_problems(storm, index) == ref_image_problems(storm)


@settings(max_examples=300, deadline=None)
@given(st.lists(accounts, max_size=10), st.lists(post_parts, max_size=10))
def test_the_index_answers_as_every_pair_does(
    accounts_: list[Account], parts: list[PostParts]
) -> None:
    storm = storm_of(Path("."), accounts_, parts, reminded=False)
    posts, index = storm.posts, Eligibility(storm.posts, storm.accounts)
    for a in accounts_:
        fits = [i for i, p in enumerate(posts) if eligible(p, a)]
        assert index.shared(a) == [i for i in fits if posts[i].accounts is None]
        assert index.own(a) == [i for i in fits if posts[i].accounts is not None]
        assert index.carries_any(a) == bool(fits)
    for p in posts:
        assert index.platforms_of(p) == {a.platform for a in accounts_ if eligible(p, a)}
