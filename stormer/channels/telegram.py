"""Telegram Bot API: sendMessage, sendPhoto or sendMediaGroup to a channel (the account's target).

https://core.telegram.org/bots/api — every answer is `{ok, result | error_code, description,
parameters}`. The bot token is part of the URL, so it only ever appears as a placeholder in
previews, and no message or log line stormer writes carries the URL (http.send never puts it
in an error; the log filter of stormer.secrets redacts httpx's own request lines).

The Bot API has no idempotency: a send that times out may have been delivered
(python-telegram-bot#1045), so it becomes OutcomeUnknown and `reconcile` cannot tell —
the item is left unconfirmed for the organizer rather than risk a duplicate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stormer import lengths
from stormer.channels.base import (
    Connection,
    ImageLimits,
    Platform,
    Published,
    Staged,
    secret,
    staged,
)
from stormer.channels.http import FileTuple, Request, Response, classify, materialize
from stormer.errors import AuthError, OutcomeUnknown, PlatformError, Rejected

if TYPE_CHECKING:
    from stormer.queue import QueueItem
    from stormer.storm import Account


class Telegram(Platform):
    name = "telegram"
    title = "Telegram"
    text_limit = lengths.TELEGRAM_TEXT_LIMIT
    media_text_limit = lengths.TELEGRAM_CAPTION_LIMIT
    max_images = 10
    alt_text = False  # the Bot API has no image description; the caption is the text
    image_limits = ImageLimits(
        # sendPhoto: "The photo must be at most 10 MB in size. The photo's width and height
        # must not exceed 10000 in total. Width and height ratio must be at most 20."
        source="https://core.telegram.org/bots/api#sendphoto",
        max_bytes=10_000_000,  # 10 MB read as the smaller of 10^6 and 2^20 bytes
        max_sides=10_000,
        max_aspect=20.0,
    )
    credential_fields = ("bot_token",)
    credential_kind = "bot token"  # lasts until revoked in @BotFather
    target_field = "chat"
    idempotency = "none"
    default_base_url = "https://api.telegram.org"
    pace = (20, 60.0)  # "no more than 20 messages per minute to the same group" (Bots FAQ)
    concurrency = 1000  # wide: see Platform.concurrency
    # A bot reads only the chats it is in; the Bot API has no search of public posts
    # (https://core.telegram.org/bots/api: no search method).
    no_hashtag_search = "a bot sees only its own chats: Telegram has no public search for bots"

    def look_by_hand_at(self, account: Account, text: str, hashtag: str) -> str | None:
        """A public chat's t.me link (https://core.telegram.org/api/links#public-username-
        links); a chat known by its numeric id has no public page."""
        chat = account.target or ""
        return f"https://t.me/{chat[1:]}" if chat.startswith("@") and len(chat) > 1 else None

    def length(self, text: str) -> int:
        return lengths.telegram_length(text)

    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        chat = account.target or "<chat>"
        base = f"{self.base_url(account)}/bot{secret('bot_token')}"
        if not item.media:
            return [
                {
                    "method": "POST",
                    "url": f"{base}/sendMessage",
                    "json": {"chat_id": chat, "text": item.text},
                }
            ]
        if len(item.media) == 1:
            return [
                {
                    "method": "POST",
                    "url": f"{base}/sendPhoto",
                    "json": {
                        "chat_id": chat,
                        "photo": staged("file", item.media[0].path),
                        "caption": item.text,
                    },
                }
            ]
        media = [{"type": "photo", "media": staged("file", m.path)} for m in item.media]
        media[0]["caption"] = item.text  # Telegram shows the first photo's caption for the album
        return [
            {
                "method": "POST",
                "url": f"{base}/sendMediaGroup",
                "json": {"chat_id": chat, "media": media},
            }
        ]

    # --- sending ---------------------------------------------------------------------------

    def _method_url(self, conn: Connection, method: str) -> str:
        return f"{self.base_url(conn.account)}/bot{conn.secret('bot_token')}/{method}"

    def _error(self, response: Response, *, mutating: bool) -> PlatformError:
        body = response.json()
        body = body if isinstance(body, dict) else {}
        description = str(body.get("description") or f"HTTP {response.status}")
        parameters = body.get("parameters") or {}
        code = body.get("error_code") or response.status
        if code in (401, 404):
            # A revoked token answers 401 Unauthorized; a malformed one 404 Not Found.
            return AuthError(
                f"bot token rejected ({description}) — check this account's "
                "bot_token (from @BotFather)",
                platform=self.name,
                status=code,
            )
        if code == 403:
            return AuthError(
                f"the bot may not post here ({description}) — add it to the "
                "chat as an administrator allowed to post",
                platform=self.name,
                status=code,
            )
        if "migrate_to_chat_id" in parameters:
            return Rejected(
                f"{description} — the group is now chat "
                f"{parameters['migrate_to_chat_id']}: set it as this account's "
                "target",
                platform=self.name,
                status=code,
            )
        wait = parameters.get("retry_after")
        return classify(
            response,
            platform=self.name,
            mutating=mutating,
            message=description,
            wait=float(wait) if isinstance(wait, (int, float)) else None,
        )

    async def verify(self, conn: Connection) -> str:
        r = await conn.send(
            Request("GET", self._method_url(conn, "getMe")), platform=self.name, mutating=False
        )
        body = r.json()
        if r.status != 200 or not isinstance(body, dict) or not body.get("ok"):
            raise self._error(r, mutating=False)
        return "@" + str(body["result"].get("username", "?"))

    async def stage(self, item: QueueItem, conn: Connection) -> Staged:
        """Nothing can be uploaded ahead with the Bot API (a file_id only comes from a sent
        message), so staging reads the images and builds the multipart request — after
        `getMe`: a bot token does not expire, but @BotFather can revoke it at any time, and
        a revoked one is better found now, minutes before T, than at T."""
        if not conn.account.target:
            raise Rejected(f"account {conn.account.name!r} has no target chat", platform=self.name)
        await self.verify(conn)
        values: dict[str, Any] = {secret("bot_token"): conn.secret("bot_token")}
        for media in item.media:
            file: FileTuple = (
                media.path.rsplit("/", 1)[-1],
                conn.media_bytes(media.path),
                media.mime,
            )
            values[staged("file", media.path)] = file
        specs = [_attach_album(spec) for spec in self.build_requests(item, conn.account)]
        return Staged(
            item, [materialize(spec, values) for spec in specs], {"chat": conn.account.target}
        )

    def parse(self, staged: Staged, index: int, response: Response) -> Published:
        body = response.json()
        if response.status != 200:
            raise self._error(response, mutating=True)
        if not isinstance(body, dict) or not body.get("ok") or not body.get("result"):
            # A 200 that is not the Bot API's answer (a proxy?): the post may exist.
            raise OutcomeUnknown(
                "unreadable answer to a send", platform=self.name, status=response.status
            )
        result = body["result"]
        messages = result if isinstance(result, list) else [result]  # sendMediaGroup: a list
        first = messages[0]
        username = _public_username(staged.data.get("chat"), first)
        permalink = f"https://t.me/{username}/{first['message_id']}" if username else None
        raw = {"messages": messages} if isinstance(result, list) else result
        return Published(str(first["message_id"]), permalink, raw)

    async def reconcile(self, staged: Staged, conn: Connection) -> Published | None:
        """The Bot API offers no idempotency and no way to list a channel's messages: an
        unknown outcome stays unknown (the item becomes unconfirmed; never resent)."""
        return None


def _attach_album(spec: dict[str, Any]) -> dict[str, Any]:
    """sendMediaGroup uploads files as parts named in the media JSON (`attach://file0`)."""
    if not spec["url"].endswith("/sendMediaGroup"):
        return spec
    body = spec["json"]
    media: list[dict[str, Any]] = []
    files: dict[str, Any] = {}
    for i, entry in enumerate(body["media"]):
        files[f"file{i}"] = entry["media"]
        media.append({**entry, "media": f"attach://file{i}"})
    return {**spec, "json": {**body, "media": media, **files}}


def _public_username(target: str | None, message: dict[str, Any]) -> str | None:
    """The @username of a public chat (t.me links exist only for those)."""
    if target and target.startswith("@"):
        return target[1:]
    chat = message.get("chat")
    username = chat.get("username") if isinstance(chat, dict) else None
    return str(username) if username else None
