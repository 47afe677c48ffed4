"""The sample posts: posts/*.md, each with TOML front matter, and the images they attach."""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import tomli
from pydantic import ValidationError

from stormer.errors import Severity
from stormer.storm import tomlpos
from stormer.storm.images import ImageFile, UnsupportedImage, read_image
from stormer.storm.model import Image, Post
from stormer.storm.problems import ProblemCollector, not_utf8
from stormer.storm.scaffold import is_placeholder
from stormer.storm.schema import FrontMatter
from stormer.storm.tomlpos import KeyPath
from stormer.timezones import known_language

# A problem of a post's front matter, found once for all the posts it heads: severity, code,
# line, message.
_Found = tuple[Severity, str, int, str]


@dataclass
class _ReadOnce:
    """What many posts of a storm share, read once: a front matter (the same few lines head
    thousands of posts: a language, an image), an image file, a language code."""

    fronts: dict[str, tuple[FrontMatter, dict[KeyPath, int]]] = field(default_factory=dict)
    images: dict[str, ImageFile | tuple[str, str]] = field(default_factory=dict)
    # A front matter's images, and what is wrong with them, the same for every post it heads.
    attached: dict[str, tuple[tuple[Image, ...], list[_Found]]] = field(default_factory=dict)
    languages: dict[str, bool] = field(default_factory=dict)

    def known_language(self, lang: str) -> bool:
        known = self.languages.get(lang)
        if known is None:
            known = self.languages[lang] = known_language(lang)
        return known


def load_posts(
    root: Path,
    hashtag: str,
    account_names: set[str],
    c: ProblemCollector,
    known_platforms: set[str] | None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[Post]:
    """The posts in posts/*.md, in file-name order; a bad post is reported and left out.
    `progress(step, done, total)` is told how many are read so far."""
    posts_dir = root / "posts"
    if not posts_dir.is_dir():
        c.add(
            "error",
            "no-posts",
            "posts/",
            None,
            "no posts/ folder: write sample posts as posts/*.md (see `stormer init`)",
        )
        return []
    posts = []
    read = _ReadOnce()
    tag = re.compile(re.escape(hashtag) + r"(?!\w)", re.I)
    # posts/*.md by name. Entries, not Paths: for thousands of posts, asking each one's
    # type and making its Path cost more than reading it.
    entries = sorted(
        (e for e in os.scandir(posts_dir) if e.name.endswith(".md")), key=lambda e: e.name
    )
    for n, entry in enumerate(entries):
        if progress is not None and n % 500 == 0:
            progress("reading posts", n, len(entries))
        rel = f"posts/{entry.name}"
        if not entry.is_file():
            c.add("warning", "not-a-post", rel, None, "a folder, not a post file: ignored")
            continue
        post = _load_post(root, entry.path, rel, c, known_platforms, account_names, read)
        if post is None:
            continue
        if not tag.search(post.text):
            c.add(
                "warning",
                "missing-hashtag",
                post.file,
                post.text_line,
                f"the post does not carry the storm's hashtag {hashtag}",
            )
        posts.append(post)
    if progress is not None:
        progress("reading posts", len(entries), len(entries))
    if not posts and not c.problems:
        c.add("error", "no-posts", "posts/", None, "posts/ holds no *.md sample posts")
    return posts


# Characters that make text display in another order than it is stored (Trojan Source,
# CVE-2021-42574): a post could read one way in a preview and another on the platform.
# Overrides and embeddings are refused; isolates have honest uses in mixed Arabic/Latin
# text, so they are a warning. LRM/RLM (U+200E/U+200F), the usual marks, are fine.
_BIDI_REFUSED = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e"}
_BIDI_WARNED = {"\u2066", "\u2067", "\u2068", "\u2069"}
_BIDI = re.compile("[" + "".join(sorted(_BIDI_REFUSED | _BIDI_WARNED)) + "]")
# Unicode's control characters (category Cc: U+0000–U+001F, U+007F–U+009F) but tab and
# newline; one regular expression finds them faster than asking each character's category.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def text_problems(text: str) -> list[tuple[Severity, str]]:
    """What is wrong with a post's text as characters: NUL and other control characters,
    bidirectional overrides. Each names the first offending character by code point."""
    out: list[tuple[Severity, str]] = []
    controls = sorted(set(_CONTROLS.findall(text))) if _CONTROLS.search(text) else []
    if controls:
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in controls)
        out.append(("error", f"the text contains control characters ({shown}): remove them"))
    if not _BIDI.search(text):
        return out
    levels: list[tuple[set[str], Severity]] = [(_BIDI_REFUSED, "error"), (_BIDI_WARNED, "warning")]
    for chars, severity in levels:
        found = sorted(set(text) & chars)
        if found:
            shown = ", ".join(f"U+{ord(ch):04X} {unicodedata.name(ch)}" for ch in found)
            out.append(
                (
                    severity,
                    f"the text contains bidirectional formatting ({shown}), which can make it "
                    "read differently from what it is: remove it (U+200E/U+200F marks are fine)",
                )
            )
    return out


