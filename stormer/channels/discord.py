"""Discord: execute a webhook with `?wait=true` (to get the message id), files as multipart.

https://discord.com/developers/docs/resources/webhook#execute-webhook — the body is JSON, or
multipart with the JSON in `payload_json` and the images as `files[i]`, each described (alt
text) by the matching entry of `attachments`.

A webhook URL is sent to as `https://discord.com/api/v10/webhooks/ID/TOKEN` whatever form was
pasted (discordapp.com, ptb./canary. hosts, no version): an unversioned URL gets Discord's
deprecated default version (https://discord.com/developers/docs/reference#api-versioning).

The webhook URL is itself the credential: it never appears in a preview, message or log line.
Webhooks have no idempotency (`nonce` exists only for bot Create Message), so an unknown
outcome cannot be reconciled: the item is left unconfirmed for the organizer.

A webhook of a forum or media channel cannot post in the channel itself: each message goes
into a thread, an existing one (`?thread_id=ID` on the webhook URL) or a new forum post,
titled by `thread_name` — the account's `target`, optional on Discord (https://discord.com/
developers/docs/resources/webhook#execute-webhook). The webhook object does not say which
kind of channel it is in, so nothing before the first post can tell that one is needed:
Discord's refusal (220001) becomes a message naming the fix.

Rate limits (https://discord.com/developers/docs/topics/rate-limits): every answer says how
many requests the webhook's bucket has left (`X-RateLimit-Remaining`) and when it refills
(`X-RateLimit-Reset-After`). `publish` keeps that in the connection's state and, while the
bucket is empty, raises RateLimited with the wait *before sending* — the request never
left, so the dispatcher waits and sends it then (or, past the grace, reports it), and the
429 that would count towards Discord's invalid-request ban is never drawn.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import regex

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
from stormer.channels.http import (
    FileTuple,
    Request,
    Response,
    classify,
    materialize,
    retry_after,
)
from stormer.errors import (
    AuthError,
    OutcomeUnknown,
    PlatformError,
    RateLimited,
    Rejected,
    Transient,
)
from stormer.secrets import Secret

if TYPE_CHECKING:
    from stormer.queue import Payload, QueueItem
    from stormer.storm import Account

INVALID_FORM_BODY = 50035
# https://discord.com/developers/docs/topics/opcodes-and-status-codes#json
FORUM_NEEDS_THREAD, FORUM_THREAD_NAME_AND_ID, THREAD_NAME_OUTSIDE_FORUM = 220001, 220002, 220003
# https://discord.com/developers/docs/resources/channel#channel-object-channel-structure: a
# channel's (so a thread's) name is 1-100 characters.
THREAD_NAME_LIMIT = 100
# https://discord.com/developers/docs/reference#api-versioning: v10 is the current version;
# a request without one gets the default, which is deprecated.
API_VERSION = 10
# The hosts Discord's clients hand out webhook URLs on (the app, its PTB and Canary builds,
# and the old discordapp.com domain), all the same API: https://discord.com/developers/docs/
# reference#api-reference-base-url names https://discord.com/api as the base.
DISCORD_HOSTS = regex.compile(r"(?:(?:ptb|canary)\.)?discord(?:app)?\.com")
WEBHOOK_PATH = regex.compile(r"/api(?:/v\d+)?(/webhooks/[^/]+/[^/]+)/?")
BUCKET = "rate_limit"  # in Connection.state: {"remaining": n, "reset_at": time.monotonic()}
# Answers of one bucket window give the same reset, give or take their latency; a reset
# later than that is the next window's.
SAME_WINDOW_S = 0.25
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
    credential_kind = "webhook URL"  # lasts until the webhook is deleted
    needs_base_url = False  # the webhook URL (a credential) names the server
    idempotency = "none"
    # A webhook's bucket as reported (discord-api-docs#367, #6753): paces an account's first
    # burst, before any answer's X-RateLimit headers said more (`publish` obeys those).
    pace = (5, 2.0)
    concurrency = 1000  # wide: see Platform.concurrency
    # A webhook can post and edit its own messages, never read a channel
    # (https://discord.com/developers/docs/resources/webhook).
    no_hashtag_search = "a webhook can post but not read, and Discord has no public search"
    # 502 GATEWAY UNAVAILABLE: "There was not a gateway available to process your request.
    # Wait a bit and retry"
    # (https://discord.com/developers/docs/topics/opcodes-and-status-codes#http): the request
    # was not processed, so sending it again cannot post twice. Any other 5xx may have taken
    # effect: an unknown outcome, as `classify` says.
    not_processed_statuses = frozenset({502})

    def length(self, text: str) -> int:
        return lengths.discord_length(text)

    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        payload_json: dict[str, Any] = {"content": item.text, "allowed_mentions": {"parse": []}}
        if account.target:  # a forum channel's webhook: the title of the new forum post
            payload_json["thread_name"] = account.target
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

    def render(self, item: QueueItem, account: Account) -> Payload:
        payload = super().render(item, account)
        if account.target and len(account.target) > THREAD_NAME_LIMIT:
            payload.problems.append(
                f"target (the forum post's title) is {len(account.target)} characters > "
                f"{THREAD_NAME_LIMIT} ({self.title} limit)"
            )
        return payload

    # --- sending ---------------------------------------------------------------------------

    def _webhook_url(self, conn: Connection) -> str:
        """The account's webhook URL on the current API version (see the module's doc)."""
        pasted = conn.secret("webhook_url")
        parts = urlsplit(pasted)
        path = WEBHOOK_PATH.fullmatch(parts.path)
        if parts.scheme not in ("https", "http") or not parts.hostname or path is None:
            raise AuthError(
                f"account {conn.account.name!r}: webhook_url is not a URL of the form "
                "https://discord.com/api/webhooks/ID/TOKEN (copy it from the channel's "
                "Integrations → Webhooks)",
                platform=self.name,
            )
        official = DISCORD_HOSTS.fullmatch(parts.hostname) is not None
        url = urlunsplit(
            (
                "https" if official else parts.scheme,
                "discord.com" if official else parts.netloc,
                f"/api/v{API_VERSION}{path.group(1)}",
                parts.query,
                "",
            )
        )
        # The URL sent is a secret like the one pasted; so is the token (its last segment),
        # redacted even where the URL shows up rewritten (another host alias, encoded).
        Secret(url)
        Secret(path.group(1).rsplit("/", 1)[-1])
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
        if response.status == 400 and body.get("code") in THREAD_FIXES:
            return Rejected(
                f"{message} — {THREAD_FIXES[body['code']]}", platform=self.name, status=400
            )
        if response.status == 400 and body.get("code") == INVALID_FORM_BODY:
            return Rejected(
                f"{message}: {_field_errors(body.get('errors'))}", platform=self.name, status=400
            )
        if response.status in self.not_processed_statuses:
            return Transient(
                f"not processed ({message}); safe to send again",
                platform=self.name,
                status=response.status,
            )
        wait = body.get("retry_after")  # float seconds, more precise than the header
        if response.status == 429:
            scope = _scope(response, body)
            message += f" ({scope} limit)" if scope else ""
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

    async def publish(self, staged: Staged, conn: Connection) -> Published:
        """Send the one request, unless the webhook's bucket is empty: then RateLimited with
        the wait, and nothing sent (see the module's doc)."""
        wait = _bucket_wait(conn.state)
        if wait > 0:
            raise RateLimited(
                "the webhook's rate-limit bucket is empty (X-RateLimit-Remaining: 0); "
                f"it refills in {wait:.2f} s",
                retry_after=wait,
                platform=self.name,
                status=None,
            )
        _spend(conn.state)
        response = await conn.send(staged.requests[0], platform=self.name, mutating=True)
        _remember(conn.state, response)
        return self.parse(staged, 0, response)

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


THREAD_FIXES = {
    FORUM_NEEDS_THREAD: "this webhook belongs to a forum channel, where every message is a "
    'forum post: give the account target = "the title of the post" in config.toml (or add '
    "?thread_id=ID of an existing post to its webhook_url)",
    FORUM_THREAD_NAME_AND_ID: "remove the account's target (its webhook_url names a thread)",
    THREAD_NAME_OUTSIDE_FORUM: "this webhook's channel is no forum: remove the account's target",
}


def _scope(response: Response, body: dict[str, Any]) -> str | None:
    """Whose limit a 429 is: `user` (this webhook's own), `shared` (the resource's, used by
    others too) or `global` (X-RateLimit-Scope, and `global` in the body)."""
    if body.get("global") is True:
        return "global"
    return response.headers.get("x-ratelimit-scope")


def _bucket_wait(state: dict[str, Any]) -> float:
    """Seconds until the webhook's bucket has room again; 0 if it has, or is not known."""
    bucket = state.get(BUCKET)
    if not bucket or bucket["remaining"] > 0:
        return 0.0
    return max(0.0, float(bucket["reset_at"]) - time.monotonic())


def _spend(state: dict[str, Any]) -> None:
    """Count a request about to leave against the known bucket, so that requests in flight
    together do not all go on the last slot an earlier answer announced."""
    bucket = state.get(BUCKET)
    if bucket and bucket["reset_at"] > time.monotonic() and bucket["remaining"] > 0:
        bucket["remaining"] -= 1


def _remember(state: dict[str, Any], response: Response) -> None:
    """Keep what an answer says of the webhook's bucket: X-RateLimit-Remaining and -Reset-After
    (seconds, decimals allowed), or a 429's own wait (`retry_after` in the body, seconds as a
    float, else Retry-After). Answers of one window may come back out of order: the lowest
    `remaining` of a window stands."""
    headers, now = response.headers, time.monotonic()
    if response.status == 429:
        # The 429's own wait, not the bucket's headers: a shared limit may outlast them.
        body = response.json()
        wait = body.get("retry_after") if isinstance(body, dict) else None
        seconds = float(wait) if isinstance(wait, (int, float)) else retry_after(headers)
        remaining, reset_at = 0, now + seconds
    else:
        try:
            remaining = int(headers["x-ratelimit-remaining"])
            reset_at = now + float(headers["x-ratelimit-reset-after"])
        except (KeyError, ValueError):
            return
    bucket = state.get(BUCKET)
    if bucket and now < bucket["reset_at"] and reset_at < bucket["reset_at"] + SAME_WINDOW_S:
        remaining = min(remaining, bucket["remaining"])
        reset_at = max(reset_at, bucket["reset_at"])
    state[BUCKET] = {"remaining": remaining, "reset_at": reset_at}


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
