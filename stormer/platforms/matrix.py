"""Matrix client-server API: one m.room.message event per send, with a transaction id derived
from the queue item, so that a retry on the same device returns the same event."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from .base import Platform, secret, staged

if TYPE_CHECKING:
    from ..queue import QueueItem
    from ..storm import Account

MAX_EVENT_BYTES = 65536  # the spec's limit for a whole event; the content must leave room


@lru_cache(maxsize=65536)  # a storm repeats its few texts across thousands of items
def _content_bytes(text: str) -> int:
    # No text limit, only an event size limit: count the bytes of the JSON content.
    return len(json.dumps({"msgtype": "m.text", "body": text}).encode())


@lru_cache(maxsize=65536)  # each account's room, for each of its items
def _quote_room(room: str) -> str:
    return quote(room, safe="")


class Matrix(Platform):
    name = "matrix"
    title = "Matrix"
    text_limit = MAX_EVENT_BYTES - 1536  # room for the event envelope around the content
    max_images = 10  # one m.image event each, after the text event
    credential_fields = ("access_token",)
    target_field = "room"
    idempotency = "transaction-id"

    def length(self, text: str) -> int:
        return _content_bytes(text)

    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        room = _quote_room(account.target or "<room>")
        base = f"{self.base_url(account)}/_matrix/client/v3/rooms/{room}/send/m.room.message"
        auth = {"Authorization": f"Bearer {secret('access_token')}"}
        requests = [{"method": "PUT", "url": f"{base}/stormer-{item.id}-0", "headers": auth,
                     "json": {"msgtype": "m.text", "body": item.text}}]
        for i, m in enumerate(item.media, start=1):
            info: dict[str, Any] = {"mimetype": m.mime}
            if m.width and m.height:
                info.update(w=m.width, h=m.height)
            requests.append({
                "method": "PUT", "url": f"{base}/stormer-{item.id}-{i}", "headers": auth,
                "json": {"msgtype": "m.image", "body": m.alt or m.path.rsplit("/", 1)[-1],
                         "filename": m.path.rsplit("/", 1)[-1], "url": staged("mxc", m.path),
                         "info": info},
            })
        return requests
