"""Mastodon: POST /api/v1/statuses with an Idempotency-Key (https://docs.joinmastodon.org/methods/statuses/)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import lengths
from .base import Platform, secret, staged

if TYPE_CHECKING:
    from ..queue import QueueItem
    from ..storm import Account


class Mastodon(Platform):
    name = "mastodon"
    title = "Mastodon"
    text_limit = lengths.MASTODON_LIMIT  # instance default; read per instance when sending
    max_images = 4
    credential_fields = ("access_token",)
    idempotency = "key"

    def length(self, text: str) -> int:
        return lengths.mastodon_length(text)

    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"status": item.text, "visibility": "public",
                                "language": item.lang}
        if item.media:
            body["media_ids"] = [staged("media_id", m.path) for m in item.media]
        return [{
            "method": "POST",
            "url": f"{self.base_url(account)}/api/v1/statuses",
            "headers": {"Authorization": f"Bearer {secret('access_token')}",
                        "Idempotency-Key": f"stormer-{item.id}"},
            "json": body,
        }]
