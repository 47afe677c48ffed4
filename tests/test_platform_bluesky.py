"""The Bluesky client against a fake PDS on httpx.MockTransport.

The fake behaves as the real PDS was seen to (peers/README.md): putRecord with
`swapRecord: null` creates if absent, is a no-op for an identical record and answers
InvalidSwap for a different one; refreshSession revokes the refresh token it was given.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from example import REPO
from platform_fakes import assert_nowhere, post_item, run_against

from stormer.channels.base import Connection
from stormer.channels.bluesky import Bluesky, record_key
from stormer.errors import AuthError, OutcomeUnknown, RateLimited, Rejected, Transient
from stormer.queue import MediaRef, QueueItem
from stormer.secrets import Secret
from stormer.storm import Account

PDS = "https://pds.example.org"
HANDLE = "fps-campaign.example.org"
DID = "did:plc:fpscampaign7777"
APP_PASSWORD = "app-SECRET-pass-123"
FAMILY = "👨\u200d👩\u200d👧\u200d👦"  # a ZWJ sequence: one grapheme, 25 UTF-8 bytes
TEXT = f"الحق في التعليم {FAMILY} #تضامن #FreePalestinianStudents https://example.org/a"
IMAGES = (
    MediaRef("images/flag-book.png", "علم فلسطين وكتاب مفتوح", 800, 418),
    MediaRef("images/globe-ring.png", "A ring of hands around a globe", 800, 418),
)


class FakePDS:
    """Just enough of a PDS: sessions with expiry and rotation, blobs, posts by record key."""

    def __init__(self) -> None:
        self.log: list[str] = []  # what happened, in order (the test's saves go here too)
        self.issued = 0
        self.access: set[str] = set()
        self.expired: set[str] = set()
        self.refresh: set[str] = set()
        self.blobs: dict[str, bytes] = {}
        self.records: dict[str, dict[str, Any]] = {}  # rkey → {cid, value}
        self.commits = 0
        self.puts: list[dict[str, Any]] = []  # every putRecord body received
        self.uploads: list[tuple[str, bytes]] = []  # (Content-Type, bytes)
        self.rate_limit_put_once = False
        self.limited_at = 0.0  # when the 429 was answered (time.time()), and its reset
        self.reset = 0
        self.drop_put_answer_once = False  # record the post, then lose the answer
        self.drop_put_request_once = False  # lose the request before it arrives

    def expire_access(self) -> None:
        self.expired |= self.access
        self.access.clear()

    def _session(self) -> dict[str, Any]:
        self.issued += 1
        access, refresh = f"acc-SECRET-{self.issued}", f"ref-SECRET-{self.issued}"
        self.access.add(access)
        self.refresh.add(refresh)
        return {
            "accessJwt": access,
            "refreshJwt": refresh,
            "handle": HANDLE,
            "did": DID,
            "didDoc": did_doc(DID, PDS),
            "active": True,
        }

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)  # a network round trip: lets concurrent tasks interleave
        nsid = request.url.path.removeprefix("/xrpc/")
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if nsid == "com.atproto.server.createSession":
            self.log.append("createSession")
            body = json.loads(request.content)
            if body != {"identifier": HANDLE, "password": APP_PASSWORD}:
                return _err(401, "AuthenticationRequired", "Invalid identifier or password")
            return httpx.Response(200, json={**self._session(), "email": "c@example.org"})
        if nsid == "com.atproto.server.refreshSession":
            self.log.append(f"refreshSession {token}")
            if token not in self.refresh:
                return _err(400, "ExpiredToken", "Token has been revoked")
            self.refresh.discard(token)  # rotation: the old refresh token is spent
            return httpx.Response(200, json=self._session())
        if nsid == "com.atproto.repo.getRecord":
            q = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
            found = self.records.get(q["rkey"]) if q["repo"] == DID else None
            if not found:
                return _err(400, "RecordNotFound", f"Could not locate record: {q['rkey']}")
            return httpx.Response(200, json={"uri": _uri(q["rkey"]), **found})
        if token in self.expired:
            self.log.append(f"{nsid} expired")
            return _err(400, "ExpiredToken", "Token has expired")
        if token not in self.access:
            return _err(401, "AuthenticationRequired", "Invalid token")
        self.log.append(nsid)
        if nsid == "com.atproto.server.getSession":
            return httpx.Response(200, json={"handle": HANDLE, "did": DID, "active": True})
        if nsid == "com.atproto.repo.uploadBlob":
            self.uploads.append((request.headers["Content-Type"], request.content))
            cid = "bafkrei" + hashlib.sha256(request.content).hexdigest()[:32]
            self.blobs[cid] = request.content
            return httpx.Response(
                200,
                json={
                    "blob": {
                        "$type": "blob",
                        "ref": {"$link": cid},
                        "mimeType": request.headers["Content-Type"],
                        "size": len(request.content),
                    }
                },
            )
        if nsid == "com.atproto.repo.putRecord":
            return self._put(request)
        return _err(404, "MethodNotImplemented", "Method Not Implemented")

    def _put(self, request: httpx.Request) -> httpx.Response:
        if self.drop_put_request_once:
            self.drop_put_request_once = False
            raise httpx.ReadTimeout("lost on the way", request=request)
        if self.rate_limit_put_once:
            self.rate_limit_put_once = False
            self.limited_at = time.time()
            self.reset = int(self.limited_at) + 30
            return httpx.Response(
                429,
                headers={"ratelimit-remaining": "0", "ratelimit-reset": str(self.reset)},
                json={"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
            )
        body = json.loads(request.content)
        self.puts.append(body)
        record = body["record"]
        if body["repo"] != DID or body["collection"] != "app.bsky.feed.post":
            return _err(400, "InvalidRequest", "Could not find repo")
        if len(record["text"]) > 300:
            return _err(
                400,
                "InvalidRequest",
                "Invalid app.bsky.feed.post record: "
                "Record/text must not be longer than 300 graphemes",
            )
        for image in record.get("embed", {}).get("images", []):
            cid = image["image"]["ref"]["$link"]
            if cid not in self.blobs:
                return _err(400, "InvalidRequest", f"Could not find blob: {cid}")
        cid = (
            "bafyrei" + hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:32]
        )
        existing = self.records.get(body["rkey"])
        if "swapRecord" in body and body["swapRecord"] is None and existing:
            if existing["cid"] != cid:
                return _err(400, "InvalidSwap", f"Record was at {existing['cid']}")
        else:
            self.records[body["rkey"]] = {"cid": cid, "value": record}
            self.commits += 1
        if self.drop_put_answer_once:
            self.drop_put_answer_once = False
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return httpx.Response(
            200, json={"uri": _uri(body["rkey"]), "cid": cid, "validationStatus": "valid"}
        )


def did_doc(did: str, pds: str) -> dict[str, Any]:
    """A DID document whose `#atproto_pds` service is `pds` (https://atproto.com/specs/did)."""
    return {
        "id": did,
        "alsoKnownAs": [f"at://{HANDLE}"],
        "service": [
            {"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": pds}
        ],
    }


def _err(status: int, error: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": error, "message": message})


def _uri(rkey: str) -> str:
    return f"at://{DID}/app.bsky.feed.post/{rkey}"


ACCOUNT = Account(
    name="campaign-bluesky",
    platform="bluesky",
    langs=("ar",),
    base_url=PDS,
    target=None,
    handle=HANDLE,
    credentials=(("app_password", "FPS_BLUESKY_APP_PASSWORD"),),
    line=None,
)


def item(n: int = 0, text: str = TEXT, media: tuple[MediaRef, ...] = IMAGES) -> QueueItem:
    return post_item(
        "bluesky",
        text,
        media,
        account=ACCOUNT.name,
        item_id=f"{n:016x}",
        lang="ar",
        fire_at=datetime(2031, 3, 13, 18, tzinfo=UTC),
    )


def run(
    server: FakePDS,
    flow,
    *,
    password: str = APP_PASSWORD,  # type: ignore[no-untyped-def]
    state: dict[str, Any] | None = None,
):
    """Run `flow(plugin, conn)`; every save of the session state is logged as `saved <refresh>`."""
    return run_against(
        server,
        lambda conn: flow(Bluesky(), conn),
        ACCOUNT,
        {"app_password": password},
        state=dict(state or {}),
        media_root=REPO / "posts",
        on_state_change=lambda s: server.log.append(f"saved {s['refreshJwt']}"),
    )


def test_publish_with_images_alt_text_facets_and_langs() -> None:
    server = FakePDS()

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        assert await plugin.verify(conn) == f"@{HANDLE}"
        staged = await plugin.stage(item(), conn)
        published = await plugin.publish(staged, conn)
        return published, await plugin.confirm(published, conn)

    published, confirmed = run(server, flow)
    rkey = record_key(item().id, item().fire_at, item().seq)
    assert published.remote_id == _uri(rkey)
    assert published.permalink == f"https://bsky.app/profile/{HANDLE}/post/{rkey}"
    assert confirmed.permalink == published.permalink
    assert confirmed.raw["value"]["text"] == TEXT

    (body,) = server.puts
    assert set(body) == {"repo", "collection", "rkey", "swapRecord", "record"}
    assert body["repo"] == DID and body["rkey"] == rkey and body["swapRecord"] is None
    record = body["record"]
    assert record["$type"] == "app.bsky.feed.post" and record["text"] == TEXT
    assert record["createdAt"] == "2031-03-13T18:00:00Z" and record["langs"] == ["ar"]
    assert record["embed"]["$type"] == "app.bsky.embed.images"
    files = [(REPO / "posts" / m.path).read_bytes() for m in IMAGES]
    assert server.uploads == [("image/png", data) for data in files]
    for image, media, data in zip(record["embed"]["images"], IMAGES, files, strict=True):
        assert image["alt"] == media.alt
        assert image["aspectRatio"] == {"width": 800, "height": 418}
        assert image["image"]["$type"] == "blob" and image["image"]["size"] == len(data)
        assert server.blobs[image["image"]["ref"]["$link"]] == data
    raw = record["text"].encode()
    spans = [
        (raw[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode(), f["features"][0])
        for f in record["facets"]
    ]
    assert spans == [
        ("#تضامن", {"$type": "app.bsky.richtext.facet#tag", "tag": "تضامن"}),
        (
            "#FreePalestinianStudents",
            {"$type": "app.bsky.richtext.facet#tag", "tag": "FreePalestinianStudents"},
        ),
        (
            "https://example.org/a",
            {"$type": "app.bsky.richtext.facet#link", "uri": "https://example.org/a"},
        ),
    ]
    # 13 Arabic letters of 2 bytes, 4 spaces and the family's 25 bytes: bytes, not characters.
    assert record["facets"][0]["index"] == {"byteStart": 13 * 2 + 4 + 25, "byteEnd": 66}
    assert TEXT.index("#") == 24


def test_one_login_for_many_posts_even_when_staged_concurrently() -> None:
    server = FakePDS()

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await asyncio.gather(*(plugin.stage(item(n, media=()), conn) for n in range(3)))
        published = [await plugin.publish(s, conn) for s in staged]
        await plugin.verify(conn)
        return published

    published = run(server, flow)
    assert server.log.count("createSession") == 1
    assert server.log.count("saved ref-SECRET-1") == 1
    assert len({p.remote_id for p in published}) == 3 and server.commits == 3


def test_expired_session_is_refreshed_and_the_new_pair_saved_before_going_on() -> None:
    server = FakePDS()

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        await plugin.verify(conn)
        server.expire_access()
        staged = await plugin.stage(item(media=IMAGES[:1]), conn)  # the upload meets it
        server.expire_access()
        published = await plugin.publish(staged, conn)  # and so does the post
        return published, dict(conn.state)

    published, state = run(server, flow)
    assert server.log == [
        "createSession",
        "saved ref-SECRET-1",
        "com.atproto.server.getSession",
        "com.atproto.repo.uploadBlob expired",
        "refreshSession ref-SECRET-1",
        "saved ref-SECRET-2",
        "com.atproto.repo.uploadBlob",
        "com.atproto.repo.putRecord expired",
        "refreshSession ref-SECRET-2",
        "saved ref-SECRET-3",
        "com.atproto.repo.putRecord",
    ]
    assert state["accessJwt"] == "acc-SECRET-3" and state["refreshJwt"] == "ref-SECRET-3"
    assert server.refresh == {"ref-SECRET-3"}  # each refresh token worked exactly once
    assert published.remote_id == _uri(record_key(item().id, item().fire_at, item().seq))


def test_concurrent_tasks_meeting_an_expired_session_refresh_it_once() -> None:
    server = FakePDS()

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        await plugin.verify(conn)
        server.expire_access()
        await asyncio.gather(*(plugin.stage(item(n, media=IMAGES[:1]), conn) for n in range(3)))

    run(server, flow)
    assert [e.split()[0] for e in server.log].count("refreshSession") == 1
    assert server.log.count("createSession") == 1 and server.log.count("saved ref-SECRET-2") == 1


def test_a_revoked_refresh_token_falls_back_to_one_new_login() -> None:
    server = FakePDS()
    saved = {
        "accessJwt": "acc-SECRET-old",
        "refreshJwt": "ref-SECRET-old",
        "did": DID,
        "handle": HANDLE,
    }
    server.expired.add("acc-SECRET-old")  # from an earlier run; its refresh token is spent

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        return await plugin.publish(await plugin.stage(item(media=()), conn), conn)

    run(server, flow, state=saved)
    assert server.log == [
        "com.atproto.repo.putRecord expired",
        "refreshSession ref-SECRET-old",
        "createSession",
        "saved ref-SECRET-1",
        "com.atproto.repo.putRecord",
    ]


def test_rate_limit_reads_ratelimit_reset() -> None:
    server = FakePDS()
    server.rate_limit_put_once = True

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(media=()), conn)
        with pytest.raises(RateLimited) as info:
            await plugin.publish(staged, conn)
        return info.value, time.time(), await plugin.publish(staged, conn)

    error, raised_at, published = run(server, flow)
    # The client read the clock between the 429 and the error: the wait is the reset (whole
    # seconds: +1 s) from then. Bounds from around that moment: a loaded machine can stretch
    # it past a second, where a fixed 29 to 31 s failed.
    assert server.reset + 1 - raised_at <= error.retry_after <= server.reset + 1 - server.limited_at
    assert "Rate Limit Exceeded" in str(error) and published.remote_id and server.commits == 1


def test_wrong_app_password_is_an_auth_error_for_people() -> None:
    server = FakePDS()

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        with pytest.raises(AuthError) as info:
            await plugin.verify(conn)
        return str(info.value)

    message = run(server, flow, password="wrong-SECRET-pass")
    assert message == (
        "bluesky: AuthenticationRequired: Invalid identifier or password — "
        "check this account's handle and app password"
    )


def test_too_long_is_rejected() -> None:
    server = FakePDS()

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(text="x" * 301, media=()), conn)
        with pytest.raises(Rejected, match="longer than 300 graphemes"):
            await plugin.publish(staged, conn)

    run(server, flow)
    assert server.commits == 0


def test_a_lost_answer_is_reconciled_without_a_second_post() -> None:
    server = FakePDS()
    server.drop_put_answer_once = True

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(), conn)
        with pytest.raises(OutcomeUnknown):
            await plugin.publish(staged, conn)  # the post landed; its answer did not
        return await plugin.reconcile(staged, conn)

    published = run(server, flow)
    assert published.remote_id == _uri(record_key(item().id, item().fire_at, item().seq))
    # Found by getRecord at the item's record key: nothing was sent again.
    assert len(server.puts) == 1 and len(server.records) == 1 and server.commits == 1


