"""Matrix client-server API: one m.room.message event per send, with a transaction id derived
from the queue item, so that a retry on the same device returns the same event.

https://spec.matrix.org/latest/client-server-api/ — a text-only post is one m.text event. A
post with images is one m.image event per image (uploaded before T to the media
repository), each PUT with its own transaction id `stormer-{item id}-{part}`:

- the first carries the post's text as its caption: `body` is the text and `filename` the
  file's name ("If filename is set and differs from body, body is a caption",
  https://spec.matrix.org/v1.10/client-server-api/#media-captions), so clients show text and
  image together as one message, as the post it is;
- an event carries one image (`url`), and no event type of the spec carries several, so each
  further image is an m.image event of its own, captioned with its alt text (clients show it
  under the image) or, without one, with no caption (`body` = `filename`).

The spec has no alt-text field (MSC3552 proposes one, for a future room version), so the
first image's alt text has no place: it is lost (`alt_text = False`).

Idempotency holds only for the SAME device: the homeserver remembers transaction ids per
device (verified on Synapse: the same txnId under the same device returns the same event_id
even with another body; after a login to another device it creates a new event). Tokens and
devices: matrix_session.py — a refresh, and a login to the account's fixed device, keep it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from stormer.channels import matrix_session as session
from stormer.channels.base import (
    Connection,
    CredentialStatus,
    ImageLimits,
    LiveLimits,
    Platform,
    Published,
    Staged,
    secret,
    staged,
)
from stormer.channels.http import Request, Response, classify, materialize, retry_after
from stormer.errors import AuthError, OutcomeUnknown, PlatformError, RateLimited, Rejected

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from stormer.queue import MediaRef, QueueItem
    from stormer.storm import Account

MAX_EVENT_BYTES = 65536  # the spec's limit for a whole event; the content must leave room
AUTH_ERRCODES = ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN")
_CONTENT_AROUND_BODY = len('{"msgtype": "m.text", "body": }')


@lru_cache(maxsize=65536)  # a storm repeats its few texts across thousands of items
def _content_bytes(text: str) -> int:
    # No text limit, only an event size limit: count the bytes of the JSON content,
    # json.dumps({"msgtype": "m.text", "body": text}). Its ASCII string encoder (the one
    # json.dumps calls, in C) gives the body's part alone, without building the object.
    return _CONTENT_AROUND_BODY + len(encode_basestring_ascii(text))


@lru_cache(maxsize=65536)  # each account's room, for each of its items
def _quote_room(room: str) -> str:
    return quote(room, safe="")


class Matrix(Platform):
    name = "matrix"
    title = "Matrix"
    text_limit = MAX_EVENT_BYTES - 1536  # room for the event envelope around the content
    max_images = 10  # one m.image event each, the first captioned with the text
    alt_text = False  # no alt-text field in the spec: see the module docstring
    # Servers set their own (`m.upload.size` in /_matrix/client/v1/media/config); the spec
    # fixes no dimensions. 50 MiB is Synapse's default max_upload_size ("50M").
    image_limits = ImageLimits(
        source="https://element-hq.github.io/synapse/latest/usage/configuration/config_documentation.html#max_upload_size",
        max_bytes=50 * 1024 * 1024,
    )
    credential_fields = ("access_token",)
    # Or stormer logs in itself, to a fixed device (matrix_session.py); `user` is a full MXID
    # or the localpart.
    alternative_auth: ClassVar[Mapping[str, tuple[str, ...]]] = {"password": ("user", "password")}
    # A refresh token (spec v1.3), saved with the access token it rotates as they change; an
    # account that logs in by password refreshes with it before it logs in again.
    kept_credentials = ("refresh_token",)
    public_credentials = ("user",)  # a user name, not a secret: not masked in logs
    target_field = "room"
    idempotency = "transaction-id"
    concurrency = 1000  # wide: see Platform.concurrency
    # The client-server API's search (POST /search) covers only rooms the user has joined
    # (https://spec.matrix.org/latest/client-server-api/#server-side-search).
    no_hashtag_search = "its search covers only the rooms this account has joined"
    # A matrix.to link opens the room in the reader's own client
    # (https://spec.matrix.org/latest/appendices/#matrixto-navigation).
    look_by_hand = "https://matrix.to/#/{target}"

    def length(self, text: str) -> int:
        return _content_bytes(text)

    def credential_status(self, conn: Connection) -> CredentialStatus:
        if self.auth_of(conn.account) == "password":
            return CredentialStatus(
                kind="password (a fixed device)",
                renewal="refresh token, or a new login with the password",
            )
        if "refresh_token" in conn.credentials:
            return CredentialStatus(
                kind="access token with a refresh token",
                renewal="refreshed with the refresh token kept in the keyring",
            )
        # A pasted token lasts until revoked on Synapse; a homeserver whose tokens expire
        # (the Matrix Authentication Service, matrix.org since 2025) says so with a 401.
        return CredentialStatus(kind="access token")

    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        room = _quote_room(account.target or "<room>")
        base = f"{self.base_url(account)}/_matrix/client/v3/rooms/{room}/send/m.room.message"
        auth = session.bearer(secret("access_token"))
        if not item.media:
            content: dict[str, Any] = {"msgtype": "m.text", "body": item.text}
            return [
                {
                    "method": "PUT",
                    "url": f"{base}/stormer-{item.id}-0",
                    "headers": auth,
                    "json": content,
                }
            ]
        requests = []
        for i, m in enumerate(item.media):
            filename = m.path.rsplit("/", 1)[-1]
            info: dict[str, Any] = {"mimetype": m.mime}
            if m.width and m.height:
                info.update(w=m.width, h=m.height)
            # The caption: the post's text on the first image, its alt text on the others.
            caption = item.text if i == 0 else (m.alt or filename)
            requests.append(
                {
                    "method": "PUT",
                    "url": f"{base}/stormer-{item.id}-{i}",
                    "headers": auth,
                    "json": {
                        "msgtype": "m.image",
                        "body": caption,
                        "filename": filename,
                        "url": staged("mxc", m.path),
                        "info": info,
                    },
                }
            )
        return requests

    # --- sending ---------------------------------------------------------------------------

    def _error(
        self, response: Response, *, mutating: bool, room: str | None = None
    ) -> PlatformError:
        body = response.json()
        body = body if isinstance(body, dict) else {}
        errcode = str(body.get("errcode") or "")
        error = str(body.get("error") or f"HTTP {response.status}")
        status = response.status
        if errcode == "M_LIMIT_EXCEEDED" or status == 429:
            # Retry-After is the current signal; retry_after_ms is deprecated since v1.10.
            ms = body.get("retry_after_ms")
            seconds = (
                ms / 1000
                if "retry-after" not in response.headers and isinstance(ms, (int, float))
                else retry_after(response.headers)
            )
            return RateLimited(
                f"rate limited ({error}); retry in {seconds:.1f} s",
                retry_after=seconds,
                platform=self.name,
                status=status,
            )
        if errcode in AUTH_ERRCODES:
            hint = (
                "it expired: refresh it, keeping the same device (`stormer login` logs in "
                "with a refresh token, which stormer then renews itself)"
                if body.get("soft_logout")
                else "set a new access_token, or log in again with `stormer login` (a login "
                "to another device makes earlier attempts' transaction ids void)"
            )
            return AuthError(
                f"access token rejected ({errcode}: {error}) — {hint}",
                platform=self.name,
                status=status,
            )
        if errcode == "M_FORBIDDEN":
            where = f"room {room}" if room else "the room"
            if "not in room" in error.lower() or "not joined" in error.lower():
                return AuthError(
                    f"the account is not in {where}: join it (or accept the "
                    f"invite) first ({error})",
                    platform=self.name,
                    status=status,
                )
            return AuthError(
                f"forbidden ({error}) — check the account's permissions",
                platform=self.name,
                status=status,
            )
        if errcode == "M_TOO_LARGE":
            return Rejected(f"too large ({error})", platform=self.name, status=status)
        return classify(
            response,
            platform=self.name,
            mutating=mutating,
            message=f"{errcode}: {error}" if errcode else error,
        )

    async def _whoami(self, conn: Connection) -> dict[str, Any]:
        url = f"{self.base_url(conn.account)}/_matrix/client/v3/account/whoami"
        r = await session.call(
            conn, lambda token: Request("GET", url, session.bearer(token)), mutating=False
        )
        body = r.json()
        if r.status != 200 or not isinstance(body, dict) or "user_id" not in body:
            raise self._error(r, mutating=False)
        return body

    async def verify(self, conn: Connection) -> str:
        return str((await self._whoami(conn))["user_id"])

    async def login(
        self,
        account: Account,
        client: httpx.AsyncClient,
        ask: Callable[[str, bool], str],
        say: Callable[[str], None],
    ) -> dict[str, str]:
        """`stormer login`: a password login to the account's fixed device, asking for a
        refresh token; returns what to keep (the tokens, and for an account that logs in by
        password, its user and password)."""
        from stormer.secrets import Secret

        user = ask(f"Matrix user for {account.name} (@name:server, or the name)", False).strip()
        password = ask(f"password of {user}", True)
        conn = Connection(account=account, client=client, credentials={})
        answer = await session.login(conn, user, password)
        values = {"access_token": str(answer["access_token"])}
        if isinstance(answer.get("refresh_token"), str):
            values["refresh_token"] = answer["refresh_token"]
        if self.auth_of(account) == "password":
            values.update(user=user, password=password)
        conn.credentials.update(
            {k: Secret(v, redact=k not in self.public_credentials) for k, v in values.items()}
        )
        lasts = answer.get("expires_in_ms")
        say(
            f"accepted: {await self.verify(conn)} on device {answer.get('device_id')}; "
            + (
                f"its access token lasts {lasts // 1000} s and stormer refreshes it"
                if isinstance(lasts, int) and "refresh_token" in values
                else "its access token does not expire"
            )
        )
        return values

    async def read_limits(self, conn: Connection) -> LiveLimits | None:
        """The homeserver's upload limit, `m.upload.size` of GET /_matrix/client/v1/media/config
        (authenticated, spec v1.11:
        https://spec.matrix.org/v1.13/client-server-api/#get_matrixclientv1mediaconfig).
        None when the server has no such endpoint (older than v1.11) or names no limit."""
        url = f"{self.base_url(conn.account)}/_matrix/client/v1/media/config"
        r = await session.call(
            conn, lambda token: Request("GET", url, session.bearer(token)), mutating=False
        )
        if r.status == 404:
            return None
        body = r.json()
        if r.status != 200 or not isinstance(body, dict):
            raise self._error(r, mutating=False)
        size = body.get("m.upload.size")
        valid = isinstance(size, int) and not isinstance(size, bool) and size > 0
        return LiveLimits(source=url, image_bytes=size if valid else None)

    async def stage(self, item: QueueItem, conn: Connection) -> Staged:
        """Check the token, upload each image (its mxc:// URI goes into its m.image event)
        and build the PUTs. `data` records the device the transaction ids belong to."""
        room = conn.account.target
        if not room:
            raise Rejected(f"account {conn.account.name!r} has no target room", platform=self.name)
        # The access token must hold until T + grace: renewed now if it would not (once for
        # all the account's items), not discovered at T.
        await session.token(conn, conn.holds_until(item))
        me = await self._whoami(conn)
        room = await self._join(room, conn)  # an alias becomes the room id it names
        values: dict[str, Any] = {secret("access_token"): conn.secret("access_token")}
        specs = self.build_requests(item, replace(conn.account, target=room))
        for media, spec in zip(item.media, specs if item.media else [], strict=True):
            content = conn.media_bytes(media.path)
            values[staged("mxc", media.path)] = await self._upload(media, content, conn)
            spec["json"]["info"]["size"] = len(content)
        return Staged(
            item,
            [materialize(spec, values) for spec in specs],
            {
                "room": room,
                "user_id": me["user_id"],
                "device_id": me.get("device_id"),
                "mxc": [values[staged("mxc", m.path)] for m in item.media],
            },
        )

    async def _join(self, room: str, conn: Connection) -> str:
        """Join the room before T (a no-op when already in it), so that an invite-only room
        the account cannot enter is reported at staging, not when the storm fires. Returns
        the room id: events are sent to a room id, never to an alias (`#room:server`), and
        the join answers with the id (spec: POST /_matrix/client/v3/join/{roomIdOrAlias})."""
        joined = conn.state.get("joined")
        if isinstance(joined, tuple) and joined[0] == room:
            return str(joined[1])
        url = f"{self.base_url(conn.account)}/_matrix/client/v3/join/{quote(room, safe='')}"
        r = await session.call(
            conn, lambda token: Request.json("POST", url, {}, session.bearer(token)), mutating=False
        )
        if r.status != 200:
            raise self._error(r, mutating=False)
        body = r.json()
        room_id = body.get("room_id") if isinstance(body, dict) else None
        if not isinstance(room_id, str) or not room_id.startswith("!"):
            raise Rejected(f"joining {room} named no room id", platform=self.name)
        conn.state["joined"] = (room, room_id)
        return room_id

    async def _upload(self, media: MediaRef, content: bytes, conn: Connection) -> str:
        filename = media.path.rsplit("/", 1)[-1]
        url = (
            f"{self.base_url(conn.account)}/_matrix/media/v3/upload"
            f"?filename={quote(filename, safe='')}"
        )
        # Not `mutating`: a repeated upload only leaves an unused file on the server.
        r = await session.call(
            conn,
            lambda token: Request(
                "POST", url, {**session.bearer(token), "Content-Type": media.mime}, content
            ),
            mutating=False,
        )
        body = r.json()
        if r.status != 200:
            raise self._error(r, mutating=False)
        uri = body.get("content_uri") if isinstance(body, dict) else None
        if not isinstance(uri, str) or not uri.startswith("mxc://"):
            raise Rejected(f"upload of {filename} returned no mxc:// URI", platform=self.name)
        return uri

    def parse(self, staged: Staged, index: int, response: Response) -> Published:
        room = staged.data.get("room")
        if response.status != 200:
            raise self._error(response, mutating=True, room=room)
        body = response.json()
        event_id = body.get("event_id") if isinstance(body, dict) else None
        if not isinstance(event_id, str):
            raise OutcomeUnknown(
                "unreadable answer to a send", platform=self.name, status=response.status
            )
        server = str(staged.data.get("user_id") or "").partition(":")[2]
        via = f"?via={server}" if server else ""
        return Published(event_id, f"https://matrix.to/#/{room}/{event_id}{via}", body)

    async def publish(self, staged: Staged, conn: Connection) -> Published:
        """PUT each event in turn; the result is the first (the text), with every event id in
        `raw["event_ids"]`. Each PUT carries its own transaction id, so sending them all
        again after a partial failure posts nothing twice. Each goes with the account's
        current access token (renewed since staging, or now, or after a 401: a refresh keeps
        the device, so the transaction ids still hold)."""
        events = []
        for index, request in enumerate(staged.requests):
            response = await session.call(conn, _with_token(request), mutating=True)
            events.append(self.parse(staged, index, response))
        first = events[0]
        return Published(
            first.remote_id,
            first.permalink,
            {**first.raw, "event_ids": [e.remote_id for e in events]},
        )

    async def reconcile(self, staged: Staged, conn: Connection) -> Published | None:
        """Send the same requests again: the homeserver answers an already-seen transaction
        id with the event it created, and creates the ones that never arrived. Valid only
        while `staged` carries a token of the same device as the first attempt (see the
        module docstring): never re-stage with a new login between the two."""
        return await self.publish(staged, conn)


def _with_token(request: Request) -> Callable[[str], Request]:
    return lambda token: replace(request, headers={**request.headers, **session.bearer(token)})
