"""`stormer check --fix-images`: a copy of each image that a platform carrying it would refuse,
re-encoded with Pillow within the tightest limits of all its platforms, or of an image that
says where it was taken (GPS in its EXIF), without it.

The copy is written next to the original as NAME.fit.EXT. The original and the posts are never
changed: the organizer is told which line of which post to point at the copy, so that what
goes out is what they chose. An image that no copy can fit (an aspect ratio outside a
platform's range) is reported with the reason; `check` keeps it an error.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from stormer.channels import registry
from stormer.ops.images import breaches_of, megabytes, target_platforms, tightest
from stormer.plan import Eligibility
from stormer.storm.images import UnsupportedImage, open_upright, read_image

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from stormer.ops.images import Fit
    from stormer.storm import Image, Storm

QUALITIES = (85, 70)  # lossy encodings, tried in this order; below 70, a smaller picture
# looks better than a blotchy one
SHRINK = 0.9  # at least this much smaller at each step when no quality is under the limit
SMALLEST = 320  # pixels on the longer side: below that a picture shows little; give up
SUFFIX = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
KEPT_MODES = {"PNG": ("1", "L", "LA", "P", "RGB", "RGBA"), "WEBP": ("RGB", "RGBA")}
# Which encodings to try for a source format, best first: the source's own kind (lossless PNG
# stays PNG while it fits), then the lossy ones.
ORDER = {
    "image/jpeg": ("JPEG", "WEBP", "PNG"),
    "image/png": ("PNG", "JPEG", "WEBP"),
    "image/gif": ("PNG", "JPEG", "WEBP"),
    "image/webp": ("WEBP", "JPEG", "PNG"),
}


@dataclass
class Fixed:
    """What --fix-images did for one image (a path relative to posts/)."""

    image: str
    uses: list[tuple[str, int | None]]  # (post file, line of its `images`) attaching it
    copy: str | None = None  # the copy's path, relative to posts/, as a post would name it
    done: list[str] = field(default_factory=list)  # what the copy changed
    error: str | None = None  # why no copy can fit


def fix_images(storm: Storm) -> list[Fixed]:
    """For every image that needs it, write its copy; say what was done for each."""
    uses: dict[str, list[tuple[str, int | None]]] = {}
    targets: dict[str, set[str]] = {}
    images: dict[str, Image] = {}
    index, known = Eligibility(storm.posts, storm.accounts), frozenset(registry.installed())
    for post in storm.posts:
        names = target_platforms(index, post, known)
        for image in post.images:
            uses.setdefault(image.path, []).append((post.file, image.line))
            targets.setdefault(image.path, set()).update(names)
            images.setdefault(image.path, image)
    out = []
    for path in sorted(uses):
        fixed = _fix_one(storm, images[path], sorted(targets[path]), uses[path])
        if fixed is not None:
            out.append(fixed)
    return out


def _fix_one(
    storm: Storm, image: Image, names: list[str], uses: list[tuple[str, int | None]]
) -> Fixed | None:
    src = storm.root / "posts" / image.path
    try:
        size = src.stat().st_size
        found_file = read_image(src)
    except (OSError, UnsupportedImage):
        return None  # `check` reports it as it reports any image it cannot read
    plugins = [registry.get(name) for name in names]
    found = [(p.title, b) for p in plugins for b in breaches_of(p, image, size)]
    gps = found_file.gps
    if not gps and all(b.code == "alt-text-too-long" for _, b in found):
        return None  # the picture fits (a long alt text is the post's to shorten)
    fixed = Fixed(image.path, uses)
    stuck = [(title, b) for title, b in found if b.code == "image-aspect-ratio"]
    if stuck:
        fixed.error = "; ".join(
            f"{b.numbers} ({title}'s {b.limit} limit, {b.source}): no copy can fit; {b.advice}"
            for title, b in stuck
        )
        return fixed
    fit = tightest(plugins)
    order = [f for f in ORDER.get(image.mime, ("JPEG", "PNG")) if _allowed(fit, f)]
    if not order:
        fixed.error = f"{' and '.join(fit.platforms)} share no format stormer can write"
        return fixed
    upright = open_upright(src)
    encoded = _encode(upright, fit, order)
    if encoded is None:
        fixed.error = (
            f"no copy of at least {SMALLEST} px is under {megabytes(fit.max_bytes or 0)}"
            f" ({' and '.join(fit.platforms)})"
        )
        return fixed
    data, fmt, (w, h), quality = encoded
    name = src.with_name(src.stem + ".fit" + SUFFIX[fmt])
    name.write_bytes(data)
    fixed.copy = name.relative_to(storm.root / "posts").as_posix()
    fixed.done.append(
        f"{megabytes(size)} → {megabytes(len(data))}, {image.width}×{image.height} → {w}×{h} px, "
        f"{fmt}" + (f" quality {quality}" if quality else "")
    )
    if found_file.animated:
        fixed.done.append("animation dropped: the copy is its first frame")
    fixed.done.append(
        "GPS location removed with the rest of the metadata"
        if gps
        else "metadata removed (EXIF, XMP, text)"
    )
    return fixed


def _allowed(fit: Fit, fmt: str) -> bool:
    return fit.formats is None or MIME[fmt] in fit.formats


def _encode(
    im: PILImage, fit: Fit, order: list[str]
) -> tuple[bytes, str, tuple[int, int], int | None] | None:
    """The first encoding that meets `fit`: (data, format, size, quality or None for PNG), or
    None. Lossless PNG is tried once, at the largest size allowed (a picture that needs
    shrinking to fit as PNG keeps more of itself as a lossy one); then each lossy format in
    `order`, best quality first, ever smaller: the bytes of an encoding go with its pixels, so
    the next size is guessed from how far over the last one was."""
    from PIL import Image

    width, height = im.size
    start = fit.scale(width, height)
    sizes: dict[tuple[int, int], PILImage] = {}

    def resized(scale: float) -> PILImage:
        size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
        if size not in sizes:
            sizes.clear()  # one resized picture in memory at a time
            sizes[size] = im if size == im.size else im.resize(size, Image.Resampling.LANCZOS)
        return sizes[size]

    def fits(data: bytes) -> bool:
        return fit.max_bytes is None or len(data) <= fit.max_bytes

    if order[0] == "PNG":
        frame = resized(start)
        if fits(data := _save(frame, "PNG", None)):
            return data, "PNG", frame.size, None
    for fmt in [f for f in order if f != "PNG"]:
        scale = start
        while True:
            frame = resized(scale)
            for quality in QUALITIES:
                if fits(data := _save(frame, fmt, quality)):
                    return data, fmt, frame.size, quality
            if max(frame.size) <= SMALLEST:
                break
            assert fit.max_bytes is not None  # else the first encoding fitted
            scale *= min(SHRINK, 0.95 * math.sqrt(fit.max_bytes / len(data)))
    if order == ["PNG"]:  # the only format the platforms share: shrink it until it fits
        scale = start
        while max((frame := resized(scale)).size) > SMALLEST:
            if fits(data := _save(frame, "PNG", None)):
                return data, "PNG", frame.size, None
            assert fit.max_bytes is not None
            scale *= min(SHRINK, 0.95 * math.sqrt(fit.max_bytes / len(data)))
    return None


def _save(im: PILImage, fmt: str, quality: int | None) -> bytes:
    """`im` encoded as `fmt` with no metadata at all (Pillow writes EXIF, XMP and text only
    when asked) but its colour profile."""
    from PIL import Image

    alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if fmt == "JPEG":
        if alpha:  # JPEG has no transparency: what is clear shows white, as on a page
            rgba = im.convert("RGBA")
            flat = Image.new("RGB", im.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            im = flat
        elif im.mode != "RGB":
            im = im.convert("RGB")
    elif im.mode not in KEPT_MODES[fmt]:
        im = im.convert("RGBA" if alpha else "RGB")
    options: dict[str, object] = {}
    if quality is not None:
        options["quality"] = quality
    if icc := im.info.get("icc_profile"):
        options["icc_profile"] = icc
    buffer = io.BytesIO()
    im.save(buffer, fmt, **options)
    return buffer.getvalue()
