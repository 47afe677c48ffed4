"""Smoke tests of the real peers (tests/fixtures_peers.py) through plain httpx.

They prove each server works and pin down the behaviour stormer's clients rely on: how a
retried publish is made a no-op, and what a token refresh does to the old token.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from example import REPO
from fixtures_peers import BlueskyPds, Synapse

PNG = REPO / "posts" / "images" / "graduation-cap.png"
POST = "app.bsky.feed.post"
TID_CHARS = "234567abcdefghijklmnopqrstuvwxyz"


def tid(micros: int | None = None) -> str:
    """An atproto record key: 53 bits of microseconds and 10 of clock id, 13 base32 chars."""
    value = ((micros or time.time_ns() // 1000) << 10) | secrets.randbelow(1024)
    return "".join(TID_CHARS[(value >> shift) & 31] for shift in range(60, -1, -5))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


# --- Bluesky -----------------------------------------------------------------------------------


@pytest.fixture
def xrpc(bluesky_pds: BlueskyPds) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{bluesky_pds.url}/xrpc/") as client:
        yield client


def test_pds_publish_is_idempotent_and_reads_back(
    bluesky_pds: BlueskyPds, xrpc: httpx.Client
) -> None:
    handle, password, did = bluesky_pds.create_account("storm")
    assert handle.endswith(".test") and did.startswith("did:plc:")
    session = xrpc.post(
        "com.atproto.server.createSession", json={"identifier": handle, "password": password}
    ).json()
    auth = bearer(session["accessJwt"])

    image = PNG.read_bytes()
    blob = xrpc.post(
        "com.atproto.repo.uploadBlob", content=image, headers={**auth, "Content-Type": "image/png"}
    ).json()["blob"]
    assert blob["mimeType"] == "image/png" and blob["size"] == len(image)

    text = "Éducation pour toutes et tous ✊ #StudentsNotCriminals"
    start = text.encode().index(b"#")  # byte offsets, not character offsets
    record = {
        "$type": POST,
        "text": text,
        "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "langs": ["fr"],
        "facets": [
            {
                "index": {"byteStart": start, "byteEnd": len(text.encode())},
                "features": [
                    {"$type": "app.bsky.richtext.facet#tag", "tag": "StudentsNotCriminals"}
                ],
            }
        ],
        "embed": {
            "$type": "app.bsky.embed.images",
            "images": [{"image": blob, "alt": "A graduation cap"}],
        },
    }
    rkey = tid()
    put = {"repo": did, "collection": POST, "rkey": rkey, "record": record, "swapRecord": None}

    def head_rev() -> str:
        return str(xrpc.get("com.atproto.sync.getLatestCommit", params={"did": did}).json()["rev"])

    first = xrpc.post("com.atproto.repo.putRecord", json=put, headers=auth)
    assert first.status_code == 200, first.text
    rev = head_rev()
    retry = xrpc.post("com.atproto.repo.putRecord", json=put, headers=auth)
    assert retry.status_code == 200, retry.text
    assert retry.json()["cid"] == first.json()["cid"]
    assert head_rev() == rev  # no new commit: the retry was a no-op
    changed = {**put, "record": {**record, "text": text + "!"}}
    clash = xrpc.post("com.atproto.repo.putRecord", json=changed, headers=auth)
    assert clash.status_code == 400 and clash.json()["error"] == "InvalidSwap"

    got = xrpc.get(
        "com.atproto.repo.getRecord", params={"repo": did, "collection": POST, "rkey": rkey}
    ).json()
    assert got["uri"] == f"at://{did}/{POST}/{rkey}" and got["cid"] == first.json()["cid"]
    assert got["value"] == record
    downloaded = xrpc.get(
        "com.atproto.sync.getBlob", params={"did": did, "cid": blob["ref"]["$link"]}
    )
    assert downloaded.content == image


def test_pds_refresh_rotates_and_delete_session_revokes(
    bluesky_pds: BlueskyPds, xrpc: httpx.Client
) -> None:
    handle, password, _ = bluesky_pds.create_account("refresh")
    first = xrpc.post(
        "com.atproto.server.createSession", json={"identifier": handle, "password": password}
    ).json()
    refreshed = xrpc.post(
        "com.atproto.server.refreshSession", headers=bearer(first["refreshJwt"])
    ).json()
    assert refreshed["refreshJwt"] != first["refreshJwt"]
    assert (
        xrpc.get(
            "com.atproto.server.getSession", headers=bearer(refreshed["accessJwt"])
        ).status_code
        == 200
    )

    # The old refresh token is not revoked at once: for a grace period (2 h in this PDS) it
    # answers again with the *same* successor (same jti), so a client that crashed before
    # saving the new token can recover. Only deleteSession revokes a refresh token.
    again = xrpc.post("com.atproto.server.refreshSession", headers=bearer(first["refreshJwt"]))
    assert again.status_code == 200, again.text
    successor = jwt_claims(refreshed["refreshJwt"])["jti"]
    assert jwt_claims(again.json()["refreshJwt"])["jti"] == successor

    gone = xrpc.post("com.atproto.server.deleteSession", headers=bearer(refreshed["refreshJwt"]))
    assert gone.status_code == 200, gone.text
    revoked = xrpc.post(
        "com.atproto.server.refreshSession", headers=bearer(refreshed["refreshJwt"])
    )
    assert revoked.status_code == 400 and revoked.json()["error"] == "ExpiredToken"


def test_pds_runs_without_rate_limits_for_the_suite(xrpc: httpx.Client) -> None:
    """dev-env starts the PDS with its rate limits off, so the suite is never throttled (the
    PDS's 429s are tested on `bluesky_pds_rate_limited`, in test_contract.py): a limited PDS
    sends RateLimit-* headers with every XRPC answer, this one none."""
    answer = xrpc.get("com.atproto.server.describeServer")
    assert answer.status_code == 200, answer.text
    assert not [name for name in answer.headers if name.lower().startswith("ratelimit")]


# --- Matrix ------------------------------------------------------------------------------------


def test_synapse_send_is_idempotent_per_token_and_reads_back(synapse: Synapse) -> None:
    user_id, password = synapse.register("stormer")
    assert user_id.startswith("@stormer-") and user_id.endswith(":localhost")
    token = synapse.login(user_id, password)
    room = quote(synapse.create_room(token, name="storm"), safe="")
    client = httpx.Client(base_url=synapse.url, headers=bearer(token))
    with client:
        image = PNG.read_bytes()
        upload = client.post(
            "/_matrix/media/v3/upload",
            params={"filename": PNG.name},
            content=image,
            headers={"Content-Type": "image/png"},
        )
        assert upload.status_code == 200, upload.text
        mxc = upload.json()["content_uri"]
        server_name, media_id = mxc.removeprefix("mxc://").split("/")
        downloaded = client.get(f"/_matrix/client/v1/media/download/{server_name}/{media_id}")
        assert downloaded.content == image

        content = {
            "msgtype": "m.image",
            "body": "A graduation cap",
            "url": mxc,
            "info": {"mimetype": "image/png", "size": len(image)},
        }
        send = f"/_matrix/client/v3/rooms/{room}/send/m.room.message/storm-{secrets.token_hex(4)}"
        first = client.put(send, json=content)
        assert first.status_code == 200, first.text
        event_id = first.json()["event_id"]
        assert client.put(send, json=content).json()["event_id"] == event_id

        event = client.get(f"/_matrix/client/v3/rooms/{room}/event/{quote(event_id, safe='')}")
        assert event.status_code == 200, event.text
        assert event.json()["content"] == content and event.json()["sender"] == user_id

        # Transaction ids are scoped to the access token: after a new login the same txnId is
        # a new event, so a client must keep its token (device) to make a resend a no-op.
        other = synapse.login(user_id, password)
        resent = client.put(send, json=content, headers=bearer(other))
        assert resent.status_code == 200 and resent.json()["event_id"] != event_id


def test_synapse_refresh_tokens_and_a_fixed_device_keep_transaction_ids(synapse: Synapse) -> None:
    """What stormer's Matrix client relies on (channels/matrix_session.py): a login asking for
    a refresh token gets an expiring access token; a refresh rotates both tokens and revokes
    the old refresh token once the new access token is used; transaction ids stay with the
    device across a refresh and across a new login to the same device_id."""
    user_id, password = synapse.register("refresh")
    device = f"STORMER_{secrets.token_hex(5).upper()}"

    def login() -> dict[str, Any]:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
            "device_id": device,
            "refresh_token": True,
        }
        answer = httpx.post(f"{synapse.url}/_matrix/client/v3/login", json=body)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    first = login()
    assert first["device_id"] == device and first["expires_in_ms"] > 0 and first["refresh_token"]
    room = quote(synapse.create_room(first["access_token"], name="refresh"), safe="")
    send = f"{synapse.url}/_matrix/client/v3/rooms/{room}/send/m.room.message/stormer-{device}"
    content = {"msgtype": "m.text", "body": "once"}
    event_id = httpx.put(send, json=content, headers=bearer(first["access_token"])).json()[
        "event_id"
    ]

    refreshed = httpx.post(
        f"{synapse.url}/_matrix/client/v3/refresh", json={"refresh_token": first["refresh_token"]}
    ).json()
    assert refreshed["refresh_token"] != first["refresh_token"] and refreshed["expires_in_ms"] > 0
    again = httpx.put(send, json=content, headers=bearer(refreshed["access_token"]))
    assert again.status_code == 200 and again.json()["event_id"] == event_id
    reused = httpx.post(
        f"{synapse.url}/_matrix/client/v3/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert reused.status_code in (401, 403) and reused.json()["errcode"] in (
        "M_UNKNOWN_TOKEN",
        "M_FORBIDDEN",
    ), reused.text

    relogged = login()  # a restart: a new login, to the same device
    after = httpx.put(send, json=content, headers=bearer(relogged["access_token"]))
    assert after.status_code == 200 and after.json()["event_id"] == event_id

    config = httpx.get(
        f"{synapse.url}/_matrix/client/v1/media/config",
        headers=bearer(relogged["access_token"]),
    )
    assert config.status_code == 200 and config.json()["m.upload.size"] > 0


def test_pds_search_goes_to_an_appview_and_impact_says_when_there_is_none(
    bluesky_pds: BlueskyPds,
) -> None:
    """`stormer impact` asks searchPosts of the account's PDS, which passes app.bsky.* calls
    on to its AppView. This PDS runs without one (TestNetworkNoAppView): the real answer is
    502 UpstreamFailure, and impact reports Bluesky as not measured, in the PDS's words,
    rather than as a storm nobody joined."""
    import asyncio
    from datetime import timedelta

    from stormer.channels.base import Connection
    from stormer.channels.bluesky import Bluesky
    from stormer.channels.search import SearchUnavailable
    from stormer.secrets import Secret
    from stormer.storm import Account

    handle, password, _ = bluesky_pds.create_account("impact")
    account = Account(
        name="impact",
        platform="bluesky",
        langs=(),
        base_url=bluesky_pds.url,
        target=None,
        handle=handle,
        credentials=(("app_password", "UNUSED"),),
        line=None,
    )
    now = datetime.now(UTC)

    async def search() -> None:
        async with httpx.AsyncClient() as client:
            conn = Connection(account, client, {"app_password": Secret(password)})

            async def wait(seconds: float, why: str) -> None:
                raise AssertionError(f"no rate limit expected ({why})")

            pages = Bluesky().hashtag_posts(
                conn, "#Storm", now - timedelta(hours=1), now, wait=wait
            )
            async for _ in pages:
                raise AssertionError("a PDS without an AppView returned results")

    with pytest.raises(SearchUnavailable, match=r"HTTP 502 UpstreamFailure"):
        asyncio.run(search())
