"""`stormer check`: the images a post attaches (missing, outside posts/, no alt text, broken).

The approach and the helpers: check_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from check_helpers import (
    CONFIG,
    IMAGES_LINE,
    cli_check,
    codes,
    image_post,
    report,
    the_one,
)

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
