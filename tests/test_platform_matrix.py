"""Matrix sending, against a fake homeserver behind httpx.MockTransport.

The fake remembers transaction ids per device, as Synapse does (peers/README.md: the same
txnId on the same access token returns the first event_id, even with another body), so a
reconcile that resends must yield one event, never two."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
from fixtures_keyring import MemoryKeyring
from platform_fakes import (
    JPEG,
    PNG,
    account_for,
    assert_nowhere,
    lost_then_reconciled,
    post_item,
    publish,
    run_against,
    shown,
    what_sending_shows,
)

from stormer.channels.base import Connection, Published, Staged
from stormer.channels.matrix import Matrix
from stormer.errors import AuthError, OutcomeUnknown, RateLimited, Rejected
from stormer.queue import MediaRef, QueueItem
from stormer.storm import Account

TOKEN = "syt_c3Rvcm0_SECRET_matrix_token"
WRONG_TOKEN = "syt_c3Rvcm0_WRONG_matrix_token"
USER = "@storm:example.org"
ROOM = "!storm:example.org"
ITEM_ID = "0123456789abcdef"
TEXT = "Education is a right, not a privilege. #FreePalestinianStudents"
SEND = "/_matrix/client/v3/rooms/"
T = TypeVar("T")


def error(status: int, errcode: str, message: str, **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"errcode": errcode, "error": message, **extra})


class FakeHomeserver:
    """whoami, media upload and room sends, with transaction ids remembered per device.

    `answer` / `upload_answer` replace the reply to sends / uploads; the answer to the n-th
    new event (1-based) is lost if n is in `timeout_after` (the client sees a read timeout
    although the event was created)."""

    def __init__(self) -> None:
        self.devices = {TOKEN: "STORMDEVICE"}
        self.joined = {ROOM}
        self.events: list[tuple[str, str, dict[str, Any]]] = []  # (event id, txn id, content)
        self.transactions: dict[tuple[str, str], str] = {}  # (device, path) → event id
        self.uploads: list[tuple[str, str, bytes]] = []  # (filename, content type, bytes)
        self.answer: httpx.Response | None = None
        self.upload_answer: httpx.Response | None = None
        self.timeout_after: set[int] = set()
        self.joins: list[str] = []  # rooms joined (staging joins before T)
        self.aliases: dict[str, str] = {}  # "#alias:server" → the room id it names
        self.expired: set[str] = set()  # access tokens answered with a soft logout
        self.refresh_tokens = {"r-1": "STORMDEVICE"}  # refresh token → device
        self.refreshes = 0
        self.upload_size: int | None = 20_000_000

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/_matrix/client/v3/refresh":
            old = json.loads(request.content)["refresh_token"]
            if old not in self.refresh_tokens:
                return error(401, "M_UNKNOWN_TOKEN", "Soft logged out", soft_logout=True)
            self.refreshes += 1
            device = self.refresh_tokens.pop(old)
            access, refresh = f"a-{self.refreshes + 1}", f"r-{self.refreshes + 1}"
            self.devices[access] = device
            self.refresh_tokens[refresh] = device
            return httpx.Response(
                200,
                json={"access_token": access, "refresh_token": refresh, "expires_in_ms": 300_000},
            )
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token in self.expired:
            return error(401, "M_UNKNOWN_TOKEN", "Access token has expired", soft_logout=True)
        if token not in self.devices:
            return error(401, "M_UNKNOWN_TOKEN", "Invalid access token passed.", soft_logout=False)
        device, path = self.devices[token], request.url.path
        if path == "/_matrix/client/v3/account/whoami":
            return httpx.Response(
                200, json={"user_id": USER, "device_id": device, "is_guest": False}
            )
        if path == "/_matrix/client/v1/media/config":
            config = {} if self.upload_size is None else {"m.upload.size": self.upload_size}
            return httpx.Response(200, json=config)
        if path.startswith("/_matrix/client/v3/join/"):
            self.joins.append(path.removeprefix("/_matrix/client/v3/join/"))
            return httpx.Response(
                200, json={"room_id": self.aliases.get(self.joins[-1], self.joins[-1])}
            )
        if path == "/_matrix/media/v3/upload":
            if self.upload_answer is not None:
                return self.upload_answer
            self.uploads.append(
                (request.url.params["filename"], request.headers["content-type"], request.content)
            )
            return httpx.Response(
                200, json={"content_uri": f"mxc://example.org/media{len(self.uploads)}"}
            )
        assert request.method == "PUT" and path.startswith(SEND), path
        room, _, txn = path.removeprefix(SEND).partition("/send/m.room.message/")
        if self.answer is not None:
            return self.answer
        if room not in self.joined:
            return error(403, "M_FORBIDDEN", f"User {USER} not in room {room} (None)")
        if (device, path) in self.transactions:
            return httpx.Response(200, json={"event_id": self.transactions[device, path]})
        event_id = f"$event{len(self.events) + 1}"
        self.events.append((event_id, txn, json.loads(request.content)))
        self.transactions[device, path] = event_id
        if len(self.events) in self.timeout_after:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json={"event_id": event_id})


def account(room: str = ROOM) -> Account:
    return account_for(
        "matrix",
        ("access_token", "FPS_MATRIX_TOKEN"),
        base_url="https://matrix.example.org",
        target=room,
    )


def item(*media: MediaRef) -> QueueItem:
    return post_item("matrix", TEXT, media, item_id=ITEM_ID)


def run(
    server: FakeHomeserver,
    scenario: Callable[[Connection], Awaitable[T]],
    *,
    token: str = TOKEN,
    room: str = ROOM,
    media_root: Path | None = None,
) -> T:
    return run_against(
        server, scenario, account(room), {"access_token": token}, media_root=media_root
    )


async def stage_and_publish(conn: Connection, queued: QueueItem | None = None) -> Any:
    return await publish(Matrix(), queued or item(), conn)


def test_verify_names_the_user() -> None:
    assert run(FakeHomeserver(), Matrix().verify) == USER


def test_a_text_only_post_is_one_text_event() -> None:
    server = FakeHomeserver()
    run(server, stage_and_publish)
    assert server.events == [
        ("$event1", f"stormer-{ITEM_ID}-0", {"msgtype": "m.text", "body": TEXT})
    ]


def test_the_text_is_the_first_images_caption_and_each_image_its_own_event(
    images: tuple[MediaRef, MediaRef], tmp_path: Path
) -> None:
    """Spec v1.10 media captions: `body` ≠ `filename` makes `body` the caption, shown with
    the image: the post is its first image captioned with the text. A further image is an
    event of its own, captioned with its alt text (the spec has no alt-text field)."""
    server = FakeHomeserver()
    published = run(
        server, lambda conn: stage_and_publish(conn, item(*images)), media_root=tmp_path
    )
    assert server.uploads == [("banner.png", "image/png", PNG), ("photo.jpg", "image/jpeg", JPEG)]
    assert server.events == [
        (
            "$event1",
            f"stormer-{ITEM_ID}-0",
            {
                "msgtype": "m.image",
                "body": TEXT,
                "filename": "banner.png",
                "url": "mxc://example.org/media1",
                "info": {"mimetype": "image/png", "w": 1200, "h": 675, "size": len(PNG)},
            },
        ),
        (
            "$event2",
            f"stormer-{ITEM_ID}-1",
            {
                "msgtype": "m.image",
                "body": "Students at a gate",
                "filename": "photo.jpg",
                "url": "mxc://example.org/media2",
                "info": {"mimetype": "image/jpeg", "w": 800, "h": 600, "size": len(JPEG)},
            },
        ),
    ]
    assert published.remote_id == "$event1"
    assert published.permalink == f"https://matrix.to/#/{ROOM}/$event1?via=example.org"
    assert published.raw["event_ids"] == ["$event1", "$event2"]


def test_a_further_image_without_alt_text_has_no_caption(
    images: tuple[MediaRef, MediaRef], tmp_path: Path
) -> None:
    server = FakeHomeserver()
    second = replace(images[1], alt=None)
    run(server, lambda conn: stage_and_publish(conn, item(images[0], second)), media_root=tmp_path)
    assert server.events[1][2]["body"] == server.events[1][2]["filename"] == "photo.jpg"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),  # the header wins over the deprecated retry_after_ms
        ({}, 2.5),
    ],
)
def test_rate_limit_uses_the_homeservers_wait(headers: dict[str, str], expected: float) -> None:
    server = FakeHomeserver()
    server.answer = httpx.Response(
        429,
        headers=headers,
        json={"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests", "retry_after_ms": 2500},
    )
    with pytest.raises(RateLimited) as caught:
        run(server, stage_and_publish)
    assert caught.value.retry_after == expected


def test_a_bad_token_is_an_auth_error_found_while_staging() -> None:
    server = FakeHomeserver()
    with pytest.raises(AuthError, match=r"access token rejected .*M_UNKNOWN_TOKEN"):
        run(server, stage_and_publish, token=WRONG_TOKEN)
    assert server.events == []


def test_an_expired_token_says_to_refresh_it() -> None:
    server = FakeHomeserver()
    server.answer = error(401, "M_UNKNOWN_TOKEN", "Access token has expired", soft_logout=True)
    with pytest.raises(AuthError, match="expired: refresh it, keeping the same device"):
        run(server, stage_and_publish)


def test_not_in_the_room_says_so() -> None:
    with pytest.raises(AuthError, match=re.escape("not in room !elsewhere:example.org: join it")):
        run(FakeHomeserver(), stage_and_publish, room="!elsewhere:example.org")


def test_an_image_too_large_is_rejected_while_staging(
    images: tuple[MediaRef, MediaRef], tmp_path: Path
) -> None:
    server = FakeHomeserver()
    server.upload_answer = error(413, "M_TOO_LARGE", "Cannot upload files larger than 50M")
    with pytest.raises(Rejected, match=r"too large .*larger than 50M"):
        run(server, lambda conn: stage_and_publish(conn, item(*images)), media_root=tmp_path)
    assert server.events == []


def test_a_server_error_after_sending_is_an_unknown_outcome() -> None:
    server = FakeHomeserver()
    server.answer = error(502, "M_UNKNOWN", "Bad Gateway")
    with pytest.raises(OutcomeUnknown):
        run(server, stage_and_publish)


def test_reconcile_after_a_lost_answer_yields_the_one_event() -> None:
    server = FakeHomeserver()
    server.timeout_after = {1}
    published = run(server, lost_then_reconciled(Matrix(), item()))
    assert [e[0] for e in server.events] == ["$event1"]
    assert published.remote_id == "$event1"


def test_reconcile_after_a_partial_send_completes_it_once(
    images: tuple[MediaRef, MediaRef], tmp_path: Path
) -> None:
    server = FakeHomeserver()
    server.timeout_after = {2}  # the captioned image landed, the second's answer was lost
    published = run(server, lost_then_reconciled(Matrix(), item(*images)), media_root=tmp_path)
    assert [(e[0], e[1]) for e in server.events] == [
        ("$event1", f"stormer-{ITEM_ID}-0"),
        ("$event2", f"stormer-{ITEM_ID}-1"),
    ]
    assert published.remote_id == "$event1"
    assert published.raw["event_ids"] == ["$event1", "$event2"]


def test_the_access_token_appears_in_no_error_repr_or_log(
    caplog: pytest.LogCaptureFixture, images: tuple[MediaRef, MediaRef], tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    server = FakeHomeserver()
    # Its answers are lost on another server below: here a resend would find the event.
    failed = error(500, "M_UNKNOWN", "Internal server error")
    scenario = what_sending_shows(Matrix(), item(*images), server, server_error=failed)
    texts = run(server, scenario, media_root=tmp_path)
    timeouts = FakeHomeserver()
    timeouts.timeout_after = {1}
    with pytest.raises(OutcomeUnknown) as timed_out:
        run(timeouts, stage_and_publish)
    with pytest.raises(AuthError) as rejected:
        run(FakeHomeserver(), stage_and_publish, token=WRONG_TOKEN)
    texts.extend(shown(timed_out.value) + shown(rejected.value))

    logged = [r.getMessage() for r in caplog.records]
    assert any("HTTP Request: PUT" in m for m in logged), logged
    assert "Request(PUT https://matrix.example.org/_matrix/client/v3/rooms/" in texts[1]
    assert_nowhere(["_SECRET_matrix", "_WRONG_matrix"], texts, caplog)


def test_a_room_given_by_its_alias_is_joined_and_sent_to_by_its_room_id() -> None:
    """Events go to a room id: the join answers with the id an alias names, and the sends
    (and the permalink) use it. Sent to the alias, they would be refused."""
    server = FakeHomeserver()
    server.aliases = {"#free-students:example.org": ROOM}
    published = run(server, stage_and_publish, room="#free-students:example.org")
    assert server.joins == ["#free-students:example.org"]
    assert [txn for _, txn, _ in server.events] == [f"stormer-{ITEM_ID}-0"]
    assert published.permalink == f"https://matrix.to/#/{ROOM}/$event1?via=example.org"


# --- tokens that expire: refresh (spec v1.3) ---------------------------------------------------


def test_a_token_expired_at_t_is_refreshed_and_the_send_retried_once() -> None:
    """401 M_UNKNOWN_TOKEN with soft_logout: refresh (same device), rotate, send again: one
    event, and the new tokens saved at once."""
    server = FakeHomeserver()
    saved: list[dict[str, str]] = []

    async def scenario(conn: Connection) -> Any:
        conn.save_credentials = saved.append
        staged = await Matrix().stage(item(), conn)
        server.expired.add(TOKEN)  # expires between staging and T
        return await Matrix().publish(staged, conn)

    published = run_against(
        server,
        scenario,
        account(),
        {"access_token": TOKEN, "refresh_token": "r-1"},
        state={"expires_at": None},  # as far as the client knows, it does not expire
    )
    assert published.remote_id == "$event1" and len(server.events) == 1
    assert server.refreshes == 1
    assert saved == [{"access_token": "a-2", "refresh_token": "r-2"}]


def test_a_static_token_that_expired_says_how_to_fix_it() -> None:
    server = FakeHomeserver()
    server.expired.add(TOKEN)
    with pytest.raises(AuthError, match=r"expired: .*stormer login"):
        run(server, stage_and_publish)
    assert server.refreshes == 0


def test_a_refused_refresh_token_says_to_log_in_again() -> None:
    server = FakeHomeserver()
    with pytest.raises(
        AuthError,
        match=r"refresh token of 'campaign-matrix' was refused .*stormer login campaign-matrix",
    ):
        run_against(
            server, stage_and_publish, account(), {"access_token": TOKEN, "refresh_token": "r-old"}
        )


def test_read_limits_reads_the_homeservers_upload_size() -> None:
    server = FakeHomeserver()
    limits = run(server, Matrix().read_limits)
    assert limits is not None and limits.image_bytes == 20_000_000
    assert limits.source == "https://matrix.example.org/_matrix/client/v1/media/config"
    server.upload_size = None
    assert run(server, Matrix().read_limits).image_bytes is None  # type: ignore[union-attr]


def test_password_accounts_log_in_to_a_device_fixed_by_the_account() -> None:
    from stormer.channels.matrix_session import device_id_for

    assert device_id_for(account()) == device_id_for(account("!other:example.org"))
    assert device_id_for(account()).startswith("STORMER_")
    other = replace(account(), name="campaign-matrix-2")
    assert device_id_for(other) != device_id_for(account())
    by_password = replace(account(), credentials=(("user", "U"), ("password", "P")))
    assert Matrix().credential_fields_for(by_password) == ("user", "password")


# --- against the simulator: refresh, rotation, password login, limits ---------------------------


def sim_login(simulator: str, **extra: Any) -> dict[str, Any]:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": "storm"},
        "password": "pw",
        **extra,
    }
    answer = httpx.post(f"{simulator}/_matrix/client/v3/login", json=body)
    answer.raise_for_status()
    return dict(answer.json())


def sim_account(simulator: str, *credentials: str) -> Account:
    fields = tuple((name, f"FPS_MATRIX_{name.upper()}") for name in credentials)
    return replace(
        account_for("matrix", fields[0], base_url=simulator, target="#storm:sim"),
        credentials=fields,
    )


def soon(item_id: str, minutes: float = 1.0) -> QueueItem:
    return replace(
        post_item("matrix", TEXT, item_id=item_id),
        fire_at=datetime.now(UTC) + timedelta(minutes=minutes),
    )


class SimRun:
    """Connections to the simulator, counting the refreshes they make; what they rotate
    goes to the keyring (a memory backend)."""

    def __init__(self, simulator: str) -> None:
        self.simulator = simulator
        self.refreshes = 0

    def count(self, request: httpx.Request) -> None:
        self.refreshes += request.url.path.endswith("/refresh")

    def __call__(
        self,
        acct: Account,
        credentials: dict[str, str],
        scenario: Callable[[Connection], Awaitable[T]],
    ) -> T:
        from stormer.secrets import Secret, store

        async def main() -> T:
            async with httpx.AsyncClient(event_hooks={"request": [self._hook]}) as client:
                conn = Connection(
                    account=acct,
                    client=client,
                    credentials={k: Secret(v) for k, v in credentials.items()},
                    save_credentials=lambda values: store(acct.name, values),
                    grace=timedelta(minutes=1),
                )
                return await scenario(conn)

        return asyncio.run(main())

    async def _hook(self, request: httpx.Request) -> None:
        self.count(request)


def configure(simulator: str, **config: Any) -> None:
    httpx.post(f"{simulator}/_sim/config", json=config).raise_for_status()


def test_many_items_staged_at_once_refresh_once_and_the_rotation_is_saved(
    simulator: str, memory_keyring: MemoryKeyring
) -> None:
    configure(simulator, matrix_access_ttl_s=3600)
    first = sim_login(simulator, refresh_token=True, device_id="PHONE")
    acct = sim_account(simulator, "access_token")
    sim = SimRun(simulator)

    async def scenario(conn: Connection) -> list[Staged]:
        return list(
            await asyncio.gather(*(Matrix().stage(soon(f"item{i}"), conn) for i in range(5)))
        )

    credentials = {"access_token": first["access_token"], "refresh_token": first["refresh_token"]}
    staged = sim(acct, credentials, scenario)
    assert sim.refreshes == 1  # its lifetime was unknown: learned once, for all five
    saved = memory_keyring.items
    new_refresh = saved[("stormer", f"{acct.name}/refresh_token")]
    new_access = saved[("stormer", f"{acct.name}/access_token")]
    assert new_refresh != first["refresh_token"] and new_access != first["access_token"]
    assert {s.data["device_id"] for s in staged} == {"PHONE"}  # a refresh keeps the device
    # The new access token was used: the old refresh token is revoked, the new one works.
    old = httpx.post(
        f"{simulator}/_matrix/client/v3/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert old.status_code == 401 and old.json()["errcode"] == "M_UNKNOWN_TOKEN"


def test_staging_refreshes_a_token_that_would_expire_before_t_plus_grace(
    simulator: str, memory_keyring: MemoryKeyring
) -> None:
    configure(simulator, matrix_access_ttl_s=1200)  # 20 minutes
    first = sim_login(simulator, refresh_token=True)
    sim = SimRun(simulator)

    async def scenario(conn: Connection) -> None:
        await Matrix().stage(soon("a"), conn)  # learns the lifetime: one refresh
        await Matrix().stage(soon("b"), conn)  # holds until T + grace: none
        assert sim.refreshes == 1
        conn.state["expires_at"] = time.time() + 60  # as if 19 minutes had passed
        await Matrix().stage(soon("c"), conn)  # 1 min left < T + grace (2 min): refreshed
        assert sim.refreshes == 2
        assert conn.state["expires_at"] > time.time() + 1100

    sim(
        sim_account(simulator, "access_token"),
        {"access_token": first["access_token"], "refresh_token": first["refresh_token"]},
        scenario,
    )


def test_an_expiring_token_is_renewed_before_the_send_at_t(
    simulator: str, memory_keyring: MemoryKeyring
) -> None:
    """A homeserver whose tokens live shorter than staging-to-T (Synapse and MAS: 5 min):
    the send at T renews the token first, and the post lands once."""
    configure(simulator, matrix_access_ttl_s=600)
    first = sim_login(simulator, refresh_token=True)
    sim = SimRun(simulator)

    async def scenario(conn: Connection) -> Published:
        staged = await Matrix().stage(soon("x"), conn)
        conn.state["expires_at"] = time.time() + 5  # nearly spent by T
        return await Matrix().publish(staged, conn)

    published = sim(
        sim_account(simulator, "access_token"),
        {"access_token": first["access_token"], "refresh_token": first["refresh_token"]},
        scenario,
    )
    assert sim.refreshes == 2
    landed = httpx.get(f"{simulator}/_sim/posts").json()
    assert [p["remote_id"] for p in landed] == [published.remote_id]


def test_password_login_keeps_the_device_so_a_resend_after_a_restart_posts_once(
    simulator: str, memory_keyring: MemoryKeyring
) -> None:
    acct = sim_account(simulator, "user", "password")
    assert Matrix().auth_of(acct) == "password"
    sim = SimRun(simulator)
    queued = soon("restart")

    async def before_the_crash(conn: Connection) -> Published:
        return await publish(Matrix(), queued, conn)

    async def after_the_restart(conn: Connection) -> Published | None:
        return await Matrix().reconcile(await Matrix().stage(queued, conn), conn)

    credentials = {"user": "@storm:sim", "password": "pw"}
    first = sim(acct, credentials, before_the_crash)
    again = sim(acct, credentials, after_the_restart)  # a new process: a new login
    assert again is not None and again.remote_id == first.remote_id
    assert len(httpx.get(f"{simulator}/_sim/posts").json()) == 1


def test_read_limits_from_the_simulator(simulator: str) -> None:
    configure(simulator, matrix_upload_bytes=1_234_567)
    token = sim_login(simulator)["access_token"]
    limits = SimRun(simulator)(
        sim_account(simulator, "access_token"), {"access_token": token}, Matrix().read_limits
    )
    assert limits is not None and limits.image_bytes == 1_234_567


def test_stormer_login_logs_in_by_password_and_returns_the_tokens(simulator: str) -> None:
    configure(simulator, matrix_access_ttl_s=300)
    said: list[str] = []
    answers = ["storm", "pw"]

    async def main(acct: Account) -> dict[str, str]:
        async with httpx.AsyncClient() as client:
            return await Matrix().login(
                acct, client, lambda prompt, hidden: answers.pop(0), said.append
            )

    values = asyncio.run(main(sim_account(simulator, "access_token")))
    assert set(values) == {"access_token", "refresh_token"}
    assert "accepted: @storm:sim on device STORMER_" in said[-1] and "300 s" in said[-1]
    answers.extend(["storm", "pw"])
    by_password = asyncio.run(main(sim_account(simulator, "user", "password")))
    assert set(by_password) == {"access_token", "refresh_token", "user", "password"}


# --- against Synapse ------------------------------------------------------------------------------


def test_on_synapse_a_password_login_after_a_restart_resends_to_one_event(
    synapse: Any, memory_keyring: MemoryKeyring
) -> None:
    """stormer logs in by password to the account's fixed device, asking for a refresh
    token; a new process logs in again to the same device, and its resend of the same
    item is the first event, not a second. read_limits reads Synapse's m.upload.size."""
    user_id, password = synapse.register("restart")
    owner = synapse.login(user_id, password)
    room = synapse.create_room(owner, name="restart")
    acct = replace(
        account_for("matrix", ("user", "MX_USER"), base_url=synapse.url, target=room),
        credentials=(("user", "MX_USER"), ("password", "MX_PASSWORD")),
    )
    sim = SimRun(synapse.url)
    queued = soon(f"restart{uuid.uuid4().hex[:8]}")
    credentials = {"user": user_id, "password": password}

    async def before_the_crash(conn: Connection) -> tuple[Published, Any]:
        published = await publish(Matrix(), queued, conn)
        assert conn.state["expires_at"] is not None  # Synapse's refreshable token expires
        return published, await Matrix().read_limits(conn)

    async def after_the_restart(conn: Connection) -> Published | None:
        return await Matrix().reconcile(await Matrix().stage(queued, conn), conn)

    first, limits = sim(acct, credentials, before_the_crash)
    again = sim(acct, credentials, after_the_restart)
    assert again is not None and again.remote_id == first.remote_id
    assert limits is not None and limits.image_bytes and limits.image_bytes > 0
    history = httpx.get(
        f"{synapse.url}/_matrix/client/v3/rooms/{quote(room, safe='')}/messages",
        params={"dir": "b", "limit": "50"},
        headers={"Authorization": f"Bearer {owner}"},
    ).json()["chunk"]
    mine = [e for e in history if e["type"] == "m.room.message" and e["sender"] == user_id]
    assert [e["event_id"] for e in mine] == [first.remote_id]