def test_a_lost_request_is_posted_once_by_reconcile() -> None:
    server = FakePDS()
    server.drop_put_request_once = True

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(media=()), conn)
        with pytest.raises(OutcomeUnknown):
            await plugin.publish(staged, conn)
        return await plugin.reconcile(staged, conn)

    assert run(server, flow).remote_id
    assert server.commits == 1


def test_reconcile_trusts_the_record_at_the_item_key_even_if_restaged() -> None:
    """After a restart the item is staged again (new blobs, so a resend would be refused as
    a different record): the record at the item's key is the post that landed."""
    server = FakePDS()

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        first = await plugin.publish(await plugin.stage(item(media=IMAGES[:1]), conn), conn)
        again = await plugin.stage(item(media=IMAGES[:1]), conn)
        return first, await plugin.reconcile(again, conn)

    first, found = run(server, flow)
    assert found.remote_id == first.remote_id
    assert server.commits == 1 and len(server.puts) == 1


def test_a_resend_over_a_different_record_is_rejected() -> None:
    server = FakePDS()

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        await plugin.publish(await plugin.stage(item(media=()), conn), conn)
        edited = await plugin.stage(item(text="edited after a first attempt", media=()), conn)
        with pytest.raises(Rejected, match="a different post already exists at this record"):
            await plugin.publish(edited, conn)

    run(server, flow)
    assert server.commits == 1


