"""`stormer check --fix-images`: copies that fit, made from real images (Pillow, in tmp), with
the originals and the posts untouched and the organizer told what to change."""

from __future__ import annotations

import json
from pathlib import Path

from check_helpers import HASHTAG, IMAGES_LINE, Written, codes, report, with_code, write_post
from image_files import GPS, flat_png, jpeg_with_gps, noisy_png
from PIL import Image
from typer.testing import CliRunner

from stormer import cli
from stormer.channels.bluesky import Bluesky


def post_with(root: Path, image: str, platforms: str, *, lang: str = "en") -> Written:
    return write_post(
        root,
        "zz-fix.md",
        f"{HASHTAG} with an image",
        lang=lang,
        front=f'platforms = [{platforms}]\nimages = [{{ path = "images/{image}", alt = "a" }}]',
    )


def fix(root: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli.app, ["check", "--fix-images", *extra, "--storm", str(root)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout, result.stderr


def test_a_large_png_gets_a_copy_within_the_tightest_limit(storm: Path) -> None:
    images = storm / "posts" / "images"
    noisy_png(images / "big.png", 1600, 1400)  # over X's 5 MB and Bluesky's 1 MB
    original = (images / "big.png").read_bytes()
    post = post_with(storm, "big.png", '"x", "bluesky", "mastodon"')
    markdown = (storm / post.file).read_text(encoding="utf-8")

    code, out, _ = fix(storm)
    copy = images / "big.fit.jpg"
    assert copy.stat().st_size <= Bluesky.image_limits.max_bytes  # the tightest of the three
    with Image.open(copy) as fitted:
        assert fitted.format == "JPEG"
        width, height = fitted.size
        assert abs(width / height - 1600 / 1400) < 0.01  # smaller, same shape
    # Files named as the user named the storm folder (here an absolute path).
    assert f"fix-images: wrote {images}/big.fit.jpg from {images}/big.png" in out
    assert (
        f'  {storm / post.file}:{IMAGES_LINE}: path = "images/big.png"  →  '
        'path = "images/big.fit.jpg"' in out
    )
    assert "stormer edits no post" in out
    # The original and the post are as they were; check still fails until the post moves.
    assert (images / "big.png").read_bytes() == original
    assert (storm / post.file).read_text(encoding="utf-8") == markdown
    assert code == 1 and "image-too-large" in out

    (storm / post.file).write_text(markdown.replace("big.png", "big.fit.jpg"), encoding="utf-8")
    assert [p for p in report(storm) if p.severity == "error"] == []


def test_telegrams_width_plus_height_is_met_by_scaling_down(storm: Path) -> None:
    flat_png(storm / "posts" / "images" / "wide.png", 9000, 1200)
    post_with(storm, "wide.png", '"telegram"', lang="ar")
    fix(storm)
    with Image.open(storm / "posts" / "images" / "wide.fit.png") as fitted:  # still lossless
        width, height = fitted.size
    assert width + height <= 10_000 and abs(width / height - 7.5) < 0.01


def test_a_panorama_past_the_ratio_cannot_be_fitted(storm: Path) -> None:
    flat_png(storm / "posts" / "images" / "pano.png", 2100, 100)
    post_with(storm, "pano.png", '"telegram"', lang="ar")
    code, out, _ = fix(storm)
    assert f"fix-images: {storm}/posts/images/pano.png cannot be made to fit: 2100×100 px" in out
    assert "no copy can fit; crop it to at most 20:1" in out
    assert not list((storm / "posts" / "images").glob("pano.fit.*"))
    assert code == 1 and "image-aspect-ratio" in codes(report(storm))


def test_gps_and_orientation(storm: Path) -> None:
    """A picture that says where it was taken: the copy says nothing, and stands upright."""
    images = storm / "posts" / "images"
    jpeg_with_gps(images / "demo.jpg", 300, 200)  # held sideways: shows 200 × 300
    post = post_with(storm, "demo.jpg", '"mastodon", "matrix"', lang="fr")
    code, out, _ = fix(storm)
    assert "GPS location removed with the rest of the metadata" in out
    with Image.open(images / "demo.fit.jpg") as fitted:
        assert fitted.size == (200, 300)
        exif = fitted.getexif()
        assert not exif.get_ifd(0x8825) and 0x0112 not in exif
        assert "exif" not in fitted.info and "xmp" not in fitted.info
    with Image.open(images / "demo.jpg") as original:  # untouched
        assert dict(original.getexif().get_ifd(0x8825)) == GPS
    assert code == 0  # a warning only
    markdown = (storm / post.file).read_text(encoding="utf-8")
    (storm / post.file).write_text(markdown.replace("demo.jpg", "demo.fit.jpg"), encoding="utf-8")
    assert with_code(report(storm), "image-location") == []


def test_nothing_to_do_and_json_stays_json(storm: Path) -> None:
    with (storm / "posts" / "images" / "poster.png").open("wb") as f:
        f.truncate(50 * 1000 * 1000)  # not an image: check says so, no copy is attempted
    post_with(storm, "poster.png", '"x"')
    code, out, err = fix(storm, "--json")
    assert code == 1
    assert "bad-image" in [p["code"] for p in json.loads(out)]
    assert "every image fits every platform its posts go to; nothing to do" in err
    assert sorted(p.name for p in (storm / "posts" / "images").iterdir()) == [
        "book-behind-bars.png",
        "flag-book.png",
        "globe-ring.png",
        "graduation-cap.png",
        "poster.png",
    ]
