"""A Bluesky account on a real PDS, logged in through an entryway on another host (issue 11,
item 6): the organizer's `base_url` names the entryway, as the default https://bsky.social
does, and every post must still go to the PDS that the account's DID document names.

What is real: the PDS (@atproto/pds, `bluesky_pds` from tests/fixtures_peers.py) holds the
account, its repo and blobs, issues and rotates its tokens (behind bsky.social the entryway
signs them; to a client they are opaque either way), and answers createSession and
refreshSession with the account's DID document, which it resolves from the real PLC directory
beside it (@atproto/dev-env), where the account was registered with the PDS's public URL.
The atproto SDK, in the last test, is the installed one, unchanged.

What is a stand-in: the entryway. Bluesky's own (bsky.social) is not published; @atproto/pds
only implements the PDS side of one (PDS_ENTRYWAY_URL, PDS_ENTRYWAY_DID,
PDS_ENTRYWAY_JWT_VERIFY_KEY_K256_PUBLIC_KEY_HEX: such a PDS forwards createSession and
refreshSession to the entryway and only accepts access tokens the entryway signed with its
K256 key), so a second PDS cannot play it. `Entryway` below is a small HTTP server on another
host and port that forwards the session routes to the real PDS and passes its answers on
untouched: the tokens and the DID document are the PDS's, not ours.

What the real entryway does (https://docs.bsky.app/docs/advanced-guides/entryway): "session
management is handled by the Entryway" (createSession, refreshSession, deleteSession; a PDS
forwards a refresh sent to it), and every session answer carries the account's DID document,
whose #atproto_pds service is "the user's actual PDS hostname". As a "virtual PDS" it also
forwards most other requests to that PDS, for the accounts of the PDSes behind it; Bluesky's
advice is nevertheless "for non-session related routes, we encourage going directly to the
PDS". The stand-in is stricter than bsky.social on purpose, so that the test cannot pass by
accident through forwarding: it refuses every request that is not a session route with the
reference PDS's answer to an access token it did not sign (400 InvalidToken "Token could not
be verified": bluesky-social/atproto packages/pds/src/auth-verifier.ts, verifyBearerJwt,
measured on the PDS here), and it logs every request it gets.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
from example import REPO
from fixtures_peers import BlueskyPds

from stormer.channels import registry
from stormer.channels.base import Connection, Published
from stormer.dispatch.sending import send_staged
from stormer.errors import AuthError
from stormer.outbox.models import State
from stormer.queue import MediaRef, QueueItem
from stormer.secrets import Secret
from stormer.storm import Account

CREATE_SESSION = "com.atproto.server.createSession"
REFRESH_SESSION = "com.atproto.server.refreshSession"
# The routes an entryway answers for the accounts behind it ("session management is handled
# by the Entryway": https://docs.bsky.app/docs/advanced-guides/entryway).
SESSION_ROUTES = frozenset({CREATE_SESSION, REFRESH_SESSION, "com.atproto.server.deleteSession"})
# The reference PDS's answer to an access token it did not sign (packages/pds/src/
# auth-verifier.ts, verifyBearerJwt); `test_the_refusal_is_what_a_pds_says` checks it here.
REFUSAL = {"error": "InvalidToken", "message": "Token could not be verified"}
POST = "app.bsky.feed.post"
IMAGE = MediaRef(
    "images/flag-book.png", "Bands of black, white and green with a red triangle", 800, 418
)
# The PDS signs its access tokens (HS256) with its `jwtSecret`, which @atproto/dev-env sets to
# its constant JWT_SECRET (packages/dev-env/src/const.ts, passed in pds.ts).
DEV_ENV_JWT_SECRET = b"jwt-secret"

T = TypeVar("T")


# --- the entryway stand-in ---------------------------------------------------------------------


@dataclass
class Entryway:
    """The stand-in's address, and the XRPC methods it was asked for, in order."""

    url: str
    seen: list[str] = field(default_factory=list)


