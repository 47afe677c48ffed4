"""The reminder templates: stormer's own, one per language (`stormer/templates/reminders/`),
and a storm's, which override them (`templates/reminders/<lang>.txt.j2` in the storm folder).

A template is Jinja2 plain text with a `subject` block (one line) and a `body` block, given
the values in VARIABLES. A participant's language picks the storm's template, else stormer's,
then its base language (pt_BR → pt), then FALLBACK. A storm's template is checked here before
anything is sent: its syntax, the blocks, and every variable it uses.

A storm folder may come from someone else (a kit passed around), so templates run in Jinja's
sandbox: a template can format the values it is given, not reach into Python.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from stormer.errors import ConfigError, Problem
from stormer.timezones import LANG_CODE

if TYPE_CHECKING:
    from jinja2 import Environment, Template

PACKAGE_TEMPLATES: Final = Path(__file__).parent / "templates" / "reminders"
STORM_TEMPLATES: Final = "templates/reminders"  # inside a storm folder
SUFFIX: Final = ".txt.j2"
FALLBACK: Final = "en"
BLOCKS: Final = ("subject", "body")
# What a reminder template is given (stormer.reminders.ReminderWriter writes these values).
VARIABLES: Final = {
    "storm": "the storm's name",
    "hashtag": "the storm's hashtag",
    "kit_url": "the kit page, or none",
    "date": "the storm's date in the participant's zone and language",
    "time": "its time there (HH:mm)",
    "zone": "the participant's zone, as a place name",
    "utc": "the time in UTC",
    "until": "how long until the storm, in words",
    "sample": "the participant's sample post, or none",
    "links": "click-to-post links by platform (x, bluesky, telegram)",
}


def template_path(lang: str) -> str:
    """Where a storm keeps its template for `lang`, relative to its folder."""
    return f"{STORM_TEMPLATES}/{lang}{SUFFIX}"


def _langs_in(folder: Path) -> set[str]:
    return {p.name.removesuffix(SUFFIX) for p in folder.glob(f"*{SUFFIX}") if p.is_file()}


@cache
def package_langs() -> frozenset[str]:
    return frozenset(_langs_in(PACKAGE_TEMPLATES))


@cache
def _environment(storm_folder: Path | None) -> Environment:
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    folders = [PACKAGE_TEMPLATES] if storm_folder is None else [storm_folder, PACKAGE_TEMPLATES]
    # Plain-text templates: HTML is made from the text by `to_html`, which escapes it.
    return SandboxedEnvironment(
        loader=FileSystemLoader(folders),
        autoescape=False,
        undefined=StrictUndefined,
        keep_trailing_newline=False,
    )


class ReminderTemplates:
    """The templates a storm's reminders are written with: the storm's own, then stormer's."""

    def __init__(self, root: Path) -> None:
        self.root = root
        folder = root / STORM_TEMPLATES
        self.own_folder = folder.resolve() if folder.is_dir() else None
        self.own = _langs_in(folder) if self.own_folder else set()
        self.environment = _environment(self.own_folder)

    def langs(self) -> set[str]:
        """Every language with a template, the storm's or stormer's."""
        return self.own | package_langs()

    def has(self, lang: str) -> bool:
        """Whether `lang` (or its base language) has a template: no fallback."""
        return bool({lang, lang.split("_")[0]} & self.langs())

    def choose(self, lang: str) -> tuple[str, Template]:
        """(the language written in, its template) for a participant speaking `lang`.

        Raises ConfigError naming the file and line of a storm template that cannot be read.
        """
        from jinja2 import TemplateError, TemplateSyntaxError

        available = self.langs()
        base = lang.split("_")[0]
        chosen = lang if lang in available else base if base in available else FALLBACK
        try:
            return chosen, self.environment.get_template(f"{chosen}{SUFFIX}")
        except TemplateSyntaxError as e:
            raise ConfigError([self._syntax_problem(chosen, e)]) from None
        except (TemplateError, UnicodeDecodeError) as e:
            raise ConfigError([self.problem(chosen, None, f"cannot be read: {e}")]) from None

    def write(self, lang: str, template: Template, values: dict[str, Any]) -> tuple[str, str]:
        """(subject, body) of `template` (the one `choose` gave for `lang`) with `values`.

        Raises ConfigError naming the template when it fails: a storm's own (stormer's are
        tested) may fail only when written, and that is a message, never a traceback."""
        from jinja2 import TemplateError

        missing = [b for b in BLOCKS if b not in template.blocks]
        try:
            if missing:
                raise LookupError(f"no {{% block {missing[0]} %}}")
            context = template.new_context(values)
            subject = " ".join("".join(template.blocks["subject"](context)).split())
            body = "".join(template.blocks["body"](context)).strip() + "\n"
        except (TemplateError, LookupError, TypeError, ValueError, ArithmeticError) as e:
            why = str(e)
        except RecursionError:
            why = "it includes itself, without end"
        else:
            return subject, body
        raise ConfigError([self.problem(lang, None, f"cannot be written: {why}")])

    def problem(self, lang: str, line: int | None, message: str) -> Problem:
        file = template_path(lang) if lang in self.own else f"{lang}{SUFFIX}"
        return Problem("error", "bad-template", file, line, message).in_folder(self.root)

    def _syntax_problem(self, lang: str, e: Exception) -> Problem:
        from jinja2 import TemplateSyntaxError

        assert isinstance(e, TemplateSyntaxError)
        return self.problem(lang, e.lineno, f"not a valid Jinja template: {e.message}")

    def problems(self) -> list[Problem]:
        """What is wrong with the storm's own templates, read without being rendered: a
        name that is no language, text that is not UTF-8, a syntax error, a missing block,
        a variable reminders do not have."""
        if self.own_folder is None:
            return []
        out = []
        for path in sorted(self.own_folder.iterdir()):
            name = path.name
            if not name.endswith(SUFFIX) or not LANG_CODE.fullmatch(name.removesuffix(SUFFIX)):
                if path.is_file():
                    out.append(_misnamed(self.root, name))
                continue
            out += self._problems_of(name.removesuffix(SUFFIX), path)
        return out

    def _problems_of(self, lang: str, path: Path) -> list[Problem]:
        from jinja2 import TemplateSyntaxError, meta, nodes

        try:
            source = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            return [self.problem(lang, None, f"not UTF-8 text ({e.reason}); save it as UTF-8")]
        try:
            tree = self.environment.parse(source)
        except TemplateSyntaxError as e:
            return [self._syntax_problem(lang, e)]
        out = []
        extends = next(tree.find_all(nodes.Extends), None)
        if extends is not None:
            # Reminders are written block by block, so a parent's blocks would never be seen.
            out.append(
                self.problem(
                    lang,
                    extends.lineno,
                    "{% extends %} is not supported: a reminder template stands alone, with "
                    f"its own subject and body blocks (start from a copy of stormer's "
                    f"{FALLBACK}{SUFFIX})",
                )
            )
        blocks = {b.name for b in tree.find_all(nodes.Block)}
        missing = [b for b in BLOCKS if b not in blocks]
        if missing:
            out.append(
                self.problem(
                    lang,
                    None,
                    f"has no {' and no '.join(f'{{% block {b} %}}' for b in missing)}: a "
                    "reminder template has a `subject` block (one line) and a `body` block, "
                    f"like stormer's {FALLBACK}{SUFFIX}",
                )
            )
        unknown = meta.find_undeclared_variables(tree) - set(VARIABLES)
        unknown -= set(self.environment.globals)
        for name in sorted(unknown):
            out.append(
                self.problem(
                    lang,
                    _first_use(source, name),
                    f"uses {name!r}, which reminders do not have; the variables are "
                    + ", ".join(VARIABLES),
                )
            )
        return out


def _first_use(source: str, name: str) -> int | None:
    word = re.compile(rf"(?<![\w.]){re.escape(name)}\b")
    return next((n for n, line in enumerate(source.splitlines(), 1) if word.search(line)), None)


def _misnamed(root: Path, name: str) -> Problem:
    return Problem(
        "warning",
        "bad-template",
        f"{STORM_TEMPLATES}/{name}",
        None,
        f"not used: a reminder template is named after its language, like de{SUFFIX}",
    ).in_folder(root)
