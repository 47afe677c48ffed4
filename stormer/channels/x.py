"""X (Twitter) API v2: POST /2/tweets with an OAuth 2.0 user token (logged in with PKCE,
refreshed at staging) or OAuth 1.0a user context (stormer.channels.x_auth).

Credentials that hold until T. An OAuth 2.0 access token lives two hours; `stormer login`
keeps the refresh token and the token's expiry (`access_token_expires_at`) in the keyring
with it. Staging refreshes whenever the token would expire before `conn.holds_until(item)`
(or when its expiry is unknown), once per account however many items are staged at once, and
saves the rotated pair at once (`Connection.rotate`). A token that only X can judge (pasted,
no expiry known) is checked with GET /2/users/me at every staging, so an expired one is
found minutes before T, not at T. OAuth 1.0a tokens do not expire; their requests are signed
when they leave.

X has no server-side idempotency; an ambiguous send is reconciled by reading back the
account's recent posts (`X.reconcile`). Images go up at staging through the v2 one-shot
upload (`POST /2/media/upload`, `media_category=tweet_image`), their alt text through
`POST /2/media/metadata`; media ids expire (`expires_after_secs`), so staging stays near T.
"""

from __future__ import annotations

import dataclasses
import html
import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode

from stormer import lengths
from stormer.channels.base import (
    NOT_POSTED,
    Connection,
    CredentialStatus,
    ImageLimits,
    NotPosted,
    Platform,
    Published,
    Staged,
    account_lock,
    secret,
    staged,
)
from stormer.channels.http import Request, Response, classify, materialize, until_reset
from stormer.channels.x_auth import (
    AUTHORIZE_URL,
    EXPIRES_AT,
    OAUTH1_FIELDS,
    SCOPES,
    TOKEN_PATH,
    oauth1_signed,
    oauth_error,
    parse_instant,
    token_request,
    tokens_from,
)
from stormer.errors import AuthError, PlatformError, Rejected

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from stormer.channels.search import Pages, Wait
    from stormer.queue import MediaRef, QueueItem
    from stormer.storm import Account

