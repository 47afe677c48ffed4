"""Bluesky PDS, the XRPC methods a poster uses (lexicons in bluesky-social/atproto).

Sessions: createSession (30 per 5 min per account, then 429 with `ratelimit-*` headers) gives
an HS256 access JWT and a refresh JWT; refreshSession revokes the refresh token it was given
(a second use → 400 ExpiredToken), as the reference PDS does. Records live in memory per
repo; createRecord on an existing rkey fails with a bare 500 and putRecord with
`"swapRecord": null` is create-if-absent — both observed on a real PDS. Record checks are in
`bluesky_records.py`.

Two servers, as behind bsky.social (https://docs.bsky.app/docs/advanced-guides/entryway):
`/xrpc/…` is the entryway, which also hosts every account whose handle does not end in
`.pds2.test`; `/pds2/xrpc/…` is a second PDS hosting the `*.pds2.test` accounts. Logins and
sessions are the entryway's (the second PDS forwards them to it, as a PDS behind an entryway
does); the DID document in a session names the account's own PDS; each PDS refuses repo
writes for accounts it does not host (the reference PDS's `ensureThisPds`,
bluesky-social/atproto packages/pds/src/api/proxy.ts).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from . import bluesky_records as records
from . import bluesky_search as search
from ._web import body_json, json, sim
from .faults import Platform, RateLimit, Windows
from .state import bearer, digest, scope_header, unusable

if TYPE_CHECKING:
    from starlette.types import Scope

# The reference PDS's refresh token lifetime: 90 days (packages/pds/src/account-manager/
# helpers/auth.ts); the access token's, 120 minutes, is SimConfig.bluesky_access_ttl_s.
REFRESH_TTL_S = 90 * 86400
PDS2 = "pds2"  # the second PDS: its path prefix, and the handle domain it hosts
ENTRYWAY = "entryway"


@dataclass
class State:
    secret: bytes = field(default_factory=lambda: os.urandom(32))
    handles: dict[str, str] = field(default_factory=dict)  # did → handle
    refresh: dict[str, bool] = field(default_factory=dict)  # jti → still valid
    logins: Windows = field(default_factory=Windows)
    repos: records.Repos = field(default_factory=records.Repos)


def _state(request: Request) -> State:
    return sim(request).store.space("bluesky", State)


def error(status: int, name: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return json({"error": name, "message": message}, status, headers)


def did_for(handle: str) -> str:
    """A did:plc-shaped identifier derived from the handle (24 base32 characters)."""
    raw = hashlib.sha256(f"bluesky\x00{handle}".encode()).digest()[:15]
    return "did:plc:" + base64.b32encode(raw).decode().lower()


def handle_for(identifier: str) -> str:
    identifier = identifier.strip().lower().lstrip("@")
    if "@" in identifier:  # an e-mail address logs in too
        identifier = identifier.split("@", 1)[0]
    if identifier.startswith("did:"):
        return f"user-{digest('bluesky', identifier)[:8]}.test"
    return identifier if "." in identifier else f"{identifier}.test"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hosted_on(handle: str) -> str:
    """Which server holds the repo of `handle`: the second PDS for `*.pds2.test`."""
    return PDS2 if handle.endswith(f".{PDS2}.test") else ENTRYWAY


def _server(request: Request) -> str:
    """Which server this request was sent to."""
    return PDS2 if request.url.path.startswith(f"/{PDS2}/") else ENTRYWAY


def _server_did(request: Request, server: str) -> str:
    # did:web names a host; a path is written with ":" (https://w3c-ccg.github.io/did-method-web/).
    return f"did:web:{request.url.hostname}" + (f":{PDS2}" if server == PDS2 else "")


def _endpoint(request: Request, server: str) -> str:
    return str(request.base_url).rstrip("/") + (f"/{PDS2}" if server == PDS2 else "")


def _handle_of(state: State, did: str) -> str:
    return state.handles.get(did) or handle_for(did)


def _jwt(state: State, typ: str, payload: dict[str, Any]) -> str:
    head = _b64(orjson.dumps({"typ": typ, "alg": "HS256"})) + "." + _b64(orjson.dumps(payload))
    signature = hmac.new(state.secret, head.encode(), hashlib.sha256).digest()
    return head + "." + _b64(signature)


def _issue(request: Request, state: State, did: str) -> dict[str, str]:
    now = int(time.time())
    # An access token is for the PDS that hosts the account (its `aud`), wherever it was
    # issued: the entryway issues tokens for the PDSes behind it.
    aud = _server_did(request, hosted_on(_handle_of(state, did)))
    jti = _b64(os.urandom(24))
    state.refresh[jti] = True
    ttl = int(sim(request).config.bluesky_access_ttl_s)
    return {
        "accessJwt": _jwt(
            state,
            "at+jwt",
            {"scope": "com.atproto.access", "sub": did, "aud": aud, "iat": now, "exp": now + ttl},
        ),
        "refreshJwt": _jwt(
            state,
            "refresh+jwt",
            {
                "scope": "com.atproto.refresh",
                "sub": did,
                "aud": _server_did(request, ENTRYWAY),
                "jti": jti,
                "iat": now,
                "exp": now + REFRESH_TTL_S,
            },
        ),
    }


def _verify(request: Request, scope: str) -> dict[str, Any] | Response:
    """The JWT payload of the Bearer token, or the PDS's own error."""
    token = bearer(request.headers)
    if not token:
        return error(401, "AuthMissing", "Authentication Required")
    state = _state(request)
    try:
        head, body, signature = token.split(".")
        expected = hmac.new(state.secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise ValueError("signature")
        payload = orjson.loads(_unb64(body))
    except (ValueError, orjson.JSONDecodeError):
        payload = None
    if not isinstance(payload, dict):
        return error(400, "InvalidToken", "Token could not be verified")
    # An expired token: 400 ExpiredToken, after which a client refreshes
    # (https://docs.bsky.app/docs/api/com-atproto-server-refresh-session; errors ExpiredToken,
    # InvalidToken in lexicons/com/atproto/server/refreshSession.json).
    if payload.get("exp", 0) <= time.time():
        return error(400, "ExpiredToken", "Token has expired")
    if payload.get("scope") != scope:
        return error(400, "InvalidToken", "Bad token scope")
    # A PDS that is not the entryway checks that an access token is for it
    # (bluesky-social/atproto packages/pds/src/api/proxy.ts, ensureThisPds).
    if (
        scope == "com.atproto.access"
        and _server(request) == PDS2
        and payload.get("aud") != _server_did(request, PDS2)
    ):
        return error(401, "AuthenticationRequired", "Bad token audience")
    return payload


def _ensure_this_pds(request: Request, payload: dict[str, Any]) -> Response | None:
    """The entryway's answer to a repo write for an account another PDS hosts: "instruct
    client to refresh token during potential account migration" (ensureThisPds,
    bluesky-social/atproto packages/pds/src/api/proxy.ts)."""
    if _server(request) == ENTRYWAY and payload.get("aud") != _server_did(request, ENTRYWAY):
        return error(400, "ExpiredToken", "Token audience is out of date")
    return None


def _did_doc(request: Request, did: str, handle: str) -> dict[str, Any]:
    return {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "alsoKnownAs": [f"at://{handle}"],
        "verificationMethod": [
            {
                "id": f"{did}#atproto",
                "type": "Multikey",
                "controller": did,
                "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF",
            }
        ],
        "service": [
            {
                "id": "#atproto_pds",
                "type": "AtprotoPersonalDataServer",
                # The PDS that holds the repo: where clients send its writes
                # (https://atproto.com/specs/did, "#atproto_pds").
                "serviceEndpoint": _endpoint(request, hosted_on(handle)),
            }
        ],
    }


def _session_body(request: Request, did: str, handle: str) -> dict[str, Any]:
    return {
        "did": did,
        "handle": handle,
        "didDoc": _did_doc(request, did, handle),
        "email": f"{handle.split('.')[0]}@example.test",
        "emailConfirmed": True,
        "emailAuthFactor": False,
        "active": True,
    }


def _limit_headers(limit: RateLimit, remaining: int, reset_at: float) -> dict[str, str]:
    return {
        "ratelimit-limit": str(limit.limit),
        "ratelimit-remaining": str(remaining),
        "ratelimit-reset": str(int(reset_at)),
        "ratelimit-policy": f"{limit.limit};w={int(limit.window_s)}",
    }


def _rate_limited(limit: RateLimit, reset_at: float) -> Response:
    return error(
        429, "RateLimitExceeded", "Rate Limit Exceeded", _limit_headers(limit, 0, reset_at)
    )


async def create_session(request: Request) -> Response:
    body = await body_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("identifier"), str):
        return error(400, "InvalidRequest", 'Input must have the property "identifier"')
    if not isinstance(body.get("password"), str):
        return error(400, "InvalidRequest", 'Input must have the property "password"')
    state = _state(request)
    handle = handle_for(body["identifier"])
    did = did_for(handle)
    # createSession: 30 per 5 minutes per account, then 429 with ratelimit-* headers
    # (https://docs.bsky.app/docs/advanced-guides/rate-limits).
    limit = sim(request).config.bluesky_login_limit
    allowed, remaining, reset_at = state.logins.hit(did, limit)
    headers = _limit_headers(limit, remaining, reset_at)
    if not allowed:
        return _rate_limited(limit, reset_at)
    if unusable(body["password"]):
        return error(401, "AuthenticationRequired", "Invalid identifier or password", headers)
    state.handles[did] = handle
    return json(
        {**_issue(request, state, did), **_session_body(request, did, handle)}, headers=headers
    )


