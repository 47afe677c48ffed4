"""Bluesky sessions: where an account's repo lives, and an access token that holds until T.

Where. `createSession` goes to the entryway (`base_url`, by default https://bsky.social);
its answer carries the account's DID document, whose `#atproto_pds` service names the PDS
that holds the repo: every repo call (uploadBlob, putRecord, getRecord, getSession,
resolveHandle) goes there from then on, as the atproto SDKs do ("made to the user's PDS
instance, which needs to be resolved or discovered as part of creating an auth session":
https://docs.bsky.app/docs/advanced-guides/api-directory). A session without a DID
document is resolved through the DID: did:plc at the PLC directory, did:web at
/.well-known/did.json (https://atproto.com/specs/did); if even that fails, the entryway is
taken for the PDS, as the atproto Python SDK does.

An account on a PDS of its own (a self-hosted one, or another provider's) cannot log in at
bsky.social, which knows only the accounts it hosts. When the organizer set no `base_url`,
a handle that is not a *.bsky.social one is first resolved (handle → DID with
com.atproto.identity.resolveHandle, which bsky.social answers for any handle; DID → PDS as
above), and the account logs in at its own PDS; one hosted by Bluesky (a *.bsky.network PDS,
behind the entryway) still logs in at bsky.social. The server chosen is kept with the session
(`LOGIN_KEY`).

Session management stays on the login server (the entryway): refreshSession goes there ("session
management is handled by the Entryway": https://docs.bsky.app/docs/advanced-guides/entryway;
a PDS forwards a refresh sent to it, so either works).

Freshness. The access JWT lives 120 minutes on the reference PDS; its `exp` claim (read
unverified: the token stays opaque to everything else) says until when. Staging refreshes
it when it would expire before T + grace (`fresh_until`), so that the burst at T does not
meet `ExpiredToken` for every account at once. refreshSession *revokes* the refresh token
it was given (https://docs.bsky.app/docs/api/com-atproto-server-refresh-session), so the new
pair is saved (`conn.state_changed()`) before anything else; when the refresh is refused, a
new createSession with the app password. Logins and refreshes of one account are serialized.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import weakref
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

from stormer.channels.base import account_lock
from stormer.channels.http import Request, Response, classify
from stormer.errors import AuthError, PlatformError, Rejected, Transient
from stormer.secrets import Secret, redact

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from stormer.channels.base import Connection

PLATFORM = "bluesky"
SESSION_KEYS = ("accessJwt", "refreshJwt", "did", "handle")
PDS_KEY = "pds"  # conn.state: the PDS named by the account's DID document
LOGIN_KEY = "login_server"  # conn.state: where sessions are made and refreshed, if not base_url
# Handles Bluesky hosts: their accounts live behind the bsky.social entryway.
BLUESKY_HANDLES = ".bsky.social"
BLUESKY_PDS_HOSTS = ".bsky.network"  # Bluesky's own PDSes (e.g. morel.us-east.host.bsky.network)
# did:plc documents are served by the PLC directory (https://web.plc.directory/spec/v0.1/did-plc).
PLC_DIRECTORY = "https://plc.directory"
# A token this process obtained so recently is as fresh as a refresh could make it: where
# even a new token would not last until an item's T + grace (a server with short tokens, or
# staging long before T), refreshing again for each item staged after it would only spend
# refresh tokens. Publishing still refreshes a token the PDS says has expired.
FRESH_S = 60.0
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
# The access token each account last obtained in this event loop, and when (monotonic).
_obtained: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, tuple[str, float]]]
_obtained = weakref.WeakKeyDictionary()


def xrpc_error(response: Response) -> tuple[str, str]:
    """The XRPC error name and message of a failed response ("" when absent)."""
    body = response.json()
    if not isinstance(body, dict):
        return "", ""
    return str(body.get("error") or ""), str(body.get("message") or "")


def expired(response: Response) -> bool:
    return response.status in (400, 401) and xrpc_error(response)[0] == "ExpiredToken"


def error_for(response: Response, *, mutating: bool) -> PlatformError:
    """The typed error of a failed XRPC answer."""
    error, message = xrpc_error(response)
    text = ": ".join(part for part in (error, message) if part) or f"HTTP {response.status}"
    if error in _AUTH_ERRORS:
        return AuthError(
            redact(f"{text} — check this account's handle and app password"),
            platform=PLATFORM,
            status=response.status,
        )
    if error == "ExpiredToken":
        return Transient(
            "the session expired before the post was sent (nothing was "
            "posted): refresh the session and send again",
            platform=PLATFORM,
            status=response.status,
        )
    if error == "InvalidSwap":
        return Rejected(
            "a different post already exists at this record key",
            platform=PLATFORM,
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
            platform=PLATFORM,
            status=response.status,
        )
    return classify(response, platform=PLATFORM, mutating=mutating, message=text)


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified ({} for an opaque token): only `exp` is read, to
    know when to refresh."""
    try:
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def pds_of(did_doc: Any) -> str | None:
    """The `#atproto_pds` service endpoint of a DID document (https://atproto.com/specs/did:
    the service whose id ends in `#atproto_pds` and whose type is
    `AtprotoPersonalDataServer`), if it is an http(s) URL."""
    if not isinstance(did_doc, dict) or not isinstance(did_doc.get("service"), list):
        return None
    did = did_doc.get("id")
    for service in did_doc["service"]:
        if (
            isinstance(service, dict)
            and service.get("id") in ("#atproto_pds", f"{did}#atproto_pds")
            and service.get("type") == "AtprotoPersonalDataServer"
        ):
            endpoint = service.get("serviceEndpoint")
            if isinstance(endpoint, str) and urlsplit(endpoint).scheme in ("http", "https"):
                return endpoint.rstrip("/")
    return None