def test_a_blob_deleted_before_t_asks_for_staging_again() -> None:
    server = FakePDS()

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(media=IMAGES[:1]), conn)
        server.blobs.clear()  # unreferenced for too long: the PDS deleted it
        with pytest.raises(Rejected, match="stage this item again"):
            await plugin.publish(staged, conn)
        return await plugin.publish(await plugin.stage(item(media=IMAGES[:1]), conn), conn)

    assert run(server, flow).remote_id and server.commits == 1


def test_preview_shows_placeholders_and_no_secret() -> None:
    (request,) = Bluesky().render(item(), ACCOUNT).requests
    assert request["json"]["repo"] == f"<staged:did:{HANDLE}>"
    assert request["headers"] == {"Authorization": "Bearer <secret:session>"}
    images = request["json"]["record"]["embed"]["images"]
    assert [i["image"] for i in images] == [f"<staged:blob:{m.path}>" for m in IMAGES]


def test_no_password_or_token_in_errors_reprs_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = FakePDS()
    seen: list[str] = []

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(), conn)
        server.expire_access()
        errors: list[Exception] = []
        for failure in ("rate_limit_put_once", "drop_put_answer_once"):
            setattr(server, failure, True)
            try:
                await plugin.publish(staged, conn)
            except (RateLimited, OutcomeUnknown, Transient) as e:
                errors.append(e)
        published = await plugin.reconcile(staged, conn)
        seen.extend([repr(staged), repr(published), repr(conn.credentials)])
        seen.extend(f"{e} {e!r}" for e in errors)
        return len(errors)

    assert run(server, flow) == 2
    with pytest.raises(AuthError) as info:
        run(FakePDS(), lambda plugin, conn: plugin.verify(conn), password="bad-SECRET-pw")
    seen.append(f"{info.value} {info.value!r}")
    seen.extend(r.getMessage() for r in caplog.records)
    assert any("putRecord" in line for line in seen)  # httpx did log the requests
    assert_nowhere(["SECRET"], seen, caplog)