async def refresh_session(request: Request) -> Response:
    # Sent to the second PDS, it is forwarded to the entryway: "their PDS will take care of
    # forwarding that request on to the Entryway" (docs.bsky.app/docs/advanced-guides/
    # entryway), which here shares the entryway's state.
    payload = _verify(request, "com.atproto.refresh")
    if isinstance(payload, Response):
        return payload
    state = _state(request)
    jti = str(payload.get("jti"))
    # Rotation: a refresh token works once; refreshSession returns a new pair and revokes
    # the old one, whose reuse answers "Token has been revoked"
    # (https://docs.bsky.app/docs/api/com-atproto-server-refresh-session; the reference
    # PDS's account-manager rotateRefreshToken; MarshalX/atproto#158 shows the answer).
    if not state.refresh.get(jti):
        return error(400, "ExpiredToken", "Token has been revoked")
    state.refresh[jti] = False
    did = payload["sub"]
    handle = state.handles.get(did) or handle_for(did)
    return json({**_issue(request, state, did), **_session_body(request, did, handle)})


async def get_session(request: Request) -> Response:
    payload = _verify(request, "com.atproto.access")
    if isinstance(payload, Response):
        return payload
    did = payload["sub"]
    return json(_session_body(request, did, _state(request).handles.get(did) or handle_for(did)))


