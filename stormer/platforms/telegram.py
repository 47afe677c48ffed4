"""Telegram Bot API: sendMessage, sendPhoto or sendMediaGroup to a channel (the account's target).

The bot token is part of the URL, so it only ever appears as a placeholder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import lengths
from .base import Platform, secret, staged

if TYPE_CHECKING:
    from ..queue import QueueItem
    from ..storm import Account


class Telegram(Platform):
    name = "telegram"
    title = "Telegram"
    text_limit = lengths.TELEGRAM_TEXT_LIMIT
    media_text_limit = lengths.TELEGRAM_CAPTION_LIMIT
    max_images = 10
    credential_fields = ("bot_token",)
    target_field = "chat"
    idempotency = "none"
    default_base_url = "https://api.telegram.org"

    def length(self, text: str) -> int:
        return lengths.telegram_length(text)

    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        chat = account.target or "<chat>"
        base = f"{self.base_url(account)}/bot{secret('bot_token')}"
        if not item.media:
            return [{"method": "POST", "url": f"{base}/sendMessage",
                     "json": {"chat_id": chat, "text": item.text}}]
        if len(item.media) == 1:
            return [{"method": "POST", "url": f"{base}/sendPhoto",
                     "json": {"chat_id": chat, "photo": staged("file", item.media[0].path),
                              "caption": item.text}}]
        media = [{"type": "photo", "media": staged("file", m.path)} for m in item.media]
        media[0]["caption"] = item.text  # Telegram shows the first photo's caption for the album
        return [{"method": "POST", "url": f"{base}/sendMediaGroup",
                 "json": {"chat_id": chat, "media": media}}]
