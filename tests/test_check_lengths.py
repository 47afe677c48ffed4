"""`stormer check`: posts too long for a platform, each platform counted its own way, and
too many images.

The approach and the helpers: check_helpers.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from check_helpers import (
    HASHTAG,
    IMAGE,
    Written,
    cli_check,
    codes,
    edit,
    report,
    text_of_length,
    the_one,
    write_post,
)

# --- too-long: each platform counted its own way -----------------------------------------------


@dataclass(frozen=True)
class LimitCase:
    platform: str
    title: str
    lang: str
    limit: int
    unit: str  # what the padding is made of
    weight: int  # how much one unit counts on this platform
    image: bool = False


LIMITS = [
    # X weighs CJK as 2: 128 × "中" after the 25-character "#FreePalestinianStudents ".
    LimitCase("x", "X", "en", 280, "中", 2),
    # Bluesky counts graphemes: "e" + combining acute is one.
    LimitCase("bluesky", "Bluesky", "en", 300, "e\u0301", 1),
    LimitCase("mastodon", "Mastodon", "en", 500, "ö", 1),
    # Telegram counts UTF-16 code units; with an image the text is a 1024-unit caption.
    LimitCase("telegram", "Telegram", "ar", 1024, "ب", 1, image=True),
    LimitCase("discord", "Discord", "en", 2000, "a", 1),
]


def limit_post(root: Path, case: LimitCase, length: int, *, image: bool) -> Written:
    front = f'platforms = ["{case.platform}"]'
    if image:
        front += f"\nimages = [{IMAGE}]"
    return write_post(
        root,
        f"zz-{case.platform}.md",
        text_of_length(length, case.unit, case.weight),
        lang=case.lang,
        front=front,
    )


@pytest.mark.parametrize("case", LIMITS, ids=lambda c: c.platform)
def test_too_long(storm: Path, case: LimitCase) -> None:
    post = limit_post(storm, case, case.limit + 1, image=case.image)
    problems = report(storm)
    p = the_one(problems, "too-long")
    assert (p.severity, p.file, p.line) == ("error", post.file, post.text_line)
    assert p.message.startswith(f"{case.title}: {case.limit + 1} > {case.limit} ")
    assert ("(caption limit)" in p.message) == case.image
    assert codes(problems) == ["too-long"]


@pytest.mark.parametrize("case", LIMITS, ids=lambda c: c.platform)
def test_exactly_at_the_limit_passes(storm: Path, case: LimitCase) -> None:
    limit_post(storm, case, case.limit, image=case.image)
    assert report(storm) == []


def test_telegram_text_without_image_has_the_message_limit(storm: Path) -> None:
    case = LIMITS[3]
    limit_post(storm, case, 1025, image=False)  # too long as a caption, fine as a message
    assert report(storm) == []
    limit_post(storm, case, 4097, image=False)
    assert the_one(report(storm), "too-long").message.startswith("Telegram: 4097 > 4096 (limit)")


def test_x_counts_a_url_as_23(storm: Path) -> None:
    url = "https://example.org/" + "a" * 300
    post = write_post(
        storm, "zz-x.md", text_of_length(280 - 24) + " " + url, front='platforms = ["x"]'
    )
    assert report(storm) == []
    edit(storm / post.file, url, url + " b")
    assert the_one(report(storm), "too-long").message.startswith("X: 282 > 280")


def test_every_platform_a_post_goes_to_gets_its_own_problem(storm: Path) -> None:
    # An English post with no restriction goes to the English accounts: Mastodon, Bluesky,
    # X and Discord (Telegram and Matrix carry Arabic and French only).
    post = write_post(storm, "zz-long.md", text_of_length(2001))
    problems = report(storm)
    assert [(p.code, p.severity, p.file, p.line) for p in problems] == [
        ("too-long", "error", post.file, post.text_line)
    ] * 4
    assert [p.message.split(" (")[0] for p in problems] == [
        "Bluesky: 2001 > 300",
        "Discord: 2001 > 2000",
        "Mastodon: 2001 > 500",
        "X: 2001 > 280",
    ]


def test_too_long_on_the_cli(storm: Path) -> None:
    post = limit_post(storm, LIMITS[0], 281, image=False)
    code, problems = cli_check(storm)
    assert code == 1
    too_long = [p for p in problems if p["code"] == "too-long"]
    assert [(p["severity"], p["file"], p["line"]) for p in too_long] == [
        ("error", post.file, post.text_line)
    ]
    assert "X" in too_long[0]["message"] and "281 > 280" in too_long[0]["message"]


def test_too_many_images(storm: Path) -> None:
    images = ", ".join([IMAGE] * 5)
    post = write_post(
        storm,
        "zz-album.md",
        f"{HASHTAG} album",
        front=f'platforms = ["x", "discord"]\nimages = [{images}]',
    )
    p = the_one(report(storm), "too-many-images")  # Discord takes 10, X only 4
    assert (p.severity, p.file, p.line) == ("error", post.file, None)
    assert p.message == "X: 5 images, at most 4 allowed"