async def delete_session(request: Request) -> Response:
    payload = _verify(request, "com.atproto.refresh")
    if isinstance(payload, Response):
        return payload
    _state(request).refresh[str(payload.get("jti"))] = False
    return Response(status_code=200)


async def describe_server(request: Request) -> Response:
    return json(
        {
            "did": _server_did(request, _server(request)),
            "availableUserDomains": [".test"],
            "inviteCodeRequired": False,
            "phoneVerificationRequired": False,
            "links": {},
            "contact": {},
        }
    )


async def health(request: Request) -> Response:
    return json({"version": "stormer-simulator"})


def _resolve(state: State, actor: str) -> tuple[str, str]:
    """(did, handle) of a did or handle; unknown handles resolve to their derived did."""
    if actor.startswith("did:"):
        return actor, state.handles.get(actor) or handle_for(actor)
    handle = handle_for(actor)
    return did_for(handle), handle


async def resolve_handle(request: Request) -> Response:
    handle = request.query_params.get("handle")
    if not handle:
        return error(400, "InvalidRequest", 'Params must have the property "handle"')
    state = _state(request)
    did, resolved = _resolve(state, handle)
    # Offline, only the handles this server hosts (availableUserDomains: ".test") or has
    # seen log in resolve; any other answers 400 HandleNotFound, "the handle does not
    # resolve to any DID" (lexicons/com/atproto/identity/resolveHandle.json,
    # https://docs.bsky.app/docs/api/com-atproto-identity-resolve-handle).
    if not resolved.endswith(".test") and state.handles.get(did) != resolved:
        return error(400, "HandleNotFound", "Unable to resolve handle")
    return json({"did": did})


