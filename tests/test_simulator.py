"""The platform simulator through plain HTTP: each platform's rules, auth errors, idempotency
(or its absence), 429s, and the faults it injects. The real client libraries against it are
in test_simulator_clients.py."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fixtures_sim import png_bytes
from timing import wait_until

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one grapheme, 3 code points + 2 ZWJ


@pytest.fixture
def http(simulator: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=simulator, timeout=10) as client:
        yield client


def posts(http: httpx.Client, **filters: str) -> list[dict]:
    return http.get("/_sim/posts", params=filters).json()


def configure(http: httpx.Client, **config: object) -> None:
    http.post("/_sim/config", json=config).raise_for_status()


def masto(token: str = "tok") -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- control and faults -----------------------------------------------------------------------


def test_config_round_trip_and_refusals(http: httpx.Client) -> None:
    configure(
        http,
        latency_ms=[1, 2],
        error_rate=0.25,
        platforms={"x": {"error_rate": 1}},
        rate_limit={"discord": {"limit": 5, "window_s": 2}},
    )
    config = http.get("/_sim/config").json()
    assert config["latency_ms"] == [1, 2] and config["error_rate"] == 0.25
    assert config["platforms"] == {"x": {"error_rate": 1}}
    assert config["rate_limit"] == {"discord": {"limit": 5, "window_s": 2.0}}
    for bad in (
        {"nope": 1},
        {"error_rate": 2},
        {"latency_ms": [5, 1]},
        {"platforms": {"myspace": {}}},
        {"platforms": {"x": {"colour": 1}}},
        {"ambiguous_mode": "maybe"},
        {"error_rate": 0.6, "timeout_rate": 0.6},
    ):
        answer = http.post("/_sim/config", json=bad)
        assert answer.status_code == 400, bad
        assert answer.json()["error"]
    configure(http)  # {} restores the config the app was created with
    assert http.get("/_sim/config").json()["error_rate"] == 0.0


def test_received_at_is_taken_when_the_request_arrives(http: httpx.Client) -> None:
    configure(http, latency_ms=[300, 300])
    before = datetime.now(UTC)
    started = time.monotonic()
    assert http.post("/api/v1/statuses", headers=masto(), data={"status": "hi"}).status_code == 200
    assert time.monotonic() - started >= 0.3
    answered = datetime.now(UTC)
    (post,) = posts(http)
    assert post["received_at"].endswith("Z") and len(post["received_at"]) == 27  # microseconds
    received = datetime.fromisoformat(post["received_at"])
    # Before the 0.3 s of latency, not after it (however slow a loaded machine is meanwhile).
    assert before <= received <= answered - timedelta(seconds=0.3)


def test_reset_forgets_posts_and_idempotency_keys(http: httpx.Client) -> None:
    key = {"Idempotency-Key": "k", **masto()}
    first = http.post("/api/v1/statuses", headers=key, data={"status": "one"}).json()
    http.post("/_sim/reset").raise_for_status()
    assert posts(http) == []
    again = http.post("/api/v1/statuses", headers=key, data={"status": "one"}).json()
    assert again["id"] != first["id"] and len(posts(http)) == 1


def test_faults_are_scoped_per_platform(http: httpx.Client) -> None:
    configure(http, platforms={"x": {"error_rate": 1, "error_status": 502}})
    answer = http.post("/2/tweets", headers=masto(), json={"text": "hello"})
    assert answer.status_code == 502 and answer.json()["status"] == 502
    assert http.post("/api/v1/statuses", headers=masto(), data={"status": "ok"}).status_code == 200
    assert [p["platform"] for p in posts(http)] == ["mastodon"]
    # Only create-post requests fail unless faults_on is "all".
    assert http.get("/2/users/me", headers=masto()).status_code == 200
    configure(http, platforms={"x": {"error_rate": 1, "faults_on": "all"}})
    assert http.get("/2/users/me", headers=masto()).status_code == 503


def test_faults_repeat_with_the_same_seed(http: httpx.Client) -> None:
    def run() -> list[int]:
        return [
            http.post("/api/webhooks/1/t", json={"content": f"m{i}"}).status_code for i in range(30)
        ]

    configure(http, seed=7, error_rate=0.5)
    first = run()
    assert set(first) == {204, 503}
    http.post("/_sim/reset")  # reseeds
    assert run() == first
    configure(http, seed=8, error_rate=0.5)
    assert run() != first


def test_timeout_fault_holds_then_fails_without_posting(http: httpx.Client) -> None:
    configure(http, timeout_rate=1, timeout_s=0.2)
    started = time.monotonic()
    answer = http.post("/api/v1/statuses", headers=masto(), data={"status": "slow"})
    assert answer.status_code == 504 and time.monotonic() - started >= 0.2
    configure(http, timeout_rate=1, timeout_s=5)
    with pytest.raises(httpx.ReadTimeout):
        http.post("/api/v1/statuses", headers=masto(), data={"status": "slow"}, timeout=0.3)
    assert posts(http) == []


def test_ambiguous_500_creates_the_post_and_the_key_finds_it(http: httpx.Client) -> None:
    configure(http, ambiguous_rate=1)
    key = {"Idempotency-Key": "storm-1", **masto()}
    answer = http.post("/api/v1/statuses", headers=key, data={"status": "did it land?"})
    assert answer.status_code == 500 and "error" in answer.json()
    (landed,) = posts(http)
    configure(http)
    retry = http.post("/api/v1/statuses", headers=key, data={"status": "did it land?"})
    assert retry.status_code == 200 and retry.json()["id"] == landed["remote_id"]
    assert len(posts(http)) == 1


def test_ambiguous_drop_cuts_the_connection_after_posting(http: httpx.Client) -> None:
    configure(http, ambiguous_rate=1, ambiguous_mode="drop")
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        http.post("/api/webhooks/1/tok", params={"wait": "true"}, json={"content": "dropped"})
    assert [p["text"] for p in posts(http)] == ["dropped"]


def test_ambiguous_hang_posts_then_answers_504_late(http: httpx.Client) -> None:
    configure(http, ambiguous_rate=1, ambiguous_mode="hang", timeout_s=0.1)
    answer = http.post("/2/tweets", headers=masto(), json={"text": "hanging"})
    assert answer.status_code == 504
    assert [p["text"] for p in posts(http)] == ["hanging"]


def test_ambiguous_faults_do_not_hide_a_refusal(http: httpx.Client) -> None:
    configure(http, ambiguous_rate=1)
    answer = http.post("/api/v1/statuses", headers=masto(), data={"status": "x" * 501})
    assert answer.status_code == 422 and posts(http) == []


# --- Mastodon -----------------------------------------------------------------------------------


def test_mastodon_instance_reports_its_limits(http: httpx.Client) -> None:
    v2 = http.get("/api/v2/instance").json()
    assert v2["version"] == "4.4.0"
    assert v2["configuration"]["statuses"] == {
        "max_characters": 500,
        "max_media_attachments": 4,
        "characters_reserved_per_url": 23,
    }
    assert http.get("/api/v1/instance/").json()["version"] == "4.4.0"


def test_mastodon_auth(http: httpx.Client) -> None:
    answer = http.get("/api/v1/accounts/verify_credentials", headers=masto("invalid-x"))
    assert answer.status_code == 401
    assert answer.json() == {"error": "The access token is invalid"}
    assert http.post("/api/v1/statuses", data={"status": "x"}).status_code == 401
    a = http.get("/api/v1/accounts/verify_credentials", headers=masto("a")).json()
    b = http.get("/api/v1/accounts/verify_credentials", headers=masto("b")).json()
    assert a["id"] != b["id"] and a["username"] != b["username"]


def test_mastodon_media_processing_and_alt_text(http: httpx.Client) -> None:
    # Long enough for the two requests below to come before it ends, even on a loaded machine.
    configure(http, media_processing_s=2)
    upload = http.post(
        "/api/v2/media",
        headers=masto(),
        data={"description": "a red square"},
        files={"file": ("a.png", png_bytes(), "image/png")},
    )
    assert upload.status_code == 202 and upload.json()["url"] is None
    media_id = upload.json()["id"]
    assert http.get(f"/api/v1/media/{media_id}", headers=masto()).status_code == 206
    early = http.post(
        "/api/v1/statuses", headers=masto(), data={"status": "pic", "media_ids[]": [media_id]}
    )
    assert early.status_code == 422 and "finished processing" in early.json()["error"]
    wait_until(
        "the media to be processed",
        lambda: http.get(f"/api/v1/media/{media_id}", headers=masto()).status_code != 206,
    )
    done = http.get(f"/api/v1/media/{media_id}", headers=masto())
    assert done.status_code == 200 and done.json()["url"]
    assert http.get(f"/api/v1/media/{media_id}", headers=masto("other")).status_code == 404
    status = http.post(
        "/api/v1/statuses", headers=masto(), data={"status": "pic", "media_ids[]": [media_id]}
    ).json()
    assert status["media_attachments"][0]["description"] == "a red square"
    assert posts(http)[0]["media"] == [{"alt": "a red square", "size": 73, "mime": "image/png"}]
    # Attached media cannot be attached again.
    assert (
        http.post(
            "/api/v1/statuses", headers=masto(), json={"status": "again", "media_ids": [media_id]}
        ).status_code
        == 422
    )


def test_mastodon_idempotency_key_is_per_account(http: httpx.Client) -> None:
    headers = {"Idempotency-Key": "same", **masto("a")}
    first = http.post("/api/v1/statuses", headers=headers, json={"status": "hello"}).json()
    second = http.post("/api/v1/statuses", headers=headers, json={"status": "changed"}).json()
    assert second["id"] == first["id"] and second["content"] == "<p>hello</p>"
    other = http.post(
        "/api/v1/statuses",
        headers={"Idempotency-Key": "same", **masto("b")},
        json={"status": "hello"},
    ).json()
    assert other["id"] != first["id"]
    assert len(posts(http)) == 2
    fetched = http.get(f"/api/v1/statuses/{first['id']}", headers=masto("a")).json()
    assert fetched["url"] == f"{http.base_url}/@{first['account']['username']}/{first['id']}"
    assert fetched["uri"] and fetched["created_at"].endswith("Z")


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("a" * 500, True),
        ("a" * 501, False),
        (FAMILY * 500, True),
        (FAMILY * 501, False),  # grapheme clusters, not code points
        ("a" * 476 + " https://example.com/" + "p" * 200, True),  # a URL weighs 23
        ("a" * 477 + " https://example.com/" + "p" * 200, False),
        ("@alice@" + "very-long-domain." * 20 + "example " + "a" * 493, True),  # counts "@alice"
    ],
)
def test_mastodon_length_rule(http: httpx.Client, text: str, ok: bool) -> None:
    answer = http.post("/api/v1/statuses", headers=masto(), data={"status": text})
    if ok:
        assert answer.status_code == 200
    else:
        assert answer.status_code == 422
        assert answer.json() == {"error": "Validation failed: Text character limit of 500 exceeded"}


def test_mastodon_rate_limit(http: httpx.Client) -> None:
    configure(http, rate_limit={"mastodon": {"limit": 2, "window_s": 60}})
    for _ in range(2):
        ok = http.get("/api/v1/accounts/verify_credentials", headers=masto())
        assert ok.headers["X-RateLimit-Limit"] == "2"
    limited = http.post("/api/v1/statuses", headers=masto(), data={"status": "x"})
    assert limited.status_code == 429 and limited.headers["X-RateLimit-Remaining"] == "0"
    assert datetime.fromisoformat(limited.headers["X-RateLimit-Reset"]) > datetime.now(UTC)
    assert (
        http.post("/api/v1/statuses", headers=masto("other"), data={"status": "x"}).status_code
        == 200
    )  # per account


# --- Bluesky ------------------------------------------------------------------------------------


def bsky_login(http: httpx.Client, handle: str = "alice.test") -> dict:
    answer = http.post(
        "/xrpc/com.atproto.server.createSession",
        json={"identifier": handle, "password": "app-pass"},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_record(text: str = "hello", **extra: object) -> dict:
    return {
        "$type": "app.bsky.feed.post",
        "text": text,
        "createdAt": "2026-03-11T18:00:00.000Z",
        **extra,
    }


def test_bluesky_sessions_and_refresh_revocation(http: httpx.Client) -> None:
    refused = http.post(
        "/xrpc/com.atproto.server.createSession",
        json={"identifier": "alice.test", "password": "invalid-pw"},
    )
    assert refused.status_code == 401
    assert refused.json() == {
        "error": "AuthenticationRequired",
        "message": "Invalid identifier or password",
    }
    session = bsky_login(http)
    assert session["active"] is True and session["did"].startswith("did:plc:")
    assert session["handle"] == "alice.test"
    me = http.get("/xrpc/com.atproto.server.getSession", headers=bearer(session["accessJwt"]))
    assert me.json()["did"] == session["did"]

    renewed = http.post(
        "/xrpc/com.atproto.server.refreshSession", headers=bearer(session["refreshJwt"])
    ).json()
    assert renewed["refreshJwt"] != session["refreshJwt"]
    replay = http.post(
        "/xrpc/com.atproto.server.refreshSession", headers=bearer(session["refreshJwt"])
    )
    assert replay.status_code == 400 and replay.json()["error"] == "ExpiredToken"
    assert (
        http.post(
            "/xrpc/com.atproto.server.refreshSession", headers=bearer(renewed["refreshJwt"])
        ).status_code
        == 200
    )
    # The access token cannot refresh, and a token the server never issued is refused.
    wrong = http.post(
        "/xrpc/com.atproto.server.refreshSession", headers=bearer(renewed["accessJwt"])
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "InvalidToken"
    forged = http.get("/xrpc/com.atproto.server.getSession", headers=bearer("a.b.c"))
    assert forged.status_code == 400 and forged.json()["error"] == "InvalidToken"
    assert http.get("/xrpc/com.atproto.server.getSession").status_code == 401


def test_bluesky_login_rate_limit(http: httpx.Client) -> None:
    for _ in range(30):
        bsky_login(http, "bob.test")
    limited = http.post(
        "/xrpc/com.atproto.server.createSession", json={"identifier": "bob.test", "password": "pw"}
    )
    assert limited.status_code == 429 and limited.json()["error"] == "RateLimitExceeded"
    assert limited.headers["ratelimit-limit"] == "30"
    assert limited.headers["ratelimit-remaining"] == "0"
    assert limited.headers["ratelimit-policy"] == "30;w=300"
    assert int(limited.headers["ratelimit-reset"]) > time.time()
    bsky_login(http, "carol.test")  # per account


def test_bluesky_blobs(http: httpx.Client) -> None:
    token = bearer(bsky_login(http)["accessJwt"])
    blob = http.post(
        "/xrpc/com.atproto.repo.uploadBlob",
        content=png_bytes(),
        headers={**token, "Content-Type": "*/*"},
    ).json()["blob"]
    assert blob["$type"] == "blob" and blob["mimeType"] == "image/png" and blob["size"] == 73
    assert blob["ref"]["$link"].startswith("bafkrei")
    big = http.post(
        "/xrpc/com.atproto.repo.uploadBlob",
        content=b"\0" * 1_000_001,
        headers={**token, "Content-Type": "image/png"},
    )
    assert big.status_code == 400 and big.json()["error"] == "BlobTooLarge"


def test_bluesky_create_and_put_record(http: httpx.Client) -> None:
    session = bsky_login(http)
    token, did = bearer(session["accessJwt"]), session["did"]
    rkey = "3kabcdefghijk"
    body = {"repo": did, "collection": "app.bsky.feed.post", "rkey": rkey, "record": post_record()}
    created = http.post("/xrpc/com.atproto.repo.createRecord", headers=token, json=body)
    assert created.status_code == 200
    assert created.json()["uri"] == f"at://{did}/app.bsky.feed.post/{rkey}"
    again = http.post("/xrpc/com.atproto.repo.createRecord", headers=token, json=body)
    assert again.status_code == 500 and again.json()["error"] == "InternalServerError"

    put = {**body, "rkey": "3kabcdefghijm", "swapRecord": None}
    first = http.post("/xrpc/com.atproto.repo.putRecord", headers=token, json=put)
    assert first.status_code == 200
    retry = http.post("/xrpc/com.atproto.repo.putRecord", headers=token, json=put)
    assert retry.status_code == 200 and retry.json()["cid"] == first.json()["cid"]
    changed = {**put, "record": post_record("other text")}
    swap = http.post("/xrpc/com.atproto.repo.putRecord", headers=token, json=changed)
    assert swap.status_code == 400 and swap.json()["error"] == "InvalidSwap"
    assert [p["text"] for p in posts(http)] == ["hello", "hello"]

    found = http.get(
        "/xrpc/com.atproto.repo.getRecord",
        params={"repo": "alice.test", "collection": "app.bsky.feed.post", "rkey": rkey},
    )
    assert found.status_code == 200 and found.json()["value"]["text"] == "hello"
    missing = http.get(
        "/xrpc/com.atproto.repo.getRecord",
        params={"repo": did, "collection": "app.bsky.feed.post", "rkey": "3kzzzzzzzzzzz"},
    )
    assert missing.status_code == 400 and missing.json()["error"] == "RecordNotFound"
    listed = http.get(
        "/xrpc/com.atproto.repo.listRecords",
        params={"repo": did, "collection": "app.bsky.feed.post"},
    ).json()["records"]
    assert [r["uri"].rsplit("/", 1)[1] for r in listed] == ["3kabcdefghijm", rkey]

    for bad in ("my-post-1", "kabcdefghijkl", "3kabcdefghij"):
        answer = http.post(
            "/xrpc/com.atproto.repo.putRecord", headers=token, json={**put, "rkey": bad}
        )
        assert answer.status_code == 400 and answer.json()["error"] == "InvalidRequest", bad
    fresh = {k: v for k, v in body.items() if k != "rkey"}
    assert (
        http.post("/xrpc/com.atproto.repo.createRecord", headers=token, json=fresh).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("record", "problem"),
    [
        (post_record("a" * 301), "300 graphemes"),
        (post_record(FAMILY * 180), "3000"),  # 180 graphemes but 3,240 bytes
        ({"$type": "app.bsky.feed.post", "text": "no date"}, "createdAt"),
        (
            post_record(
                "#tag",
                facets=[
                    {
                        "index": {"byteStart": 0, "byteEnd": 5},
                        "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "tag"}],
                    }
                ],
            ),
            "within the text",
        ),
        (
            post_record("x", embed={"$type": "app.bsky.embed.images", "images": [{}] * 5}),
            "more than 4",
        ),
    ],
)
def test_bluesky_post_validation(http: httpx.Client, record: dict, problem: str) -> None:
    session = bsky_login(http)
    answer = http.post(
        "/xrpc/com.atproto.repo.createRecord",
        headers=bearer(session["accessJwt"]),
        json={"repo": session["did"], "collection": "app.bsky.feed.post", "record": record},
    )
    assert answer.status_code == 400 and answer.json()["error"] == "InvalidRequest"
    assert problem in answer.json()["message"]
    assert posts(http) == []


def test_bluesky_images_need_alt_and_an_own_blob(http: httpx.Client) -> None:
    alice, bob = bsky_login(http), bsky_login(http, "bob.test")
    blob = http.post(
        "/xrpc/com.atproto.repo.uploadBlob",
        content=png_bytes(),
        headers={**bearer(bob["accessJwt"]), "Content-Type": "image/png"},
    ).json()["blob"]

    def send(images: list[dict]) -> httpx.Response:
        record = post_record("pic", embed={"$type": "app.bsky.embed.images", "images": images})
        return http.post(
            "/xrpc/com.atproto.repo.createRecord",
            headers=bearer(alice["accessJwt"]),
            json={"repo": alice["did"], "collection": "app.bsky.feed.post", "record": record},
        )

    no_alt = send([{"image": blob}])
    assert no_alt.status_code == 400 and '"alt"' in no_alt.json()["message"]
    foreign = send([{"image": blob, "alt": "a square"}])
    assert foreign.status_code == 400 and foreign.json()["error"] == "BlobNotFound"
    own = http.post(
        "/xrpc/com.atproto.repo.uploadBlob",
        content=png_bytes(),
        headers={**bearer(alice["accessJwt"]), "Content-Type": "image/png"},
    ).json()["blob"]
    assert send([{"image": own, "alt": "a square"}]).status_code == 200
    assert posts(http)[0]["media"] == [{"alt": "a square", "size": 73, "mime": "image/png"}]


# --- X ------------------------------------------------------------------------------------------

X_UNAUTHORIZED = {
    "title": "Unauthorized",
    "type": "about:blank",
    "status": 401,
    "detail": "Unauthorized",
}


def test_x_auth_and_identity(http: httpx.Client) -> None:
    for headers in ({}, masto("invalid")):
        answer = http.get("/2/users/me", headers=headers)
        assert answer.status_code == 401 and answer.json() == X_UNAUTHORIZED
    me = http.get("/2/users/me", headers=masto("a")).json()["data"]
    assert set(me) == {"id", "username", "name"}
    # OAuth 1.0a: the same user as the token's; the signature is checked (secrets: x_auth).
    from oauthlib.oauth1 import Client

    url = f"{http.base_url}/2/users/me".replace("//2/", "/2/")
    _, signed, _ = Client("c", "c-secret", "a", "a-secret").sign(url, "GET")
    assert http.get("/2/users/me", headers=signed).json()["data"]["id"] == me["id"]
    _, forged, _ = Client("c", "wrong", "a", "a-secret").sign(url, "GET")
    assert http.get("/2/users/me", headers=forged).json() == X_UNAUTHORIZED
    assert http.get("/2/users/me", headers=masto("b")).json()["data"]["id"] != me["id"]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("a" * 280, True),
        ("a" * 281, False),
        ("字" * 140, True),
        ("字" * 141, False),  # CJK weighs 2
        ("a" * 256 + " https://example.com/" + "p" * 100, True),  # 256 + 1 + 23 = 280
        ("a" * 257 + " https://example.com/" + "p" * 100, False),
        (FAMILY * 140, True),
        (FAMILY * 141, False),  # an emoji sequence weighs 2
        ("e\u0301" * 280, True),  # NFC first: é is one code point of weight 1
    ],
)
def test_x_weighted_length(http: httpx.Client, text: str, ok: bool) -> None:
    answer = http.post("/2/tweets", headers=masto(), json={"text": text})
    assert answer.status_code == (201 if ok else 400), answer.text


def test_x_duplicates_media_and_read_back(http: httpx.Client) -> None:
    created = http.post("/2/tweets", headers=masto("a"), json={"text": "same words"})
    assert created.status_code == 201
    data = created.json()["data"]
    assert data["text"] == "same words" and data["edit_history_tweet_ids"] == [data["id"]]
    duplicate = http.post("/2/tweets", headers=masto("a"), json={"text": "same words"})
    assert duplicate.status_code == 403
    assert duplicate.json() == {
        "detail": "You are not allowed to create a Tweet with duplicate content.",
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
    }
    assert (
        http.post("/2/tweets", headers=masto("b"), json={"text": "same words"}).status_code == 201
    )

    upload = http.post(
        "/2/media/upload",
        headers=masto("a"),
        data={"media_category": "tweet_image"},
        files={"media": ("a.png", png_bytes(), "image/png")},
    ).json()["data"]
    assert upload["media_key"] == f"3_{upload['id']}"
    http.post(
        "/2/media/metadata",
        headers=masto("a"),
        json={"id": upload["id"], "metadata": {"alt_text": {"text": "a square"}}},
    ).raise_for_status()
    foreign = http.post(
        "/2/tweets",
        headers=masto("b"),
        json={"text": "stolen", "media": {"media_ids": [upload["id"]]}},
    )
    assert foreign.status_code == 400
    with_media = http.post(
        "/2/tweets",
        headers=masto("a"),
        json={"text": "with a picture", "media": {"media_ids": [upload["id"]]}},
    )
    assert with_media.status_code == 201
    assert posts(http, account=posts(http)[0]["account"])[-1]["media"] == [
        {"alt": "a square", "size": 73, "mime": "image/png"}
    ]

    me = http.get("/2/users/me", headers=masto("a")).json()["data"]["id"]
    timeline = http.get(
        f"/2/users/{me}/tweets", headers=masto("a"), params={"max_results": 5}
    ).json()
    assert [t["text"] for t in timeline["data"]] == ["with a picture", "same words"]
    assert timeline["meta"]["result_count"] == 2


def test_x_rate_limit_has_reset_and_no_retry_after(http: httpx.Client) -> None:
    configure(http, rate_limit={"x": {"limit": 1, "window_s": 900}})
    ok = http.post("/2/tweets", headers=masto(), json={"text": "one"})
    assert ok.headers["x-rate-limit-limit"] == "1" and ok.headers["x-rate-limit-remaining"] == "0"
    limited = http.post("/2/tweets", headers=masto(), json={"text": "two"})
    assert limited.status_code == 429
    assert limited.json() == {
        "title": "Too Many Requests",
        "detail": "Too Many Requests",
        "type": "about:blank",
        "status": 429,
    }
    assert int(limited.headers["x-rate-limit-reset"]) > time.time()
    assert "retry-after" not in limited.headers


# --- Telegram -----------------------------------------------------------------------------------


def test_telegram_auth_and_parameter_styles(http: httpx.Client) -> None:
    refused = http.get("/botinvalid:token/getMe")
    assert refused.status_code == 401
    assert refused.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    me = http.get("/bot123:ABC/getMe").json()
    assert me["ok"] and me["result"]["id"] == 123 and me["result"]["is_bot"]
    by_query = http.get("/bot123:ABC/sendMessage", params={"chat_id": "@storm", "text": "q"})
    by_form = http.post("/bot123:ABC/sendMessage", data={"chat_id": "@storm", "text": "f"})
    by_json = http.post("/bot123:ABC/sendMessage", json={"chat_id": "@storm", "text": "j"})
    ids = [r.json()["result"]["message_id"] for r in (by_query, by_form, by_json)]
    assert ids == [1, 2, 3]
    chat = by_json.json()["result"]["chat"]
    assert chat["type"] == "channel" and chat["username"] == "storm" and chat["id"] < 0
    assert [p["url"] for p in posts(http)][-1] == "https://t.me/storm/3"


@pytest.mark.parametrize(
    ("text", "parse_mode", "ok"),
    [
        ("a" * 4096, None, True),
        ("a" * 4097, None, False),
        ("😀" * 2048, None, True),
        ("😀" * 2049, None, False),  # UTF-16 units, not code points
        ("<b>" + "a" * 4096 + "</b>", "HTML", True),  # counted after entity parsing
    ],
)
def test_telegram_text_limit(
    http: httpx.Client, text: str, parse_mode: str | None, ok: bool
) -> None:
    params = {"chat_id": "@storm", "text": text}
    if parse_mode:
        params["parse_mode"] = parse_mode
    answer = http.post("/bot123:ABC/sendMessage", json=params)
    if ok:
        assert answer.status_code == 200
    else:
        assert answer.status_code == 400
        assert answer.json() == {
            "ok": False,
            "error_code": 400,
            "description": "Bad Request: message is too long",
        }


def test_telegram_photos_and_albums(http: httpx.Client) -> None:
    sent = http.post(
        "/bot123:ABC/sendPhoto",
        data={"chat_id": "-1001", "caption": "cap"},
        files={"photo": ("a.png", png_bytes(6, 2), "image/png")},
    ).json()["result"]
    assert sent["caption"] == "cap" and sent["photo"][-1]["width"] == 6
    file_id = sent["photo"][-1]["file_id"]
    again = http.post("/bot123:ABC/sendPhoto", json={"chat_id": -1001, "photo": file_id})
    assert again.json()["result"]["message_id"] == 2
    long = http.post(
        "/bot123:ABC/sendPhoto", json={"chat_id": -1001, "photo": file_id, "caption": "c" * 1025}
    )
    assert long.status_code == 400
    assert long.json()["description"] == "Bad Request: message caption is too long"
    album = http.post(
        "/bot123:ABC/sendMediaGroup",
        data={
            "chat_id": "@storm",
            "media": '[{"type":"photo","media":"attach://one","caption":"album"},'
            '{"type":"photo","media":"attach://two"}]',
        },
        files={
            "one": ("1.png", png_bytes(), "image/png"),
            "two": ("2.png", png_bytes(), "image/png"),
        },
    )
    messages = album.json()["result"]
    assert len(messages) == 2 and messages[0]["media_group_id"] == messages[1]["media_group_id"]
    assert posts(http)[-1]["text"] == "album" and len(posts(http)[-1]["media"]) == 2
    lonely = http.post(
        "/bot123:ABC/sendMediaGroup",
        json={"chat_id": "@storm", "media": [{"type": "photo", "media": file_id}]},
    )
    assert lonely.status_code == 400


def test_telegram_refuses_photos_as_documented(http: httpx.Client) -> None:
    """https://core.telegram.org/bots/api#sendphoto: at most 10 MB, width + height at most
    10000, a ratio of at most 20."""

    def send(photo: bytes) -> httpx.Response:
        return http.post(
            "/bot123:ABC/sendPhoto",
            data={"chat_id": "-1001"},
            files={"photo": ("a.png", photo, "image/png")},
        )

    too_big = send(png_bytes(padding=10 * 1024 * 1024))
    assert too_big.status_code == 400
    assert too_big.json()["description"] == "Bad Request: file is too big"
    for width, height in ((6000, 4001), (2100, 100)):
        odd = send(png_bytes(width, height))
        assert odd.json()["description"] == "Bad Request: PHOTO_INVALID_DIMENSIONS"
    assert send(png_bytes(2000, 100)).status_code == 200  # 20:1 and 2100 in total
    assert len(posts(http)) == 1


def test_telegram_revoked_token(http: httpx.Client) -> None:
    assert http.get("/bot77:OLD/getMe").json()["ok"] is True
    http.post("/_sim/telegram/revoke", json={"token": "77:OLD"}).raise_for_status()
    refused = http.get("/bot77:OLD/getMe")
    assert refused.status_code == 401
    assert refused.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert http.get("/bot77:NEW/getMe").json()["result"]["id"] == 77


def test_telegram_rate_limit(http: httpx.Client) -> None:
    configure(http, rate_limit={"telegram": {"limit": 1, "window_s": 30}})
    assert http.post("/bot1:A/sendMessage", json={"chat_id": 1, "text": "a"}).status_code == 200
    limited = http.post("/bot1:A/sendMessage", json={"chat_id": 1, "text": "b"})
    assert limited.status_code == 429
    body = limited.json()
    wait = body["parameters"]["retry_after"]
    assert 1 <= wait <= 30
    assert body == {
        "ok": False,
        "error_code": 429,
        "description": f"Too Many Requests: retry after {wait}",
        "parameters": {"retry_after": wait},
    }


# --- Discord ------------------------------------------------------------------------------------


def test_discord_webhook_posting(http: httpx.Client) -> None:
    refused = http.post("/api/webhooks/1/invalid-token", json={"content": "x"})
    assert refused.status_code == 401
    assert refused.json() == {"message": "Invalid Webhook Token", "code": 50027}
    hook = http.get("/api/v10/webhooks/42/tok").json()
    assert hook["id"] == "42" and hook["channel_id"]
    waited = http.post(
        "/api/v10/webhooks/42/tok", params={"wait": "true"}, json={"content": "hello"}
    )
    assert waited.status_code == 200 and waited.json()["content"] == "hello"
    assert waited.json()["channel_id"] == hook["channel_id"]
    unwaited = http.post("/api/webhooks/42/tok", json={"content": "hello"})
    assert unwaited.status_code == 204 and unwaited.content == b""
    assert len(posts(http)) == 2  # no idempotency: a retry posts again
    message_id = waited.json()["id"]
    assert http.get(f"/api/v10/webhooks/42/tok/messages/{message_id}").json()["id"] == message_id


def test_discord_multipart_files_with_alt_text(http: httpx.Client) -> None:
    answer = http.post(
        "/api/v10/webhooks/42/tok",
        params={"wait": "true"},
        data={
            "payload_json": '{"content": "pic", "attachments": '
            '[{"id": 0, "description": "a square", "filename": "a.png"}]}'
        },
        files={"files[0]": ("a.png", png_bytes(), "image/png")},
    )
    assert answer.status_code == 200
    (attachment,) = answer.json()["attachments"]
    assert attachment["description"] == "a square" and attachment["filename"] == "a.png"
    assert posts(http)[0]["media"] == [{"alt": "a square", "size": 73, "mime": "image/png"}]


def test_discord_refusals(http: httpx.Client) -> None:
    assert http.post("/api/webhooks/1/t", json={"content": "é" * 2000}).status_code == 204
    long = http.post("/api/webhooks/1/t", json={"content": "é" * 2001})
    assert long.status_code == 400
    body = long.json()
    assert body["code"] == 50035 and body["message"] == "Invalid Form Body"
    assert "content" in body["errors"]
    empty = http.post("/api/webhooks/1/t", json={"content": ""})
    assert empty.status_code == 400 and empty.json()["code"] == 50006


def test_discord_rate_limit(http: httpx.Client) -> None:
    configure(http, rate_limit={"discord": {"limit": 2, "window_s": 2}})
    for _ in range(2):
        assert http.post("/api/webhooks/9/t", json={"content": "x"}).status_code == 204
    limited = http.post("/api/webhooks/9/t", json={"content": "x"})
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] in ("1", "2")
    body = limited.json()
    assert body["message"] == "You are being rate limited." and body["global"] is False
    assert 0 < body["retry_after"] <= 2
    assert http.post("/api/webhooks/8/t", json={"content": "x"}).status_code == 204


@pytest.mark.parametrize("prefix", ["/api", "/api/v10"])
def test_discord_faults_hit_the_versioned_route_too(http: httpx.Client, prefix: str) -> None:
    """Injected faults, rate limits and ambiguous answers apply to /api/v10/webhooks as to
    the unversioned route (https://discord.com/developers/docs/reference#api-versioning)."""
    configure(http, platforms={"discord": {"error_rate": 1, "error_status": 502}})
    failed = http.post(f"{prefix}/webhooks/7/t", params={"wait": "true"}, json={"content": "a"})
    assert failed.status_code == 502 and posts(http) == []
    configure(http, platforms={"discord": {"ambiguous_rate": 1}})
    lost = http.post(f"{prefix}/webhooks/7/t", params={"wait": "true"}, json={"content": "b"})
    assert lost.status_code == 500 and [p["text"] for p in posts(http)] == ["b"]
    configure(http, rate_limit={"discord": {"limit": 1, "window_s": 30}})
    assert http.post(f"{prefix}/webhooks/7/t", json={"content": "c"}).status_code == 204
    assert http.post(f"{prefix}/webhooks/7/t", json={"content": "d"}).status_code == 429


def test_discord_forum_webhooks_post_in_threads_only(http: httpx.Client) -> None:
    http.post("/_sim/discord/forums", json={"webhook_id": "5"}).raise_for_status()
    url, wait = "/api/v10/webhooks/5/t", {"wait": "true"}
    bare = http.post(url, params=wait, json={"content": "x"})
    assert bare.status_code == 400 and bare.json()["code"] == 220001
    both = http.post(
        url, params={**wait, "thread_id": "9"}, json={"content": "x", "thread_name": "t"}
    )
    assert both.status_code == 400 and both.json()["code"] == 220002
    long = http.post(url, params=wait, json={"content": "x", "thread_name": "t" * 101})
    assert long.status_code == 400 and "thread_name" in long.json()["errors"]
    new = http.post(url, params=wait, json={"content": "new post", "thread_name": "Title"}).json()
    assert new["channel_id"] == new["id"]  # a forum post's first message has the thread's id
    reply = http.post(url, params={**wait, "thread_id": new["id"]}, json={"content": "reply"})
    assert reply.json()["channel_id"] == new["id"]
    elsewhere = http.post("/api/v10/webhooks/6/t", json={"content": "x", "thread_name": "t"})
    assert elsewhere.status_code == 400 and elsewhere.json()["code"] == 220003
    assert [p["target"] for p in posts(http)] == [new["id"], new["id"]]


# --- Matrix -------------------------------------------------------------------------------------


def mx_login(http: httpx.Client, user: str = "alice", **extra: object) -> dict[str, str]:
    answer = http.post(
        "/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user},
            "password": "pw",
            **extra,
        },
    )
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def test_matrix_auth(http: httpx.Client) -> None:
    assert "v1.11" in http.get("/_matrix/client/versions").json()["versions"]
    refused = http.post(
        "/_matrix/client/v3/login",
        json={"type": "m.login.password", "user": "alice", "password": "invalid"},
    )
    assert refused.status_code == 403 and refused.json()["errcode"] == "M_FORBIDDEN"
    bad = http.get("/_matrix/client/v3/account/whoami", headers=bearer("invalid-token"))
    assert bad.status_code == 401
    assert bad.json()["errcode"] == "M_UNKNOWN_TOKEN"
    assert bad.json()["error"] == "Invalid access token passed."
    token = mx_login(http)
    assert (
        http.get("/_matrix/client/v3/account/whoami", headers=token).json()["user_id"]
        == "@alice:sim"
    )
    http.post("/_matrix/client/v3/logout", headers=token).raise_for_status()
    assert http.get("/_matrix/client/v3/account/whoami", headers=token).status_code == 401


