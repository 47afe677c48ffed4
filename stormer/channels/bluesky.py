"""Bluesky / AT Protocol: putRecord with a deterministic TID record key and swapRecord null,
so that a retry of the same item can never create a second post (create-if-absent).

Sessions. `com.atproto.server.createSession` (handle + app password) is called once per
account and the session is kept in `conn.state` ("accessJwt", "refreshJwt", "did",
"handle"): the PDS allows only 30 logins per 5 minutes (300 a day) per account. An expired
access token (`ExpiredToken`) is renewed with `refreshSession`, which *revokes* the old
refresh token — so the new pair is stored and `conn.state_changed()` called before anything
else; only when the refresh itself is refused is a new session created. Logins and refreshes
of one account are serialized, so that concurrent staging logs in once.

Images. `uploadBlob` runs at staging, ~10 minutes before T. The PDS deletes a blob that no
record references within "a time window (eg, minutes)" (lexicon uploadBlob; the reference PDS
keeps them about an hour), so staging must stay close to T. If a blob is gone by the time
putRecord runs, it fails with a Rejected saying so: the item must be staged again (a new
upload) before it is published.

Idempotency. The record key is a TID fixed by the item (`record_key`), and putRecord with
`"swapRecord": null` means "create if absent" on a real PDS: the first call creates the post,
an identical retry answers 200 with the same cid and writes nothing, and a different record
at that key answers 400 InvalidSwap. Reconciling an unknown outcome is therefore simply
sending the same request again (see `Bluesky.reconcile`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

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
from stormer.channels.http import Request, Response, classify, materialize
from stormer.errors import AuthError, PlatformError, Rejected, Transient
from stormer.richtext import bluesky_facets
from stormer.secrets import Secret, redact
from stormer.timezones import iso_utc

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from stormer.queue import MediaRef, QueueItem
    from stormer.storm import Account

_S32 = "234567abcdefghijklmnopqrstuvwxyz"
POST_COLLECTION = "app.bsky.feed.post"
SESSION_KEYS = ("accessJwt", "refreshJwt", "did", "handle")
# XRPC error names that mean "these credentials will not do", whatever the HTTP status.
_AUTH_ERRORS = frozenset(
    {
        "AuthenticationRequired",
        "InvalidToken",
        "AccountTakedown",
        "AuthFactorTokenRequired",
        "AccountDeactivated",
    }
)

# One lock per account (and per event loop: an asyncio.Lock belongs to one loop).
_session_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]]
_session_locks = weakref.WeakKeyDictionary()


def record_key(item_id: str, at: datetime) -> str:
    """A TID (https://atproto.com/specs/tid) fixed by the item: microseconds of its fire time
    and a 10-bit clock id hashed from the item id. Same item → same key, on every retry."""
    micros = int(at.timestamp()) * 1_000_000 + at.microsecond
    clock_id = int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:2], "big") & 0x3FF
    value = (micros << 10) | clock_id
    chars = []
    for _ in range(13):
        chars.append(_S32[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))


def permalink(handle_or_did: str, uri: str) -> str:
    """The bsky.app address of the post at `uri` (at://did/app.bsky.feed.post/rkey)."""
    return f"https://bsky.app/profile/{handle_or_did}/post/{uri.rsplit('/', 1)[-1]}"


def _xrpc_error(response: Response) -> tuple[str, str]:
    """The XRPC error name and message of a failed response ("" when absent)."""
    body = response.json()
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("error") or ""), str(body.get("message") or "")


def _expired(response: Response) -> bool:
    return response.status in (400, 401) and _xrpc_error(response)[0] == "ExpiredToken"


def _bearer(request: Request, token: str) -> Request:
    return dataclasses.replace(
        request, headers={**request.headers, "Authorization": f"Bearer {token}"}
    )


def _remember_tokens(session: dict[str, Any]) -> None:
    """Make the session's tokens known to the redaction of logs and messages."""
    for key in ("accessJwt", "refreshJwt"):
        if session.get(key):
            Secret(session[key])


def _session_lock(conn: Connection) -> asyncio.Lock:
    locks = _session_locks.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(f"{conn.account.platform}:{conn.account.name}", asyncio.Lock())


class Bluesky(Platform):
    name = "bluesky"
    title = "Bluesky"
    text_limit = lengths.BLUESKY_LIMIT
    max_images = 4
    image_limits = ImageLimits(
        source="https://github.com/bluesky-social/atproto/blob/main/lexicons/app/bsky/embed/images.json",
        # The lexicon's blob maxSize is now 2,000,000 ("formerly limited to 1 MB"), but PDSes
        # not yet updated refuse over 1,000,000 (BlobTooLarge): the lower one holds on both.
        max_bytes=1_000_000,
        formats=None,  # accept: ["image/*"]; `alt` is a string with no maxLength
    )
    credential_fields = ("app_password",)
    handle_example = '"name.bsky.social"'  # the login, with the app password
    idempotency = "record-key"
    default_base_url = "https://bsky.social"
    concurrency = 1000  # wide: see Platform.concurrency

    def length(self, text: str) -> int:
        return lengths.bluesky_length(text)

    def render(self, item, account):  # type: ignore[no-untyped-def]
        payload = super().render(item, account)
        size = lengths.utf8_bytes(item.text)
        if size > lengths.BLUESKY_MAX_BYTES:
            payload.problems.append(f"{size} bytes > {lengths.BLUESKY_MAX_BYTES} bytes allowed")
        return payload

    @staticmethod
    def _repo(account: Account) -> str:
        # The repo is the account's DID, known once logged in; the handle names it meanwhile.
        return staged("did", account.handle or account.name)

    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        record: dict[str, Any] = {
            "$type": POST_COLLECTION,
            "text": item.text,
            "createdAt": iso_utc(item.fire_at),
            "langs": [item.lang],
        }
        facets = bluesky_facets(item.text)
        if facets:
            record["facets"] = facets
        if item.media:
            images = []
            for m in item.media:
                image: dict[str, Any] = {"image": staged("blob", m.path), "alt": m.alt}
                if m.width and m.height:
                    image["aspectRatio"] = {"width": m.width, "height": m.height}
                images.append(image)
            record["embed"] = {"$type": "app.bsky.embed.images", "images": images}
        return [
            {
                "method": "POST",
                "url": f"{self.base_url(account)}/xrpc/com.atproto.repo.putRecord",
                "headers": {"Authorization": f"Bearer {secret('session')}"},
                "json": {
                    "repo": self._repo(account),
                    "collection": POST_COLLECTION,
                    "rkey": record_key(item.id, item.fire_at),
                    "swapRecord": None,
                    "record": record,
                },
            }
        ]

    # --- errors ----------------------------------------------------------------------------

    def _error(self, response: Response, *, mutating: bool) -> PlatformError:
        error, message = _xrpc_error(response)
        text = ": ".join(part for part in (error, message) if part) or f"HTTP {response.status}"
        if error in _AUTH_ERRORS:
            return AuthError(
                redact(f"{text} — check this account's handle and app password"),
                platform=self.name,
                status=response.status,
            )
        if error == "ExpiredToken":
            return Transient(
                "the session expired before the post was sent (nothing was "
                "posted): refresh the session and send again",
                platform=self.name,
                status=response.status,
            )
        if error == "InvalidSwap":
            return Rejected(
                "a different post already exists at this record key",
                platform=self.name,
                status=response.status,
            )
        lowered = message.lower()
        if response.status == 400 and (
            error == "BlobNotFound"
            or ("blob" in lowered and ("not find" in lowered or "not found" in lowered))
        ):
            return Rejected(
                "an image uploaded at staging is gone (the PDS deletes blobs no "
                "post uses after a while): stage this item again, then publish",
                platform=self.name,
                status=response.status,
            )
        return classify(response, platform=self.name, mutating=mutating, message=text)

    # --- session ---------------------------------------------------------------------------

    def _url(self, conn: Connection, nsid: str, **params: str) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.base_url(conn.account)}/xrpc/{nsid}{query}"

    def _store_session(self, conn: Connection, body: Any) -> None:
        if not isinstance(body, dict) or not all(
            isinstance(body.get(k), str) for k in SESSION_KEYS
        ):
            raise Transient("the PDS answered without a session", platform=self.name)
        _remember_tokens(body)
        conn.state.update({key: body[key] for key in SESSION_KEYS})
        # A refresh revoked the previous refresh token: save the new one before anything else.
        conn.state_changed()
        if body.get("active") is False:
            raise AuthError(
                f"the account is {body.get('status') or 'not active'}", platform=self.name
            )

    async def _login(self, conn: Connection) -> None:
        """createSession: costs one of the account's 30 logins per 5 minutes."""
        handle = conn.account.handle
        if not handle:
            raise AuthError(
                f"account {conn.account.name!r} has no handle: set `handle` in config.toml",
                platform=self.name,
            )
        request = Request.json(
            "POST",
            self._url(conn, "com.atproto.server.createSession"),
            {"identifier": handle, "password": conn.secret("app_password")},
        )
        r = await conn.send(request, platform=self.name, mutating=False)
        if r.status != 200:
            raise self._error(r, mutating=False)
        self._store_session(conn, r.json())

    async def _ensure_session(self, conn: Connection) -> None:
        if conn.state.get("accessJwt"):
            _remember_tokens(conn.state)  # a session saved by an earlier run
            return
        async with _session_lock(conn):
            if not conn.state.get("accessJwt"):  # another task may have logged in meanwhile
                await self._login(conn)

    async def _refresh(self, conn: Connection, stale: str | None) -> None:
        """Replace the expired access token `stale`: refreshSession, else a new login."""
        async with _session_lock(conn):
            if conn.state.get("accessJwt") != stale:
                return  # another task refreshed it meanwhile
            refresh = conn.state.get("refreshJwt")
            if refresh:
                request = Request(
                    "POST",
                    self._url(conn, "com.atproto.server.refreshSession"),
                    {"Authorization": f"Bearer {refresh}"},
                )
                r = await conn.send(request, platform=self.name, mutating=False)
                if r.status == 200:
                    self._store_session(conn, r.json())
                    return
                if r.status not in (400, 401):
                    raise self._error(r, mutating=False)
            # The refresh token is expired or revoked: only a new login helps.
            for key in SESSION_KEYS:
                conn.state.pop(key, None)
            await self._login(conn)

    async def _call(self, conn: Connection, build: Callable[[str], Request]) -> Response:
        """A read or upload with the session's access token, refreshed once if expired."""
        await self._ensure_session(conn)
        token = conn.state["accessJwt"]
        r = await conn.send(build(token), platform=self.name, mutating=False)
        if _expired(r):
            await self._refresh(conn, token)
            r = await conn.send(build(conn.state["accessJwt"]), platform=self.name, mutating=False)
        return r

    # --- sending ---------------------------------------------------------------------------

    async def verify(self, conn: Connection) -> str:
        url = self._url(conn, "com.atproto.server.getSession")
        r = await self._call(
            conn, lambda token: Request("GET", url, {"Authorization": f"Bearer {token}"})
        )
        if r.status != 200:
            raise self._error(r, mutating=False)
        return "@" + str(r.json().get("handle") or conn.state.get("handle"))

    async def stage(self, item: QueueItem, conn: Connection) -> Staged:
        await self._ensure_session(conn)
        values: dict[str, Any] = {}
        for media in item.media:
            values[staged("blob", media.path)] = await self._upload(media, conn)
        # Read after the uploads, which may have refreshed the session.
        values[secret("session")] = conn.state["accessJwt"]
        values[self._repo(conn.account)] = conn.state["did"]
        requests = [materialize(spec, values) for spec in self.build_requests(item, conn.account)]
        return Staged(
            item,
            requests,
            {
                "did": conn.state["did"],
                "handle": conn.state["handle"],
                "rkey": record_key(item.id, item.fire_at),
                "blobs": [values[staged("blob", m.path)] for m in item.media],
            },
        )

    async def _upload(self, media: MediaRef, conn: Connection) -> dict[str, Any]:
        url = self._url(conn, "com.atproto.repo.uploadBlob")
        data = conn.media_bytes(media.path)
        # Not `mutating`: a repeated upload only leaves an unreferenced blob, which the PDS
        # deletes.
        r = await self._call(
            conn,
            lambda token: Request(
                "POST", url, {"Authorization": f"Bearer {token}", "Content-Type": media.mime}, data
            ),
        )
        if r.status != 200:
            raise self._error(r, mutating=False)
        blob: dict[str, Any] = r.json()["blob"]
        return blob

    def parse(self, staged: Staged, index: int, response: Response) -> Published:
        if response.status == 200:
            body = response.json()
            uri = str(body["uri"])
            who = staged.data.get("handle") or staged.data.get("did") or uri.split("/")[2]
            return Published(uri, permalink(who, uri), body)
        raise self._error(response, mutating=True)

    async def publish(self, staged: Staged, conn: Connection) -> Published:
        """putRecord; an expired session is refreshed and the request sent once more (an
        ExpiredToken answer means nothing was written)."""
        request = staged.requests[0]
        current = conn.state.get("accessJwt")
        if current:  # another item may have refreshed the session since this one was staged
            request = _bearer(request, current)
        r = await conn.send(request, platform=self.name, mutating=True)
        if _expired(r):
            await self._refresh(conn, current)
            request = _bearer(request, conn.state["accessJwt"])
            r = await conn.send(request, platform=self.name, mutating=True)
        staged.requests[0] = request
        return self.parse(staged, 0, r)

    async def reconcile(self, staged: Staged, conn: Connection) -> Published | None:
        """Look the record key up first (getRecord): if the post is there, it landed — even
        when this Staged was rebuilt after a restart with freshly uploaded blobs, whose
        different CIDs would make a resend fail with InvalidSwap. Only if it is not there is
        the same putRecord sent again; with `swapRecord: null` that is create-if-absent, so
        it never posts twice and never answers None. (The post may then land late: a caller
        that no longer wants it must not reconcile past its grace.)"""
        body = json.loads(staged.requests[0].content)
        url = self._url(
            conn,
            "com.atproto.repo.getRecord",
            repo=body["repo"],
            collection=body["collection"],
            rkey=body["rkey"],
        )
        r = await conn.send(Request("GET", url), platform=self.name, mutating=False)
        if r.status == 200:
            uri = str(r.json()["uri"])
            who = conn.state.get("handle") or conn.account.handle or body["repo"]
            return Published(uri, permalink(who, uri), r.json())
        if (r.json() or {}).get("error") != "RecordNotFound":
            raise self._error(r, mutating=False)
        return await self.publish(staged, conn)

    async def confirm(self, published: Published, conn: Connection) -> Published:
        did, collection, rkey = published.remote_id.removeprefix("at://").split("/")[:3]
        url = self._url(
            conn, "com.atproto.repo.getRecord", repo=did, collection=collection, rkey=rkey
        )
        r = await conn.send(Request("GET", url), platform=self.name, mutating=False)
        if r.status != 200:
            raise self._error(r, mutating=False)
        who = conn.state.get("handle") or conn.account.handle or did
        return Published(published.remote_id, permalink(who, published.remote_id), r.json())