# --- the PDS named by the DID document ------------------------------------------------------


def test_without_a_did_document_the_pds_comes_from_the_plc_directory() -> None:
    """A createSession answer without `didDoc`: the DID's document is fetched from the PLC
    directory, and the writes go to the PDS it names, not to the server logged in at."""
    server = FakePDS()
    entryway = "https://entryway.example.org"
    seen: list[str] = []

    async def route(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url.host}{request.url.path}")
        if request.url.host == "plc.directory":
            assert request.url.path == f"/{DID}"
            return httpx.Response(200, json=did_doc(DID, PDS))
        if request.url.host == "entryway.example.org":
            answer = await server(request)
            body = json.loads(answer.content)
            body.pop("didDoc", None)
            return httpx.Response(answer.status_code, json=body)
        return await server(request)

    account = dataclasses.replace(ACCOUNT, base_url=entryway)

    async def flow(conn):  # type: ignore[no-untyped-def]
        plugin = Bluesky()
        return await plugin.publish(await plugin.stage(item(media=IMAGES[:1]), conn), conn)

    state: dict[str, Any] = {}
    run_against(
        route, flow, account, {"app_password": APP_PASSWORD}, state=state, media_root=REPO / "posts"
    )
    assert seen == [
        "entryway.example.org/xrpc/com.atproto.server.createSession",
        f"plc.directory/{DID}",
        "pds.example.org/xrpc/com.atproto.repo.uploadBlob",
        "pds.example.org/xrpc/com.atproto.repo.putRecord",
    ]
    assert state["pds"] == PDS and server.commits == 1


