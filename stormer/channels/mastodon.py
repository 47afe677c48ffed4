"""Mastodon: POST /api/v1/statuses with an Idempotency-Key (https://docs.joinmastodon.org/methods/statuses/).

Media go up before T through POST /api/v2/media with the alt text as `description`; a 202
means the server is still processing it, and GET /api/v1/media/:id answers 206 until done.
Each instance publishes its own limits (`read_limits`: GET /api/v2/instance); the class data
are Mastodon's defaults, used where an instance says nothing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from stormer import lengths
from stormer.channels.base import (
    Connection,
    ImageLimits,
    LiveLimits,
    Platform,
    Published,
    Staged,
    secret,
    staged,
)
from stormer.channels.http import Request, Response, classify, materialize, send
from stormer.errors import AuthError, PlatformError, Rejected

if TYPE_CHECKING:
    from datetime import datetime

    from stormer.channels.search import Pages, Wait
    from stormer.queue import MediaRef, QueueItem
    from stormer.storm import Account

OOB = "urn:ietf:wg:oauth:2.0:oob"  # out-of-band: the server shows the code to paste
SCOPES = "write:statuses write:media read:accounts"
MEDIA_POLL_SECONDS = (0.2, 0.5, 1.0, 2.0)  # then every 2 s
MEDIA_PROCESSING_LIMIT = 120.0  # seconds; staging runs minutes before T


class Mastodon(Platform):
    name = "mastodon"
    title = "Mastodon"
    # Defaults; each instance publishes its own (read_limits). max_characters 500 and
    # characters_reserved_per_url 23: https://docs.joinmastodon.org/entities/Instance/#statuses
    text_limit = lengths.MASTODON_LIMIT
    url_length = 23
    max_images = 4
    # Instance defaults; an instance publishes its own in /api/v2/instance.
    image_limits = ImageLimits(
        source="https://docs.joinmastodon.org/user/posting/#attachments",
        # configuration.media_attachments.image_size_limit, image_matrix_limit:
        # https://docs.joinmastodon.org/entities/Instance/#image_size_limit
        max_bytes=16_777_216,
        max_pixels=33_177_600,
        # "Images (PNG, JPG, HEIF, WEBP, AVIF) up to 16 MB"; GIF up to 16 MB (same page)
        formats=frozenset(
            {"image/png", "image/jpeg", "image/gif", "image/webp"}
            | {"image/heic", "image/heif", "image/avif"}
        ),
        alt_chars=1500,  # description_limit (same Instance entity)
        alt_source="https://docs.joinmastodon.org/entities/Instance/#description_limit",
    )
    credential_fields = ("access_token",)
    credential_kind = "OAuth access token"  # lasts until revoked (no expiry by default)
    idempotency = "key"
    idempotency_window = 3600.0  # Mastodon keeps Idempotency-Keys for one hour
    concurrency = 1000  # wide: see Platform.concurrency
    no_hashtag_search = None  # the tag timeline: mastodon_tags
    # The instance's public hashtag page lists the posts it holds under the tag, ours first
    # among them (the web route `/tags/:id`: https://github.com/mastodon/mastodon/blob/main/
    # config/routes.rb). Full-text search is optional on an instance, so not relied on.
    look_by_hand = "{base_url}/tags/{tag}"

    def length(self, text: str) -> int:
        return lengths.mastodon_length(text, url_length=self.url_length)

    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"status": item.text, "visibility": "public", "language": item.lang}
        if item.media:
            body["media_ids"] = [staged("media_id", m.path) for m in item.media]
        return [
            {
                "method": "POST",
                "url": f"{self.base_url(account)}/api/v1/statuses",
                "headers": {
                    "Authorization": f"Bearer {secret('access_token')}",
                    "Idempotency-Key": f"stormer-{item.id}",
                },
                "json": body,
            }
        ]

    def hashtag_posts(
        self, conn: Connection, hashtag: str, since: datetime, until: datetime, *, wait: Wait
    ) -> Pages:
        """The tag timeline of this account's instance (public; the account's token only
        where the instance asks for one)."""
        from stormer.channels.mastodon_tags import tag_timeline

        async def send(request: Request) -> Response:
            return await conn.send(request, platform=self.name, mutating=False)

        token = conn.credentials.get("access_token")
        return tag_timeline(
            send,
            self.base_url(conn.account),
            hashtag,
            since,
            until,
            wait=wait,
            token=token.reveal() if token else None,
        )

    # --- sending ---------------------------------------------------------------------------

    def _auth(self, conn: Connection) -> dict[str, str]:
        return {"Authorization": f"Bearer {conn.secret('access_token')}"}

    def _error(self, response: Response, *, mutating: bool) -> PlatformError:
        body = response.json()
        message = body.get("error") if isinstance(body, dict) else None
        return classify(
            response,
            platform=self.name,
            mutating=mutating,
            message=message or f"HTTP {response.status}",
        )

    def _step_failed(self, step: str, url: str, response: Response) -> PlatformError:
        """A login step the server refused, naming the step and the URL it went to."""
        body = response.json()
        said = ""
        if isinstance(body, dict):
            said = " ".join(
                str(body[k]) for k in ("error", "error_description") if isinstance(body.get(k), str)
            )
        return classify(
            response,
            platform=self.name,
            mutating=False,
            message=f"{step} at {url} failed: HTTP {response.status} {said}".rstrip(),
        )

    async def login(self, account, client, ask, say):  # type: ignore[no-untyped-def]
        """OAuth out-of-band code flow (https://docs.joinmastodon.org/client/token/):
        register an app (https://docs.joinmastodon.org/methods/apps/#create), the organizer
        authorizes it in the browser and pastes the code shown, which is exchanged for a
        token (https://docs.joinmastodon.org/methods/oauth/#token)."""
        from urllib.parse import urlencode

        from stormer.secrets import Secret

        base = self.base_url(account)
        apps_url = f"{base}/api/v1/apps"
        app = await send(
            client,
            Request.json(
                "POST", apps_url, {"client_name": "stormer", "redirect_uris": OOB, "scopes": SCOPES}
            ),
            platform=self.name,
            mutating=False,
        )
        if app.status != 200:
            raise self._step_failed("registering the app", apps_url, app)
        client_id, client_secret = app.json()["client_id"], app.json()["client_secret"]
        say(
            "Open this address, log in as the account's owner and authorize stormer:\n"
            f"{base}/oauth/authorize?"
            + urlencode(
                {
                    "client_id": client_id,
                    "response_type": "code",
                    "redirect_uri": OOB,
                    "scope": SCOPES,
                }
            )
        )
        code = ask("the authorization code shown after you authorize", True).strip()
        token_url = f"{base}/oauth/token"
        token = await send(
            client,
            Request.json(
                "POST",
                token_url,
                {
                    "grant_type": "authorization_code",
                    "code": code,
                    "client_id": client_id,
                    "client_secret": client_secret,
                    "redirect_uri": OOB,
                    "scope": SCOPES,
                },
            ),
            platform=self.name,
            mutating=False,
        )
        if token.status != 200:
            raise self._step_failed("exchanging the authorization code", token_url, token)
        access = token.json()["access_token"]
        granted = set(str(token.json().get("scope") or SCOPES).split())
        missing = [s for s in SCOPES.split() if s not in granted and _parent(s) not in granted]
        if missing:
            raise AuthError(
                f"the token from {token_url} lacks the scope(s) {', '.join(missing)}; "
                "authorize again and grant them all",
                platform=self.name,
            )
        conn = Connection(
            account=account, client=client, credentials={"access_token": Secret(access)}
        )
        say(f"accepted: {await self.verify(conn)}")
        return {"access_token": access}

    async def read_limits(self, conn: Connection) -> LiveLimits | None:
        """The instance's own limits, from its configuration: GET /api/v2/instance
        (https://docs.joinmastodon.org/methods/instance/#v2, Mastodon 4.0+); a server older
        than 4.0 answers 404 there and publishes the same `configuration` at /api/v1/instance
        (3.4.2+, https://docs.joinmastodon.org/entities/V1_Instance/#configuration); one older
        still publishes none, and the class data stand. Public: no token is sent."""
        base = self.base_url(conn.account)
        for path in ("/api/v2/instance", "/api/v1/instance"):
            url = base + path
            r = await conn.send(Request("GET", url), platform=self.name, mutating=False)
            if r.status == 404:
                continue
            if r.status != 200:
                raise self._error(r, mutating=False)
            body = r.json()
            config = body.get("configuration") if isinstance(body, dict) else None
            if not isinstance(config, dict):
                return None
            statuses = _section(config, "statuses")
            media = _section(config, "media_attachments")
            # Field names: https://docs.joinmastodon.org/entities/Instance/#configuration
            # (description_limit since 4.4.0: https://docs.joinmastodon.org/entities/Instance/#description_limit)
            return LiveLimits(
                source=url,
                text_limit=_positive(statuses.get("max_characters")),
                url_length=_positive(statuses.get("characters_reserved_per_url")),
                image_bytes=_positive(media.get("image_size_limit")),
                alt_text_limit=_positive(media.get("description_limit")),
            )
        return None

    async def verify(self, conn: Connection) -> str:
        url = f"{self.base_url(conn.account)}/api/v1/accounts/verify_credentials"
        r = await conn.send(
            Request("GET", url, self._auth(conn)), platform=self.name, mutating=False
        )
        if r.status != 200:
            raise self._error(r, mutating=False)
        return "@" + str(r.json().get("acct", "?"))

    async def stage(self, item: QueueItem, conn: Connection) -> Staged:
        values: dict[str, Any] = {secret("access_token"): conn.secret("access_token")}
        for media in item.media:
            values[staged("media_id", media.path)] = await self._upload(media, conn)
        requests = [materialize(spec, values) for spec in self.build_requests(item, conn.account)]
        return Staged(
            item, requests, {"media_ids": [values[staged("media_id", m.path)] for m in item.media]}
        )

    async def _upload(self, media: MediaRef, conn: Connection) -> str:
        base = self.base_url(conn.account)
        request = Request.multipart(
            "POST",
            f"{base}/api/v2/media",
            data={"description": media.alt},
            files={
                "file": (media.path.rsplit("/", 1)[-1], conn.media_bytes(media.path), media.mime)
            },
            headers=self._auth(conn),
        )
        # Not `mutating`: a repeated upload only leaves an unattached file behind.
        r = await conn.send(request, platform=self.name, mutating=False)
        if r.status not in (200, 202):
            raise self._error(r, mutating=False)
        media_id = str(r.json()["id"])
        if r.status == 202:
            await self._wait_processed(media_id, conn)
        return media_id

    async def _wait_processed(self, media_id: str, conn: Connection) -> None:
        url = f"{self.base_url(conn.account)}/api/v1/media/{media_id}"
        waited, attempt = 0.0, 0
        while waited < MEDIA_PROCESSING_LIMIT:
            r = await conn.send(
                Request("GET", url, self._auth(conn)), platform=self.name, mutating=False
            )
            if r.status == 200:
                return
            if r.status != 206:
                raise self._error(r, mutating=False)
            delay = MEDIA_POLL_SECONDS[min(attempt, len(MEDIA_POLL_SECONDS) - 1)]
            await asyncio.sleep(delay)
            waited += delay
            attempt += 1
        raise Rejected(
            f"media {media_id} was still processing after {MEDIA_PROCESSING_LIMIT:.0f} s",
            platform=self.name,
        )

    def parse(self, staged: Staged, index: int, response: Response) -> Published:
        if response.status == 200:
            body = response.json()
            return Published(str(body["id"]), body.get("url") or body.get("uri"), body)
        raise self._error(response, mutating=True)

    async def reconcile(self, staged: Staged, conn: Connection) -> Published | None:
        # Resending with the same Idempotency-Key returns the status created the first time
        # (or creates it once if the first request never arrived). Callers must do this
        # within `idempotency_window` of the first attempt.
        return await self.publish(staged, conn)

    async def confirm(self, published: Published, conn: Connection) -> Published:
        url = f"{self.base_url(conn.account)}/api/v1/statuses/{published.remote_id}"
        r = await conn.send(
            Request("GET", url, self._auth(conn)), platform=self.name, mutating=False
        )
        if r.status != 200:
            raise self._error(r, mutating=False)
        body = r.json()
        return Published(published.remote_id, body.get("url") or published.permalink, body)


def _parent(scope: str) -> str:
    """The high-level scope that includes a granular one (`write` includes `write:media`:
    https://docs.joinmastodon.org/api/oauth-scopes/#granular-scopes)."""
    return scope.partition(":")[0]


def _section(config: dict[str, Any], name: str) -> dict[str, Any]:
    value = config.get(name)
    return value if isinstance(value, dict) else {}


def _positive(value: Any) -> int | None:
    """A published limit, if it is one (a whole number above 0); None: not said."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return None
    return value
