"""X (Twitter) API v2: POST /2/tweets with an OAuth 2.0 user token.

X has no server-side idempotency; an ambiguous send is reconciled by reading back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import lengths
from .base import Platform, secret, staged

if TYPE_CHECKING:
    from ..queue import QueueItem
    from ..storm import Account


class X(Platform):
    name = "x"
    title = "X"
    text_limit = lengths.X_LIMIT
    max_images = 4
    credential_fields = ("access_token",)
    idempotency = "read-back"
    default_base_url = "https://api.x.com"

    def length(self, text: str) -> int:
        return lengths.x_length(text)

    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"text": item.text}
        if item.media:
            body["media"] = {"media_ids": [staged("media_id", m.path) for m in item.media]}
        return [{
            "method": "POST",
            "url": f"{self.base_url(account)}/2/tweets",
            "headers": {"Authorization": f"Bearer {secret('access_token')}"},
            "json": body,
        }]