def test_record_keys_of_one_account_never_collide() -> None:
    """Any number of posts of one account, at one instant (post_interval 0) or spaced by
    whole seconds: distinct keys whatever the item ids hash to, and a retry draws the same."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    at = datetime(2031, 3, 13, 18, tzinfo=UTC)

    @settings(max_examples=300, deadline=None)
    @given(
        ids=st.lists(st.text(min_size=1, max_size=20), min_size=2, max_size=200),
        interval=st.integers(0, 3600),
        micros=st.integers(0, 999_999),
    )
    def distinct(ids: list[str], interval: int, micros: int) -> None:
        when = at.replace(microsecond=micros)
        fire = [when + timedelta(seconds=interval * seq) for seq in range(len(ids))]
        keys = [record_key(i, fire[seq], seq) for seq, i in enumerate(ids)]
        assert len(set(keys)) == len(ids)
        assert keys == [record_key(i, fire[seq], seq) for seq, i in enumerate(ids)]
        # Never after the item's own fire time, so never in the future when it lands.
        assert all(tid_micros(k) <= fire[s].timestamp() * 1e6 + 1 for s, k in enumerate(keys))

    distinct()


def tid_micros(key: str) -> int:
    value = 0
    for ch in key:
        value = value * 32 + "234567abcdefghijklmnopqrstuvwxyz".index(ch)
    return value >> 10


def test_a_restaged_item_keeps_its_record_key_and_is_not_posted_twice() -> None:
    server = FakePDS()

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        first = await plugin.stage(item(media=()), conn)
        await plugin.publish(first, conn)
        again = await plugin.stage(item(media=()), conn)  # a retry after a restart
        return first, again, await plugin.publish(again, conn)

    first, again, published = run(server, flow)
    assert (
        first.data["rkey"]
        == again.data["rkey"]
        == record_key(item().id, item().fire_at, item().seq)
    )
    assert published.remote_id == _uri(first.data["rkey"])
    assert len(server.puts) == 2 and server.commits == 1 and len(server.records) == 1


# --- against the simulator: an entryway and a second PDS ------------------------------------

ENTRYWAY = "https://bsky.social"  # the simulator plays it: no base_url is set
CAROL = Account(
    name="carol",
    platform="bluesky",
    langs=("fr",),
    base_url=None,
    target=None,
    handle="carol.pds2.test",  # hosted on the simulator's second PDS
    credentials=(("app_password", "CAROL_APP_PASSWORD"),),
    line=None,
)


def on_simulator(app: Any, flow, *, state: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    """Run `flow(plugin, conn)` for CAROL against the simulator `app` (in process, as
    https://bsky.social); returns its result and every request sent ("METHOD url")."""
    sent: list[str] = []

    async def log(request: httpx.Request) -> None:
        sent.append(f"{request.method} {request.url.copy_with(query=None)}")

    async def main():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), event_hooks={"request": [log]}
        ) as client:
            conn = Connection(
                CAROL,
                client,
                {"app_password": Secret("app-pass")},
                state=state if state is not None else {},
                media_root=REPO / "posts",
            )
            return await flow(Bluesky(), conn)

    return asyncio.run(main()), sent


