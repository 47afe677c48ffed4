"""Credentials: where they come from, and how they are kept out of every output.

A credential is named in config.toml (`credentials = { access_token = "MASTODON_TOKEN" }`)
and resolved at run time from the system keyring (where `stormer login` stores it) or from
the environment variable named there. It is held as a `Secret`, which never prints itself,
and every value ever resolved is redacted from log records of stormer and of the HTTP
libraries (httpx logs request URLs, and a Telegram bot token is part of the URL).

Error texts shown to people (reports, Apprise's log) go through `clean_error`, which also
masks credential-shaped strings nobody resolved here and, for reminders, participants'
addresses.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from stormer.errors import MissingCredential

if TYPE_CHECKING:
    from stormer.storm import Account

KEYRING_SERVICE = "stormer"
# Values shorter than this are not masked in every log line: redacting "tok" would turn each
# "token" into "<redacted>en" and make logs unreadable, and no platform issues a credential
# that short (they are still never printed: `Secret` hides them).
SHORTEST_REDACTED = 6
REDACTED = "<redacted>"
_known_lock = threading.Lock()


class Secret:
    """A credential value. `str()` and `repr()` never show it; `reveal()` does, on purpose."""

    __slots__ = ("_value",)

    def __init__(self, value: str, *, redact: bool = True):
        """`redact=False` for a credential field that is not secret (a Matrix user name, an
        OAuth client id, a token's expiry): still never printed, but not masked in every log
        line — a user name "storm" would turn each "stormer" into "<redacted>er"."""
        if not value:
            raise ValueError("a secret cannot be empty")
        self._value = value
        if redact and len(value) >= SHORTEST_REDACTED:
            with _known_lock:
                _known.add(value)
            install_log_redaction()

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def redact(text: str, *, contacts: bool = True) -> str:
    """`text` with every known secret value replaced by <redacted>, and (unless told not to,
    to read a library's log by address) every known participant's contact and its host by
    <contact>."""
    text = _known.sub(text, REDACTED)
    return _contacts.sub(text, _CONTACT) if contacts else text


class _Masks:
    """Values to mask wherever they occur in a text: the leftmost first, and of those that
    start there the longest, as a regex alternation of them all, longest first, would.

    Found through an index of each value's first `window` characters, so masking a text
    costs about its length, however many values are known. A worker knows every account's
    credentials (50,000 in a big storm) and a run thousands of participants' contacts; one
    alternation of them all took seconds to compile, was compiled again whenever a value
    was added (each staging batch adds its accounts'), stayed in the `re` module's cache,
    and was tried value by value at every position of every log line. That made staging
    50,000 items quadratic (bench/README.md, "Scale")."""

    def __init__(self, window: int) -> None:
        self._window = window
        # Each list longest first, and replaced whole on an add (never changed in place), so
        # a thread masking a text meanwhile sees the old list or the new one.
        self._starting: dict[str, list[str]] = {}
        self._shorter: re.Pattern[str] | None = None  # the values shorter than the window
        self._shorter_values: set[str] = set()

    def add(self, value: str) -> None:
        """Called with `_known_lock` held."""
        if len(value) < self._window:
            if value and value not in self._shorter_values:
                self._shorter_values.add(value)
                ordered = sorted(self._shorter_values, key=len, reverse=True)
                self._shorter = re.compile("|".join(map(re.escape, ordered)))
            return
        key = value[: self._window]
        found = self._starting.get(key, [])
        if value not in found:
            self._starting[key] = sorted([*found, value], key=len, reverse=True)

    def sub(self, text: str, mask: str) -> str:
        starting, shorter, window = self._starting, self._shorter, self._window
        if not starting and shorter is None:
            return text
        pieces: list[str] = []
        kept_from = at = 0
        last_start = len(text) - window  # no value of the index starts after this
        while at < len(text):
            match = None
            if at <= last_start and (candidates := starting.get(text[at : at + window])):
                match = next((v for v in candidates if text.startswith(v, at)), None)
            if match is None and shorter is not None and (m := shorter.match(text, at)):
                match = m[0]
            if match is None:
                at += 1
                continue
            pieces += (text[kept_from:at], mask)
            at = kept_from = at + len(match)
        if not pieces:
            return text
        pieces.append(text[kept_from:])
        return "".join(pieces)


_known = _Masks(SHORTEST_REDACTED)  # every credential value resolved in this process
_contacts = _Masks(4)  # every participant's contact, and its host


def private_contact(address: str) -> None:
    """A participant's contact (an e-mail address, a handle, an Apprise URL): from now on it,
    and the host it names, are masked as <contact> in every log line and cleaned error. A
    host alone can point at a person (their own server, their webhook's domain), and
    libraries log it ("sending JSON notification to hooks.example.net")."""
    from urllib.parse import urlsplit

    parts = {address}
    if "://" in address:
        host = urlsplit(address).hostname
    else:  # alice@example.org, @alice:matrix.example.org
        host = address.rpartition("@")[2].rpartition(":")[2] if "@" in address else None
    if host and "." in host and len(host) >= 4:
        parts.add(host)
    with _known_lock:
        for part in parts:
            _contacts.add(part)
    install_log_redaction()


# Loggers whose records keep participants' addresses when made: stormer.notify.sender reads
# Apprise's log by address (which address the mail server refused), then masks them itself
# (its filter is installed by `apprise_module`, the only way stormer reaches Apprise).
_READ_BY_ADDRESS = ("apprise",)
_installed = False


def install_log_redaction() -> None:
    """Redact every log record when it is made, whatever logger makes it. A filter on the
    `stormer` logger would not do: a logger's filters see only records logged on that very
    logger, not those of its children (`stormer.dispatch`) passing through."""
    global _installed
    with _known_lock:
        if _installed:
            return
        _installed = True
    make_record = logging.getLogRecordFactory()

    def redacting_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return record  # a malformed call: logging reports it itself
        keep = record.name.startswith(_READ_BY_ADDRESS)
        cleaned = redact(message, contacts=not keep)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return record

    logging.setLogRecordFactory(redacting_record)


def keyring_name(account: str, field: str) -> str:
    return f"{account}/{field}"


def _from_keyring(name: str) -> str | None:
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - keyring is a dependency
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, name)
    except (KeyringError, RuntimeError):
        return None  # no usable keyring on this machine: the environment is the way


def resolve(
    account: Account,
    fields: tuple[str, ...],
    environ: Mapping[str, str] | None = None,
    *,
    optional: tuple[str, ...] = (),
    public: tuple[str, ...] = (),
) -> dict[str, Secret]:
    """The credentials `fields` of `account`, and those of `optional` that are set:
    keyring first (`stormer login`), then the environment variable named in config.
    Raises AuthError naming what to set."""
    env = os.environ if environ is None else environ
    named = dict(account.credentials)
    out: dict[str, Secret] = {}
    for field in (*fields, *optional):
        ref = named.get(field)
        value = _from_keyring(keyring_name(account.name, field))
        if not value and ref:
            if ref.startswith("keyring:"):
                value = _from_keyring(ref.removeprefix("keyring:"))
            else:
                value = env.get(ref)
        if not value and field in optional:
            continue
        if not value:
            where = (
                f"the environment variable {ref}"
                if ref and not ref.startswith("keyring:")
                else f"the keyring entry {ref or keyring_name(account.name, field)}"
            )
            raise MissingCredential(
                f"account {account.name!r} has no {field}: set {where}, or run "
                f"`stormer login {account.name}`",
                platform=account.platform,
            )
        out[field] = Secret(value, redact=field not in public)
    return out


def store(account: str, values: dict[str, str]) -> None:
    """Save credentials in the system keyring, where `resolve` looks first."""
    import keyring
    from keyring.errors import KeyringError, NoKeyringError

    from stormer.errors import StormerError

    try:
        for field, value in values.items():
            keyring.set_password(KEYRING_SERVICE, keyring_name(account, field), value)
    except (NoKeyringError, KeyringError, RuntimeError) as e:
        raise StormerError(
            f"no usable system keyring here ({type(e).__name__}): keep the credential in the "
            "environment variable named in config.toml instead"
        ) from None


# --- error texts shown to people ---------------------------------------------------------

# `redact` knows only the secrets resolved in this process (none, in `report`); these are the
# shapes in which a credential can hide in an error text (a URL, a header).
_CREDENTIAL_SHAPES: Final = (
    (re.compile(r"\bbot\d{4,}:[A-Za-z0-9_-]{20,}"), f"bot{REDACTED}"),  # Telegram, in URLs
    (re.compile(r"(/webhooks/\d+/)[A-Za-z0-9_.-]+"), rf"\1{REDACTED}"),  # Discord webhook
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {REDACTED}"),
    (
        re.compile(r"(?i)((?:access_token|token|password|secret|api_key|key)=)[^&\s\"']+"),
        rf"\1{REDACTED}",
    ),
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), rf"\1{REDACTED}@"),  # user:password@host
)
# Addresses a reminder's error may echo (participants' contacts are Apprise URLs, e-mail
# addresses, handles, phone numbers).
_CONTACT: Final = "<contact>"
_CONTACT_SHAPES: Final = (
    re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://\S+"),
    re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;]+"),
    re.compile(r"(?<![\w@])@[\w.-]+(?::[\w.-]+)?"),
    re.compile(r"\+?\d[\d ().-]{5,}\d"),
)
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


def clean_error(text: str, *, contacts: bool = False) -> str:
    """`text` without known secrets, credential-shaped strings, and (if `contacts`) addresses."""
    text = redact(text)
    for pattern, replacement in _CREDENTIAL_SHAPES:
        text = pattern.sub(replacement, text)
    return scrub_contacts(text) if contacts else text


def scrub_contacts(text: str) -> str:
    """`text` with whatever looks like a participant's address masked as `<contact>`."""
    for pattern in _CONTACT_SHAPES[:3]:
        text = pattern.sub(_CONTACT, text)
    return _CONTACT_SHAPES[3].sub(lambda m: _CONTACT if _phone_like(m[0]) else m[0], text)


def _phone_like(text: str) -> bool:
    # A phone number has 7 digits or more ("550 5.1.1" and "HTTP 429" fewer), and does not
    # start with a date ("2031-03-13 18").
    return sum(c.isdigit() for c in text) >= 7 and not _DATE.match(text)
