"""`stormer check`: the images a post attaches (missing, outside posts/, no alt text, broken,
over the limits of a platform that will carry it, telling where they were taken).

The approach and the helpers: check_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from check_helpers import (
    CONFIG,
    HASHTAG,
    IMAGES_LINE,
    Written,
    cli_check,
    codes,
    image_post,
    line_of,
    report,
    the_one,
    with_code,
    write_post,
)
from example import copy_example
from image_files import flat_png, jpeg_with_gps, noisy_png
from typer.testing import CliRunner

from stormer import cli
from stormer.channels.base import ImageLimits
from stormer.channels.bluesky import Bluesky
from stormer.channels.mastodon import Mastodon
from stormer.ops.images import megabytes

# --- images ---------------------------------------------------------------------------------


def test_missing_image(storm: Path) -> None:
    post = image_post(storm, '{ path = "images/nope.png", alt = "nothing" }')
    problems = report(storm)
    p = the_one(problems, "missing-image")
    assert (p.severity, p.file, p.line) == ("error", post.file, IMAGES_LINE)
    assert p.message == "image 'images/nope.png' not found (looked for posts/images/nope.png)"
    assert codes(problems) == ["missing-image"]


@pytest.mark.parametrize("path", ["../config.toml", "images/../../participants.csv", "ABSOLUTE"])
def test_image_outside_posts(storm: Path, path: str) -> None:
    if path == "ABSOLUTE":
        path = (storm / CONFIG).as_posix()
    post = image_post(storm, f'{{ path = "{path}", alt = "a file" }}')
    problems = report(storm)
    p = the_one(problems, "image-outside-posts")
    assert (p.severity, p.file, p.line) == ("error", post.file, IMAGES_LINE)
    assert p.message.startswith(f"image {path!r} is outside posts/")
    assert codes(problems) == ["image-outside-posts"]


@pytest.mark.parametrize(
    "spec",
    [
        '{ path = "images/flag-book.png", alt = "" }',
        '{ path = "images/flag-book.png", alt = "   " }',
        '{ path = "images/flag-book.png" }',
    ],
    ids=["empty", "blank", "absent"],
)
def test_missing_alt_text_is_a_warning(storm: Path, spec: str) -> None:
    post = image_post(storm, spec)
    problems = report(storm)
    p = the_one(problems, "missing-alt-text")
    assert (p.severity, p.file, p.line) == ("warning", post.file, IMAGES_LINE)
    assert "'images/flag-book.png' has no alt text" in p.message
    assert codes(problems) == ["missing-alt-text"]
    assert cli_check(storm)[0] == 0  # warnings alone do not fail the check


def test_bad_image(storm: Path) -> None:
    (storm / "posts" / "images" / "fake.png").write_text("not an image at all\n")
    post = image_post(storm, '{ path = "images/fake.png", alt = "fake" }')
    problems = report(storm)
    p = the_one(problems, "bad-image")
    assert (p.severity, p.file, p.line) == ("error", post.file, IMAGES_LINE)
    assert p.message == (
        "posts/images/fake.png: not an image (Pillow cannot read it as PNG, JPEG, GIF or WebP)"
    )
    assert codes(problems) == ["bad-image"]


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",  # cut inside the IHDR chunk
        b"\xff\xd8\xff\xe0",  # a JPEG cut after its first marker
    ],
    ids=["png", "jpeg"],
)
def test_truncated_image_is_a_bad_image(storm: Path, data: bytes) -> None:
    (storm / "posts" / "images" / "cut.png").write_bytes(data)
    post = image_post(storm, '{ path = "images/cut.png", alt = "cut" }')
    p = the_one(report(storm), "bad-image")
    assert (p.severity, p.file, p.line) == ("error", post.file, IMAGES_LINE)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ('{ path = "images/flag-book.png", alt = "x", title = "t" }', "unknown keys: title"),
        ('{ alt = "no path" }', 'images[0] must be { path = "...", alt = "..." }'),
    ],
    ids=["unknown-key", "no-path"],
)
def test_bad_image_spec(storm: Path, spec: str, fragment: str) -> None:
    post = image_post(storm, spec)
    p = the_one(report(storm), "bad-front-matter")
    assert (p.severity, p.file, p.line) == ("error", post.file, IMAGES_LINE)
    assert fragment in p.message


# --- against the limits of the platforms that will carry it -------------------------------------


def big_post(
    root: Path, image: str, platforms: str, *, lang: str = "en", alt: str = "a"
) -> Written:
    """posts/zz-big.md, restricted to `platforms`, attaching posts/images/IMAGE."""
    post = write_post(
        root,
        "zz-big.md",
        f"{HASHTAG} with a big image",
        lang=lang,
        front=f'platforms = [{platforms}]\nimages = [{{ path = "images/{image}", alt = "{alt}" }}]',
    )
    assert line_of(root / post.file, "images = ") == IMAGES_LINE
    return post


def test_an_image_over_a_platforms_byte_limit_with_the_numbers(storm: Path) -> None:
    size = noisy_png(storm / "posts" / "images" / "big.png", 1600, 1400)
    assert 5_000_000 < size < 10_000_000
    post = big_post(storm, "big.png", '"x", "bluesky", "mastodon"')
    problems = with_code(report(storm), "image-too-large")
    assert {(p.severity, p.file, p.line) for p in problems} == {("error", post.file, IMAGES_LINE)}
    shown = megabytes(size)
    assert sorted(p.message for p in problems) == [
        f"posts/images/big.png: {shown} > 1 MB (Bluesky's image limit, "
        f"{Bluesky.image_limits.source}); run `stormer check --fix-images` for a copy that fits",
        f"posts/images/big.png: {shown} > 5 MB (X's image limit, "
        "https://docs.x.com/x-api/media/quickstart/best-practices); run `stormer check "
        "--fix-images` for a copy that fits",
    ]  # not Mastodon's 16 MiB
    assert cli_check(storm)[0] == 1


def test_the_platforms_a_post_goes_to_decide(storm: Path) -> None:
    noisy_png(storm / "posts" / "images" / "big.png", 700, 600)  # over Bluesky's 1 MB only
    big_post(storm, "big.png", '"x", "mastodon"')
    assert with_code(report(storm), "image-too-large") == []
    big_post(storm, "big.png", '"x", "bluesky"')
    assert [p.message.split(" (")[1] for p in with_code(report(storm), "image-too-large")] == [
        f"Bluesky's image limit, {Bluesky.image_limits.source}); run `stormer check --fix-images`"
        " for a copy that fits"
    ]


def test_a_big_file_that_is_no_image_is_an_error_naming_it(storm: Path) -> None:
    with (storm / "posts" / "images" / "poster.png").open("wb") as f:
        f.truncate(50 * 1000 * 1000)  # 50 MB of zeros named .png
    post = big_post(storm, "poster.png", '"x"')
    p = the_one(report(storm), "bad-image")
    assert (p.severity, p.file, p.line) == ("error", post.file, IMAGES_LINE)
    assert p.message.startswith("posts/images/poster.png: not an image")


def test_a_panorama_past_telegrams_ratio(storm: Path) -> None:
    flat_png(storm / "posts" / "images" / "pano.png", 2100, 100)
    post = big_post(storm, "pano.png", '"telegram"', lang="ar")
    p = the_one(report(storm), "image-aspect-ratio")
    assert (p.severity, p.file, p.line) == ("error", post.file, IMAGES_LINE)
    assert p.message == (
        "posts/images/pano.png: 2100×100 px is 21.0:1 > 20:1 (Telegram's aspect-ratio limit, "
        "https://core.telegram.org/bots/api#sendphoto); crop it to at most 20:1, or keep the "
        "post off Telegram with platforms = [...] in its front matter"
    )


def test_telegrams_width_plus_height(storm: Path) -> None:
    flat_png(storm / "posts" / "images" / "wide.png", 9000, 1200)
    big_post(storm, "wide.png", '"telegram"', lang="ar")
    p = the_one(report(storm), "image-too-big")
    assert p.message.startswith(
        "posts/images/wide.png: 9000×1200 px: width + height 10200 > 10000 (Telegram's size limit"
    )


def test_alt_text_too_long_for_a_platform(storm: Path) -> None:
    big_post(storm, "flag-book.png", '"x", "mastodon"', alt="a" * 1001)
    p = the_one(report(storm), "alt-text-too-long")
    assert p.message == (
        "posts/images/flag-book.png: alt text 1001 characters > 1000 (X's alt-text limit, "
        "https://docs.x.com/x-api/media/create-media-metadata); shorten the alt text"
    )  # Mastodon takes 1500


def test_dimensions_pixels_and_format_as_a_plugin_declares_them(
    storm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits = ImageLimits(
        source="https://example.org/limits",
        max_width=500,
        max_height=500,
        max_pixels=100_000,
        formats=frozenset({"image/jpeg"}),
    )
    monkeypatch.setattr(Mastodon, "image_limits", limits)
    big_post(storm, "flag-book.png", '"mastodon"')  # 800×418 PNG
    found = [
        (p.code, p.message.split(" (")[0]) for p in report(storm) if p.file.endswith("zz-big.md")
    ]
    assert found == [
        ("image-too-big", "posts/images/flag-book.png: 800×418 px > 500×500 px"),
        ("image-too-big", "posts/images/flag-book.png: 800×418 px = 334,400 pixels > 100,000"),
        ("image-format", "posts/images/flag-book.png: image/png not accepted"),
    ]


def test_an_image_telling_where_it_was_taken_is_a_warning(storm: Path) -> None:
    jpeg_with_gps(storm / "posts" / "images" / "demo.jpg", 300, 200)
    post = big_post(storm, "demo.jpg", '"mastodon"')
    p = the_one(report(storm), "image-location")
    assert (p.severity, p.file, p.line) == ("warning", post.file, IMAGES_LINE)
    assert "GPS in its EXIF metadata" in p.message and "--fix-images" in p.message
    assert cli_check(storm)[0] == 0


def test_schedule_refuses_an_image_a_platform_would_refuse_at_t(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staging would upload it and fail at T: the check that guards `schedule` stops it."""
    database = tmp_path / "outbox.db"
    monkeypatch.setenv("STORMER_DATABASE_URL", f"sqlite:///{database}")
    root = copy_example(tmp_path / "storm", at="2031-03-13T18:00:00Z")
    noisy_png(root / "posts" / "images" / "flag-book.png", 700, 600)  # en-01 goes to Bluesky
    result = CliRunner().invoke(cli.app, ["schedule", "--storm", str(root)])
    assert result.exit_code != 0
    assert "image-too-large" in str(result.exception)
    assert "Bluesky's image limit" in str(result.exception)
    assert not database.exists()  # nothing scheduled


def test_a_platform_the_post_names_is_checked_even_with_no_account_there(storm: Path) -> None:
    # No Telegram account takes English: the post goes nowhere yet, but it names Telegram, so
    # its image is held to Telegram's limits (an account may take English tomorrow).
    flat_png(storm / "posts" / "images" / "pano.png", 2100, 100)
    post = big_post(storm, "pano.png", '"telegram"', lang="en")
    problems = report(storm)
    assert the_one(problems, "image-aspect-ratio").file == post.file
    assert the_one(problems, "post-unused").severity == "warning"