def sim_posts(app: Any) -> list[Any]:
    return list(app.state.sim.store.posts)


def test_an_account_on_another_pds_posts_there_with_mentions_and_no_base_url() -> None:
    from stormer.simulator import create_app
    from stormer.simulator.bluesky import did_for

    app = create_app()
    text = "Merci à @alice.test — 👨‍👩‍👧‍👦 et @nobody.example.org #تضامن"
    queued = item(text=text, media=IMAGES[:1])
    pds = f"{ENTRYWAY}/pds2"

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(queued, conn)
        published = await plugin.publish(staged, conn)
        # The same putRecord at the entryway is refused: it does not host this account.
        wrong = dataclasses.replace(
            staged.requests[0], url=f"{ENTRYWAY}/xrpc/com.atproto.repo.putRecord"
        )
        refused = await conn.send(wrong, platform="bluesky", mutating=True)
        return staged, published, refused, dict(conn.state)

    (staged, published, refused, state), sent = on_simulator(app, flow)
    assert sent[:7] == [
        # A handle that is not *.bsky.social, and no base_url: where does it live? Its PDS is
        # on the entryway's own host (Bluesky's, behind it), so it logs in at the entryway.
        f"GET {ENTRYWAY}/xrpc/com.atproto.identity.resolveHandle",
        f"GET https://plc.directory/{did_for('carol.pds2.test')}",
        f"POST {ENTRYWAY}/xrpc/com.atproto.server.createSession",
        f"POST {pds}/xrpc/com.atproto.repo.uploadBlob",
        f"GET {pds}/xrpc/com.atproto.identity.resolveHandle",
        f"GET {pds}/xrpc/com.atproto.identity.resolveHandle",
        f"POST {pds}/xrpc/com.atproto.repo.putRecord",
    ]
    assert state["pds"] == pds and "login_server" not in state
    assert refused.status == 400 and refused.json()["message"] == "Token audience is out of date"
    (post,) = sim_posts(app)
    assert post.account == "carol.pds2.test" and post.remote_id == published.remote_id

    record = json.loads(staged.requests[0].content)["record"]
    raw = text.encode()
    spans = [
        (raw[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode(), f["features"][0])
        for f in record["facets"]
    ]
    # "nobody.example.org" does not resolve: plain text, no facet, no failure.
    assert spans == [
        ("@alice.test", {"$type": "app.bsky.richtext.facet#mention", "did": did_for("alice.test")}),
        ("#تضامن", {"$type": "app.bsky.richtext.facet#tag", "tag": "تضامن"}),
    ]
    # "Merci à " is 9 bytes: "à" takes two.
    assert record["facets"][0]["index"] == {"byteStart": 9, "byteEnd": 20}


def test_staging_refreshes_a_stored_token_that_would_expire_before_t_plus_grace_once() -> None:
    """A session kept from an earlier run whose access token will be dead at T: staging
    text-only items (nothing else to send) refreshes it, once for all of them."""
    from stormer.channels.bluesky_session import token_claims
    from stormer.simulator import SimConfig, create_app

    app = create_app(SimConfig(bluesky_access_ttl_s=60))  # the earlier run's tokens: 1 min
    state: dict[str, Any] = {}
    on_simulator(app, lambda plugin, conn: plugin.verify(conn), state=state)
    stored = dict(state)
    app.state.sim.configure(SimConfig())  # tokens issued from now on live 120 minutes
    soon = datetime.now(UTC) + timedelta(minutes=10)
    items = [item(n, text=f"post {n}", media=()) for n in range(5)]
    items = [dataclasses.replace(i, fire_at=soon) for i in items]

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await asyncio.gather(*(plugin.stage(i, conn) for i in items))
        return staged, [await plugin.publish(s, conn) for s in staged]

    (staged, published), sent = on_simulator(app, flow, state=state)
    assert sent[0] == f"POST {ENTRYWAY}/xrpc/com.atproto.server.refreshSession"
    assert [s.split()[1].rsplit("/", 1)[1] for s in sent].count(
        "com.atproto.server.refreshSession"
    ) == 1
    assert not any("createSession" in s for s in sent)
    assert state["accessJwt"] != stored["accessJwt"]
    assert state["refreshJwt"] != stored["refreshJwt"]  # rotated, and kept
    holds_until = (soon + timedelta(minutes=10)).timestamp()
    for s in staged:
        token = s.requests[0].headers["Authorization"].removeprefix("Bearer ")
        assert token == state["accessJwt"] and token_claims(token)["exp"] >= holds_until
    assert len(published) == len(sim_posts(app)) == 5

    # With a token that holds, staging a text-only item sends nothing at all.
    _, quiet = on_simulator(app, lambda plugin, conn: plugin.stage(items[0], conn), state=state)
    assert quiet == []


def test_a_lost_answer_on_the_second_pds_is_reconciled_there_without_a_second_post() -> None:
    from stormer.simulator import SimConfig, create_app

    app = create_app(SimConfig(platforms={"bluesky": {"ambiguous_rate": 1.0}}))

    async def flow(plugin, conn):  # type: ignore[no-untyped-def]
        staged = await plugin.stage(item(media=IMAGES[:1]), conn)
        with pytest.raises(OutcomeUnknown):
            await plugin.publish(staged, conn)  # created, then the answer failed
        app.state.sim.configure(SimConfig())
        restaged = await plugin.stage(item(media=IMAGES[:1]), conn)  # after a restart
        return await plugin.reconcile(restaged, conn)

    found, sent = on_simulator(app, flow)
    (post,) = sim_posts(app)
    assert found.remote_id == post.remote_id
    assert sent[-1] == f"GET {ENTRYWAY}/pds2/xrpc/com.atproto.repo.getRecord"


# --- an account on a PDS of its own, and no base_url ------------------------------------------


class HandleWorld:
    """bsky.social (which hosts none of these accounts but resolves any handle), the PLC
    directory, and the PDS each handle's DID names."""

    def __init__(self, pds_of: dict[str, str]) -> None:
        self.pds_of = pds_of  # handle → its PDS
        self.seen: list[str] = []

    def did(self, handle: str) -> str:
        return "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(f"{request.method} {request.url.host}{request.url.path}")
        path, host = request.url.path, request.url.host
        if path.endswith("com.atproto.identity.resolveHandle") and host == "bsky.social":
            return httpx.Response(200, json={"did": self.did(request.url.params["handle"])})
        if host == "plc.directory":
            handle = next(h for h in self.pds_of if self.did(h) == path.strip("/"))
            return httpx.Response(200, json=did_doc(self.did(handle), self.pds_of[handle]))
        if path.endswith("com.atproto.server.createSession"):
            handle = json.loads(request.content)["identifier"]
            if f"https://{host}" != self.pds_of[handle].rstrip("/") and host != "bsky.social":
                return _err(401, "AuthenticationRequired", "Invalid identifier or password")
            if host == "bsky.social" and not self.pds_of[handle].endswith(".bsky.network"):
                # The entryway knows only the accounts Bluesky hosts.
                return _err(401, "AuthenticationRequired", "Invalid identifier or password")
            n = len(self.seen)
            return httpx.Response(
                200,
                json={
                    "accessJwt": f"acc-SECRET-{n}",
                    "refreshJwt": f"ref-SECRET-{n}",
                    "handle": handle,
                    "did": self.did(handle),
                    "didDoc": did_doc(self.did(handle), self.pds_of[handle]),
                },
            )
        if path.endswith("com.atproto.server.getSession"):
            return httpx.Response(200, json={"handle": "h", "did": "did:plc:x", "active": True})
        return _err(404, "NotFound", path)


def verify_as(handle: str, world: HandleWorld) -> dict[str, Any]:
    account = dataclasses.replace(ACCOUNT, base_url=None, handle=handle)

    async def main() -> dict[str, Any]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(world)) as client:
            conn = Connection(account, client, {"app_password": Secret(APP_PASSWORD)})
            await Bluesky().verify(conn)
            return dict(conn.state)

    return asyncio.run(main())