def did_document_url(did: str) -> str | None:
    """Where the DID document of `did` is published (https://atproto.com/specs/did: the two
    blessed methods), or None for any other method."""
    if did.startswith("did:plc:"):
        return f"{PLC_DIRECTORY}/{quote(did, safe=':')}"
    if did.startswith("did:web:"):
        # did:web for atproto is a bare host name (no path), percent-encoded port allowed.
        host = did.removeprefix("did:web:").replace("%3A", ":")
        return f"https://{host}/.well-known/did.json"
    return None


def _remember_tokens(session: dict[str, Any]) -> None:
    """Make the session's tokens known to the redaction of logs and messages."""
    for key in ("accessJwt", "refreshJwt"):
        if session.get(key):
            Secret(session[key])


def _key(conn: Connection) -> str:
    return f"{conn.account.platform}:{conn.account.name}"


def pds_url(conn: Connection, entryway: str) -> str:
    """The account's PDS: the one its DID document names, else the configured server."""
    return str(conn.state.get(PDS_KEY) or login_server(conn, entryway))


def login_server(conn: Connection, entryway: str) -> str:
    """Where the account's sessions are made and refreshed: its own PDS when the handle
    resolved to one outside Bluesky's (`_choose_login_server`), else the entryway."""
    return str(conn.state.get(LOGIN_KEY) or entryway)


async def _choose_login_server(conn: Connection, entryway: str, handle: str) -> None:
    """With no `base_url` set, an account whose handle is not Bluesky's logs in at the PDS
    its DID names; any failure to resolve leaves the entryway (whose refusal then says why)."""
    if conn.account.base_url or handle.endswith(BLUESKY_HANDLES) or LOGIN_KEY in conn.state:
        return
    url = xrpc_url(entryway, "com.atproto.identity.resolveHandle", handle=handle)
    try:
        r = await conn.send(Request("GET", url), platform=PLATFORM, mutating=False)
    except PlatformError:
        return
    did = r.json().get("did") if r.status == 200 and isinstance(r.json(), dict) else None
    pds = await _resolve_pds(conn, did) if isinstance(did, str) else None
    host = urlsplit(pds).hostname or "" if pds else ""
    if pds and host != urlsplit(entryway).hostname and not host.endswith(BLUESKY_PDS_HOSTS):
        conn.state[LOGIN_KEY] = pds.rstrip("/")


def xrpc_url(base: str, nsid: str, **params: str) -> str:
    query = f"?{urlencode(params)}" if params else ""
    return f"{base}/xrpc/{nsid}{query}"


