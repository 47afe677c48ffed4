"""Loading a storm: config.toml, posts/*.md with their images, participants.csv.

Loading never stops at the first mistake: every problem is collected with its file and line,
so `stormer check` can report them all at once. Only a storm that cannot be read at all
(no config.toml, or one that is not TOML) raises ConfigError.
"""

from __future__ import annotations

import csv
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stormer.errors import ConfigError, Problem, TimeError
from stormer.storm import tomlpos
from stormer.storm.images import UnsupportedImage, image_info
from stormer.timezones import AnnounceZone, get_zone, parse_when

CONFIG_NAME = "config.toml"
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
KEYRING_REF = re.compile(r"^keyring:[^\s]+$")
# Keys that hold a secret when they hold a value; the config must only *name* secrets.
SECRET_KEYS = re.compile(
    r"^(token|access_token|refresh_token|bot_token|password|app_password|secret|client_secret"
    r"|api_key|apikey|api_secret|webhook|webhook_url|bearer)$",
    re.I,
)
SECRET_VALUES = [
    (re.compile(r"discord(?:app)?\.com/api/webhooks/\d+/[\w-]{20,}"), "a Discord webhook URL"),
    (re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}\b"), "a Telegram bot token"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\."), "a JWT access token"),
    (re.compile(r"\bsyt_[A-Za-z0-9_]{10,}"), "a Matrix access token"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:[^@\s/]+@"), "a URL with a password"),
]
DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")


def parse_duration(text: str) -> timedelta:
    """ "24h", "1h30m", "10m", "90s", "2d" → timedelta; ValueError on anything else."""
    m = DURATION.match(text)
    if not m or not any(m.groups()):
        raise ValueError(f"{text!r} is not a duration: write e.g. 24h, 1h30m, 10m or 45s")
    d, h, mi, s = (int(g or 0) for g in m.groups())
    return timedelta(days=d, hours=h, minutes=mi, seconds=s)


# --- config.toml schema -------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StormSection(_Strict):
    name: str = Field(min_length=1)
    hashtag: str = Field(pattern=r"^#\w+$")
    at: str
    tz: str | None = None
    slug: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]*$")
    kit_url: str | None = None
    posts_per_account: int = Field(default=1, ge=1, le=100)
    post_interval: str = "0s"
    default_lang: str = "en"


class AnnounceEntry(_Strict):
    zone: str
    label: str | None = None
    labels: dict[str, str] = {}