async def get_profile(request: Request) -> Response:
    actor = request.query_params.get("actor")
    if not actor:
        return error(400, "InvalidRequest", 'Params must have the property "actor"')
    state = _state(request)
    did, handle = _resolve(state, actor)
    posts = state.repos.count(did, "app.bsky.feed.post")
    return json(
        {
            "did": did,
            "handle": handle,
            "displayName": handle.split(".")[0],
            "description": "",
            "followersCount": 0,
            "followsCount": 0,
            "postsCount": posts,
            "indexedAt": "2024-01-01T00:00:00.000Z",
            "createdAt": "2024-01-01T00:00:00.000Z",
            "labels": [],
            "associated": {"lists": 0, "feedgens": 0, "starterPacks": 0, "labeler": False},
        }
    )


async def upload_blob(request: Request) -> Response:
    payload = _verify(request, "com.atproto.access")
    if isinstance(payload, Response):
        return payload
    if refused := _ensure_this_pds(request, payload):
        return refused
    data = await request.body()
    # A blob over the server's limit: 400 BlobTooLarge (lexicons/com/atproto/repo/
    # uploadBlob.json, https://docs.bsky.app/docs/api/com-atproto-repo-upload-blob; seen as
    # ~1 MB on Bluesky's PDSes: bluesky-social/atproto#1737).
    limit = sim(request).config.bluesky_blob_limit
    if len(data) > limit:
        return error(
            400,
            "BlobTooLarge",
            f"This file is too large. It is {len(data)} bytes but "
            f"the maximum size is {limit} bytes.",
        )
    blob = _state(request).repos.add_blob(payload["sub"], data, request.headers.get("content-type"))
    return json({"blob": blob})


async def write_record(request: Request) -> Response:
    payload = _verify(request, "com.atproto.access")
    if isinstance(payload, Response):
        return payload
    if refused := _ensure_this_pds(request, payload):
        return refused
    body = await body_json(request)
    state = _state(request)
    did = payload["sub"]
    handle = state.handles.get(did) or handle_for(did)
    put = request.path_params["method"] == "com.atproto.repo.putRecord"
    return records.write(request, state.repos, did, handle, body, put)


async def get_record(request: Request) -> Response:
    params = request.query_params
    missing = next((k for k in ("repo", "collection", "rkey") if not params.get(k)), None)
    if missing:
        return error(400, "InvalidRequest", f'Params must have the property "{missing}"')
    state = _state(request)
    did, _ = _resolve(state, params["repo"])
    found = state.repos.get(did, params["collection"], params["rkey"])
    uri = f"at://{did}/{params['collection']}/{params['rkey']}"
    if found is None or (params.get("cid") and params["cid"] != found.cid):
        return error(400, "RecordNotFound", f"Could not locate record: {uri}")
    return json({"uri": uri, "cid": found.cid, "value": found.value})


