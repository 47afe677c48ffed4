"""What the kit's pages show, made from the loaded storm: pure data, no HTML.

Everything here is computed by the code that already owns the job, so that the kit can never
disagree with `check`, `times` or a reminder: the announcement line and the clocks
(`stormer.timezones`), each platform's length and limit (the platform plugins, as `check`
measures a sample handed to participants), the click-to-post links (`reminders.click_to_post`).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Final

from stormer.reminders import RTL, click_to_post

if TYPE_CHECKING:
    from stormer.storm import Post, Storm

# The platforms a participant can post to from the page, in the order the links are shown.
# Mastodon's link is made in the browser: it goes to the visitor's own server, which only
# the visitor knows (https://docs.joinmastodon.org/client/intro/ — every server is its own).
MASTODON: Final = "mastodon"
MEDIA_DIR: Final = "media"  # the kit's copy of posts/… images, under the same relative paths


@dataclass(frozen=True, slots=True)
class Length:
    """A post's length on one platform, counted by that platform's rule, and its limit."""

    platform: str
    title: str
    length: int
    limit: int

    @property
    def over(self) -> bool:
        return self.length > self.limit


@dataclass(frozen=True, slots=True)
class Link:
    platform: str
    title: str
    url: str


@dataclass(frozen=True, slots=True)
class KitImage:
    source: Path  # the file in the storm's posts/
    href: str  # where the kit holds its copy, relative to the pages
    alt: str
    name: str  # the file name offered for download


@dataclass(frozen=True, slots=True)
class KitPost:
    number: int  # 1-based, in the storm's order: element ids are post-<number>-…
    file: str  # posts/….md: stable across builds (what a browser remembers as its first)
    text: str
    lengths: tuple[Length, ...]
    links: tuple[Link, ...]  # made here: X, Bluesky, Telegram (the post allowing)
    mastodon: bool  # whether the post may go to Mastodon (the link is made in the browser)
    images: tuple[KitImage, ...]


@dataclass(frozen=True, slots=True)
class ZoneRow:
    zone: str
    label: str
    clock: str
    day: str
    utc_offset: str


@dataclass(frozen=True, slots=True)
class LangPage:
    lang: str
    direction: str  # "rtl" or "ltr"
    name: str  # the language's own name: "español", "العربية"
    file: str  # "es.html"
    announcement: str
    zones: tuple[ZoneRow, ...]
    embargo_fallback: str  # the storm time without JavaScript: the UTC clock and the line
    posts: tuple[KitPost, ...]


@dataclass(frozen=True, slots=True)
class Kit:
    name: str
    slug: str
    hashtag: str
    at: datetime  # UTC
    at_iso: str  # "2021-03-11T18:00:00Z": what the browser counts down to
    kit_url: str | None
    ics: str  # the .ics file's name in the kit
    pages: tuple[LangPage, ...]
    endorsers: tuple[str, ...]
    images: tuple[KitImage, ...]


def kit_content(storm: Storm) -> Kit:
    """The kit of a storm that `check` accepts (its time is set)."""
    from stormer.timezones import iso_utc

    assert storm.at is not None
    # The storm's default language first (the index's fallback), then in the posts' order.
    langs = sorted(
        dict.fromkeys(p.lang for p in storm.posts if p.text),
        key=lambda lang: lang != storm.default_lang,
    )
    number = {post.file: i for i, post in enumerate(storm.posts, start=1)}
    images = {img.href: img for post in storm.posts for img in _images(storm, post)}
    pages = tuple(
        _page(storm, lang, [p for p in storm.posts if p.text and p.lang == lang], number)
        for lang in langs
    )
    return Kit(
        name=storm.name,
        slug=storm.slug,
        hashtag=storm.hashtag,
        at=storm.at,
        at_iso=iso_utc(storm.at),
        kit_url=storm.kit_url,
        ics=f"{storm.slug}.ics",
        pages=pages,
        endorsers=endorsers(storm),
        images=tuple(images.values()),
    )


def endorsers(storm: Storm) -> tuple[str, ...]:
    """The names of the participants who said yes in participants.csv's `public` column, once
    each, in the file's order: only a name, never a contact."""
    return tuple(dict.fromkeys(p.name for p in storm.participants if p.public))


def _page(storm: Storm, lang: str, posts: list[Post], number: dict[str, int]) -> LangPage:
    from babel import Locale

    from stormer.timezones import (
        announcement,
        format_clock,
        format_day,
        get_zone,
        utc_offset,
        zone_label,
    )

    assert storm.at is not None
    # The table lists the announcement's zones only, never the participants' own: a public
    # page must not say that someone joins from Hebron.
    rows = []
    for az in storm.announce:
        local = storm.at.astimezone(get_zone(az.zone))
        rows.append(
            ZoneRow(
                az.zone,
                zone_label(az, lang),
                format_clock(local, lang),
                format_day(local, lang),
                utc_offset(local),
            )
        )
    # The language's own name, for a menu: "Español", "العربية" (CLDR writes "español").
    own = Locale.parse(lang).get_display_name(lang) or lang
    return LangPage(
        lang=lang,
        direction=direction_of(lang),
        name=own[:1].upper() + own[1:],
        file=f"{lang}.html",
        announcement=announcement(storm.at, storm.announce, lang),
        zones=tuple(rows),
        embargo_fallback=f"{storm.at:%Y-%m-%d %H:%M} UTC",
        posts=tuple(_post(storm, post, number[post.file]) for post in posts),
    )


def direction_of(lang: str) -> str:
    return "rtl" if lang.split("_")[0] in RTL else "ltr"


def _post(storm: Storm, post: Post, number: int) -> KitPost:
    from stormer.channels import registry

    links = click_to_post(post.text, storm.kit_url, post.platforms)
    mastodon = post.platforms is None or MASTODON in post.platforms
    known = registry.installed()
    lengths = []
    for name in [*links, *([MASTODON] if mastodon else [])]:
        if name not in known:
            continue
        plugin = registry.get(name)
        # As `check` measures a sample handed to participants: the text alone, no image
        # (a click-to-post link carries no image; people attach it by hand).
        lengths.append(
            Length(name, plugin.title, plugin.length(post.text), plugin.limit(with_media=False))
        )
    titles = {name: registry.get(name).title for name in links if name in known}
    return KitPost(
        number=number,
        file=post.file,
        text=post.text,
        lengths=tuple(lengths),
        links=tuple(Link(name, titles.get(name, name), url) for name, url in links.items()),
        mastodon=mastodon,
        images=_images(storm, post),
    )


def _images(storm: Storm, post: Post) -> tuple[KitImage, ...]:
    out = []
    for image in post.images:
        relative = PurePosixPath(posixpath.normpath(image.path))  # inside posts/: loaded so
        out.append(
            KitImage(
                source=storm.root / "posts" / relative,
                href=str(PurePosixPath(MEDIA_DIR) / relative),
                alt=image.alt,
                name=relative.name,
            )
        )
    return tuple(out)