def _read(path: str) -> bytes:
    """A file's bytes through the system calls alone: for thousands of small posts, the file
    object `open` builds around them costs twice the reading."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def _load_post(
    root: Path,
    path: str,
    rel: str,
    c: ProblemCollector,
    known_platforms: set[str] | None,
    account_names: set[str],
    read: _ReadOnce,
) -> Post | None:
    try:
        source = _read(path).decode("utf-8")
    except UnicodeDecodeError as e:
        c.add("error", "bad-post", rel, None, f"not UTF-8 text ({not_utf8(e)})")
        return None
    lines = source.splitlines()
    if not lines or lines[0].strip() != "+++":
        c.add(
            "error",
            "bad-front-matter",
            rel,
            1,
            "a post starts with TOML front matter between two '+++' lines "
            '(at least: lang = "en")',
        )
        return None
    try:
        end = next(i for i in range(1, len(lines)) if lines[i].strip() == "+++")
    except StopIteration:
        c.add("error", "bad-front-matter", rel, 1, "the front matter is not closed by a '+++' line")
        return None
    fm_text = "\n".join(lines[1:end])
    front = read.fronts.get(fm_text)
    if front is None:
        front = _front_matter(rel, fm_text, end, c)
        if front is None:
            return None
        read.fronts[fm_text] = front
    fm, fm_lines = front
    body_start = end + 1
    while body_start < len(lines) and not lines[body_start].strip():
        body_start += 1
    text = "\n".join(lines[body_start:]).strip()
    for severity, message in text_problems(text):
        c.add(severity, "bad-text", rel, body_start + 1, message)
    if is_placeholder(text):
        c.add(
            "error",
            "placeholder-post",
            rel,
            body_start + 1,
            "still the sample text `stormer init` wrote: write the post in your own words "
            "(or delete the file)",
        )
    if not text and not fm.images:
        c.add("error", "empty-post", rel, body_start + 1, "the post has neither text nor images")
    if known_platforms is not None:
        for p in fm.platforms or []:
            if p not in known_platforms:
                c.add(
                    "error",
                    "unknown-platform",
                    rel,
                    fm_lines.get(("platforms",), 2),
                    f"unknown platform {p!r}; installed: {', '.join(sorted(known_platforms))}",
                )
    for a in fm.accounts or []:
        if a not in account_names:
            c.add(
                "error",
                "unknown-account",
                rel,
                fm_lines.get(("accounts",), 2),
                f"no account named {a!r} in config.toml",
            )
    if not read.known_language(fm.lang):
        c.add(
            "error",
            "bad-lang",
            rel,
            fm_lines.get(("lang",), 2),
            f"lang {fm.lang[:40]!r} is not a language code stormer knows: write e.g. en, es, "
            "fr, it, ar or pt_BR",
        )
        return None
    attached = read.attached.get(fm_text)
    if attached is None:
        attached = read.attached[fm_text] = _load_images(root, fm.images, fm_lines, read.images)
    images, found = attached
    for severity, code, line, message in found:
        c.add(severity, code, rel, line, message)
    return Post(
        file=rel,
        lang=fm.lang,
        text=text,
        text_line=body_start + 1,
        images=images,
        platforms=tuple(fm.platforms) if fm.platforms is not None else None,
        accounts=tuple(fm.accounts) if fm.accounts is not None else None,
    )


def _front_matter(
    rel: str, fm_text: str, end: int, c: ProblemCollector
) -> tuple[FrontMatter, dict[KeyPath, int]] | None:
    """The post's front matter (the TOML between its `+++` lines, the closing one on line
    `end` + 1) and the line of each key; None, reported, when it is not valid."""
    try:
        raw = tomli.loads(fm_text)
    except tomli.TOMLDecodeError as e:
        at = tomlpos.syntax_error(e, fm_text, first_line=2)  # line 1 is the opening +++
        c.add(
            "error",
            "bad-front-matter",
            rel,
            at.line or end + 1,  # the end of the front matter: its closing +++
            f"front matter is not valid TOML: {at.reason}",
            column=at.column,
            excerpt=at.excerpt,
        )
        return None
    fm_lines = {k: v + 1 for k, v in tomlpos.key_lines(fm_text).items()}
    try:
        return FrontMatter.model_validate(raw), fm_lines
    except ValidationError as e:
        for err in e.errors():
            loc = tuple(err["loc"])
            c.add(
                "error",
                "bad-front-matter",
                rel,
                tomlpos.line_of(fm_lines, loc) or 2,
                f"{'.'.join(map(str, loc))}: {err['msg']}",
            )
        return None


def _load_images(
    root: Path,
    specs: list[dict[str, str]],
    fm_lines: dict[KeyPath, int],
    files: dict[str, ImageFile | tuple[str, str]],
) -> tuple[tuple[Image, ...], list[_Found]]:
    """The images a front matter attaches, and what is wrong with them; `files` (shared by
    every post of the storm) holds what each image file is, or why it cannot be used, so a
    file many posts attach is read once."""
    images = []
    found_wrong: list[_Found] = []
    for i, spec in enumerate(specs):
        line = tomlpos.line_of(fm_lines, ("images",)) or 2
        unknown = set(spec) - {"path", "alt"}
        if unknown or "path" not in spec:
            found_wrong.append(
                (
                    "error",
                    "bad-front-matter",
                    line,
                    f'images[{i}] must be {{ path = "...", alt = "..." }}'
                    + (f"; unknown keys: {', '.join(sorted(unknown))}" if unknown else ""),
                )
            )
            continue
        found = files.get(spec["path"])
        if found is None:
            found = files[spec["path"]] = _image_file(root, spec["path"])
        if isinstance(found, tuple):
            found_wrong.append(("error", found[0], line, found[1]))
            continue
        if found.gps:
            found_wrong.append(
                (
                    "warning",
                    "image-location",
                    line,
                    f"image {spec['path']!r} says where it was taken (GPS in its EXIF metadata), "
                    "which can put the people in it at risk; `stormer check --fix-images` writes "
                    "a copy without it",
                )
            )
        alt = spec.get("alt", "").strip()
        if not alt:
            found_wrong.append(
                (
                    "warning",
                    "missing-alt-text",
                    line,
                    f"image {spec['path']!r} has no alt text; people using screen readers "
                    "will not know what it shows",
                )
            )
        images.append(Image(spec["path"], alt, found.mime, found.width, found.height, line))
    return tuple(images), found_wrong


def _image_file(root: Path, path: str) -> ImageFile | tuple[str, str]:
    """What the image at `path` (as a post names it, relative to posts/) is, or the code
    and message of why it cannot be attached."""
    posts_dir = (root / "posts").resolve()
    target = (posts_dir / path).resolve()
    if not target.is_relative_to(posts_dir):
        return (
            "image-outside-posts",
            f"image {path!r} is outside posts/; keep images inside the posts folder "
            "(e.g. posts/images/)",
        )
    if not target.is_file():
        return "missing-image", f"image {path!r} not found (looked for posts/{path})"
    try:
        return read_image(target)
    except UnsupportedImage as e:
        return "bad-image", f"posts/{path}: {e}"
