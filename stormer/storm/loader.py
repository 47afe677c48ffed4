"""Loading a storm: config.toml, posts/*.md with their images, participants.csv.

Loading never stops at the first mistake: every problem is collected with its file and line,
so `stormer check` can report them all at once. Only a storm that cannot be read at all
(no config.toml, or one that is not TOML) raises ConfigError.

This module reads config.toml (validated by `schema`, scanned by `secretscan`) and builds
the `Storm`; `posts` and `participants` read their files.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path

import tomli
from pydantic import ValidationError

from stormer.errors import ConfigError, Problem, TimeError
from stormer.storm import tomlpos
from stormer.storm.model import Account, Storm
from stormer.storm.participants import load_participants
from stormer.storm.posts import load_posts
from stormer.storm.problems import ProblemCollector, in_reading_order, not_utf8
from stormer.storm.schema import CONFIG_NAME, AlertsSection, ConfigFile
from stormer.storm.secretscan import may_hold_secret, names_a_variable, scan_secrets
from stormer.storm.tomlpos import KeyPath, SyntaxErrorAt
from stormer.timezones import AnnounceZone, get_zone, parse_duration, parse_when


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "storm"


def find_root(path: Path) -> Path:
    """The storm folder for `path` (a folder holding config.toml, or the config file itself)."""
    path = path.expanduser()
    if path.is_file():
        return path.parent
    return path


def load_storm(
    path: Path | str = ".",
    *,
    known_platforms: set[str] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Storm:
    """Load the storm at `path`; problems are collected on `Storm.problems`.

    `known_platforms` (names of installed platform plugins) enables the unknown-platform check.
    `progress(step, done, total)` is told how many posts are read so far.
    """
    root = find_root(Path(path))
    try:
        storm = _load(root, known_platforms, progress)
    except ConfigError as e:
        raise ConfigError(in_reading_order(e.problems, root)) from None
    storm.problems = in_reading_order(storm.problems, root)
    return storm


def _load(
    root: Path,
    known_platforms: set[str] | None,
    progress: Callable[[str, int, int], None] | None,
) -> Storm:
    config_path = root / CONFIG_NAME
    if not config_path.is_file():
        raise ConfigError(
            [
                Problem(
                    "error",
                    "no-config",
                    CONFIG_NAME,
                    None,
                    f"no {CONFIG_NAME} in {root}: run `stormer init {root}` "
                    "to start a storm, or pass --storm DIR",
                )
            ]
        )
    try:
        text = config_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        problem = Problem(
            "error", "bad-config", CONFIG_NAME, None, f"not UTF-8 text ({not_utf8(e)})"
        )
        raise ConfigError([problem]) from None
    try:
        raw = tomli.loads(text)
    except tomli.TOMLDecodeError as e:
        raise ConfigError([_not_toml(tomlpos.syntax_error(e, text))]) from None
    c = ProblemCollector()
    lines = tomlpos.KeyLines(text)
    scan_secrets(raw, (), lines, c)
    try:
        cfg = ConfigFile.model_validate(raw)
    except ValidationError as e:
        for err in e.errors():
            loc = tuple(err["loc"])
            where = ".".join(str(x) for x in loc)
            c.add(
                "error",
                "bad-config",
                CONFIG_NAME,
                tomlpos.line_of(lines, loc),
                f"{where}: {err['msg']}",
            )
        raise ConfigError(c.redacted()) from None
    storm = _build(root, cfg, lines, c, known_platforms, progress)
    storm.problems = c.redacted()
    return storm


def _not_toml(at: SyntaxErrorAt) -> Problem:
    """config.toml's syntax error, with its line quoted under a caret, unless the line may
    hold a secret (the parse failed, so the secret scan has not run)."""
    reason = at.reason
    excerpt = at.excerpt
    if excerpt is not None and may_hold_secret(excerpt):
        excerpt = None
        reason += " (the line is not shown here: it may hold a secret)"
    return Problem(
        "error",
        "bad-config",
        CONFIG_NAME,
        at.line,
        f"config.toml is not valid TOML: {reason}",
        at.column,
        excerpt,
    )


def _build(
    root: Path,
    cfg: ConfigFile,
    lines: Mapping[KeyPath, int],
    c: ProblemCollector,
    known_platforms: set[str] | None,
    progress: Callable[[str, int, int], None] | None,
) -> Storm:
    s = cfg.storm
    at: datetime | None = None
    try:
        at = parse_when(s.at, s.tz)
    except TimeError as e:
        key = ("storm", "tz") if e.code == "unknown-zone" else ("storm", "at")
        c.add("error", e.code, CONFIG_NAME, tomlpos.line_of(lines, key), str(e))

    announce = []
    for i, a in enumerate(cfg.announce):
        if _zone_ok(a.zone, c, CONFIG_NAME, tomlpos.line_of(lines, ("announce", i, "zone"))):
            announce.append(AnnounceZone(a.zone, a.label, tuple(sorted(a.labels.items()))))

    try:
        interval = parse_duration(s.post_interval)
    except ValueError as e:
        c.add(
            "error",
            "bad-config",
            CONFIG_NAME,
            tomlpos.line_of(lines, ("storm", "post_interval")),
            str(e),
        )
        interval = timedelta(0)

    offsets = []
    for o in cfg.reminders.offsets:
        try:
            offsets.append(parse_duration(o))
        except ValueError as e:
            c.add(
                "error",
                "bad-config",
                CONFIG_NAME,
                tomlpos.line_of(lines, ("reminders", "offsets")),
                str(e),
            )

    _check_languages(cfg, lines, c)
    alert_vars, unstaged_before = _alerts(cfg.alerts, lines, c)
    senders = _senders(cfg.reminders.senders, lines, c)
    accounts = _accounts(cfg, lines, c, known_platforms)
    posts = load_posts(root, s.hashtag, {a.name for a in accounts}, c, known_platforms, progress)
    participants = load_participants(
        root,
        cfg.participants.file,
        s.default_lang,
        c,
        explicit="file" in cfg.participants.model_fields_set,
    )
    return Storm(
        root=root,
        name=s.name,
        slug=s.slug or slugify(s.name),
        hashtag=s.hashtag,
        at=at,
        default_lang=s.default_lang,
        announce=announce,
        accounts=accounts,
        posts=posts,
        participants=participants,
        reminder_offsets=sorted(offsets, reverse=True),
        posts_per_account=s.posts_per_account,
        post_interval=interval,
        kit_url=s.kit_url,
        database_url=cfg.database.url,
        at_line=tomlpos.line_of(lines, ("storm", "at")),
        alert_vars=alert_vars,
        unstaged_before=unstaged_before,
        problems=c.problems,
        reminder_senders=senders,
        impact_instances=list(cfg.impact.instances),
        participants_file=cfg.participants.file,
    )


def _senders(
    section: dict[str, str], lines: Mapping[KeyPath, int], c: ProblemCollector
) -> dict[str, str]:
    from stormer.storm.contacts import SENDER_FOR

    known = sorted(SENDER_FOR.values())
    out = {}
    for sender, var in section.items():
        line = tomlpos.line_of(lines, ("reminders", "senders", sender))
        if sender not in known:
            c.add(
                "error",
                "bad-config",
                CONFIG_NAME,
                line,
                f"reminders.senders.{sender}: unknown sender; the senders are "
                f"{', '.join(known)} (other channels are complete Apprise URLs in "
                "participants.csv)",
            )
        elif names_a_variable(var, f"reminders.senders.{sender}", "STORMER_SMTP_URL", line, c):
            out[sender] = var
    return out


def _alerts(
    section: AlertsSection, lines: Mapping[KeyPath, int], c: ProblemCollector
) -> tuple[list[str], timedelta]:
    names = []
    for i, name in enumerate(section.apprise):
        if names_a_variable(
            name,
            f"alerts.apprise[{i}]",
            "STORMER_ALERT_URL",
            tomlpos.line_of(lines, ("alerts", "apprise", i)),
            c,
        ):
            names.append(name)
    try:
        before = parse_duration(section.unstaged_before)
    except ValueError as e:
        c.add(
            "error",
            "bad-config",
            CONFIG_NAME,
            tomlpos.line_of(lines, ("alerts", "unstaged_before")),
            str(e),
        )
        before = timedelta(minutes=5)
    return names, before


def _zone_ok(zone: str, c: ProblemCollector, file: str, line: int | None) -> bool:
    try:
        get_zone(zone)
        return True
    except TimeError as e:
        c.add("error", "unknown-zone", file, line, str(e))
        return False


def _accounts(
    cfg: ConfigFile,
    lines: Mapping[KeyPath, int],
    c: ProblemCollector,
    known_platforms: set[str] | None,
) -> list[Account]:
    accounts: list[Account] = []
    seen: set[str] = set()
    for i, a in enumerate(cfg.accounts):
        line = tomlpos.line_of(lines, ("accounts", i))
        if a.name in seen:
            c.add(
                "error",
                "duplicate-account",
                CONFIG_NAME,
                line,
                f"two accounts are named {a.name!r}; account names must be unique",
            )
        seen.add(a.name)
        if known_platforms is not None and a.platform not in known_platforms:
            c.add(
                "error",
                "unknown-platform",
                CONFIG_NAME,
                tomlpos.line_of(lines, ("accounts", i, "platform")),
                f"account {a.name!r}: unknown platform {a.platform!r}; installed: "
                f"{', '.join(sorted(known_platforms))}",
            )
        if not a.authorized:
            continue  # kept in config for the record, never posted through
        accounts.append(
            Account(
                name=a.name,
                platform=a.platform,
                langs=tuple(a.langs),
                base_url=a.base_url,
                target=a.target,
                handle=a.handle,
                credentials=tuple(sorted(a.credentials.items())),
                line=line,
            )
        )
    return accounts


def _check_languages(cfg: ConfigFile, lines: Mapping[KeyPath, int], c: ProblemCollector) -> None:
    """default_lang and every account's langs must be languages stormer can write in."""
    from stormer.timezones import known_language

    wanted: list[tuple[KeyPath, str]] = [(("storm", "default_lang"), cfg.storm.default_lang)]
    wanted += [
        (("accounts", i, "langs"), lang)
        for i, account in enumerate(cfg.accounts)
        for lang in account.langs
    ]
    known: dict[str, bool] = {}  # thousands of accounts share a few languages
    for where, lang in wanted:
        if lang not in known:
            known[lang] = known_language(lang)
        if not known[lang]:
            c.add(
                "error",
                "bad-lang",
                CONFIG_NAME,
                tomlpos.line_of(lines, where),
                f"{'.'.join(str(p) for p in where)}: {lang[:40]!r} is not a language code "
                "stormer knows: write e.g. en, es, fr, it, ar or pt_BR",
            )
