"""Mastodon's OAuth: registering an app, the authorization code flow, and the scopes a token
carries (https://docs.joinmastodon.org/methods/apps/, https://docs.joinmastodon.org/methods/oauth/,
https://docs.joinmastodon.org/api/oauth-scopes/).

The authorization page is in `mastodon_authorize.py`.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.responses import Response
from starlette.routing import Route

from ._web import body_json, form, is_form, json, sim
from .mastodon_entities import Account
from .state import bearer, digest, unusable

if TYPE_CHECKING:
    from starlette.requests import Request

OOB = (
    "urn:ietf:wg:oauth:2.0:oob"  # https://docs.joinmastodon.org/methods/apps/#form-data-parameters
)
# RFC 6749 §4.1.2: "A maximum authorization code lifetime of 10 minutes is RECOMMENDED";
# Doorkeeper (Mastodon's OAuth server) defaults to it (authorization_code_expires_in).
CODE_LIFETIME_S = 600.0


@dataclass
class App:
    client_id: str
    client_secret: str
    name: str
    redirect_uris: list[str]
    scopes: list[str]
    website: str | None


@dataclass
class Grant:
    """An authorization code, until exchanged (once) for a token."""

    client_id: str
    redirect_uri: str
    scopes: list[str]
    expires_at: float
    challenge: str | None  # PKCE S256 code_challenge, if the request had one


@dataclass
class OAuth:
    apps: dict[str, App] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, frozenset[str]] = field(default_factory=dict)  # token → its scopes
    revoked: set[str] = field(default_factory=set)  # POST /oauth/revoke


def oauth_state(request: Request) -> OAuth:
    return sim(request).store.space("mastodon-oauth", OAuth)


def granted_scopes(request: Request, token: str) -> frozenset[str] | None:
    """The scopes of a token the simulator issued; None for any other token. Tests (and
    rehearsals) hand the simulator tokens it never issued: those keep working with every
    scope, as before tokens carried scopes, so only a token from this flow is limited."""
    return oauth_state(request).tokens.get(token)


def allows(granted: frozenset[str] | None, *needed: str) -> bool:
    """Whether a token with `granted` may do what needs any one of `needed`. Scopes are
    hierarchical: `write` includes `write:statuses`, `read` includes `read:accounts`
    (https://docs.joinmastodon.org/api/oauth-scopes/#granular-scopes)."""
    if granted is None:
        return True
    return any(s in granted or s.partition(":")[0] in granted for s in needed)


def account_for(token: str) -> Account:
    h = digest("mastodon", token)
    return Account(id=str(int(h[:13], 16)), username=f"user{h[:8]}")


def api_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The REST API's error body: https://docs.joinmastodon.org/entities/Error/"""
    return json({"error": message}, status, headers)


def authenticate(request: Request, *scopes: str) -> Account | Response:
    """The account of the request's token, if it holds one of `scopes` (any, if none given)."""
    token = bearer(request.headers) or request.query_params.get("access_token")
    if token is None:
        # https://docs.joinmastodon.org/methods/accounts/#verify_credentials (401)
        return api_error(401, "This method requires an authenticated user")
    if unusable(token) or token in oauth_state(request).revoked:
        # https://docs.joinmastodon.org/methods/statuses/#create (401)
        return api_error(401, "The access token is invalid")
    if scopes and not allows(granted_scopes(request, token), *scopes):
        # A token without the scope an endpoint names is refused with 403:
        # https://docs.joinmastodon.org/methods/oauth/#userinfo (403) shows the body.
        return api_error(403, "This action is outside the authorized scopes")
    return account_for(token)


def oauth_error(status: int, error: str, description: str) -> Response:
    # The OAuth error body (RFC 6749 §5.2), as https://docs.joinmastodon.org/methods/oauth/
    # shows it for each failure.
    return json({"error": error, "error_description": description}, status)


async def _params(request: Request) -> dict[str, Any]:
    """Form data or JSON (Rails reads either), plus the query string."""
    params: dict[str, Any] = dict(request.query_params)
    if is_form(request):
        async with form(request) as data:
            params.update({k: v for k, v in data.items() if isinstance(v, str)})
            if data.getlist("redirect_uris[]"):
                params["redirect_uris"] = [str(v) for v in data.getlist("redirect_uris[]")]
    else:
        body = await body_json(request)
        if isinstance(body, dict):
            params.update(body)
    return params


def split(value: Any, default: str) -> list[str]:
    """A space-separated (or, for redirect URIs, newline-separated) list, or an array."""
    if isinstance(value, list):
        return [str(v) for v in value]
    return (str(value) if value else default).split()


async def create_app(request: Request) -> Response:
    """POST /api/v1/apps (https://docs.joinmastodon.org/methods/apps/#create)."""
    params = await _params(request)
    name = params.get("client_name")
    if not name:
        # Rails' presence validation on the application's name.
        return json({"error": "Validation failed: Name can't be blank"}, 422)
    # redirect_uris: required, "String or Array of Strings"; scopes default to `read`.
    redirect_uris = split(params.get("redirect_uris"), "")
    if not redirect_uris or not all(u == OOB or "://" in u for u in redirect_uris):
        # The 422 the docs show: https://docs.joinmastodon.org/methods/apps/#422-unprocessable-entity
        return json({"error": "Validation failed: Redirect URI must be an absolute URI."}, 422)
    app = App(
        client_id=secrets.token_urlsafe(32),
        client_secret=secrets.token_urlsafe(32),
        name=str(name),
        redirect_uris=redirect_uris,
        scopes=split(params.get("scopes"), "read"),
        website=params.get("website") or None,
    )
    oauth_state(request).apps[app.client_id] = app
    # A CredentialApplication: https://docs.joinmastodon.org/entities/Application/#CredentialApplication
    return json(
        {
            "id": str(sim(request).store.snowflake()),
            "name": app.name,
            "website": app.website,
            "scopes": app.scopes,
            "redirect_uri": "\n".join(app.redirect_uris),
            "redirect_uris": app.redirect_uris,
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "client_secret_expires_at": 0,
        }
    )


async def token(request: Request) -> Response:
    """POST /oauth/token (https://docs.joinmastodon.org/methods/oauth/#token), the
    authorization_code grant."""
    params = await _params(request)
    state = oauth_state(request)
    if params.get("grant_type") != "authorization_code":
        # The one grant a user token comes from; others: RFC 6749 §5.2.
        return oauth_error(
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        )
    app = _client(state, params)
    if isinstance(app, Response):
        return app
    grant = state.grants.pop(str(params.get("code") or ""), None)  # a code works once
    verifier = str(params.get("code_verifier") or "")
    if (
        grant is None
        or grant.client_id != app.client_id
        or grant.redirect_uri != params.get("redirect_uri")  # "Must match" the authorize one
        or time.time() > grant.expires_at
        or (grant.challenge is not None and _s256(verifier) != grant.challenge)
    ):
        # "If the authorization code is incorrect or has been used already": 400 invalid_grant.
        return oauth_error(
            400,
            "invalid_grant",
            "The provided authorization grant is invalid, expired, revoked, does not match "
            "the redirection URI used in the authorization request, or was issued to another "
            "client.",
        )
    access = secrets.token_urlsafe(32)
    # `scope` "has no effect when grant_type is authorization_code": the granted ones stand.
    state.tokens[access] = frozenset(grant.scopes)
    # A Token: https://docs.joinmastodon.org/entities/Token/
    return json(
        {
            "access_token": access,
            "token_type": "Bearer",
            "scope": " ".join(grant.scopes),
            "created_at": int(time.time()),
        }
    )


def _client(state: OAuth, params: dict[str, Any]) -> App | Response:
    """The app a request names by client_id and client_secret, or 401 invalid_client: "If
    client_id and client_secret do not match or are invalid"
    (https://docs.joinmastodon.org/methods/oauth/#token,
    https://docs.joinmastodon.org/methods/oauth/#revoke)."""
    app = state.apps.get(str(params.get("client_id") or ""))
    if app is None or params.get("client_secret") != app.client_secret:
        return oauth_error(
            401,
            "invalid_client",
            "Client authentication failed due to unknown client, no client authentication "
            "included, or unsupported authentication method.",
        )
    return app


def _s256(verifier: str) -> str:
    """RFC 7636 §4.2: BASE64URL(SHA256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def server_metadata(request: Request) -> Response:
    """GET /.well-known/oauth-authorization-server (Mastodon 4.3+, RFC 8414:
    https://docs.joinmastodon.org/methods/oauth/#authorization-server-metadata)."""
    base = str(request.base_url).rstrip("/")
    return json(
        {
            "issuer": f"{base}/",
            "service_documentation": "https://docs.joinmastodon.org/",
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "app_registration_endpoint": f"{base}/api/v1/apps",
            "scopes_supported": [
                "read",
                "write",
                "profile",
                "read:accounts",
                "read:statuses",
                "write:media",
                "write:statuses",
            ],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "grant_types_supported": ["authorization_code"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }
    )


async def revoke(request: Request) -> Response:
    """POST /oauth/revoke: "Revoke an access token to make it no longer valid for use"
    (https://docs.joinmastodon.org/methods/oauth/#revoke): client_id, client_secret and token
    required; 200 with an empty object. The docs' 403 for a token another app owns is not
    imitated: tests revoke tokens the simulator never issued, which no app owns here."""
    params = await _params(request)
    state = oauth_state(request)
    app = _client(state, params)
    if isinstance(app, Response):
        return app
    token = str(params.get("token") or "")
    state.tokens.pop(token, None)
    state.revoked.add(token)
    return json({})


routes = [
    Route("/api/v1/apps", create_app, methods=["POST"]),
    Route("/oauth/token", token, methods=["POST"]),
    Route("/oauth/revoke", revoke, methods=["POST"]),
    Route("/.well-known/oauth-authorization-server", server_metadata, methods=["GET"]),
]
