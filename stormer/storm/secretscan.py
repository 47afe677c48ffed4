"""Secrets written into config.toml: found, reported without their value, and remembered so
that no other problem message repeats them.

config.toml must only *name* a secret (an environment variable, or `keyring:NAME`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

from stormer.storm import tomlpos
from stormer.storm.problems import ProblemCollector
from stormer.storm.schema import CONFIG_NAME
from stormer.storm.tomlpos import KeyPath

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


# Whether a string may hold any of SECRET_VALUES: one search instead of one per pattern (a
# config of 10,000 accounts holds 50,000 strings, and very few hold a secret).
_ANY_SECRET_VALUE = re.compile("|".join(f"(?:{pattern.pattern})" for pattern, _ in SECRET_VALUES))

_KEYS_ON_LINE = re.compile(r"([A-Za-z0-9_-]+)[\"']?\s*=")
# Keys whose values are secrets or Apprise URLs (which carry them) when written wrongly.
_HOLDS_URLS = {"credentials", "senders", "apprise"}


def may_hold_secret(line: str) -> bool:
    """Whether a config.toml line that is not valid TOML may hold a secret (a key that holds
    one, a value that looks like one): such a line is not quoted back in the message."""
    keys = {k.lower() for k in _KEYS_ON_LINE.findall(line)}
    return (
        any(SECRET_KEYS.match(k) for k in keys)
        or bool(keys & _HOLDS_URLS)
        or "://" in line
        or any(pattern.search(line) for pattern, _ in SECRET_VALUES)
    )


def scan_secrets(
    node: Any, path: KeyPath, lines: Mapping[KeyPath, int], c: ProblemCollector
) -> None:
    """Flag secrets written into config.toml (`node`, parsed, at `path`). The value itself is
    never repeated. Strings are looked at where they are found, without a call each: a
    config of 10,000 accounts holds 50,000 of them."""
    if isinstance(node, dict):
        in_credentials = "credentials" in path
        for key, value in node.items():
            if isinstance(value, str):
                named = ENV_NAME.match(value) or KEYRING_REF.match(value)
                if value and (in_credentials or _secret_key(key)) and not named:
                    _written_secret(value, (*path, key), lines, c)
                elif _ANY_SECRET_VALUE.search(value):
                    _secret_value(value, (*path, key), lines, c)
            elif isinstance(value, dict | list):
                scan_secrets(value, (*path, key), lines, c)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, str):
                if _ANY_SECRET_VALUE.search(value):
                    _secret_value(value, (*path, i), lines, c)
            elif isinstance(value, dict | list):
                scan_secrets(value, (*path, i), lines, c)


@functools.cache
def _secret_key(key: str) -> bool:
    return bool(SECRET_KEYS.match(key))


def _written_secret(
    value: str, path: KeyPath, lines: Mapping[KeyPath, int], c: ProblemCollector
) -> None:
    _report(
        value,
        path,
        lines,
        c,
        "holds what looks like a secret; config.toml must only name it: write the name of an "
        "environment variable (e.g. MASTODON_TOKEN) or 'keyring:NAME', and revoke the exposed "
        "credential",
    )


def _secret_value(
    value: str, path: KeyPath, lines: Mapping[KeyPath, int], c: ProblemCollector
) -> None:
    for pattern, what in SECRET_VALUES:
        if pattern.search(value):
            _report(
                value,
                path,
                lines,
                c,
                f"contains {what}; keep it in an environment variable or the keyring, name it "
                "in config, and revoke the exposed one",
            )
            return


def _report(
    value: str, path: KeyPath, lines: Mapping[KeyPath, int], c: ProblemCollector, what: str
) -> None:
    """A secret written at `path`: remembered (no other message may repeat it) and reported
    by where it is, never by its value."""
    c.secrets.add(value)
    where = ".".join(map(str, path))
    c.add("error", "secret-in-config", CONFIG_NAME, tomlpos.line_of(lines, path), f"{where} {what}")


def names_a_variable(
    value: str, where: str, example: str, line: int | None, c: ProblemCollector
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