def test_matrix_txn_ids_are_scoped_to_the_device(http: httpx.Client) -> None:
    token = mx_login(http)
    room = http.post("/_matrix/client/v3/createRoom", headers=token, json={"name": "storm"}).json()[
        "room_id"
    ]
    path = f"/_matrix/client/v3/rooms/{room}/send/m.room.message/txn-1"
    first = http.put(path, headers=token, json={"msgtype": "m.text", "body": "hello"}).json()
    again = http.put(path, headers=token, json={"msgtype": "m.text", "body": "different"}).json()
    assert again["event_id"] == first["event_id"]
    assert [p["text"] for p in posts(http)] == ["hello"]
    relogged = mx_login(http)  # a new device: the same txnId is a new request
    other = http.put(path, headers=relogged, json={"msgtype": "m.text", "body": "hello"}).json()
    assert other["event_id"] != first["event_id"] and len(posts(http)) == 2
    same_device = mx_login(http, device_id="PHONE")
    http.put(
        path.replace("txn-1", "txn-2"), headers=same_device, json={"msgtype": "m.text", "body": "x"}
    )
    reused = mx_login(http, device_id="PHONE")  # logging in to the same device keeps its txns
    http.put(
        path.replace("txn-1", "txn-2"), headers=reused, json={"msgtype": "m.text", "body": "x"}
    )
    assert len(posts(http)) == 3

    event = http.get(
        f"/_matrix/client/v3/rooms/{room}/event/{first['event_id']}", headers=token
    ).json()
    assert event["content"]["body"] == "hello" and event["sender"] == "@alice:sim"
    assert event["unsigned"]["transaction_id"] == "txn-1"
    history = http.get(
        f"/_matrix/client/v3/rooms/{room}/messages", headers=token, params={"dir": "b", "limit": 3}
    ).json()
    assert [e["content"].get("body") for e in history["chunk"]] == ["x", "hello", "hello"]


