"""Bluesky / AT Protocol: putRecord with a deterministic TID record key and swapRecord null,
so that a retry of the same item can never create a second post (create-if-absent)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from .. import lengths
from ..richtext import bluesky_facets
from ..timezones import iso_utc
from .base import Platform, secret, staged

if TYPE_CHECKING:
    from datetime import datetime

    from ..queue import QueueItem
    from ..storm import Account

_S32 = "234567abcdefghijklmnopqrstuvwxyz"


def record_key(item_id: str, at: datetime) -> str:
    """A TID (https://atproto.com/specs/tid) fixed by the item: microseconds of its fire time
    and a 10-bit clock id hashed from the item id. Same item → same key, on every retry."""
    micros = int(at.timestamp()) * 1_000_000 + at.microsecond
    clock_id = int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:2], "big") & 0x3FF
    value = (micros << 10) | clock_id
    chars = []
    for _ in range(13):
        chars.append(_S32[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))


class Bluesky(Platform):
    name = "bluesky"
    title = "Bluesky"
    text_limit = lengths.BLUESKY_LIMIT
    max_images = 4
    credential_fields = ("app_password",)
    idempotency = "record-key"
    default_base_url = "https://bsky.social"

    def length(self, text: str) -> int:
        return lengths.bluesky_length(text)

    def render(self, item, account):  # type: ignore[no-untyped-def]
        payload = super().render(item, account)
        size = lengths.utf8_bytes(item.text)
        if size > lengths.BLUESKY_MAX_BYTES:
            payload.problems.append(f"{size} bytes > {lengths.BLUESKY_MAX_BYTES} bytes allowed")
        return payload

    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        record: dict[str, Any] = {
            "$type": "app.bsky.feed.post",
            "text": item.text,
            "createdAt": iso_utc(item.fire_at),
            "langs": [item.lang],
        }
        facets = bluesky_facets(item.text)
        if facets:
            record["facets"] = facets
        if item.media:
            images = []
            for m in item.media:
                image: dict[str, Any] = {"image": staged("blob", m.path), "alt": m.alt}
                if m.width and m.height:
                    image["aspectRatio"] = {"width": m.width, "height": m.height}
                images.append(image)
            record["embed"] = {"$type": "app.bsky.embed.images", "images": images}
        return [{
            "method": "POST",
            "url": f"{self.base_url(account)}/xrpc/com.atproto.repo.putRecord",
            "headers": {"Authorization": f"Bearer {secret('session')}"},
            "json": {
                "repo": account.handle or "<handle>",
                "collection": "app.bsky.feed.post",
                "rkey": record_key(item.id, item.fire_at),
                "swapRecord": None,
                "record": record,
            },
        }]
