"""X (Twitter) API v2: POST /2/tweets with an OAuth 2.0 user token.

X has no server-side idempotency; an ambiguous send is reconciled by reading back the
account's recent posts (`X.reconcile`). Images go up at staging through the v2 one-shot
upload (`POST /2/media/upload`, `media_category=tweet_image`), their alt text through
`POST /2/media/metadata`; media ids expire (`expires_after_secs`), so staging stays near T.
"""

from __future__ import annotations

import html
import re
import unicodedata
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from stormer import lengths
from stormer.channels.base import (
    NOT_POSTED,
    Connection,
    ImageLimits,
    NotPosted,
    Platform,
    Published,
    Staged,
    secret,
    staged,
)
from stormer.channels.http import Request, Response, classify, materialize, until_reset
from stormer.errors import PlatformError, Rejected

if TYPE_CHECKING:
    from collections.abc import Mapping

    from stormer.queue import MediaRef, QueueItem
    from stormer.storm import Account

# How far before the item's fire time a read-back looks (a send may leave a little early),
# and how many pages of 100 posts it reads at most.
READ_BACK_MARGIN = timedelta(minutes=15)
READ_BACK_PAGES = 3

# Links and bare domains: X rewrites them to t.co (and appends one for attached media), so
# text is compared without them.
_LINKISH = re.compile(r"(?:https?://)?(?:[\w-]+\.)+[\w-]+(?:/\S*)?", re.IGNORECASE)


class DuplicateText(Rejected):
    """X refused the post as a duplicate of a recent post by the same account."""


def comparable(text: str) -> str:
    """`text` as X's read-back is compared with it: NFC, links dropped, whitespace collapsed."""
    text = _LINKISH.sub(" ", unicodedata.normalize("NFC", text))
    return " ".join(text.split())


def permalink(username: str | None, post_id: str) -> str:
    return f"https://x.com/{username or 'i'}/status/{post_id}"


def _message(response: Response) -> str:
    """X's own words: `detail` (problem JSON) and every `errors[].message`."""
    body = response.json()
    if not isinstance(body, dict):
        return f"HTTP {response.status}"
    parts = [str(body["detail"])] if body.get("detail") else []
    parts += [
        str(e["message"])
        for e in body.get("errors") or []
        if isinstance(e, dict) and e.get("message") and e["message"] not in parts
    ]
    return " — ".join(parts) or str(body.get("title") or f"HTTP {response.status}")


def _rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    """Seconds until the spent window resets. A spent 24-hour cap outlasts the 15-minute
    window that `x-rate-limit-reset` describes; None leaves it to `classify`."""
    resets = [
        int(headers[f"{window}-reset"])
        for window in ("x-rate-limit", "x-user-limit-24hour", "x-app-limit-24hour")
        if headers.get(f"{window}-remaining") == "0"
        and headers.get(f"{window}-reset", "").isdigit()
    ]
    return until_reset(max(resets)) if resets else None


