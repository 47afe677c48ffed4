"""`stormer check`: the posts (hashtag, front matter, encoding, platforms and accounts named),
and one text from many accounts.

The approach and the helpers: check_helpers.py."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from check_helpers import (
    CONFIG,
    EN_01,
    HASHTAG,
    add_account,
    cli_check,
    codes,
    edit_config,
    line_of,
    load,
    remove_posts,
    report,
    text_of_length,
    the_one,
    with_code,
    write_post,
)

from stormer.ops.checks import near_duplicate_key
from stormer.plan import plan

# --- posts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "warned"),
    [
        ("Free them all! #FreePalestinianStudentsNow", True),
        ("Free them all!", True),
        ("Free them all! #freepalestinianstudents", False),
        ("Free them all!\n#FreePalestinianStudents", False),
    ],
)
def test_missing_hashtag(storm: Path, text: str, warned: bool) -> None:
    post = write_post(storm, "zz-tag.md", text, front='platforms = ["mastodon"]')
    problems = report(storm)
    if not warned:
        assert problems == []
        return
    p = the_one(problems, "missing-hashtag")
    assert (p.severity, p.file, p.line) == ("warning", post.file, post.text_line)
    assert p.message == "the post does not carry the storm's hashtag #FreePalestinianStudents"
    assert codes(problems) == ["missing-hashtag"]


def test_missing_hashtag_points_at_the_text_after_blank_lines(storm: Path) -> None:
    post = write_post(storm, "zz-tag.md", "\n\nNo tag here.")
    assert the_one(report(storm), "missing-hashtag").line == post.text_line + 2


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ('lang = "en"\n+++\n#FreePalestinianStudents\n', 1, "starts with TOML front matter"),
        ("#FreePalestinianStudents\n", 1, "starts with TOML front matter"),
        ("", 1, "starts with TOML front matter"),
        ('+++\nlang = "en"\n#FreePalestinianStudents\n', 1, "not closed by a '+++' line"),
        (
            '+++\nlang = "en"\nplatforms = ["x"]\noops no equals sign\n+++\n'
            "#FreePalestinianStudents\n",
            4,
            "front matter is not valid TOML",
        ),
        (
            '+++\nlang = "en"\n\ncolour = "red"\n+++\n#FreePalestinianStudents\n',
            4,
            "colour: Extra inputs are not permitted",
        ),
        ('+++\nplatforms = ["x"]\n+++\n#FreePalestinianStudents\n', 2, "lang: Field required"),
        (
            '+++\nlang = "en"\nplatforms = "x"\n+++\n#FreePalestinianStudents\n',
            3,
            "platforms: Input should be a valid list",
        ),
    ],
    ids=[
        "no-opening",
        "no-front-matter",
        "empty-file",
        "unclosed",
        "invalid-toml",
        "unknown-key",
        "no-lang",
        "wrong-type",
    ],
)
def test_bad_front_matter(storm: Path, content: str, line: int, fragment: str) -> None:
    (storm / "posts" / "zz-bad.md").write_text(content, encoding="utf-8")
    problems = report(storm)
    p = the_one(problems, "bad-front-matter")
    assert (p.severity, p.file, p.line) == ("error", "posts/zz-bad.md", line)
    assert fragment in p.message
    assert codes(problems) == ["bad-front-matter"]
    assert "posts/zz-bad.md" not in [q.file for q in load(storm).posts]


def test_post_that_is_not_utf8(storm: Path) -> None:
    (storm / "posts" / "zz-latin1.md").write_bytes(
        '+++\nlang = "fr"\n+++\nÉtudier #FreePalestinianStudents\n'.encode("latin-1")
    )
    p = the_one(report(storm), "bad-post")
    assert (p.severity, p.file, p.line) == ("error", "posts/zz-latin1.md", None)
    assert p.message.startswith("not UTF-8 text")


def test_empty_post(storm: Path) -> None:
    write_post(storm, "zz-empty.md", "")
    p = the_one(report(storm), "empty-post")
    assert (p.severity, p.file) == ("error", "posts/zz-empty.md")
    assert p.message == "the post has neither text nor images"


def test_unknown_platform_in_a_post(storm: Path) -> None:
    post = write_post(
        storm, "zz-myspace.md", f"{HASHTAG} hello", front='platforms = ["mastodon", "myspace"]'
    )
    problems = report(storm)
    p = the_one(problems, "unknown-platform")
    assert (p.severity, p.file, p.line) == ("error", post.file, 3)
    assert p.message.startswith("unknown platform 'myspace'; installed: ")
    assert "bluesky, discord, mastodon, matrix, telegram, x" in p.message
    assert codes(problems) == ["unknown-platform"]


def test_unknown_platform_of_an_account(storm: Path) -> None:
    edit_config(storm, 'platform = "x"', 'platform = "twitter"')
    problems = report(storm)
    p = the_one(problems, "unknown-platform")
    assert (p.severity, p.file, p.line) == (
        "error",
        CONFIG,
        line_of(storm / CONFIG, 'platform = "twitter"'),
    )
    assert p.message.startswith("account 'campaign-x': unknown platform 'twitter'; installed: ")
    assert codes(problems) == ["unknown-platform"]


def test_unknown_account_in_a_post(storm: Path) -> None:
    post = write_post(
        storm, "zz-acct.md", f"{HASHTAG} hi", front='accounts = ["campaign-x", "nobody"]'
    )
    p = the_one(report(storm), "unknown-account")
    assert (p.severity, p.file, p.line) == ("error", post.file, 3)
    assert p.message == "no account named 'nobody' in config.toml"


def test_no_posts_folder(storm: Path) -> None:
    shutil.rmtree(storm / "posts")
    p = the_one(report(storm), "no-posts")
    assert (p.severity, p.file, p.line) == ("error", "posts/", None)
    assert "no posts/ folder" in p.message


def test_posts_folder_without_posts(storm: Path) -> None:
    remove_posts(storm, "*.md")
    p = the_one(report(storm), "no-posts")
    assert (p.severity, p.file, p.line) == ("error", "posts/", None)
    assert p.message == "posts/ holds no *.md sample posts"


# --- same text from many accounts --------------------------------------------------------------


def only_en_01(root: Path) -> None:
    """Leave en-01 as the one English sample post."""
    remove_posts(root, "en-0[234]-*.md")


def test_two_x_accounts_with_one_english_text_is_an_error(storm: Path) -> None:
    only_en_01(storm)
    add_account(storm, "campaign-x-2", "x", langs=["en"])
    problems = report(storm)
    p = the_one(problems, "same-text-many-accounts")
    assert (p.severity, p.file, p.line) == ("error", EN_01, None)
    assert p.message.startswith(
        "2 x accounts would post the same or nearly the same text (campaign-x, campaign-x-2)"
    )
    assert "X's rules forbid this" in p.message
    assert codes(problems) == ["same-text-many-accounts"]
    assert cli_check(storm)[0] == 1


def test_two_mastodon_accounts_sharing_a_text_is_a_warning(storm: Path) -> None:
    only_en_01(storm)
    add_account(
        storm,
        "campaign-mastodon-2",
        "mastodon",
        langs=["en"],
        extra='base_url = "https://social.example.org"\n',
    )
    problems = report(storm)
    p = the_one(problems, "same-text-many-accounts")
    assert (p.severity, p.file, p.line) == ("warning", EN_01, None)
    assert p.message.startswith(
        "2 mastodon accounts would post the same or nearly the same "
        "text (campaign-mastodon, campaign-mastodon-2)"
    )
    assert codes(problems) == ["same-text-many-accounts"]
    assert cli_check(storm)[0] == 0


def test_enough_distinct_texts_for_every_x_account(storm: Path) -> None:
    add_account(storm, "campaign-x-2", "x", langs=["en"])  # en-01..03 all go to X
    assert report(storm) == []


@pytest.mark.parametrize(
    ("variant", "same"),
    [
        (lambda t: t.upper(), True),
        (lambda t: t.replace(",", "").replace(".", "!!"), True),
        (lambda t: t + " https://example.org/more", True),
        (lambda t: t.replace(" ", "\n", 3), True),
        (lambda t: t.replace("Article 26", "Article 25"), False),
        (lambda t: "Again: " + t, False),
    ],
    ids=["case", "punctuation", "url", "spacing", "one-word", "prefix"],
)
def test_near_duplicate_texts(storm: Path, variant: Callable[[str], str], same: bool) -> None:
    only_en_01(storm)
    [original] = [p for p in load(storm).posts if p.file == EN_01]
    write_post(storm, "en-05-variant.md", variant(original.text), front='platforms = ["x"]')
    add_account(storm, "campaign-x-2", "x", langs=["en"])
    # Each X account posts its own file; only the texts may be (nearly) the same.
    x_items = sorted((i.account, i.source) for i in plan(load(storm)) if i.platform == "x")
    assert [a for a, _ in x_items] == ["campaign-x", "campaign-x-2"]
    assert {f for _, f in x_items} == {EN_01, "posts/en-05-variant.md"}
    found = with_code(report(storm), "same-text-many-accounts")
    assert [(p.severity, p.line) for p in found] == ([("error", None)] if same else [])
    assert (near_duplicate_key(original.text) == near_duplicate_key(variant(original.text))) == same


@pytest.mark.parametrize(
    ("body", "severity", "needle"),
    [
        ("Hello\x00 #FreePalestinianStudents", "error", "control characters (U+0000)"),
        ("Free \u202eseulav #FreePalestinianStudents", "error", "U+202E RIGHT-TO-LEFT OVERRIDE"),
        ("حرية \u2067#FreePalestinianStudents\u2069", "warning", "U+2067 RIGHT-TO-LEFT ISOLATE"),
    ],
)
def test_hidden_characters_in_a_post_are_reported(
    tmp_path: Path, body: str, severity: str, needle: str
) -> None:
    from example import copy_example

    from stormer.storm import load_storm

    root = copy_example(tmp_path / "storm")
    post = root / "posts" / "zz-hidden.md"
    post.write_text(f'+++\nlang = "en"\n+++\n{body}\n', encoding="utf-8")
    found = [p for p in load_storm(root).problems if p.file == "posts/zz-hidden.md"]
    assert [(p.severity, p.code, p.line) for p in found] == [(severity, "bad-text", 4)]
    assert needle in found[0].message


def test_clean_text_with_direction_marks_is_fine() -> None:
    from stormer.storm.posts import text_problems

    assert text_problems("حرية للطلاب\u200f #FreePalestinianStudents\nline two\ttab") == []


# --- posts no account posts, and samples handed to participants ------------------------------


def handed(root: Path) -> set[str]:
    from stormer.reminders import handed_samples

    return handed_samples(load(root))


def test_an_arabic_post_for_x_with_no_arabic_x_account_is_unused_but_checked(storm: Path) -> None:
    # The case: no X account takes Arabic, yet reminders hand the post to Arabic
    # participants with an X click-to-post link — so it is measured against X all the same.
    post = write_post(
        storm, "zz-ar-x.md", text_of_length(290, "ب"), lang="ar", front='platforms = ["x"]'
    )
    assert post.file in handed(storm)
    problems = report(storm)
    unused = the_one(problems, "post-unused")
    assert (unused.severity, unused.file, unused.line) == ("warning", post.file, None)
    assert unused.message == (
        f"no account will post {post.file} (no account on x takes its language 'ar': add it "
        "to an account's langs, or change the post's platforms or accounts); it is only "
        "handed to participants as a sample in their reminders"
    )
    too_long = the_one(problems, "too-long")
    assert (too_long.severity, too_long.line) == ("error", post.text_line)
    assert too_long.message.startswith("X: 290 > 280 ")
    assert sorted(codes(problems)) == ["post-unused", "too-long"]


@pytest.mark.parametrize(
    ("front", "why"),
    [
        ('platforms = ["x"]', "no account on x takes its language 'de'"),
        ("", "no account takes its language 'de'"),
        (
            'platforms = ["mastodon"]\naccounts = ["campaign-x"]',
            "its accounts = ['campaign-x'] name no account on mastodon",
        ),
        ('accounts = ["campaign-x"]', "no account among those it names takes its language 'de'"),
    ],
)
def test_a_post_nobody_posts_or_gets_says_why(storm: Path, front: str, why: str) -> None:
    # Nobody speaks German here: no account takes it and no participant is handed it.
    post = write_post(storm, "zz-de.md", f"{HASHTAG} Freiheit", lang="de", front=front)
    assert post.file not in handed(storm)
    unused = the_one(report(storm), "post-unused")
    assert unused.message.startswith(f"no account will post {post.file} ({why}")
    assert unused.message.endswith("); nor do reminders hand it to anyone: it is not used at all")


def test_platforms_no_account_is_on(storm: Path) -> None:
    edit_config(
        storm,
        'platform = "discord"',
        'platform = "matrix"\nbase_url = "https://m.example.org"\ntarget = "!r:m.example.org"',
    )
    post = write_post(storm, "zz-d.md", f"{HASHTAG} hi", front='platforms = ["discord"]')
    assert "its platforms = ['discord'] match no account in config.toml" in (
        the_one(report(storm), "post-unused").message
    )
    assert post.file


def test_a_post_some_account_takes_is_not_unused(storm: Path) -> None:
    write_post(storm, "zz-x.md", f"{HASHTAG} for X", front='platforms = ["x"]')
    assert with_code(report(storm), "post-unused") == []


def test_a_sample_too_long_for_its_click_to_post_links(storm: Path) -> None:
    # Arabic goes to the Telegram and Matrix accounts (350 fits both), but Arabic
    # participants get it with X and Bluesky links, over their limits.
    post = write_post(storm, "zz-ar.md", text_of_length(350, "ب"), lang="ar")
    assert post.file in handed(storm)
    problems = report(storm)
    assert [(p.code, p.severity, p.file, p.line) for p in problems] == [
        ("sample-too-long", "warning", post.file, post.text_line)
    ] * 2
    assert sorted(p.message.split(": reminders")[0] for p in problems) == [
        "Bluesky: 350 > 300",
        "X: 350 > 280",
    ]
    assert "click-to-post link" in problems[0].message
    # Kept off X and Bluesky, it gets no link there, and is not measured for them.
    write_post(
        storm,
        "zz-ar.md",
        text_of_length(350, "ب"),
        lang="ar",
        front='platforms = ["telegram", "matrix"]',
    )
    assert report(storm) == []


def test_a_post_that_is_not_handed_out_is_not_measured_for_links(storm: Path) -> None:
    # A long French post: its accounts (Mastodon fr, Matrix) take 400; French participants
    # exist, so it is handed out — unless the reminders are off.
    edit_config(storm, 'offsets = ["24h", "1h", "10m"]', "offsets = []")
    write_post(storm, "zz-fr.md", text_of_length(400), lang="fr")
    assert handed(storm) == set()
    assert report(storm) == []