async def search_posts(request: Request) -> Response:
    """app.bsky.feed.searchPosts, which a PDS passes on to the AppView for a signed-in
    account (bluesky_search.py)."""
    payload = _verify(request, "com.atproto.access")
    if isinstance(payload, Response):
        return payload
    state = _state(request)
    return search.search(request, state.repos, state.handles)


async def list_records(request: Request) -> Response:
    params = request.query_params
    if not params.get("repo") or not params.get("collection"):
        return error(400, "InvalidRequest", 'Params must have the properties "repo", "collection"')
    try:
        limit = int(params.get("limit", "50"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        return error(400, "InvalidRequest", "limit must be between 1 and 100")
    state = _state(request)
    did, _ = _resolve(state, params["repo"])
    rows, cursor = state.repos.list(
        did, params["collection"], limit, params.get("cursor"), params.get("reverse") == "true"
    )
    out: dict[str, Any] = {
        "records": [
            {
                "uri": f"at://{did}/{params['collection']}/{rkey}",
                "cid": entry.cid,
                "value": entry.value,
            }
            for rkey, entry in rows
        ]
    }
    if cursor:
        out["cursor"] = cursor
    return json(out)


QUERIES = {
    "_health": health,
    "com.atproto.server.describeServer": describe_server,
    "com.atproto.server.getSession": get_session,
    "com.atproto.identity.resolveHandle": resolve_handle,
    "com.atproto.repo.getRecord": get_record,
    "com.atproto.repo.listRecords": list_records,
    "app.bsky.actor.getProfile": get_profile,
    "app.bsky.feed.searchPosts": search_posts,
}
PROCEDURES = {
    "com.atproto.server.createSession": create_session,
    "com.atproto.server.refreshSession": refresh_session,
    "com.atproto.server.deleteSession": delete_session,
    "com.atproto.repo.uploadBlob": upload_blob,
    "com.atproto.repo.createRecord": write_record,
    "com.atproto.repo.putRecord": write_record,
}


async def xrpc(request: Request) -> Response:
    method = request.path_params["method"]
    handlers, other = (QUERIES, PROCEDURES) if request.method == "GET" else (PROCEDURES, QUERIES)
    handler = handlers.get(method)
    if handler is None:
        if method in other:
            expected = "GET" if method in QUERIES else "POST"
            return error(
                400,
                "InvalidRequest",
                f"Incorrect HTTP method ({request.method}) expected {expected}",
            )
        return error(501, "MethodNotImplemented", "Method Not Implemented")
    return await handler(request)


routes = [
    Route("/xrpc/{method}", xrpc, methods=["GET", "POST"]),
    Route(f"/{PDS2}/xrpc/{{method}}", xrpc, methods=["GET", "POST"]),
]


def _account_of(scope: Scope) -> str | None:
    """The `sub` of the Bearer JWT, unverified: only the rate limiter reads it."""
    value = scope_header(scope, b"authorization")
    try:
        token = (value or "").partition(" ")[2]
        sub = orjson.loads(_unb64(token.split(".")[1])).get("sub")
        return str(sub) if sub else None
    except (IndexError, ValueError, AttributeError, orjson.JSONDecodeError):
        return None


PLATFORM = Platform(
    name="bluesky",
    owns=lambda path: path.startswith(("/xrpc/", f"/{PDS2}/xrpc/")),
    is_post=lambda method, path: (
        method == "POST"
        and path.removeprefix(f"/{PDS2}")
        in ("/xrpc/com.atproto.repo.createRecord", "/xrpc/com.atproto.repo.putRecord")
    ),
    account_of=_account_of,
    error=lambda status: error(
        status,
        {
            500: "InternalServerError",
            502: "UpstreamFailure",
            503: "NotEnoughResources",
            504: "UpstreamTimeout",
        }.get(status, "InternalServerError"),
        "Simulated failure",
    ),
    rate_limited=_rate_limited,
    limit_headers=_limit_headers,
)
