"""Mastodon's OAuth: registering an app, the authorization code flow, and the scopes a token
carries (https://docs.joinmastodon.org/methods/apps/, https://docs.joinmastodon.org/methods/oauth/,
https://docs.joinmastodon.org/api/oauth-scopes/).

Mastodon's /oauth/authorize shows a consent page to a logged-in user; the simulator has no
users and no browser, so it approves at once: for the out-of-band redirect
(`urn:ietf:wg:oauth:2.0:oob`) it answers a page with the code in its body, as Mastodon shows
it for the user to copy; for any other redirect it redirects there with `code` and `state`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ._web import body_json, form, is_form, json, sim

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


def _state(request: Request) -> OAuth:
    return sim(request).store.space("mastodon-oauth", OAuth)


def granted_scopes(request: Request, token: str) -> frozenset[str] | None:
    """The scopes of a token the simulator issued; None for any other token. Tests (and
    rehearsals) hand the simulator tokens it never issued: those keep working with every
    scope, as before tokens carried scopes, so only a token from this flow is limited."""
    return _state(request).tokens.get(token)


def allows(granted: frozenset[str] | None, *needed: str) -> bool:
    """Whether a token with `granted` may do what needs any one of `needed`. Scopes are
    hierarchical: `write` includes `write:statuses`, `read` includes `read:accounts`
    (https://docs.joinmastodon.org/api/oauth-scopes/#granular-scopes)."""
    if granted is None:
        return True
    return any(s in granted or s.partition(":")[0] in granted for s in needed)


def _error(status: int, error: str, description: str) -> Response:
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


def _split(value: Any, default: str) -> list[str]:
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
    redirect_uris = _split(params.get("redirect_uris"), "")
    if not redirect_uris or not all(u == OOB or "://" in u for u in redirect_uris):
        # The 422 the docs show: https://docs.joinmastodon.org/methods/apps/#422-unprocessable-entity
        return json({"error": "Validation failed: Redirect URI must be an absolute URI."}, 422)
    app = App(
        client_id=secrets.token_urlsafe(32),
        client_secret=secrets.token_urlsafe(32),
        name=str(name),
        redirect_uris=redirect_uris,
        scopes=_split(params.get("scopes"), "read"),
        website=params.get("website") or None,
    )
    _state(request).apps[app.client_id] = app
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


async def authorize(request: Request) -> Response:
    """GET /oauth/authorize (https://docs.joinmastodon.org/methods/oauth/#authorize),
    approved at once (see the module's docstring)."""
    q = request.query_params
    app = _state(request).apps.get(q.get("client_id", ""))
    if app is None:
        return _error(
            401,
            "invalid_client",
            "Client authentication failed due to unknown client, no client authentication "
            "included, or unsupported authentication method.",
        )
    redirect_uri = q.get("redirect_uri", "")
    # "Must match one of the redirect_uris declared during app registration."
    if redirect_uri not in app.redirect_uris:
        return _error(
            400,
            "invalid_redirect_uri",
            "The requested redirect uri is malformed or doesn't match client redirect URI.",
        )
    if q.get("response_type") != "code":  # "Should be set equal to `code`."
        return _error(
            400,
            "unsupported_response_type",
            "The authorization server does not support this response type.",
        )
    # "Must be a subset of scopes declared during app registration. If not provided,
    # defaults to read."
    scopes = _split(q.get("scope"), "read")
    if not set(scopes) <= set(app.scopes):
        return _error(
            400, "invalid_scope", "The requested scope is invalid, unknown, or malformed."
        )
    # PKCE: "code_challenge_method: Must be S256" (Mastodon 4.3+).
    challenge = q.get("code_challenge")
    if challenge and q.get("code_challenge_method", "S256") != "S256":
        return _error(400, "invalid_request", "Code challenge method must be S256.")
    code = secrets.token_urlsafe(32)
    _state(request).grants[code] = Grant(
        app.client_id, redirect_uri, scopes, time.time() + CODE_LIFETIME_S, challenge or None
    )
    if redirect_uri == OOB:
        # "…or show the authorization code if urn:ietf:wg:oauth:2.0:oob was requested."
        page = (
            "<!DOCTYPE html><html><head><title>Authorization code</title></head><body>"
            f"<p>Copy this authorization code and paste it into {html.escape(app.name)}.</p>"
            f'<input class="oauth-code" readonly type="text" value="{code}">'
            f"<code>{code}</code></body></html>"
        )
        return HTMLResponse(page)
    query = {"code": code, **({"state": q["state"]} if "state" in q else {})}
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(query)}", 302)


async def token(request: Request) -> Response:
    """POST /oauth/token (https://docs.joinmastodon.org/methods/oauth/#token), the
    authorization_code grant."""
    params = await _params(request)
    state = _state(request)
    if params.get("grant_type") != "authorization_code":
        # The one grant a user token comes from; others: RFC 6749 §5.2.
        return _error(
            400,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server.",
        )
    app = state.apps.get(str(params.get("client_id") or ""))
    if app is None or params.get("client_secret") != app.client_secret:
        # "If client_id and client_secret do not match or are invalid": 401 invalid_client.
        return _error(
            401,
            "invalid_client",
            "Client authentication failed due to unknown client, no client authentication "
            "included, or unsupported authentication method.",
        )
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
        return _error(
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


routes = [
    Route("/api/v1/apps", create_app, methods=["POST"]),
    Route("/oauth/authorize", authorize, methods=["GET"]),
    Route("/oauth/token", token, methods=["POST"]),
    Route("/.well-known/oauth-authorization-server", server_metadata, methods=["GET"]),
]
