"""X's user authentication, as a client meets it: OAuth 2.0 Authorization Code with PKCE
(authorize, token, refresh with rotation, revoke) and OAuth 1.0a user context.

Written from https://docs.x.com/fundamentals/authentication/oauth-2-0/authorization-code
and …/oauth-2-0/user-access-token (the flow, the endpoints, the two-hour access token,
refresh tokens only with `offline.access`), RFC 6749 / RFC 7636 (codes, PKCE), and
https://docs.x.com/fundamentals/authentication/oauth-1-0a/authorizing-a-request (OAuth 1.0a
signatures, RFC 5849).

Test conventions (the real X knows each app's and token's secrets; the simulator derives
them, so a test can sign without registering anything):
- OAuth 1.0a: the consumer secret of consumer key K is `K-secret`, the token secret of
  access token A is `A-secret`. The user is the one `user_for(A)` names.
- OAuth 2.0: any `client_id` is a registered app; a confidential client's secret is
  `<client_id>-secret` (sent as HTTP Basic). The authorize endpoint approves at once as the
  user `user_for("oauth2:<sim_user>")` (`sim_user`: an extra query parameter a test may add,
  default the client id) — the real one shows X's consent page first.
- Bearer tokens the simulator did not issue (tests and rehearsals make them up) are tokens
  of unknown age with every scope: they never expire, as before this module existed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlencode

from oauthlib.oauth1.rfc5849 import signature as oauth1_signature  # type: ignore[import-untyped]
from oauthlib.oauth1.rfc5849.utils import parse_authorization_header  # type: ignore[import-untyped]
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from ._web import form, json, sim
from .state import digest, unusable

if TYPE_CHECKING:
    from starlette.requests import Request

# https://docs.x.com/fundamentals/authentication/oauth-2-0/authorization-code ("Scopes").
ALL_SCOPES = frozenset(
    {
        "tweet.read",
        "tweet.write",
        "tweet.moderate.write",
        "users.read",
        "follows.read",
        "follows.write",
        "offline.access",
        "space.read",
        "mute.read",
        "mute.write",
        "like.read",
        "like.write",
        "list.read",
        "list.write",
        "block.read",
        "block.write",
        "bookmark.read",
        "bookmark.write",
        "media.write",
    }
)
# RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED", and
# a code is used once.
CODE_TTL_S = 600.0
# The hosts a client believes it calls: an OAuth 1.0a signature covers the URL (RFC 5849
# §3.4.1.2), and a library that cannot be pointed elsewhere (tweepy) signs these.
PUBLIC_HOSTS = ("https://api.x.com", "https://api.twitter.com", "https://upload.twitter.com")
# X's answers to a refused code or refresh token (its token endpoint speaks RFC 6749 §5.2;
# the descriptions are X's own, as clients report them, e.g. PLhery/node-twitter-api-v2#496).
BAD_TOKEN = "Value passed for the token was invalid."
BAD_CODE = "Value passed for the authorization code was invalid."


@dataclass
class User:
    id: str
    username: str


def user_for(token: str) -> User:
    h = digest("x", token)
    return User(id=str(int(h[:15], 16)), username=f"user{h[:8]}")


@dataclass
class Grant:
    """What an issued token stands for."""

    user: User
    client_id: str
    scopes: frozenset[str]
    expires_at: float | None = None  # access tokens only


@dataclass
class Code:
    grant: Grant
    redirect_uri: str
    challenge: str
    method: str
    expires_at: float


@dataclass
class Tokens:
    codes: dict[str, Code] = field(default_factory=dict)
    access: dict[str, Grant] = field(default_factory=dict)
    refresh: dict[str, Grant] = field(default_factory=dict)


def _tokens(request: Request) -> Tokens:
    return sim(request).store.space("x-auth", Tokens)


def _oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json({"error": error, "error_description": description}, status)


async def authorize(request: Request) -> Response:
    """GET /i/oauth2/authorize (docs: "Step 2: GET oauth2/authorize"): approved at once."""
    q = request.query_params
    scopes = frozenset(q.get("scope", "").split())
    method = q.get("code_challenge_method", "plain")
    missing = [
        name for name in ("client_id", "redirect_uri", "state", "code_challenge") if not q.get(name)
    ]
    if q.get("response_type") != "code" or missing:
        return _oauth_error("invalid_request", f"missing or wrong: {missing or ['response_type']}")
    # The docs list "S256" and "plain" as the supported challenge methods.
    if method not in ("S256", "plain") or not scopes <= ALL_SCOPES:
        return _oauth_error("invalid_request", "unknown code_challenge_method or scope")
    user = user_for(f"oauth2:{q.get('sim_user') or q['client_id']}")
    code = f"sim-x-code-{secrets.token_urlsafe(24)}"
    _tokens(request).codes[code] = Code(
        Grant(user, q["client_id"], scopes),
        q["redirect_uri"],
        q["code_challenge"],
        method,
        time.time() + CODE_TTL_S,
    )
    separator = "&" if "?" in q["redirect_uri"] else "?"
    return RedirectResponse(
        q["redirect_uri"] + separator + urlencode({"state": q["state"], "code": code}), 302
    )


def _client(request: Request, fields: dict[str, str]) -> str | Response:
    """The client id, authenticated: HTTP Basic for a confidential client (docs: "Working
    with confidential clients"), `client_id` in the body for a public one."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            client_id, secret = "", ""
        if not client_id or secret != f"{client_id}-secret":
            return _oauth_error("unauthorized_client", "Missing valid authorization header", 401)
        return client_id
    return fields.get("client_id") or _oauth_error(
        "invalid_request", "Missing required parameter [client_id]."
    )


def _verifier_matches(code: Code, verifier: str) -> bool:
    """RFC 7636 §4.6: S256 is BASE64URL(SHA256(verifier)) without padding."""
    if code.method == "S256":
        hashed = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
        expected = base64.urlsafe_b64encode(hashed).rstrip(b"=").decode()
    else:
        expected = verifier
    return bool(verifier) and secrets.compare_digest(expected, code.challenge)


def _issue(request: Request, grant: Grant) -> Response:
    """A new access token (and, with `offline.access`, a refresh token): the docs' token
    response. The access token lives `x_access_ttl_s` (X: two hours)."""
    ttl = sim(request).config.x_access_ttl_s
    tokens = _tokens(request)
    access = f"sim-x-at-{secrets.token_urlsafe(24)}"
    tokens.access[access] = Grant(grant.user, grant.client_id, grant.scopes, time.time() + ttl)
    body: dict[str, Any] = {
        "token_type": "bearer",
        "expires_in": int(ttl),
        "access_token": access,
        "scope": " ".join(sorted(grant.scopes)),
    }
    # "If this scope is not passed, we will not generate a refresh token."
    if "offline.access" in grant.scopes:
        refresh = f"sim-x-rt-{secrets.token_urlsafe(24)}"
        tokens.refresh[refresh] = Grant(grant.user, grant.client_id, grant.scopes)
        body["refresh_token"] = refresh
    return json(body)


async def token(request: Request) -> Response:
    """POST /2/oauth2/token: grant_type authorization_code (with the PKCE verifier) or
    refresh_token. A refresh token is used once: the new one replaces it (X rotates them)."""
    async with form(request) as data:
        fields = {k: v for k, v in data.items() if isinstance(v, str)}
    client_id = _client(request, fields)
    if isinstance(client_id, Response):
        return client_id
    tokens = _tokens(request)
    kind = fields.get("grant_type")
    if kind == "authorization_code":
        code = tokens.codes.pop(fields.get("code", ""), None)  # one use, right or wrong
        if (
            code is None
            or code.expires_at < time.time()
            or code.grant.client_id != client_id
            or code.redirect_uri != fields.get("redirect_uri")
            or not _verifier_matches(code, fields.get("code_verifier", ""))
        ):
            return _oauth_error("invalid_request", BAD_CODE)
        return _issue(request, code.grant)
    if kind == "refresh_token":
        grant = tokens.refresh.get(fields.get("refresh_token", ""))
        if grant is None or grant.client_id != client_id:
            return _oauth_error("invalid_request", BAD_TOKEN)
        del tokens.refresh[fields["refresh_token"]]
        return _issue(request, grant)
    return _oauth_error("invalid_request", "Missing required parameter [grant_type].")


async def revoke(request: Request) -> Response:
    """POST /2/oauth2/revoke: the token (access or refresh) stops working."""
    async with form(request) as data:
        value = data.get("token")
    tokens = _tokens(request)
    found = tokens.access.pop(str(value), None) or tokens.refresh.pop(str(value), None)
    return json({"revoked": found is not None})


@dataclass(frozen=True)
class Caller:
    """Who made a request, and what the token lets them do."""

    user: User
    scopes: frozenset[str]


def _oauth1_params(header: str) -> dict[str, str]:
    try:
        return {k: unquote(v) for k, v in parse_authorization_header(header)}
    except ValueError:
        return {}


async def _oauth1(request: Request, header: str) -> Caller | None:
    """OAuth 1.0a user context: the HMAC-SHA1 signature checked with oauthlib, over the
    URL as received and as the public hosts it stands in for. A multipart or JSON body is
    not part of the signature; a form-encoded one is (RFC 5849 §3.4.1.3.1)."""
    params = _oauth1_params(header)
    key, token_ = params.get("oauth_consumer_key"), params.get("oauth_token")
    if not key or not token_ or params.get("oauth_signature_method") != "HMAC-SHA1":
        return None
    form_body = None
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form_body = (await request.body()).decode("utf-8", "replace")
    collected = oauth1_signature.collect_parameters(
        uri_query=request.url.query, body=form_body, headers={"Authorization": header}
    )
    received = f"{request.url.scheme}://{request.url.netloc}"
    for host in (received, *PUBLIC_HOSTS):
        attempt = SimpleNamespace(
            params=collected,
            uri=host + request.url.path,
            http_method=request.method,
            signature=params.get("oauth_signature", ""),
        )
        if oauth1_signature.verify_hmac_sha1(attempt, f"{key}-secret", f"{token_}-secret"):
            return Caller(user_for(token_), ALL_SCOPES)
    return None


async def caller(request: Request) -> Caller | None:
    """The authenticated caller, or None (X answers 401)."""
    header = request.headers.get("authorization") or ""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "oauth":
        return await _oauth1(request, header)
    value = rest.strip() if scheme.lower() == "bearer" else ""
    if unusable(value):
        return None
    grant = _tokens(request).access.get(value)
    if grant is not None:
        # https://docs.x.com/fundamentals/authentication/oauth-2-0/authorization-code:
        # the access token is valid for two hours (`x_access_ttl_s`).
        assert grant.expires_at is not None
        return Caller(grant.user, grant.scopes) if time.time() < grant.expires_at else None
    if value.startswith("sim-x-"):
        return None  # issued here once, then revoked or rotated away
    # Not issued by the simulator: a token of unknown age with every scope (see above).
    return Caller(user_for(value), ALL_SCOPES)


def token_of(header: str | None) -> str | None:
    """The user token of an Authorization header, read without validating (the rate-limit
    key): a bearer token or OAuth 1.0a's `oauth_token`."""
    if not header:
        return None
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "oauth":
        return _oauth1_params(header).get("oauth_token") or None
    return rest.strip() if scheme.lower() == "bearer" and rest.strip() else None


routes = [
    Route("/i/oauth2/authorize", authorize),
    Route("/2/oauth2/token", token, methods=["POST"]),
    Route("/2/oauth2/revoke", revoke, methods=["POST"]),
]
