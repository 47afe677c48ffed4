"""The simulator's memory: accepted posts, plus one private space per platform module.

Everything runs on one event loop and no handler awaits between reading and writing the
store, so plain dicts are enough. `Sim` bundles the store with the live config, the seeded
random source and the rate-limit windows; `reset()` forgets all state but keeps the config.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from .clock import Clock
from .faults import PLATFORMS, Faults, SimConfig, Windows

T = TypeVar("T")


@dataclass
class Media:
    """One uploaded file, as the post log shows it."""

    size: int
    mime: str
    alt: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"alt": self.alt, "size": self.size, "mime": self.mime}


@dataclass
class Post:
    """One accepted post, as `GET /_sim/posts` lists it."""

    platform: str
    account: str
    text: str
    remote_id: str
    received_at: datetime
    media: list[Media] = field(default_factory=list)
    target: str | None = None  # the chat, room or channel, where the platform has one
    url: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "account": self.account,
            "target": self.target,
            "text": self.text,
            "media": [m.as_json() for m in self.media],
            "remote_id": self.remote_id,
            "url": self.url,
            "received_at": self.received_at.isoformat(timespec="microseconds").replace(
                "+00:00", "Z"
            ),
        }


class Store:
    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.reminders: list[dict[str, Any]] = []  # POST /_sim/reminders (rehearsals)
        self._spaces: dict[str, Any] = {}
        self._last_id = 0

    def space(self, name: str, factory: Callable[[], T]) -> T:
        """The private state of one platform module, created on first use."""
        try:
            return self._spaces[name]  # type: ignore[no-any-return]
        except KeyError:
            value = self._spaces[name] = factory()
            return value

    def add(self, post: Post) -> Post:
        self.posts.append(post)
        return post

    def snowflake(self) -> int:
        """A strictly increasing id shaped like X's and Discord's: milliseconds << 22 | seq."""
        candidate = int(time.time() * 1000) << 22
        self._last_id = max(candidate, self._last_id + 1)
        return self._last_id


class Sim:
    """The live simulator: config, store, seeded randomness, rate-limit windows."""

    def __init__(self, config: SimConfig) -> None:
        self.rng = random.Random()
        self.store = Store()
        self.limits = Windows()
        self.clock = Clock()  # what scheduled posts are measured against (clock.py)
        self.configure(config)

    def configure(self, config: SimConfig) -> None:
        self.config = config
        # Resolved once here, not per request: the hot path of a 10,000-post burst.
        self.faults: dict[str, Faults] = {name: config.faults(name) for name in PLATFORMS}
        self.rng.seed(config.seed)
        self.limits.clear()
        self.arm_bursts()

    def reset(self) -> None:
        self.store = Store()
        self.clock = Clock()
        self.rng.seed(self.config.seed)
        self.limits.clear()
        self.arm_bursts()

    def arm_bursts(self) -> None:
        """Create-post requests still to fail, per kind and platform (`Faults.error_burst`,
        `Faults.ambiguous_burst`)."""
        self.bursts: dict[tuple[str, str], int] = {}
        for name, f in self.faults.items():
            self.bursts["error", name] = f.error_burst
            self.bursts["ambiguous", name] = f.ambiguous_burst


def digest(*parts: str) -> str:
    """A stable hex digest: identities are derived from credentials, never stored up front."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def unusable(credential: str | None) -> bool:
    """The simulator's one auth rule: empty, or beginning with `invalid`, is refused."""
    return not credential or credential.startswith("invalid")


def bearer(headers: Any) -> str | None:
    """The token of an `Authorization: Bearer …` header (Starlette Headers or ASGI scope)."""
    value = headers.get("authorization") if hasattr(headers, "get") else None
    if not value:
        return None
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def scope_header(scope: Any, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None