def test_matrix_membership_and_media(http: httpx.Client) -> None:
    alice, bob = mx_login(http), mx_login(http, "bob")
    room = http.post("/_matrix/client/v3/createRoom", headers=alice, json={}).json()["room_id"]
    path = f"/_matrix/client/v3/rooms/{room}/send/m.room.message/t"
    outsider = http.put(path, headers=bob, json={"msgtype": "m.text", "body": "hi"})
    assert outsider.status_code == 403 and outsider.json()["errcode"] == "M_FORBIDDEN"
    assert http.post(f"/_matrix/client/v3/join/{room}", headers=bob).json()["room_id"] == room
    uploaded = http.post(
        "/_matrix/media/v3/upload",
        params={"filename": "a.png"},
        content=png_bytes(),
        headers={**bob, "Content-Type": "image/png"},
    )
    mxc = uploaded.json()["content_uri"]
    assert mxc.startswith("mxc://sim/")
    sent = http.put(
        path,
        headers=bob,
        json={"msgtype": "m.image", "url": mxc, "body": "a red square", "info": {"w": 4, "h": 3}},
    )
    assert sent.status_code == 200
    assert posts(http)[0]["media"] == [{"alt": "a red square", "size": 73, "mime": "image/png"}]
    # Since v1.10: body ≠ filename is a caption (shown, and the only text alternative);
    # body = filename is only the file's name.
    for body, filename in (("A caption", "a.png"), ("a.png", "a.png")):
        http.put(
            f"{path}-{body}",
            headers=bob,
            json={"msgtype": "m.image", "url": mxc, "body": body, "filename": filename},
        )
    caption, named = posts(http)[1:]
    assert (caption["text"], caption["media"][0]["alt"]) == ("A caption", "A caption")
    assert (named["text"], named["media"][0]["alt"]) == ("", None)
    downloaded = http.get(f"/_matrix/client/v1/media/download/{mxc[6:]}", headers=alice)
    assert downloaded.content == png_bytes()


