"""The kit's files written into a folder: pages from Jinja2 templates (autoescaped: every
post, name and alt text is text, never markup), the static scripts and styles, the images,
the .ics.

Templates, words and static files come from the package (`stormer/templates/kit/`); a storm
overrides any of them from its own `templates/kit/` (a template or static file of the same
name wins; words.toml is merged, word by word).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Final

import tomli

from stormer.kit import KitError
from stormer.kit.policy import header_policy, meta_policy

if TYPE_CHECKING:
    from jinja2 import Environment

    from stormer.kit.content import Kit, LangPage
    from stormer.storm import Storm

PACKAGE_TEMPLATES: Final = Path(__file__).parents[1] / "templates" / "kit"
STORM_TEMPLATES: Final = Path("templates") / "kit"  # inside a storm folder
STATIC: Final = "static"
FALLBACK: Final = "en"
# The scripts every page loads, in order (classic deferred scripts: a module script does not
# load from file://). A feature with its own script adds its file to static/ and its name
# here; it finds what kit.js shares on `window.stormerKit` (the chosen server, the storm
# instant, each post's text). Scheduling on the visitor's Mastodon (issue 13, item 2):
# `mastodon_account.js` connects the account, `mastodon_schedule.js` schedules the posts
# with what the first shares on `window.stormerMastodon`.
SCRIPTS: Final = ("kit.js", "mastodon_account.js", "mastodon_schedule.js")
STYLES: Final = ("kit.css",)


def write_kit(kit: Kit, storm: Storm, out: Path) -> list[str]:
    """Write every file of the kit into the empty folder `out`; return their relative paths."""
    from stormer.reminders import storm_calendar

    written: list[str] = []
    env = _environment(storm.root)
    words = load_words(storm.root)
    common = {
        "kit": kit,
        "csp": meta_policy(),
        "scripts": [f"{STATIC}/{name}" for name in SCRIPTS],
        "styles": [f"{STATIC}/{name}" for name in STYLES],
    }
    lang = storm.default_lang
    index = _render(env, "index.html.j2", common, None, lang, words_for(words, lang))
    _write(out / "index.html", index, written, out)
    for page in kit.pages:
        html = _render(env, "lang.html.j2", common, page, page.lang, words_for(words, page.lang))
        _write(out / page.file, html, written, out)
    for folder in (PACKAGE_TEMPLATES / STATIC, storm.root / STORM_TEMPLATES / STATIC):
        if folder.is_dir():
            for source in sorted(folder.iterdir()):
                if source.is_file():
                    _write(out / STATIC / source.name, source.read_bytes(), written, out)
    for image in kit.images:
        _write(out / image.href, image.source.read_bytes(), written, out)
    _write(out / kit.ics, storm_calendar(storm), written, out)
    # Netlify's and Cloudflare Pages' header file: the policy as a header where the host
    # reads it (frame-ancestors works only there).
    _write(
        out / "_headers",
        f"/*\n  Content-Security-Policy: {header_policy()}\n".encode(),
        written,
        out,
    )
    return sorted(set(written))


def _render(
    env: Environment,
    name: str,
    common: dict[str, Any],
    page: LangPage | None,
    lang: str,
    w: dict[str, str],
) -> bytes:
    from jinja2 import TemplateError

    from stormer.kit.content import direction_of

    try:
        template = env.get_template(name)
        # The words as attributes (w.copy): a dict's own methods would shadow some of them.
        words = SimpleNamespace(**w)
        html = template.render(common, page=page, lang=lang, direction=direction_of(lang), w=words)
        return html.encode()
    except TemplateError as e:
        # Most likely a storm's own template (templates/kit/): say which, and what is wrong.
        raise KitError(f"the kit template {name} cannot be rendered: {e}") from None


def _write(path: Path, data: bytes, written: list[str], out: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    written.append(path.relative_to(out).as_posix())


def _environment(storm_root: Path) -> Environment:
    from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

    # The storm's own templates first: an organizer changes a page without touching stormer.
    return Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(storm_root / STORM_TEMPLATES),
                FileSystemLoader(PACKAGE_TEMPLATES),
            ]
        ),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def load_words(storm_root: Path) -> dict[str, dict[str, str]]:
    """The kit's words per language: the package's, each overridden by the storm's."""
    words: dict[str, dict[str, str]] = {}
    for path in (PACKAGE_TEMPLATES / "words.toml", storm_root / STORM_TEMPLATES / "words.toml"):
        if not path.is_file():
            continue
        try:
            data: dict[str, Any] = tomli.loads(path.read_text(encoding="utf-8"))
        except (tomli.TOMLDecodeError, UnicodeDecodeError) as e:
            raise KitError(f"{path}: not a TOML file of words per language ({e})") from None
        for lang, table in data.items():
            if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
                raise KitError(f'{path}: [{lang}] must hold only words, like copy = "Copy"')
            words.setdefault(lang, {}).update(table)
    return words


def words_for(words: dict[str, dict[str, str]], lang: str) -> dict[str, str]:
    """The words of `lang` (or of its base language), each missing one in English."""
    found = dict(words.get(FALLBACK, {}))
    found.update(words.get(lang.split("_")[0], {}))
    found.update(words.get(lang, {}))
    return found
