"""A new storm from the templates in stormer/templates/init/."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from string import Template

from stormer.errors import StormerError
from stormer.timezones import iso_utc, parse_when

TEMPLATES = Path(__file__).parent.parent / "templates" / "init"


def scaffold(
    directory: Path,
    *,
    name: str | None,
    hashtag: str,
    at: str | None,
    tz: str | None,
    now: datetime | None = None,
) -> list[Path]:
    """Write a storm into `directory` (which must not hold one yet); return the files made."""
    if not re.fullmatch(r"#\w+", hashtag):
        raise StormerError(f"{hashtag!r} is not a hashtag: write it like #FreePalestinianStudents")
    if (directory / "config.toml").exists():
        raise StormerError(f"{directory / 'config.toml'} exists already; choose another folder")
    if at is None:
        if tz:
            raise StormerError("--tz needs --at: give the wall time in that zone")
        start = (now or datetime.now(UTC)) + timedelta(days=7)
        at_text, tz_line = iso_utc(start.replace(minute=0, second=0, microsecond=0)), ""
    else:
        parse_when(at, tz)  # refuse gaps, folds and unknown zones now, not at check time
        at_text, tz_line = at, f'tz = "{tz}"' if tz else ""
    values = {
        "name": (name or directory.name or "My storm").replace('"', "'"),
        "hashtag": hashtag,
        "at": at_text,
        "tz_line": tz_line,
    }
    created = []
    for template in sorted(TEMPLATES.rglob("*")):
        if template.is_dir():
            continue
        target = directory / template.relative_to(TEMPLATES)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(
            Template(template.read_text(encoding="utf-8")).substitute(values), encoding="utf-8"
        )
        created.append(target)
    return created


_TAGS_AND_FIELDS = re.compile(r"\$\{\w+\}|#\w+")


def _words(text: str) -> str:
    """`text` without hashtags, `${…}` placeholders and spacing: what an edit would change."""
    return " ".join(_TAGS_AND_FIELDS.sub(" ", text).split()).casefold()


@functools.cache
def _placeholders() -> frozenset[str]:
    bodies = set()
    for template in (TEMPLATES / "posts").glob("*.md"):
        body = template.read_text(encoding="utf-8").rsplit("+++", 1)[-1]
        bodies.add(_words(body))
    return frozenset(bodies)


def is_placeholder(text: str) -> bool:
    """Whether a post's text is still one that `stormer init` wrote ("Write your sample post
    here…"), whatever hashtag it carries: such a post must not be queued or handed out."""
    return _words(text) in _placeholders()
