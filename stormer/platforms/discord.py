"""Discord: execute a webhook with `?wait=true` (to get the message id), files as multipart.

The webhook URL is itself the credential."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import lengths
from .base import Platform, secret, staged

if TYPE_CHECKING:
    from ..queue import QueueItem
    from ..storm import Account


class Discord(Platform):
    name = "discord"
    title = "Discord"
    text_limit = lengths.DISCORD_LIMIT
    max_images = 10
    credential_fields = ("webhook_url",)
    idempotency = "none"

    def length(self, text: str) -> int:
        return lengths.discord_length(text)

    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        payload_json: dict[str, Any] = {"content": item.text,
                                        "allowed_mentions": {"parse": []}}
        request: dict[str, Any] = {"method": "POST", "url": f"{secret('webhook_url')}?wait=true"}
        if not item.media:
            request["json"] = payload_json
            return [request]
        payload_json["attachments"] = [
            {"id": i, "filename": m.path.rsplit("/", 1)[-1], "description": m.alt}
            for i, m in enumerate(item.media)
        ]
        request["multipart"] = {"payload_json": payload_json,
                                **{f"files[{i}]": staged("file", m.path)
                                   for i, m in enumerate(item.media)}}
        return [request]
