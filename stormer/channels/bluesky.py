"""Bluesky / AT Protocol: putRecord with a deterministic TID record key and swapRecord null,
so that a retry of the same item can never create a second post (create-if-absent).

Sessions (stormer.channels.bluesky_session). `com.atproto.server.createSession` (handle +
app password) is called once per account, on the entryway (`base_url`), and the session is
kept in `conn.state` ("accessJwt", "refreshJwt", "did", "handle", and "pds": the PDS its DID
document names, where every repo call then goes): the entryway allows only 30 logins per 5
minutes (300 a day) per account. Staging refreshes an access token that would expire before
the item's T + grace; an `ExpiredToken` at T is still refreshed and the post sent again.

Mentions. `@handle` in the text becomes a mention facet with the DID that
`com.atproto.identity.resolveHandle` gives at staging; a handle that does not resolve stays
plain text. The preview shows `<staged:mention:HANDLE>` where the DID will be.

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

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any

from stormer import lengths
from stormer.channels import bluesky_session as session
from stormer.channels.base import (
    Connection,
    ImageLimits,
    Platform,
    Published,
    Staged,
    secret,
    staged,
)
from stormer.channels.http import Request, Response, materialize
from stormer.richtext import bluesky_facets, find_mentions
from stormer.timezones import iso_utc

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from stormer.channels.search import Pages, Wait
    from stormer.queue import MediaRef, QueueItem
    from stormer.storm import Account

_S32 = "234567abcdefghijklmnopqrstuvwxyz"
POST_COLLECTION = "app.bsky.feed.post"
PUT_RECORD = "com.atproto.repo.putRecord"


def record_key(item_id: str, at: datetime, seq: int) -> str:
    """A TID (https://atproto.com/specs/tid: 53 bits of microseconds since the epoch, then
    a 10-bit clock id) fixed by the item, so that every retry uses the same key.

    The microseconds are the fire time minus `seq` µs, the item's place among its account's
    posts. Two posts of one account are distinct seqs and fire at T + k·interval (interval 0
    or whole seconds), so their microseconds, hence their keys, always differ: a record key
    can never collide within an account, whatever the item ids hash to. A few µs before
    the fire time keeps keys roughly chronological and never in the future when the post
    lands (https://atproto.com/specs/record-key). The clock id, drawn from the item id,
    tells apart items of two storms of one account at one instant."""
    drawn = int.from_bytes(hashlib.sha256(item_id.encode()).digest()[:2], "big")
    micros = int(at.timestamp()) * 1_000_000 + at.microsecond - seq
    value = (micros << 10) | (drawn & 0x3FF)
    chars = []
    for _ in range(13):
        chars.append(_S32[value & 0x1F])
        value >>= 5
    return "".join(reversed(chars))


def permalink(handle_or_did: str, uri: str) -> str:
    """The bsky.app address of the post at `uri` (at://did/app.bsky.feed.post/rkey)."""
    return f"https://bsky.app/profile/{handle_or_did}/post/{uri.rsplit('/', 1)[-1]}"


def _bearer(request: Request, token: str) -> Request:
    return dataclasses.replace(
        request, headers={**request.headers, "Authorization": f"Bearer {token}"}
    )


def _server_of(url: str) -> str:
    """The server of an XRPC URL: everything before /xrpc/."""
    return url.split("/xrpc/", 1)[0]


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
    # An app password does not expire; the sessions it opens (two hours) are renewed at
    # staging until T + grace, so `credential_status` says it lasts.
    credential_kind = "app password"
    handle_example = '"name.bsky.social"'  # the login, with the app password
    idempotency = "record-key"
    default_base_url = "https://bsky.social"  # the entryway: the account's PDS is looked up
    concurrency = 1000  # wide: see Platform.concurrency
    no_hashtag_search = None  # app.bsky.feed.searchPosts: bluesky_search
    # bsky.app's search takes `from:handle` and quoted phrases
    # (https://bsky.social/about/blog/05-31-2024-search).
    look_by_hand = "https://bsky.app/search?q=from%3A{handle}+{phrase}"

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

    def _pds(self, account: Account) -> str:
        # The PDS is the one the account's DID document names, known once logged in.
        return staged("pds", self.base_url(account))

    def build_requests(self, item: QueueItem, account: Account) -> list[dict[str, Any]]:
        # Until staging resolves them, a mention's DID is a placeholder.
        mentions = {handle: staged("mention", handle) for _, _, handle in find_mentions(item.text)}
        return [self._put_record(item, account, mentions)]

    def _put_record(
        self, item: QueueItem, account: Account, mentions: Mapping[str, str]
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "$type": POST_COLLECTION,
            "text": item.text,
            "createdAt": iso_utc(item.fire_at),
            "langs": [item.lang],
        }
        facets = bluesky_facets(item.text, mentions)
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
        return {
            "method": "POST",
            "url": session.xrpc_url(self._pds(account), PUT_RECORD),
            "headers": {"Authorization": f"Bearer {secret('session')}"},
            "json": {
                "repo": self._repo(account),
                "collection": POST_COLLECTION,
                "rkey": record_key(item.id, item.fire_at, item.seq),
                "swapRecord": None,
                "record": record,
            },
        }

    def hashtag_posts(
        self, conn: Connection, hashtag: str, since: datetime, until: datetime, *, wait: Wait
    ) -> Pages:
        """searchPosts through the account's PDS, signed in (Bluesky serves no public search)."""
        from stormer.channels.bluesky_search import search_posts

        return search_posts(conn, self._entryway(conn), hashtag, since, until, wait=wait)

    # --- sending ---------------------------------------------------------------------------

    def _entryway(self, conn: Connection) -> str:
        return self.base_url(conn.account)

    def _url(self, conn: Connection, nsid: str, **params: str) -> str:
        """An XRPC call to the account's PDS."""
        return session.xrpc_url(session.pds_url(conn, self._entryway(conn)), nsid, **params)

    async def _call(self, conn: Connection, build: Callable[[str], Request]) -> Response:
        return await session.call(conn, self._entryway(conn), build)

    async def verify(self, conn: Connection) -> str:
        await session.ensure(conn, self._entryway(conn))
        url = self._url(conn, "com.atproto.server.getSession")
        r = await self._call(
            conn, lambda token: Request("GET", url, {"Authorization": f"Bearer {token}"})
        )
        if r.status != 200:
            raise session.error_for(r, mutating=False)
        return "@" + str(r.json().get("handle") or conn.state.get("handle"))

    async def stage(self, item: QueueItem, conn: Connection) -> Staged:
        entryway = self._entryway(conn)
        await session.ensure(conn, entryway)
        # The token sent at T must still be good at T + grace: refresh it now if not.
        await session.fresh_until(conn, entryway, conn.holds_until(item))
        values: dict[str, Any] = {}
        for media in item.media:
            values[staged("blob", media.path)] = await self._upload(media, conn)
        mentions = await self._resolve_mentions(item.text, conn)
        # Read after the uploads, which may have refreshed the session.
        values[secret("session")] = conn.state["accessJwt"]
        values[self._repo(conn.account)] = conn.state["did"]
        values[self._pds(conn.account)] = session.pds_url(conn, entryway)
        spec = self._put_record(item, conn.account, mentions)
        return Staged(
            item,
            [materialize(spec, values)],
            {
                "did": conn.state["did"],
                "handle": conn.state["handle"],
                "pds": values[self._pds(conn.account)],
                "rkey": record_key(item.id, item.fire_at, item.seq),
                "blobs": [values[staged("blob", m.path)] for m in item.media],
                "mentions": mentions,
            },
        )

    async def _resolve_mentions(self, text: str, conn: Connection) -> dict[str, str]:
        """handle → DID for each `@handle` of `text` that resolves; one that does not (400:
        no such handle) stays plain text rather than failing the post."""
        resolved: dict[str, str] = {}
        for handle in dict.fromkeys(h for _, _, h in find_mentions(text)):
            url = self._url(conn, "com.atproto.identity.resolveHandle", handle=handle)
            r = await conn.send(Request("GET", url), platform=self.name, mutating=False)
            did = r.json().get("did") if r.status == 200 and isinstance(r.json(), dict) else None
            if isinstance(did, str) and did.startswith("did:"):
                resolved[handle] = did
            elif r.status not in (200, 400, 404):
                raise session.error_for(r, mutating=False)
        return resolved

    async def _upload(self, media: MediaRef, conn: Connection) -> dict[str, Any]:
        data = conn.media_bytes(media.path)
        # Not `mutating`: a repeated upload only leaves an unreferenced blob, which the PDS
        # deletes. The URL is built per attempt, from the PDS of the session it is sent with.
        r = await self._call(
            conn,
            lambda token: Request(
                "POST",
                self._url(conn, "com.atproto.repo.uploadBlob"),
                {"Authorization": f"Bearer {token}", "Content-Type": media.mime},
                data,
            ),
        )
        if r.status != 200:
            raise session.error_for(r, mutating=False)
        blob: dict[str, Any] = r.json()["blob"]
        return blob

    def parse(self, staged: Staged, index: int, response: Response) -> Published:
        if response.status == 200:
            body = response.json()
            uri = str(body["uri"])
            who = staged.data.get("handle") or staged.data.get("did") or uri.split("/")[2]
            return Published(uri, permalink(who, uri), body)
        raise session.error_for(response, mutating=True)

    async def publish(self, staged: Staged, conn: Connection) -> Published:
        """putRecord; an expired session is refreshed and the request sent once more (an
        ExpiredToken answer means nothing was written)."""
        request = staged.requests[0]
        current = conn.state.get("accessJwt")
        if current:  # another item may have refreshed the session since this one was staged
            request = _bearer(request, current)
        r = await conn.send(request, platform=self.name, mutating=True)
        if session.expired(r):
            await session.refresh(conn, self._entryway(conn), current)
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
        that no longer wants it must not reconcile past its grace.) The lookup goes to the
        PDS the putRecord was for."""
        body = json.loads(staged.requests[0].content)
        url = session.xrpc_url(
            _server_of(staged.requests[0].url),
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
            raise session.error_for(r, mutating=False)
        return await self.publish(staged, conn)

    async def confirm(self, published: Published, conn: Connection) -> Published:
        did, collection, rkey = published.remote_id.removeprefix("at://").split("/")[:3]
        url = self._url(
            conn, "com.atproto.repo.getRecord", repo=did, collection=collection, rkey=rkey
        )
        r = await conn.send(Request("GET", url), platform=self.name, mutating=False)
        if r.status != 200:
            raise session.error_for(r, mutating=False)
        who = conn.state.get("handle") or conn.account.handle or did
        return Published(published.remote_id, permalink(who, published.remote_id), r.json())