def test_a_handle_on_a_pds_of_its_own_logs_in_there_without_a_base_url() -> None:
    world = HandleWorld({"alice.example.com": "https://pds.alice.example.com"})
    state = verify_as("alice.example.com", world)
    assert world.seen[:3] == [
        "GET bsky.social/xrpc/com.atproto.identity.resolveHandle",
        f"GET plc.directory/{world.did('alice.example.com')}",
        "POST pds.alice.example.com/xrpc/com.atproto.server.createSession",
    ]
    assert state["login_server"] == state["pds"] == "https://pds.alice.example.com"
    assert not any("bsky.social/xrpc/com.atproto.server" in s for s in world.seen)


@pytest.mark.parametrize(
    ("handle", "pds", "lookups"),
    [
        ("someone.bsky.social", "https://morel.us-east.host.bsky.network", 0),  # Bluesky's
        ("org.example.net", "https://puffball.us-east.host.bsky.network", 2),  # Bluesky-hosted
    ],
)
def test_an_account_bluesky_hosts_logs_in_at_the_entryway(
    handle: str, pds: str, lookups: int
) -> None:
    world = HandleWorld({handle: pds})
    state = verify_as(handle, world)
    assert world.seen[lookups] == "POST bsky.social/xrpc/com.atproto.server.createSession"
    assert "login_server" not in state and state["pds"] == pds