class AccountEntry(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    platform: str
    langs: list[str] = []
    base_url: str | None = None
    target: str | None = None
    handle: str | None = None
    credentials: dict[str, str] = {}
    authorized: bool = True


class RemindersSection(_Strict):
    offsets: list[str] = ["24h", "1h", "10m"]
    # The organizer's Apprise URLs that reminders go out through, by kind of contact
    # (mailto = the SMTP server, tgram = the bot, matrix = the account): the NAMES of the
    # environment variables holding them, since the URLs carry secrets.
    senders: dict[str, str] = {}


class DatabaseSection(_Strict):
    url: str | None = None


class ParticipantsSection(_Strict):
    file: str = "participants.csv"


class AlertsSection(_Strict):
    # Names of environment variables holding Apprise URLs: the URLs hold secrets.
    apprise: list[str] = []
    unstaged_before: str = "5m"


class ConfigFile(_Strict):
    storm: StormSection
    announce: list[AnnounceEntry] = []
    accounts: list[AccountEntry] = []
    reminders: RemindersSection = RemindersSection()
    database: DatabaseSection = DatabaseSection()
    participants: ParticipantsSection = ParticipantsSection()
    alerts: AlertsSection = AlertsSection()


# --- the loaded storm --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Image:
    path: str  # as written, relative to posts/
    alt: str
    mime: str = "image/png"
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class Post:
    file: str  # relative to the storm root, e.g. "posts/en-01.md"
    lang: str
    text: str
    text_line: int  # line of the first line of text in the file
    images: tuple[Image, ...] = ()
    platforms: tuple[str, ...] | None = None
    accounts: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    platform: str
    langs: tuple[str, ...]
    base_url: str | None
    target: str | None
    handle: str | None
    credentials: tuple[tuple[str, str], ...]  # (field, environment variable or keyring ref)
    line: int | None


@dataclass(frozen=True, slots=True)
class Participant:
    row: int  # line in the CSV file
    name: str
    zone: str
    lang: str
    contacts: tuple[str, ...] = field(default=(), repr=False)  # never printed by default


@dataclass
class Storm:
    root: Path
    name: str
    slug: str
    hashtag: str
    at: datetime | None  # UTC; None when the configured time is unusable
    default_lang: str
    announce: list[AnnounceZone]
    accounts: list[Account]
    posts: list[Post]
    participants: list[Participant]
    reminder_offsets: list[timedelta]
    posts_per_account: int
    post_interval: timedelta
    kit_url: str | None
    database_url: str | None
    at_line: int | None = None  # where config.toml sets the storm time
    # [alerts]: environment variables holding the organizer's Apprise URLs, and how long
    # before T every item due must be staged by a live worker (`stormer watchdog`).
    alert_vars: list[str] = field(default_factory=list)
    unstaged_before: timedelta = timedelta(minutes=5)
    # [reminders] senders: sender (mailto, tgram, matrix) → environment variable holding its URL
    reminder_senders: dict[str, str] = field(default_factory=dict)
    participants_file: str = "participants.csv"  # relative to the storm folder
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def zones(self) -> list[str]:
        """Announce zones first, then every participant zone, without repeats."""
        return list(
            dict.fromkeys([a.zone for a in self.announce] + [p.zone for p in self.participants])
        )


class _Collector:
    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.secrets: set[str] = set()  # values found in config that must never be echoed

    def add(self, severity: str, code: str, file: str | None, line: int | None, msg: str) -> None:
        self.problems.append(Problem(severity, code, file, line, msg))  # type: ignore[arg-type]

    def redacted(self) -> list[Problem]:
        """The problems with every secret value found in config replaced: a message that
        quotes a bad value (a zone, a time) must not repeat a token pasted there."""
        if not self.secrets:
            return self.problems
        out = []
        for p in self.problems:
            message = p.message
            for value in self.secrets:
                message = message.replace(value, "<redacted>")
            out.append(Problem(p.severity, p.code, p.file, p.line, message))
        return out


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "storm"


def find_root(path: Path) -> Path:
    """The storm folder for `path` (a folder holding config.toml, or the config file itself)."""
    path = path.expanduser()
    if path.is_file():
        return path.parent
    return path


def load_storm(path: Path | str = ".", *, known_platforms: set[str] | None = None) -> Storm:
    """Load the storm at `path`; problems are collected on `Storm.problems`.

    `known_platforms` (names of installed platform plugins) enables the unknown-platform check.
    """
    root = find_root(Path(path))
    config_path = root / CONFIG_NAME
    if not config_path.is_file():
        raise ConfigError(
            [
                Problem(
                    "error",
                    "no-config",
                    str(config_path),
                    None,
                    f"no {CONFIG_NAME} in {root}: run `stormer init {root}` "
                    "to start a storm, or pass --storm DIR",
                )
            ]
        )
    text = config_path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        line = _toml_error_line(str(e))
        raise ConfigError(
            [
                Problem(
                    "error", "bad-config", CONFIG_NAME, line, f"config.toml is not valid TOML: {e}"
                )
            ]
        ) from None
    c = _Collector()
    lines = tomlpos.key_lines(text)
    _scan_secrets(raw, (), lines, c)
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
    storm = _build(root, cfg, lines, c, known_platforms)
    storm.problems = c.redacted()
    return storm


def _toml_error_line(message: str) -> int | None:
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else None


def _scan_secrets(node: Any, path: tuple, lines: dict, c: _Collector) -> None:
    """Flag secrets written into config.toml. The value itself is never repeated."""
    if isinstance(node, dict):
        for key, value in node.items():
            p = (*path, key)
            in_credentials = "credentials" in path
            if isinstance(value, str) and value and (in_credentials or SECRET_KEYS.match(key)):
                if not (ENV_NAME.match(value) or KEYRING_REF.match(value)):
                    c.secrets.add(value)
                    c.add(
                        "error",
                        "secret-in-config",
                        CONFIG_NAME,
                        tomlpos.line_of(lines, p),
                        f"{'.'.join(map(str, p))} holds what looks like a secret; config.toml "
                        "must only name it: write the name of an environment variable "
                        "(e.g. MASTODON_TOKEN) or 'keyring:NAME', and revoke the exposed "
                        "credential",
                    )
                    continue
            _scan_secrets(value, p, lines, c)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _scan_secrets(value, (*path, i), lines, c)
    elif isinstance(node, str):
        for pattern, what in SECRET_VALUES:
            if pattern.search(node):
                c.secrets.add(node)
                c.add(
                    "error",
                    "secret-in-config",
                    CONFIG_NAME,
                    tomlpos.line_of(lines, path),
                    f"{'.'.join(map(str, path))} contains {what}; keep it in an environment "
                    "variable or the keyring, name it in config, and revoke the exposed one",
                )
                break


def _build(
    root: Path, cfg: ConfigFile, lines: dict, c: _Collector, known_platforms: set[str] | None
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

    alert_vars, unstaged_before = _alerts(cfg.alerts, lines, c)
    senders = _senders(cfg.reminders.senders, lines, c)
    accounts = _accounts(cfg, lines, c, known_platforms)
    posts = _load_posts(root, s.hashtag, {a.name for a in accounts}, c, known_platforms)
    participants = _load_participants(
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
        participants_file=cfg.participants.file,
    )


def _senders(section: dict[str, str], lines: dict, c: _Collector) -> dict[str, str]:
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
        elif _names_a_variable(var, f"reminders.senders.{sender}", "STORMER_SMTP_URL", line, c):
            out[sender] = var
    return out


def _names_a_variable(
    value: str, where: str, example: str, line: int | None, c: _Collector
) -> bool:
    """Whether `value` names an environment variable, as config must for an Apprise URL;
    if not, it is reported once, and never echoed: it is most likely the URL itself."""
    if ENV_NAME.match(value):
        return True
    if value in c.secrets:
        return False  # reported already as a secret written into config.toml
    c.secrets.add(value)
    pasted = "://" in value
    c.add(
        "error",
        "secret-in-config" if pasted else "bad-config",
        CONFIG_NAME,
        line,
        f"{where} must be the name of an environment variable (e.g. {example}) that holds "
        "the Apprise URL: the URL carries secrets, keep it out of config.toml"
        + (" and revoke the exposed one" if pasted else ""),
    )
    return False


def _alerts(section: AlertsSection, lines: dict, c: _Collector) -> tuple[list[str], timedelta]:
    names = []
    for i, name in enumerate(section.apprise):
        if _names_a_variable(
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


def _zone_ok(zone: str, c: _Collector, file: str, line: int | None) -> bool:
    try:
        get_zone(zone)
        return True
    except TimeError as e:
        c.add("error", "unknown-zone", file, line, str(e))
        return False


def _accounts(
    cfg: ConfigFile, lines: dict, c: _Collector, known_platforms: set[str] | None
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


# --- posts ---------------------------------------------------------------------------------


class FrontMatter(_Strict):
    lang: str = Field(min_length=2)
    images: list[dict[str, str]] = []
    platforms: list[str] | None = None
    accounts: list[str] | None = None


def _load_posts(
    root: Path,
    hashtag: str,
    account_names: set[str],
    c: _Collector,
    known_platforms: set[str] | None,
) -> list[Post]:
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


def _load_post(
    root: Path, path: Path, c: _Collector, known_platforms: set[str] | None, account_names: set[str]
) -> Post | None:
    rel = path.relative_to(root).as_posix()
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        c.add("error", "bad-post", rel, None, f"not UTF-8 text: {e}")
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
        line = _toml_error_line(str(e))
        c.add(
            "error",
            "bad-front-matter",
            rel,
            line + 1 if line else 2,
            f"front matter is not valid TOML: {e}",
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
    root: Path, rel: str, specs: list[dict[str, str]], fm_lines: dict, c: _Collector
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
            mime, width, height = image_info(target)
        except UnsupportedImage as e:
            c.add("error", "bad-image", rel, line, str(e))
            continue
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
        images.append(Image(spec["path"], alt, mime, width, height))
    return images


# --- participants --------------------------------------------------------------------------

PARTICIPANT_COLUMNS = ("name", "zone", "lang", "contact")


def resolve_zone(value: str) -> str:
    """An IANA zone, or a two-letter ISO country code with exactly one zone (pytz's tables).

    Raises TimeError naming the choices for a country with several zones.
    """
    value = value.strip()
    if re.fullmatch(r"[A-Za-z]{2}", value):
        import pytz  # only pytz has the country → zones table

        code = value.upper()
        zones = pytz.country_timezones.get(code)
        if zones is None:
            raise TimeError(f"unknown time zone or country code {value!r}")
        if len(zones) > 1:
            raise TimeError(
                f"country {code} has {len(zones)} time zones; write one of: " + ", ".join(zones)
            )
        return zones[0]
    get_zone(value)
    return value


def _load_participants(
    root: Path, name: str, default_lang: str, c: _Collector, *, explicit: bool
) -> list[Participant]:
    path = root / name
    if not path.is_file():
        if explicit:
            c.add(
                "warning",
                "missing-participants-file",
                CONFIG_NAME,
                None,
                f"[participants] file = {name!r} does not exist; nobody will be reminded",
            )
        return []
    out: list[Participant] = []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [col for col in ("name", "zone") if col not in header]
        if missing:
            c.add(
                "error",
                "bad-participant",
                name,
                1,
                f"the header must have the columns {', '.join(PARTICIPANT_COLUMNS)}; "
                f"missing: {', '.join(missing)}",
            )
            return []
        col = {h: i for i, h in enumerate(header)}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            cells = {h: (row[i].strip() if i < len(row) else "") for h, i in col.items()}
            p = _participant(cells, line, name, default_lang, c)
            if p:
                out.append(p)
    return out


def _participant(
    cells: dict[str, str], line: int, file: str, default_lang: str, c: _Collector
) -> Participant | None:
    who = cells.get("name", "")
    if not who:
        c.add("error", "bad-participant", file, line, f"row {line}: the name is empty")
        return None
    try:
        zone = resolve_zone(cells.get("zone", ""))
    except TimeError as e:
        why = str(e)
        if re.search(r"@|://|\d{5}", cells.get("zone", "")):
            # Columns shifted in a form export: never echo what may be someone's address.
            why = (
                "the zone column holds what looks like a contact, not a time zone: check "
                "the columns are name, zone, lang, contact"
            )
        c.add("error", "bad-participant", file, line, f"row {line} ({who}): {why}")
        return None
    lang = cells.get("lang") or default_lang
    if not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", lang):
        c.add(
            "error",
            "bad-participant",
            file,
            line,
            f"row {line} ({who}): {lang!r} is not a language code (e.g. en, es, ar)",
        )
        return None
    contacts = tuple(cells.get("contact", "").split())
    return Participant(row=line, name=who, zone=zone, lang=lang, contacts=contacts)