def _serve_entryway(pds_url: str, seen: list[str]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            nsid = urlsplit(self.path).path.removeprefix("/xrpc/")
            seen.append(nsid)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.command == "POST" and nsid in SESSION_ROUTES:
                wanted = ("Content-Type", "Authorization")
                headers = {name: self.headers[name] for name in wanted if self.headers[name]}
                answer = httpx.post(
                    f"{pds_url}/xrpc/{nsid}", content=body, headers=headers, timeout=30
                )
                status, content = answer.status_code, answer.content
                content_type = answer.headers.get("Content-Type", "application/json")
            else:
                status, content = 400, json.dumps(REFUSAL).encode()
                content_type = "application/json"
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def entryway(bluesky_pds: BlueskyPds) -> Iterator[Entryway]:
    """An entryway in front of the real PDS, on 127.0.0.1 and a port of its own (the PDS
    calls itself http://localhost:PORT): another host as far as any client can tell."""
    seen: list[str] = []
    server = _serve_entryway(bluesky_pds.url, seen)
    thread = threading.Thread(target=server.serve_forever, name="entryway", daemon=True)
    thread.start()
    try:
        yield Entryway(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=15)


# --- helpers -----------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


def issued_hours_ago(token: str, hours: int = 3) -> str:
    """The access token the PDS would have issued `hours` ago: the same header and claims,
    `iat` and `exp` moved back, signed with the PDS's own key. The PDS's access tokens live
    120 minutes, a constant (packages/pds/src/account-manager/helpers/auth.ts), and the test
    cannot wait that long; the PDS itself then says the token expired (it checks the
    signature before the expiry, so ExpiredToken also proves the signature is its own)."""
    header = token.split(".")[0]
    claims = _claims(token)
    claims["iat"] -= hours * 3600
    claims["exp"] -= hours * 3600
    signed = f"{header}.{_b64(json.dumps(claims).encode())}"
    mac = hmac.new(DEV_ENV_JWT_SECRET, signed.encode(), hashlib.sha256).digest()
    return f"{signed}.{_b64(mac)}"


def app_password_of(pds: BlueskyPds, handle: str, password: str) -> str:
    """An app password for the account (createAppPassword on the PDS), as an organizer's
    participants hand in: what stormer logs in with."""
    with httpx.Client(base_url=f"{pds.url}/xrpc/") as xrpc:
        session = xrpc.post(CREATE_SESSION, json={"identifier": handle, "password": password})
        session.raise_for_status()
        answer = xrpc.post(
            "com.atproto.server.createAppPassword",
            json={"name": "stormer"},
            headers=bearer(session.json()["accessJwt"]),
        )
    answer.raise_for_status()
    return str(answer.json()["password"])


def pds_in_plc(pds: BlueskyPds, did: str) -> str:
    """The #atproto_pds endpoint of the account's DID document in the real PLC directory."""
    document = httpx.get(f"{pds.plc_url}/{did}").raise_for_status().json()
    (endpoint,) = [s["serviceEndpoint"] for s in document["service"] if s["id"] == "#atproto_pds"]
    return str(endpoint)


def posts_on(pds: BlueskyPds, did: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{pds.url}/xrpc/com.atproto.repo.listRecords", params={"repo": did, "collection": POST}
    )
    return list(answer.raise_for_status().json()["records"])


def run_with(
    account: Account,
    password: str,
    state: dict[str, Any],
    sent: list[tuple[str, int]],
    flow: Callable[[Connection], Awaitable[T]],
) -> T:
    """Run `flow` in a new event loop, as a new stormer process would, with the session
    `state` saved by the previous one; every request's URL and answer status go to `sent`."""

    async def record(response: httpx.Response) -> None:
        sent.append((str(response.request.url), response.status_code))

    async def main() -> T:
        async with httpx.AsyncClient(timeout=30, event_hooks={"response": [record]}) as client:
            conn = Connection(
                account=account,
                client=client,
                credentials={"app_password": Secret(password)},
                state=state,
                media_root=REPO / "posts",
            )
            return await flow(conn)

    return asyncio.run(main())


# --- tests -------------------------------------------------------------------------------------


def test_the_refusal_is_what_a_pds_says(bluesky_pds: BlueskyPds) -> None:
    """The stand-in's refusal is the real PDS's own answer to a token it did not sign."""
    handle, password, _ = bluesky_pds.create_account("refusal")
    token = httpx.post(
        f"{bluesky_pds.url}/xrpc/{CREATE_SESSION}",
        json={"identifier": handle, "password": password},
    ).json()["accessJwt"]
    forged = token[: token.rindex(".") + 1] + _b64(b"not the PDS's signature")
    answer = httpx.get(
        f"{bluesky_pds.url}/xrpc/com.atproto.server.getSession", headers=bearer(forged)
    )
    assert (answer.status_code, answer.json()) == (400, REFUSAL)


def test_stormer_logs_in_at_the_entryway_and_posts_to_the_pds_once(
    bluesky_pds: BlueskyPds, entryway: Entryway
) -> None:
    """base_url is the entryway: stormer logs in there, refreshes there (at staging, and at T
    when the PDS says the token expired), and sends every repo call, the image upload and the
    post to the PDS of the DID document: one post, with its image and alt text."""
    handle, password, did = bluesky_pds.create_account("entryway")
    app_password = app_password_of(bluesky_pds, handle, password)
    # The DID document the client will follow is the real servers': the PLC directory names
    # the PDS's public URL, which is not the entryway's.
    assert pds_in_plc(bluesky_pds, did) == bluesky_pds.url
    assert urlsplit(bluesky_pds.url).netloc != urlsplit(entryway.url).netloc

    account = Account(
        name="bluesky-behind-entryway",
        platform="bluesky",
        langs=("en",),
        credentials=(("app_password", "APP_PASSWORD"),),
        line=None,
        base_url=entryway.url,
        target=None,
        handle=handle,
    )
    plugin = registry.get("bluesky")
    text = f"Free them all, {uuid.uuid4().hex[:6]} #FreePalestinianStudents"
    # The storm is 3 h away: longer than an access token lives (120 minutes).
    fire_at = datetime.now(UTC) + timedelta(hours=3)
    item = QueueItem(
        id=uuid.uuid4().hex[:16],
        kind="post",
        fire_at=fire_at,
        platform="bluesky",
        account=account.name,
        lang="en",
        text=text,
        media=(IMAGE,),
    )
    state: dict[str, Any] = {}
    sent: list[tuple[str, int]] = []

    # 1. `check --online`, hours before T: one login, at the entryway; the PDS comes from the
    #    DID document of its answer.
    run_with(account, app_password, state, sent, plugin.verify)
    assert entryway.seen == [CREATE_SESSION]
    assert state["pds"] == bluesky_pds.url and state["did"] == did
    first_refresh = state["refreshJwt"]

    # 2. Staging, in a later process: the token would expire before T + grace, so the session
    #    is refreshed (at the entryway), and the image goes to the PDS.
    staged = run_with(account, app_password, state, sent, lambda conn: plugin.stage(item, conn))
    assert entryway.seen == [CREATE_SESSION, REFRESH_SESSION]
    # (The access token may come back byte for byte the same: it has no id, and its claims
    # are the same within a second. The refresh token has an id: the PDS rotated it.)
    assert state["refreshJwt"] != first_refresh
    assert staged.requests[0].url == f"{bluesky_pds.url}/xrpc/com.atproto.repo.putRecord"

    # 3. At T the access token has expired: the PDS says so, the session is refreshed at the
    #    entryway, and the post sent again: one post.
    state["accessJwt"] = issued_hours_ago(state["accessJwt"])
    result = run_with(
        account, app_password, state, sent, lambda conn: send_staged(plugin, staged, conn)
    )
    assert result.outcome is State.SENT and result.published is not None
    assert entryway.seen == [CREATE_SESSION, REFRESH_SESSION, REFRESH_SESSION]
    # putRecord went twice: refused (ExpiredToken: nothing written), then with the new token.
    assert [status for url, status in sent if url.endswith(".putRecord")] == [400, 200]
    # A restart that does not know the post went out reconciles it: found, not sent again.
    found = run_with(
        account, app_password, state, sent, lambda conn: plugin.reconcile(staged, conn)
    )
    assert isinstance(found, Published) and found.remote_id == result.published.remote_id

    (post,) = posts_on(bluesky_pds, did)
    assert post["uri"] == result.published.remote_id
    assert post["value"]["text"] == text
    (image,) = post["value"]["embed"]["images"]
    assert image["alt"] == IMAGE.alt
    blob = httpx.get(
        f"{bluesky_pds.url}/xrpc/com.atproto.sync.getBlob",
        params={"did": did, "cid": image["image"]["ref"]["$link"]},
    )
    assert blob.content == (REPO / "posts" / IMAGE.path).read_bytes()

    # The entryway saw only session routes; everything else went to the PDS.
    assert set(entryway.seen) <= SESSION_ROUTES
    to_entryway = [url for url, _ in sent if url.startswith(entryway.url)]
    assert len(to_entryway) == len(entryway.seen)
    elsewhere = [url for url, _ in sent if not url.startswith(entryway.url)]
    assert elsewhere and all(url.startswith(f"{bluesky_pds.url}/xrpc/") for url in elsewhere)
    assert any("uploadBlob" in url for url in elsewhere)


def test_a_client_that_writes_to_the_entryway_is_refused(
    bluesky_pds: BlueskyPds, entryway: Entryway
) -> None:
    """The stand-in's guard works: a post sent to the entryway with a good session fails."""
    handle, password, did = bluesky_pds.create_account("refused")
    session = httpx.post(
        f"{entryway.url}/xrpc/{CREATE_SESSION}", json={"identifier": handle, "password": password}
    )
    assert session.status_code == 200, session.text
    assert session.json()["didDoc"]["service"][0]["serviceEndpoint"] == bluesky_pds.url
    record = {"$type": POST, "text": "nope", "createdAt": datetime.now(UTC).isoformat()}
    answer = httpx.post(
        f"{entryway.url}/xrpc/com.atproto.repo.createRecord",
        json={"repo": did, "collection": POST, "record": record},
        headers=bearer(session.json()["accessJwt"]),
    )
    assert (answer.status_code, answer.json()) == (400, REFUSAL)
    assert posts_on(bluesky_pds, did) == []


# The SDK passes raw bytes as `data=` to httpx in uploadBlob, which httpx deprecates (as in
# tests/test_simulator_clients.py): the SDK's to fix, against any server.
@pytest.mark.filterwarnings("ignore:Use 'content=<...>' to upload raw bytes:DeprecationWarning")
def test_the_atproto_sdk_does_the_same(bluesky_pds: BlueskyPds, entryway: Entryway) -> None:
    """The atproto SDK (unchanged), configured with the entryway: it logs in there, switches
    to the PDS of the DID document, refreshes an expired session (at the PDS, which a PDS
    behind a real entryway forwards to it) and posts there, with the image and its alt text."""
    from atproto import Client

    handle, password, did = bluesky_pds.create_account("sdk")
    app_password = app_password_of(bluesky_pds, handle, password)
    client = Client(base_url=entryway.url)
    try:
        client.login(handle, app_password, fetch_bsky_profile=False)
        saved = client.export_session_string()
    finally:
        client.request.close()
    assert entryway.seen == [CREATE_SESSION]

    # A later process with the saved session, whose access token has expired meanwhile.
    handle_, did_, access, refresh, pds = saved.split(":::")
    assert pds == bluesky_pds.url
    later = Client()  # the default base URL (bsky.social): the saved session names the PDS
    text = f"Free them all, {uuid.uuid4().hex[:6]} #FreePalestinianStudents"
    try:
        later.login(
            session_string=":::".join((handle_, did_, issued_hours_ago(access), refresh, pds)),
            fetch_bsky_profile=False,
        )
        # No profile without an AppView (fetch_bsky_profile=False), so the repo is named.
        created = later.send_image(
            text, (REPO / "posts" / IMAGE.path).read_bytes(), IMAGE.alt, profile_identify=did
        )
        rotated = later.export_session_string().split(":::")[3]
    finally:
        later.request.close()
    assert rotated != refresh  # the SDK refreshed the session before posting
    assert entryway.seen == [CREATE_SESSION]

    (post,) = posts_on(bluesky_pds, did)
    assert post["uri"] == created.uri and post["value"]["text"] == text
    assert post["value"]["embed"]["images"][0]["alt"] == IMAGE.alt


def test_a_wrong_password_at_the_entryway_is_an_auth_error(
    bluesky_pds: BlueskyPds, entryway: Entryway
) -> None:
    """The PDS's refusal of a bad app password comes back through the entryway as stormer's
    AuthError, with no secret in it."""
    handle, _, _ = bluesky_pds.create_account("wrong")
    account = Account(
        name="bluesky-wrong",
        platform="bluesky",
        langs=("en",),
        credentials=(("app_password", "APP_PASSWORD"),),
        line=None,
        base_url=entryway.url,
        target=None,
        handle=handle,
    )
    wrong = f"wrong-{uuid.uuid4().hex}"
    with pytest.raises(AuthError) as error:
        run_with(account, wrong, {}, [], registry.get("bluesky").verify)
    assert wrong not in str(error.value)
    assert entryway.seen == [CREATE_SESSION]
