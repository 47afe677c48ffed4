"""The schema of what people write by hand: config.toml and a post's front matter.

pydantic models, strict (an unknown key is an error) and frozen; `load_storm` turns a
validated `ConfigFile` into a `Storm`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

CONFIG_NAME = "config.toml"


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

    @field_validator("base_url")
    @classmethod
    def _a_url(cls, value: str | None) -> str | None:
        """A base_url that does not parse ('http://[::1', a port over 65535) would fail every
        request to the account: refuse it here, where the config line is known."""
        if value is not None and (wrong := _not_a_url(value)):
            raise ValueError(wrong)
        return value


@lru_cache(maxsize=1024)  # thousands of accounts share a few servers
def _not_a_url(value: str) -> str | None:
    """Why `value` is not a URL a request can go to; None when it is one."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 — parsing the port is the check
    except ValueError as e:
        return f"{value!r} is not a URL ({e})"
    if not parts.scheme or not (parts.netloc or parts.path):
        return f"{value!r} is not a URL: write it like https://social.example.org"
    return None


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


# A Mastodon instance as people write it: a host name with at least one dot (mastodon.social),
# an optional port, optionally as an https:// or http:// address.
MASTODON_INSTANCE = (
    r"^(?i:https?://)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,63}"
    r"(:\d{1,5})?/?$"
)


class ImpactSection(_Strict):
    # Mastodon instances whose tag timelines `stormer impact` reads besides those of the
    # storm's accounts: each sees only what federated to it.
    instances: list[str] = []

    @field_validator("instances")
    @classmethod
    def _hosts(cls, values: list[str]) -> list[str]:
        for value in values:
            if len(value) > 253 or not re.match(MASTODON_INSTANCE, value):
                raise ValueError(
                    f"{value[:60]!r} is not a Mastodon instance: write its host, "
                    "e.g. mastodon.social"
                )
        return values


class ConfigFile(_Strict):
    storm: StormSection
    announce: list[AnnounceEntry] = []
    accounts: list[AccountEntry] = []
    reminders: RemindersSection = RemindersSection()
    database: DatabaseSection = DatabaseSection()
    participants: ParticipantsSection = ParticipantsSection()
    alerts: AlertsSection = AlertsSection()
    impact: ImpactSection = ImpactSection()


# --- a post's front matter ---------------------------------------------------------------


class FrontMatter(_Strict):
    lang: str = Field(min_length=2)
    images: list[dict[str, str]] = []
    platforms: list[str] | None = None
    accounts: list[str] | None = None