def test_matrix_refresh_tokens_expire_rotate_and_revoke(http: httpx.Client) -> None:
    """Spec v1.3+ refresh tokens: only a client that asks gets an expiring token; a refresh
    rotates both tokens for the same device; the old refresh token dies once the new access
    token is used; an expired access token is a soft logout."""
    configure(http, matrix_access_ttl_s=0.05)
    static = mx_login(http)  # did not ask for a refresh token: it never expires
    login = http.post(
        "/_matrix/client/v3/login",
        json={
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": "alice"},
            "password": "pw",
            "device_id": "STORMDEV",
            "refresh_token": True,
        },
    ).json()
    assert login["expires_in_ms"] == 50 and login["device_id"] == "STORMDEV"

    def whoami(token: str) -> httpx.Response:
        return http.get("/_matrix/client/v3/account/whoami", headers=bearer(token))

    wait_until(
        "the access token to expire", lambda: whoami(login["access_token"]).status_code == 401
    )
    expired = whoami(login["access_token"]).json()
    assert (expired["errcode"], expired["soft_logout"]) == ("M_UNKNOWN_TOKEN", True)
    assert whoami(static["Authorization"].removeprefix("Bearer ")).status_code == 200

    configure(http, matrix_access_ttl_s=600)
    old = login["refresh_token"]
    new = http.post("/_matrix/client/v3/refresh", json={"refresh_token": old}).json()
    assert new["refresh_token"] != old and new["expires_in_ms"] == 600_000
    assert whoami(new["access_token"]).json()["device_id"] == "STORMDEV"
    refused = http.post("/_matrix/client/v3/refresh", json={"refresh_token": old})
    assert refused.status_code == 401 and refused.json()["errcode"] == "M_UNKNOWN_TOKEN"
    # A new login to the device replaces its tokens, refresh tokens included.
    mx_login(http, device_id="STORMDEV")
    assert whoami(new["access_token"]).status_code == 401
    gone = http.post("/_matrix/client/v3/refresh", json={"refresh_token": new["refresh_token"]})
    assert gone.status_code == 401


