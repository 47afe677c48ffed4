"""The queue item: one thing stormer will send (a post from an account, later a reminder).

It is the contract between planning (pure), preview, and the outbox (storage).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Kind = Literal["post", "reminder"]


@dataclass(frozen=True, slots=True)
class MediaRef:
    """An image attached to an item: path relative to the storm's posts/ folder, with alt text."""

    path: str
    alt: str
    width: int | None = None
    height: int | None = None
    mime: str = "image/png"

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "alt": self.alt,
            "width": self.width,
            "height": self.height,
            "mime": self.mime,
        }


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One planned send. `id` is deterministic: the same storm plans the same ids every time.

    The id depends on what the item *is* (storm, kind, account, sequence number), never on its
    text, so editing a post updates the unsent item instead of adding a new one.
    """

    id: str
    kind: Kind
    fire_at: datetime  # tz-aware, UTC
    platform: str
    account: str
    lang: str
    text: str
    media: tuple[MediaRef, ...] = ()
    source: str | None = None  # the post file (relative to the storm root) it came from
    payload: dict[str, Any] = field(default_factory=dict, compare=False)
    # The item's place among its account's posts (0, 1, …), part of its identity like the id
    # made from it: distinct items of one account have distinct `seq`, which is what lets
    # Bluesky draw record keys that cannot collide. Not in `content_hash`: it never changes
    # for an id.
    seq: int = 0

    def content_hash(self) -> str:
        """Hash of everything that would change what is sent, or when; used to detect edits.

        The payload is included: a change of account settings (a Telegram chat, a Matrix
        room) changes the request without changing the text."""
        doc = {
            "kind": self.kind,
            "source": self.source,
            "payload": self.payload,
            "fire_at": self.fire_at.isoformat(),
            "platform": self.platform,
            "account": self.account,
            "lang": self.lang,
            "text": self.text,
            "media": [m.as_dict() for m in self.media],
        }
        raw = json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(raw).hexdigest()


def item_id(storm_slug: str, kind: str, *parts: object) -> str:
    """A stable 16-hex-digit id for the item identified by (storm, kind, parts)."""
    return item_ids(storm_slug, kind)(*parts)


def item_ids(storm_slug: str, kind: str) -> Callable[..., str]:
    """`item_id` with storm and kind fixed: hashes only the parts (a storm plans many ids)."""
    prefix = hashlib.sha256(f"{storm_slug}\x1f{kind}".encode())

    def make(*parts: object) -> str:
        h = prefix.copy()
        h.update("".join(f"\x1f{p}" for p in parts).encode())
        return h.hexdigest()[:16]

    return make


@dataclass(frozen=True, slots=True)
class Payload:
    """The exact request(s) a platform would receive at T for one queue item."""

    requests: list[dict[str, Any]]
    length: int
    limit: int
    problems: list[str] = field(default_factory=list)
    limit_source: str | None = None  # where `limit` comes from, for people (limit_origin)
