"""Images against the limits of the platforms that will carry them (`stormer check`): what a
platform would refuse at T — bytes, dimensions, aspect ratio, format, alt text — is an error
before it, with the numbers and the documentation they come from.

The fix (`stormer check --fix-images`, stormer.ops.fit_images) re-encodes a copy within the
tightest limits of an image's platforms; the measuring is here, shared by both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from stormer.channels import registry
from stormer.errors import Problem

if TYPE_CHECKING:
    from stormer.channels.base import ImageLimits, Platform
    from stormer.plan import Eligibility
    from stormer.storm import Image, Post, Storm

FIX = "run `stormer check --fix-images` for a copy that fits"


def target_platforms(index: Eligibility, post: Post, known: frozenset[str]) -> tuple[str, ...]:
    """The installed (`known`) platforms `post` is for: those of the accounts that may carry
    it (as `index` of the storm says), and those it names (an account there may be added,
    or take its language, later)."""
    return _known_sorted(index.platforms_of(post), post.platforms, known)


@lru_cache(maxsize=1024)  # thousands of posts share a few answers
def _known_sorted(
    carried: frozenset[str], named: tuple[str, ...] | None, known: frozenset[str]
) -> tuple[str, ...]:
    return tuple(sorted(name for name in carried.union(named or ()) if name in known))


@dataclass(frozen=True, slots=True)
class Breach:
    """One limit of one platform that an image (or its alt text) is over."""

    code: str
    numbers: str  # "50.1 MB > 5 MB"
    limit: str  # which limit: "image", "dimension"…
    source: str
    advice: str


def megabytes(n: int) -> str:
    """A size as people read it; a limit set in binary units (16 MiB) as it was set."""
    if n and n % 2**20 == 0:
        return f"{n // 2**20} MiB"
    return f"{n / 1_000_000:.1f}".removesuffix(".0") + " MB"


def breaches(limits: ImageLimits, image: Image, size: int, title: str) -> list[Breach]:
    """What `limits` refuse of `image` (`size` bytes on disk); `title` names the platform."""
    out: list[Breach] = []
    src = limits.source

    def add(code: str, numbers: str, limit: str, advice: str = FIX, source: str = src) -> None:
        out.append(Breach(code, numbers, limit, source, advice))

    if limits.max_bytes is not None and size > limits.max_bytes:
        add("image-too-large", f"{megabytes(size)} > {megabytes(limits.max_bytes)}", "image")
    w, h = image.width, image.height
    if w and h:
        px = f"{w}×{h} px"
        max_w, max_h = limits.max_width, limits.max_height
        if (max_w is not None and w > max_w) or (max_h is not None and h > max_h):
            add("image-too-big", f"{px} > {max_w or 'any'}×{max_h or 'any'} px", "dimension")
        if limits.max_pixels is not None and w * h > limits.max_pixels:
            add("image-too-big", f"{px} = {w * h:,} pixels > {limits.max_pixels:,}", "pixel")
        if limits.max_sides is not None and w + h > limits.max_sides:
            add("image-too-big", f"{px}: width + height {w + h} > {limits.max_sides}", "size")
        ratio = max(w, h) / min(w, h)
        if limits.max_aspect is not None and ratio > limits.max_aspect:
            add(
                "image-aspect-ratio",
                f"{px} is {ratio:.1f}:1 > {limits.max_aspect:g}:1",
                "aspect-ratio",
                f"crop it to at most {limits.max_aspect:g}:1, or keep the post off {title} "
                "with platforms = [...] in its front matter",
            )
    if limits.formats is not None and image.mime not in limits.formats:
        add("image-format", f"{image.mime} not accepted", "format")
    if limits.alt_chars is not None and len(image.alt) > limits.alt_chars:
        add(
            "alt-text-too-long",
            f"alt text {len(image.alt)} characters > {limits.alt_chars}",
            "alt-text",
            "shorten the alt text",
            limits.alt_source or src,
        )
    return out


def image_problems(storm: Storm, index: Eligibility) -> list[Problem]:
    """Every image of every post against each platform the post can go to. A file many
    posts attach is measured once, and judged once per platform."""
    out = []
    known = frozenset(registry.installed())
    sizes: dict[str, int | None] = {}
    # By the image object: posts sharing a front matter share its Images, and hashing every
    # field of an Image for each post and platform cost more than judging it.
    judged: dict[tuple[str, int, int], list[Breach]] = {}
    for post in storm.posts:
        names = target_platforms(index, post, known)
        for image in post.images:
            if image.path not in sizes:
                try:
                    sizes[image.path] = (storm.root / "posts" / image.path).stat().st_size
                except OSError:
                    sizes[image.path] = None  # gone since loading: `stormer doctor` says so
            size = sizes[image.path]
            if size is None:
                continue
            for name in names:
                plugin = registry.get(name)
                key = (name, id(image), size)
                found = judged.get(key)
                if found is None:
                    found = judged[key] = breaches_of(plugin, image, size)
                if found:
                    out += _as_problems(post, image, plugin, found)
    return out


def breaches_of(plugin: Platform, image: Image, size: int) -> list[Breach]:
    return breaches(plugin.image_limits, image, size, plugin.title)


def _as_problems(post: Post, image: Image, plugin: Platform, found: list[Breach]) -> list[Problem]:
    return [
        Problem(
            "error",
            b.code,
            post.file,
            image.line,
            f"posts/{image.path}: {b.numbers} ({plugin.title}'s {b.limit} limit, "
            f"{b.source}); {b.advice}",
        )
        for b in found
    ]


@dataclass(frozen=True, slots=True)
class Fit:
    """The tightest limits of all the platforms an image goes to: what its copy must meet."""

    platforms: tuple[str, ...]  # titles, for messages
    max_bytes: int | None
    max_width: int | None
    max_height: int | None
    max_pixels: int | None
    max_sides: int | None
    formats: frozenset[str] | None  # None: any

    def scale(self, width: int, height: int) -> float:
        """The largest scale (at most 1) at which width × height meets every dimension."""
        scales = [1.0]
        if self.max_width:
            scales.append(self.max_width / width)
        if self.max_height:
            scales.append(self.max_height / height)
        if self.max_pixels:
            scales.append(math.sqrt(self.max_pixels / (width * height)))
        if self.max_sides:
            scales.append(self.max_sides / (width + height))
        return min(scales)


def tightest(plugins: list[Platform]) -> Fit:
    def least(values: list[int | None]) -> int | None:
        known = [v for v in values if v is not None]
        return min(known) if known else None

    limits = [p.image_limits for p in plugins]
    formats: frozenset[str] | None = None
    for lim in limits:
        if lim.formats is not None:
            formats = lim.formats if formats is None else formats & lim.formats
    return Fit(
        platforms=tuple(p.title for p in plugins),
        max_bytes=least([lim.max_bytes for lim in limits]),
        max_width=least([lim.max_width for lim in limits]),
        max_height=least([lim.max_height for lim in limits]),
        max_pixels=least([lim.max_pixels for lim in limits]),
        max_sides=least([lim.max_sides for lim in limits]),
        formats=formats,
    )
