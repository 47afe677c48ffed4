"""Discord: execute a webhook with `?wait=true` (to get the message id), files as multipart.

https://discord.com/developers/docs/resources/webhook#execute-webhook — the body is JSON, or
multipart with the JSON in `payload_json` and the images as `files[i]`, each described (alt
text) by the matching entry of `attachments`.

The webhook URL is itself the credential: it never appears in a preview, message or log line.
Webhooks have no idempotency (`nonce` exists only for bot Create Message), so an unknown
outcome cannot be reconciled: the item is left unconfirmed for the organizer.
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
from stormer.secrets import Secret

if TYPE_CHECKING:
    from stormer.queue import QueueItem
    from stormer.storm import Account

INVALID_FORM_BODY = 50035
MAX_FIELD_ERRORS = 5  # in a Rejected message; Discord may list one per attachment


class Discord(Platform):
    name = "discord"
    title = "Discord"
    text_limit = lengths.DISCORD_LIMIT
    max_images = 10
    image_limits = ImageLimits(
        # "the default file upload size limit is 10 MiB" (more on a boosted server)
        source="https://discord.com/developers/docs/reference#uploading-files",
        max_bytes=10 * 1024 * 1024,
        alt_chars=1024,  # attachment `description`: "max 1024 characters"
        alt_source="https://discord.com/developers/docs/resources/message#attachment-object",
    )
    credential_fields = ("webhook_url",)
    needs_base_url = False  # the webhook URL (a credential) names the server
    idempotency = "none"
    pace = (5, 2.0)  # a webhook's bucket, seen only in 429s (discord-api-docs#6753)
    concurrency = 1000  # wide: see Platform.concurrency

    def length(self, text: str) -> int:
        return lengths.discord_length(text)

    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        payload_json: dict[str, Any] = {"content": item.text, "allowed_mentions": {"parse": []}}
        request: dict[str, Any] = {"method": "POST", "url": f"{secret('webhook_url')}?wait=true"}
        if not item.media:
            request["json"] = payload_json
            return [request]
        payload_json["attachments"] = [
            {"id": i, "filename": m.path.rsplit("/", 1)[-1], "description": m.alt}
            for i, m in enumerate(item.media)
        ]
        request["multipart"] = {
            "payload_json": payload_json,
            **{f"files[{i}]": staged("file", m.path) for i, m in enumerate(item.media)},
        }
        return [request]

    # --- sending ---------------------------------------------------------------------------

    def _webhook_url(self, conn: Connection) -> str:
        url = conn.secret("webhook_url")
        if not url.startswith(("https://", "http://")):
            raise AuthError(
                f"account {conn.account.name!r}: webhook_url is not a URL (copy "
                "it from the channel's Integrations → Webhooks)",
                platform=self.name,
            )
        # The token is the URL's last path segment. Registered as a secret of its own, it is
        # redacted even where the URL shows up rewritten (another host alias, encoded).
        token = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if token:
            Secret(token)
        return url

    def _error(self, response: Response, *, mutating: bool) -> PlatformError:
        body = response.json()
        body = body if isinstance(body, dict) else {}
        message = str(body.get("message") or f"HTTP {response.status}")
        if response.status in (401, 404):
            # 10015 Unknown Webhook, 50027 Invalid Webhook Token: it was deleted or its URL is
            # wrong. Repeated attempts get the IP restricted, so stop using it.
            return AuthError(
                f"webhook rejected ({message}): it was deleted or its URL is "
                "wrong — stop using it and set a new webhook_url",
                platform=self.name,
                status=response.status,
            )
        if response.status == 400 and body.get("code") == INVALID_FORM_BODY:
            return Rejected(
                f"{message}: {_field_errors(body.get('errors'))}", platform=self.name, status=400
            )
        wait = body.get("retry_after")  # float seconds, more precise than the header
        return classify(
            response,
            platform=self.name,
            mutating=mutating,
            message=message,
            wait=float(wait) if isinstance(wait, (int, float)) else None,
        )

    async def verify(self, conn: Connection) -> str:
        """GET the webhook: its name and channel, and the guild the permalinks need (kept in
        `conn.state`; never the webhook's token, which the answer repeats)."""
        r = await conn.send(
            Request("GET", self._webhook_url(conn)), platform=self.name, mutating=False
        )
        body = r.json()
        if r.status != 200 or not isinstance(body, dict):
            raise self._error(r, mutating=False)
        conn.state.update(
            guild_id=body.get("guild_id"),
            channel_id=body.get("channel_id"),
            webhook_name=body.get("name"),
        )
        conn.state_changed()
        return f"webhook {body.get('name')!r} in channel {body.get('channel_id')}"

    async def stage(self, item: QueueItem, conn: Connection) -> Staged:
        """Webhooks cannot upload ahead: staging reads the images into the multipart request
        and, once per account, asks Discord for the webhook's guild (for permalinks)."""
        url = self._webhook_url(conn)
        if not conn.state.get("guild_id"):
            await self.verify(conn)
        values: dict[str, Any] = {secret("webhook_url"): url}
        for media in item.media:
            file: FileTuple = (
                media.path.rsplit("/", 1)[-1],
                conn.media_bytes(media.path),
                media.mime,
            )
            values[staged("file", media.path)] = file
        specs = self.build_requests(item, conn.account)
        if "?" in url:  # a webhook URL with its own query (thread_id): add to it
            specs = [{**spec, "url": spec["url"].replace("?wait=", "&wait=")} for spec in specs]
        return Staged(
            item,
            [materialize(spec, values) for spec in specs],
            {"guild_id": conn.state.get("guild_id")},
        )

    def parse(self, staged: Staged, index: int, response: Response) -> Published:
        if response.status != 200:
            raise self._error(response, mutating=True)
        body = response.json()
        if not isinstance(body, dict) or "id" not in body:
            raise OutcomeUnknown(
                "unreadable answer to a send", platform=self.name, status=response.status
            )
        guild, channel = staged.data.get("guild_id"), body.get("channel_id")
        permalink = (
            f"https://discord.com/channels/{guild}/{channel}/{body['id']}"
            if guild and channel
            else None
        )
        return Published(str(body["id"]), permalink, body)

    async def reconcile(self, staged: Staged, conn: Connection) -> Published | None:
        """Webhooks honour no nonce and cannot search a channel: an unknown outcome stays
        unknown (the item becomes unconfirmed; never resent)."""
        return None


def _field_errors(errors: Any) -> str:
    """Discord's nested `errors` of a 50035, as `content: Must be 2000 or fewer in length.`"""
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if not isinstance(node, dict):
            return
        for error in node.get("_errors", []):
            found.append(f"{where or 'body'}: {error.get('message', error.get('code', '?'))}")
        for key, child in node.items():
            if key != "_errors":
                walk(child, f"{where}.{key}" if where else key)

    walk(errors, "")
    if not found:
        return "no field named"
    more = f" (and {len(found) - MAX_FIELD_ERRORS} more)" if len(found) > MAX_FIELD_ERRORS else ""
    return "; ".join(found[:MAX_FIELD_ERRORS]) + more