class X(Platform):
    name = "x"
    title = "X"
    text_limit = lengths.X_LIMIT
    max_images = 4
    image_limits = ImageLimits(
        # "Image size: <= 5 MB" (GIFs 15 MB; not used: a GIF counts as an image here);
        # "Supported image media types: JPG, PNG, GIF, WEBP"; no image dimensions given.
        source="https://docs.x.com/x-api/media/quickstart/best-practices",
        max_bytes=5_000_000,  # 5 MB read as the smaller of 10^6 and 2^20 bytes
        formats=frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"}),
        # POST /2/media/metadata: alt_text.text, 1000 characters (v1.1 said 420)
        alt_chars=1000,
        alt_source="https://docs.x.com/x-api/media/create-media-metadata",
    )
    credential_fields = ("access_token",)
    idempotency = "read-back"
    default_base_url = "https://api.x.com"
    # X's automation rules forbid coordinated identical posts from several accounts.
    same_text_forbidden = True
    concurrency = 1000  # wide: see Platform.concurrency

    def length(self, text: str) -> int:
        return lengths.x_length(text)

    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"text": item.text}
        if item.media:
            body["media"] = {"media_ids": [staged("media_id", m.path) for m in item.media]}
        return [
            {
                "method": "POST",
                "url": f"{self.base_url(account)}/2/tweets",
                "headers": {"Authorization": f"Bearer {secret('access_token')}"},
                "json": body,
            }
        ]

    # --- sending ---------------------------------------------------------------------------

    def _auth(self, conn: Connection) -> dict[str, str]:
        return {"Authorization": f"Bearer {conn.secret('access_token')}"}

    def _error(self, response: Response, *, mutating: bool) -> PlatformError:
        message = _message(response)
        lowered = message.lower()
        if "duplicate" in lowered:
            return DuplicateText(
                f"X refuses duplicate text: this account posted the same text recently ({message})",
                platform=self.name,
                status=response.status,
            )
        if response.status == 429:
            return classify(
                response,
                platform=self.name,
                mutating=mutating,
                message=message,
                wait=_rate_limit_wait(response.headers),
            )
        if response.status == 403 and ("too long" in lowered or "longer than" in lowered):
            return Rejected(message, platform=self.name, status=response.status)
        return classify(response, platform=self.name, mutating=mutating, message=message)

    async def _get(self, conn: Connection, path: str, **params: str) -> Any:
        query = f"?{urlencode(params)}" if params else ""
        request = Request("GET", f"{self.base_url(conn.account)}{path}{query}", self._auth(conn))
        r = await conn.send(request, platform=self.name, mutating=False)
        if r.status != 200:
            raise self._error(r, mutating=False)
        return r.json()

    async def verify(self, conn: Connection) -> str:
        """GET /2/users/me; keeps the user id and username in `conn.state` for read-backs."""
        data = (await self._get(conn, "/2/users/me")).get("data") or {}
        conn.state.update(user_id=str(data["id"]), username=str(data["username"]))
        conn.state_changed()
        return f"@{conn.state['username']}"

    async def stage(self, item: QueueItem, conn: Connection) -> Staged:
        if "user_id" not in conn.state:  # also checks the token before any upload
            await self.verify(conn)
        values: dict[str, Any] = {secret("access_token"): conn.secret("access_token")}
        for media in item.media:
            values[staged("media_id", media.path)] = await self._upload(media, conn)
        requests = [materialize(spec, values) for spec in self.build_requests(item, conn.account)]
        return Staged(
            item,
            requests,
            {
                "media_ids": [values[staged("media_id", m.path)] for m in item.media],
                "user_id": conn.state["user_id"],
                "username": conn.state.get("username"),
            },
        )

    async def _upload(self, media: MediaRef, conn: Connection) -> str:
        base = self.base_url(conn.account)
        request = Request.multipart(
            "POST",
            f"{base}/2/media/upload",
            data={"media_category": "tweet_image"},
            files={
                "media": (media.path.rsplit("/", 1)[-1], conn.media_bytes(media.path), media.mime)
            },
            headers=self._auth(conn),
        )
        # Not `mutating`: a repeated upload only leaves an unused media id, which expires.
        r = await conn.send(request, platform=self.name, mutating=False)
        if r.status not in (200, 201):
            raise self._error(r, mutating=False)
        media_id = str((r.json().get("data") or {})["id"])
        if media.alt:
            alt = Request.json(
                "POST",
                f"{base}/2/media/metadata",
                {"id": media_id, "metadata": {"alt_text": {"text": media.alt}}},
                self._auth(conn),
            )
            r = await conn.send(alt, platform=self.name, mutating=False)
            if r.status not in (200, 201):
                raise self._error(r, mutating=False)
        return media_id

    def parse(self, staged: Staged, index: int, response: Response) -> Published:
        if response.status in (200, 201):
            data = (response.json() or {}).get("data") or {}
            post_id = str(data["id"])
            return Published(post_id, permalink(staged.data.get("username"), post_id), data)
        raise self._error(response, mutating=True)

    async def publish(self, staged: Staged, conn: Connection) -> Published:
        """POST /2/tweets. A duplicate refusal may answer our own earlier attempt whose
        answer was lost: then the post is looked up, and returned if it is there."""
        try:
            return await super().publish(staged, conn)
        except DuplicateText:
            try:
                found = await self.reconcile(staged, conn)
            except PlatformError:
                found = None  # cannot look: the refusal stands
            if not isinstance(found, Published):
                raise
            return found

    async def reconcile(self, staged: Staged, conn: Connection) -> Published | NotPosted | None:
        """Read back the account's posts since the item's fire time (minus
        READ_BACK_MARGIN), up to READ_BACK_PAGES × 100, and return the one with the item's
        text (compared with `comparable`; X escapes & < > in `text` and rewrites links).

        NOT_POSTED means precisely: X answered the read-back and no post of this account in
        that window has this text — the post did not land, and the caller may send it again
        (should it have landed after all, X answers the resend with a duplicate refusal,
        which `publish` resolves by reading back once more). A failed read-back raises
        (RateLimited, Transient, AuthError) rather than answer None."""
        user_id = staged.data.get("user_id") or conn.state.get("user_id")
        if not user_id:
            await self.verify(conn)
            user_id = conn.state["user_id"]
        wanted = comparable(staged.item.text)
        since = (staged.item.fire_at.astimezone(UTC) - READ_BACK_MARGIN).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        params = {
            "max_results": "100",
            "start_time": since,
            "exclude": "retweets,replies",
            "tweet.fields": "created_at",
        }
        for _ in range(READ_BACK_PAGES):
            body = await self._get(conn, f"/2/users/{user_id}/tweets", **params)
            for post in body.get("data") or []:
                if comparable(html.unescape(str(post.get("text", "")))) == wanted:
                    post_id = str(post["id"])
                    username = staged.data.get("username") or conn.state.get("username")
                    return Published(post_id, permalink(username, post_id), post)
            next_token = (body.get("meta") or {}).get("next_token")
            if not next_token:
                break
            params["pagination_token"] = str(next_token)
        return NOT_POSTED