def test_matrix_media_config_and_upload_limit(http: httpx.Client) -> None:
    configure(http, matrix_upload_bytes=50)
    token = mx_login(http)
    assert http.get("/_matrix/client/v1/media/config").status_code == 401  # authenticated
    config = http.get("/_matrix/client/v1/media/config", headers=token).json()
    assert config == {"m.upload.size": 50}
    too_large = http.post(
        "/_matrix/media/v3/upload",
        content=png_bytes(),
        headers={**token, "Content-Type": "image/png"},
    )
    assert too_large.status_code == 413 and too_large.json()["errcode"] == "M_TOO_LARGE"


def test_matrix_rate_limit(http: httpx.Client) -> None:
    configure(http, rate_limit={"matrix": {"limit": 1, "window_s": 10}})
    token = mx_login(http)  # login carries no token: not counted
    assert http.get("/_matrix/client/v3/account/whoami", headers=token).status_code == 200
    limited = http.get("/_matrix/client/v3/account/whoami", headers=token)
    assert limited.status_code == 429
    assert limited.json()["errcode"] == "M_LIMIT_EXCEEDED"
    assert 0 < limited.json()["retry_after_ms"] <= 10_000
    assert 1 <= int(limited.headers["Retry-After"]) <= 10


# --- the command --------------------------------------------------------------------------------


def test_serve_command_prints_its_url_and_serves() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "stormer",
            "simulator",
            "serve",
            "--port",
            "0",
            "--latency",
            "1-2",
            "--seed",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        config = httpx.get(f"{url}/_sim/config", timeout=10).json()
        assert config["latency_ms"] == [1.0, 2.0] and config["seed"] == 5
    finally:
        process.terminate()
        process.communicate(timeout=15)
    assert process.returncode in (0, -15)


def test_serve_command_refuses_a_bad_latency() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "stormer", "simulator", "serve", "--latency", "fast"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "latency" in result.stderr