async def _store(conn: Connection, body: Any) -> None:
    if not isinstance(body, dict) or not all(isinstance(body.get(k), str) for k in SESSION_KEYS):
        raise Transient("the PDS answered without a session", platform=PLATFORM)
    _remember_tokens(body)
    conn.state.update({key: body[key] for key in SESSION_KEYS})
    obtained = _obtained.setdefault(asyncio.get_running_loop(), {})
    obtained[_key(conn)] = (body["accessJwt"], time.monotonic())
    pds = pds_of(body.get("didDoc"))
    if pds is None and not conn.state.get(PDS_KEY):
        pds = await _resolve_pds(conn, body["did"])
    if pds is not None:
        conn.state[PDS_KEY] = pds
    # A refresh revoked the previous refresh token: save the new one before anything else.
    conn.state_changed()
    if body.get("active") is False:
        raise AuthError(f"the account is {body.get('status') or 'not active'}", platform=PLATFORM)


async def _resolve_pds(conn: Connection, did: str) -> str | None:
    """The PDS named by the DID document of `did`, fetched from where its method publishes
    it; None when it cannot be had (the entryway is then taken for the PDS)."""
    url = did_document_url(did)
    if url is None:
        return None
    try:
        r = await conn.send(Request("GET", url), platform=PLATFORM, mutating=False)
    except PlatformError:
        return None
    return pds_of(r.json()) if r.status == 200 else None


async def _login(conn: Connection, entryway: str) -> None:
    """createSession: costs one of the account's 30 logins per 5 minutes."""
    handle = conn.account.handle
    if not handle:
        raise AuthError(
            f"account {conn.account.name!r} has no handle: set `handle` in config.toml",
            platform=PLATFORM,
        )
    await _choose_login_server(conn, entryway, handle)
    request = Request.json(
        "POST",
        xrpc_url(login_server(conn, entryway), "com.atproto.server.createSession"),
        {"identifier": handle, "password": conn.secret("app_password")},
    )
    r = await conn.send(request, platform=PLATFORM, mutating=False)
    if r.status != 200:
        raise error_for(r, mutating=False)
    await _store(conn, r.json())


async def ensure(conn: Connection, entryway: str) -> None:
    """A session for the account: the one kept in `conn.state`, else one login."""
    if conn.state.get("accessJwt"):
        _remember_tokens(conn.state)  # a session saved by an earlier run
        return
    async with account_lock(conn):
        if not conn.state.get("accessJwt"):  # another task may have logged in meanwhile
            await _login(conn, entryway)


async def refresh(conn: Connection, entryway: str, stale: str | None) -> None:
    """Replace the access token `stale`: refreshSession, else a new login."""
    async with account_lock(conn):
        if conn.state.get("accessJwt") != stale:
            return  # another task refreshed it meanwhile
        token = conn.state.get("refreshJwt")
        if token:
            request = Request(
                "POST",
                xrpc_url(login_server(conn, entryway), "com.atproto.server.refreshSession"),
                {"Authorization": f"Bearer {token}"},
            )
            r = await conn.send(request, platform=PLATFORM, mutating=False)
            if r.status == 200:
                await _store(conn, r.json())
                return
            if r.status not in (400, 401):
                raise error_for(r, mutating=False)
        # The refresh token is expired or revoked: only a new login helps.
        for key in SESSION_KEYS:
            conn.state.pop(key, None)
        await _login(conn, entryway)


async def fresh_until(conn: Connection, entryway: str, until: datetime) -> None:
    """Refresh the access token if it would expire before `until` (an item's T + grace).

    Not when this event loop obtained it within the last minute (`FRESH_S`), nor when its
    expiry cannot be read: publishing refreshes it if the PDS says it has expired."""
    token = conn.state.get("accessJwt")
    exp = token_claims(token or "").get("exp")
    if not isinstance(exp, (int, float)) or exp >= until.timestamp():
        return
    obtained = _obtained.get(asyncio.get_running_loop(), {}).get(_key(conn))
    if obtained and obtained[0] == token and time.monotonic() - obtained[1] < FRESH_S:
        return
    await refresh(conn, entryway, token)


async def call(conn: Connection, entryway: str, build: Callable[[str], Request]) -> Response:
    """A read or upload with the session's access token, refreshed once if expired."""
    await ensure(conn, entryway)
    token = conn.state["accessJwt"]
    r = await conn.send(build(token), platform=PLATFORM, mutating=False)
    if expired(r):
        await refresh(conn, entryway, token)
        r = await conn.send(build(conn.state["accessJwt"]), platform=PLATFORM, mutating=False)
    return r