# How far before the item's fire time a read-back looks (a send may leave a little early).
READ_BACK_MARGIN = timedelta(minutes=15)

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
    alternative_auth: ClassVar[Mapping[str, tuple[str, ...]]] = {"oauth1": OAUTH1_FIELDS}
    # What `stormer login` keeps beside the access token, and refreshing needs: the refresh
    # token (rotated by every refresh), the token's expiry, and the X app's OAuth 2.0 client
    # id (and secret, for a confidential client), named in config.toml or asked at login.
    kept_credentials = ("refresh_token", EXPIRES_AT, "client_id", "client_secret")
    public_credentials = (EXPIRES_AT, "client_id")  # not secret: not masked in logs
    # X matches the redirect URI exactly against the callback URIs registered for the app
    # (https://docs.x.com/fundamentals/authentication/oauth-2-0/authorization-code), so the
    # loopback listener has a fixed port: register http://127.0.0.1:8765/callback.
    loopback_port: ClassVar[int] = 8765
    # Read-backs count toward the Project's monthly Post cap (Free 1,500, Basic 10,000 Posts;
    # the same Post read twice in one day counts once:
    # https://docs.x.com/x-api/fundamentals/post-cap). Reconciling reads at most
    # `read_back_pages` pages of 100 Posts per item (posts since the fire time only) and
    # `read_backs_per_account` read-backs per account in one run: at most 900 Posts, and in
    # practice a handful. Past the bound the item is left unconfirmed for the organizer.
    read_back_pages: ClassVar[int] = 3
    read_backs_per_account: ClassVar[int] = 3
    idempotency = "read-back"
    default_base_url = "https://api.x.com"
    # X's automation rules forbid coordinated identical posts from several accounts.
    same_text_forbidden = True
    concurrency = 1000  # wide: see Platform.concurrency
    no_hashtag_search = None  # recent search, where the app's access level includes it
    # A quoted phrase finds the exact words, `f=live` the latest posts first
    # (https://help.x.com/en/using-x/x-advanced-search). Each X account posts its own text.
    look_by_hand = "https://x.com/search?q={phrase}&f=live"

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
                "headers": {"Authorization": self._auth_placeholder(account)},
                "json": body,
            }
        ]

    # --- authentication --------------------------------------------------------------------

    def _auth_placeholder(self, account: Account) -> str:
        if self.auth_of(account) == "oauth1":
            return f"OAuth {secret('oauth1_signature')}"  # signed as the request leaves
        return f"Bearer {secret('access_token')}"

    def _authorized(self, request: Request, conn: Connection) -> Request:
        """`request` with the account's credentials as they are now: the current access
        token (another item's staging may have refreshed it), or a fresh OAuth 1.0a
        signature (its timestamp and nonce are the moment it leaves)."""
        if self.auth_of(conn.account) == "oauth1":
            return oauth1_signed(request, conn)
        token = f"Bearer {conn.secret('access_token')}"
        return dataclasses.replace(request, headers={**request.headers, "Authorization": token})

    @staticmethod
    def _kept(conn: Connection, name: str) -> str | None:
        found = conn.credentials.get(name)
        return found.reveal() if found is not None else None

    def credential_status(self, conn: Connection) -> CredentialStatus:
        if self.auth_of(conn.account) == "oauth1":
            return CredentialStatus(kind="OAuth 1.0a user token")  # never expires
        kind = "OAuth 2.0 user token"
        expiry = parse_instant(self._kept(conn, EXPIRES_AT))
        if self._refreshable(conn):
            renewal = "refreshed at staging with the refresh token kept in the keyring"
            return CredentialStatus(kind=kind, expires_at=expiry, renewal=renewal)
        if expiry is None:
            return CredentialStatus(
                kind=kind,
                lifetime_unknown=True,
                lifetime="X's OAuth 2.0 tokens live two hours without offline.access",
            )
        return CredentialStatus(kind=kind, expires_at=expiry)

    def _refreshable(self, conn: Connection) -> bool:
        return self.auth_of(conn.account) is None and "refresh_token" in conn.credentials

    async def _refresh(self, conn: Connection, stale: str | None) -> None:
        """Replace the access token `stale` (grant_type=refresh_token) and save the new pair
        at once: X has revoked the old refresh token the moment it answers."""
        name = conn.account.name
        async with account_lock(conn):
            if self._kept(conn, "access_token") != stale:
                return  # another item's staging refreshed it meanwhile
            if "refresh_token" not in conn.credentials:
                raise AuthError(
                    f"the access token of {name!r} expires before the post is sent and there "
                    f"is no refresh token to renew it: run `stormer login {name}`",
                    platform=self.name,
                )
            client_id = self._kept(conn, "client_id")
            if not client_id:
                raise AuthError(
                    f"account {name!r} has no client_id, which renewing its access token "
                    'needs: name it in config.toml (credentials = { client_id = "ENV" }) or '
                    f"run `stormer login {name}`",
                    platform=self.name,
                )
            request = token_request(
                f"{self.base_url(conn.account)}{TOKEN_PATH}",
                {"refresh_token": conn.secret("refresh_token"), "grant_type": "refresh_token"},
                client_id,
                self._kept(conn, "client_secret"),
            )
            r = await conn.send(request, platform=self.name, mutating=False)
            if r.status in (400, 401):
                raise AuthError(
                    f"X refused to renew the access token of {name!r} ({oauth_error(r)}); "
                    f"the refresh token is spent or revoked: run `stormer login {name}`",
                    platform=self.name,
                    status=r.status,
                )
            if r.status != 200:
                raise self._error(r, mutating=False)
            conn.rotate(tokens_from(r, self.name))

    async def _ensure_token(self, conn: Connection, until: datetime) -> None:
        """Make sure the credentials hold until `until`, refreshing if they would not; fills
        in the user id and username (for read-backs) on the way."""
        if self.auth_of(conn.account) == "oauth1":  # OAuth 1.0a tokens do not expire
            if "user_id" not in conn.state:
                await self.verify(conn)
            return
        expiry = parse_instant(self._kept(conn, EXPIRES_AT))
        if expiry is None or expiry < until:
            if self._refreshable(conn):
                await self._refresh(conn, self._kept(conn, "access_token"))
            elif expiry is not None:
                name = conn.account.name
                raise AuthError(
                    f"the access token of {name!r} expires at {expiry:%Y-%m-%d %H:%M} UTC, "
                    f"before the post is sent, and there is no refresh token to renew it: "
                    f"run `stormer login {name}`",
                    platform=self.name,
                )
        if "user_id" in conn.state and parse_instant(self._kept(conn, EXPIRES_AT)):
            return  # known to hold: no need to ask X
        stale = self._kept(conn, "access_token")
        try:
            await self.verify(conn)
        except AuthError as e:
            if e.status != 401 or not self._refreshable(conn):
                raise
            await self._refresh(conn, stale)
            await self.verify(conn)

    async def login(
        self,
        account: Account,
        client: httpx.AsyncClient,
        ask: Callable[[str, bool], str],
        say: Callable[[str], None],
    ) -> dict[str, str]:
        """OAuth 2.0 Authorization Code with PKCE (OAuth 1.0a: the four keys are pasted)."""
        if self.auth_of(account) == "oauth1":
            return await super().login(account, client, ask, say)
        from stormer.channels.x_login import login_pkce

        return await login_pkce(
            self,
            account,
            client,
            ask,
            say,
            port=self.loopback_port,
            consent_page=self.authorize_base(account),
        )

    def authorize_base(self, account: Account) -> str:
        """X's consent page; a server named in `base_url` (a simulator) serves its own."""
        if not account.base_url:
            return AUTHORIZE_URL
        return f"{self.base_url(account)}/i/oauth2/authorize"

    def hashtag_posts(
        self, conn: Connection, hashtag: str, since: datetime, until: datetime, *, wait: Wait
    ) -> Pages:
        """Recent search, signed with the account's credentials (refreshed if need be)."""
        from stormer.channels.x_search import recent_search

        async def send(request: Request) -> Response:
            await self._ensure_token(conn, datetime.now(UTC) + timedelta(minutes=5))
            return await conn.send(
                self._authorized(request, conn), platform=self.name, mutating=False
            )

        now = datetime.now(UTC)
        return recent_search(
            send, self.base_url(conn.account), hashtag, since, until, wait=wait, now=now
        )

    # --- sending ---------------------------------------------------------------------------

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
        if response.status == 403 and lowered == "forbidden":
            return AuthError(
                f"{message}: the token lacks a permission stormer needs ({' '.join(SCOPES)}); "
                "log the account in again with `stormer login <account>`",
                platform=self.name,
                status=response.status,
            )
        return classify(response, platform=self.name, mutating=mutating, message=message)

    async def _get(self, conn: Connection, path: str, **params: str) -> Any:
        query = f"?{urlencode(params)}" if params else ""
        request = self._authorized(
            Request("GET", f"{self.base_url(conn.account)}{path}{query}"), conn
        )
        r = await conn.send(request, platform=self.name, mutating=False)
        if r.status != 200:
            raise self._error(r, mutating=False)
        return r.json()

    async def verify(self, conn: Connection) -> str:
        """GET /2/users/me; keeps the user id and username in `conn.state` for read-backs."""
        data = (await self._get(conn, "/2/users/me")).get("data") or {}
        found = {"user_id": str(data["id"]), "username": str(data["username"])}
        if any(conn.state.get(k) != v for k, v in found.items()):
            conn.state.update(found)
            conn.state_changed()
        return f"@{conn.state['username']}"

    async def stage(self, item: QueueItem, conn: Connection) -> Staged:
        await self._ensure_token(conn, conn.holds_until(item))  # before any upload
        values: dict[str, Any] = {secret("access_token"): "", secret("oauth1_signature"): ""}
        for media in item.media:
            values[staged("media_id", media.path)] = await self._upload(media, conn)
        requests = [
            self._authorized(materialize(spec, values), conn)
            for spec in self.build_requests(item, conn.account)
        ]
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
        )
        # Not `mutating`: a repeated upload only leaves an unused media id, which expires.
        r = await conn.send(self._authorized(request, conn), platform=self.name, mutating=False)
        if r.status not in (200, 201):
            raise self._error(r, mutating=False)
        media_id = str((r.json().get("data") or {})["id"])
        if media.alt:
            alt = Request.json(
                "POST",
                f"{base}/2/media/metadata",
                {"id": media_id, "metadata": {"alt_text": {"text": media.alt}}},
            )
            r = await conn.send(self._authorized(alt, conn), platform=self.name, mutating=False)
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
            return await self._post(staged, conn)
        except DuplicateText:
            try:
                found = await self.reconcile(staged, conn)
            except PlatformError:
                found = None  # cannot look: the refusal stands
            if not isinstance(found, Published):
                raise
            return found

    async def _post(self, staged: Staged, conn: Connection) -> Published:
        """Send with the credentials as they are now. A 401 means X refused before acting —
        nothing was posted — so after a refresh the same post may go once more."""
        sent_with = self._kept(conn, "access_token")
        request = self._authorized(staged.requests[0], conn)
        r = await conn.send(request, platform=self.name, mutating=True)
        if r.status == 401 and self._refreshable(conn):
            await self._refresh(conn, sent_with)
            request = self._authorized(staged.requests[0], conn)
            r = await conn.send(request, platform=self.name, mutating=True)
        staged.requests[0] = request
        return self.parse(staged, 0, r)

    async def reconcile(self, staged: Staged, conn: Connection) -> Published | NotPosted | None:
        """Read back the account's posts since the item's fire time (minus
        READ_BACK_MARGIN), up to `read_back_pages` × 100, and return the one with the item's
        text (compared with `comparable`; X escapes & < > in `text` and rewrites links).

        NOT_POSTED means precisely: X answered the read-back and no post of this account in
        that window has this text — the post did not land, and the caller may send it again
        (should it have landed after all, X answers the resend with a duplicate refusal,
        which `publish` resolves by reading back once more). None: the read-back bound was
        reached (pages left unread, or `read_backs_per_account` spent) — the organizer looks.
        A failed read-back raises (RateLimited, Transient, AuthError) rather than answer."""
        spent = int(conn.state.get("read_backs", 0))
        if spent >= self.read_backs_per_account:
            return None
        conn.state["read_backs"] = spent + 1
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
        for _ in range(self.read_back_pages):
            body = await self._get(conn, f"/2/users/{user_id}/tweets", **params)
            for post in body.get("data") or []:
                if comparable(html.unescape(str(post.get("text", "")))) == wanted:
                    post_id = str(post["id"])
                    username = staged.data.get("username") or conn.state.get("username")
                    return Published(post_id, permalink(username, post_id), post)
            next_token = (body.get("meta") or {}).get("next_token")
            if not next_token:
                return NOT_POSTED
            params["pagination_token"] = str(next_token)
        return None  # more posts than the bound lets us read: cannot say
