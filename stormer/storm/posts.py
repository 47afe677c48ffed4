"""The sample posts: posts/*.md, each with TOML front matter, and the images they attach."""

from __future__ import annotations

import re
import tomllib
import unicodedata
from pathlib import Path

from pydantic import ValidationError

from stormer.errors import Severity
from stormer.storm import tomlpos
from stormer.storm.images import UnsupportedImage, read_image
from stormer.storm.model import Image, Post
from stormer.storm.problems import ProblemCollector, not_utf8
from stormer.storm.scaffold import is_placeholder
from stormer.storm.schema import FrontMatter
from stormer.storm.tomlpos import KeyPath
from stormer.timezones import known_language


def load_posts(
    root: Path,
    hashtag: str,
    account_names: set[str],
    c: ProblemCollector,
    known_platforms: set[str] | None,
) -> list[Post]:
    """The posts in posts/*.md, in file-name order; a bad post is reported and left out."""
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
    tag = re.compile(re.escape(hashtag) + r"(?!\w)", re.I)
    for path in sorted(posts_dir.glob("*.md")):
        if not path.is_file():
            rel = path.relative_to(root).as_posix()
            c.add("warning", "not-a-post", rel, None, "a folder, not a post file: ignored")
            continue
        post = _load_post(root, path, c, known_platforms, account_names)
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
    if not posts and not c.problems:
        c.add("error", "no-posts", "posts/", None, "posts/ holds no *.md sample posts")
    return posts


# Characters that make text display in another order than it is stored (Trojan Source,
# CVE-2021-42574): a post could read one way in a preview and another on the platform.
# Overrides and embeddings are refused; isolates have honest uses in mixed Arabic/Latin
# text, so they are a warning. LRM/RLM (U+200E/U+200F), the usual marks, are fine.
_BIDI_REFUSED = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e"}
_BIDI_WARNED = {"\u2066", "\u2067", "\u2068", "\u2069"}


def text_problems(text: str) -> list[tuple[Severity, str]]:
    """What is wrong with a post's text as characters: NUL and other control characters,
    bidirectional overrides. Each names the first offending character by code point."""
    out: list[tuple[Severity, str]] = []
    controls = sorted({ch for ch in text if unicodedata.category(ch) == "Cc"} - {"\n", "\t"})
    if controls:
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in controls)
        out.append(("error", f"the text contains control characters ({shown}): remove them"))
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


def _load_post(
    root: Path,
    path: Path,
    c: ProblemCollector,
    known_platforms: set[str] | None,
    account_names: set[str],
) -> Post | None:
    rel = path.relative_to(root).as_posix()
    try:
        source = path.read_text(encoding="utf-8")
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
    try:
        raw = tomllib.loads(fm_text)
    except tomllib.TOMLDecodeError as e:
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
        fm = FrontMatter.model_validate(raw)
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
    if not known_language(fm.lang):
        c.add(
            "error",
            "bad-lang",
            rel,
            fm_lines.get(("lang",), 2),
            f"lang {fm.lang[:40]!r} is not a language code stormer knows: write e.g. en, es, "
            "fr, it, ar or pt_BR",
        )
        return None
    images = tuple(_load_images(root, rel, fm.images, fm_lines, c))
    return Post(
        file=rel,
        lang=fm.lang,
        text=text,
        text_line=body_start + 1,
        images=images,
        platforms=tuple(fm.platforms) if fm.platforms is not None else None,
        accounts=tuple(fm.accounts) if fm.accounts is not None else None,
    )


def _load_images(
    root: Path,
    rel: str,
    specs: list[dict[str, str]],
    fm_lines: dict[KeyPath, int],
    c: ProblemCollector,
) -> list[Image]:
    posts_dir = (root / "posts").resolve()
    images = []
    for i, spec in enumerate(specs):
        line = tomlpos.line_of(fm_lines, ("images",)) or 2
        unknown = set(spec) - {"path", "alt"}
        if unknown or "path" not in spec:
            c.add(
                "error",
                "bad-front-matter",
                rel,
                line,
                f'images[{i}] must be {{ path = "...", alt = "..." }}'
                + (f"; unknown keys: {', '.join(sorted(unknown))}" if unknown else ""),
            )
            continue
        target = (posts_dir / spec["path"]).resolve()
        if not target.is_relative_to(posts_dir):
            c.add(
                "error",
                "image-outside-posts",
                rel,
                line,
                f"image {spec['path']!r} is outside posts/; keep images inside the posts "
                "folder (e.g. posts/images/)",
            )
            continue
        if not target.is_file():
            c.add(
                "error",
                "missing-image",
                rel,
                line,
                f"image {spec['path']!r} not found (looked for posts/{spec['path']})",
            )
            continue
        try:
            found = read_image(target)
        except UnsupportedImage as e:
            c.add("error", "bad-image", rel, line, f"posts/{spec['path']}: {e}")
            continue
        if found.gps:
            c.add(
                "warning",
                "image-location",
                rel,
                line,
                f"image {spec['path']!r} says where it was taken (GPS in its EXIF metadata), "
                "which can put the people in it at risk; `stormer check --fix-images` writes "
                "a copy without it",
            )
        alt = spec.get("alt", "").strip()
        if not alt:
            c.add(
                "warning",
                "missing-alt-text",
                rel,
                line,
                f"image {spec['path']!r} has no alt text; people using screen readers "
                "will not know what it shows",
            )
        images.append(Image(spec["path"], alt, found.mime, found.width, found.height, line))
    return images
