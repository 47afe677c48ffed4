"""Mastodon's authorization page, GET /oauth/authorize
(https://docs.joinmastodon.org/methods/oauth/#authorize), with PKCE (Mastodon 4.3+).

Mastodon's /oauth/authorize shows a consent page to a logged-in user; the simulator has no
users, so its page stands for one who is logged in. For a redirect URI it is a form, as a
browser meets it: Authorize redirects there with `code` and `state`, Deny with
`error=access_denied`. The out-of-band redirect (`urn:ietf:wg:oauth:2.0:oob`), which a
command-line tool asks for, is approved at once: the answer is the page with the code in its
body, as Mastodon shows it after consent for the user to copy.
"""

from __future__ import annotations

import html
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ._web import form
from .mastodon_oauth import CODE_LIFETIME_S, OOB, App, Grant, oauth_error, oauth_state, split

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request


@dataclass
class Asked:
    """An authorization request that is valid: what the consent form carries."""

    app: App
    redirect_uri: str
    scopes: list[str]
    state: str | None
    challenge: str | None


def _asked(request: Request, q: Mapping[str, str]) -> Asked | Response:
    """The checks of https://docs.joinmastodon.org/methods/oauth/#authorize, in order."""
    app = oauth_state(request).apps.get(q.get("client_id", ""))
    if app is None:
        return oauth_error(
            401,
            "invalid_client",
            "Client authentication failed due to unknown client, no client authentication "
            "included, or unsupported authentication method.",
        )
    redirect_uri = q.get("redirect_uri", "")
    # "Must match one of the redirect_uris declared during app registration."
    if redirect_uri not in app.redirect_uris:
        return oauth_error(
            400,
            "invalid_redirect_uri",
            "The requested redirect uri is malformed or doesn't match client redirect URI.",
        )
    if q.get("response_type") != "code":  # "Should be set equal to `code`."
        return oauth_error(
            400,
            "unsupported_response_type",
            "The authorization server does not support this response type.",
        )
    # "Must be a subset of scopes declared during app registration. If not provided,
    # defaults to read."
    scopes = split(q.get("scope"), "read")
    if not set(scopes) <= set(app.scopes):
        return oauth_error(
            400, "invalid_scope", "The requested scope is invalid, unknown, or malformed."
        )
    # PKCE: "code_challenge_method: Must be S256" (Mastodon 4.3+); the challenge is checked
    # against the code_verifier at the token endpoint.
    challenge = q.get("code_challenge")
    if challenge and q.get("code_challenge_method", "S256") != "S256":
        return oauth_error(400, "invalid_request", "Code challenge method must be S256.")
    return Asked(app, redirect_uri, scopes, q.get("state"), challenge or None)


def _redirect(asked: Asked, answer: dict[str, str]) -> Response:
    query = {**answer, **({"state": asked.state} if asked.state is not None else {})}
    separator = "&" if "?" in asked.redirect_uri else "?"
    return RedirectResponse(f"{asked.redirect_uri}{separator}{urlencode(query)}", 302)


def _approve(request: Request, asked: Asked) -> Response:
    code = secrets.token_urlsafe(32)
    oauth_state(request).grants[code] = Grant(
        asked.app.client_id,
        asked.redirect_uri,
        asked.scopes,
        time.time() + CODE_LIFETIME_S,
        asked.challenge,
    )
    if asked.redirect_uri == OOB:
        # "…or show the authorization code if urn:ietf:wg:oauth:2.0:oob was requested."
        page = (
            "<!DOCTYPE html><html><head><title>Authorization code</title></head><body>"
            f"<p>Copy this authorization code and paste it into {html.escape(asked.app.name)}.</p>"
            f'<input class="oauth-code" readonly type="text" value="{code}">'
            f"<code>{code}</code></body></html>"
        )
        return HTMLResponse(page)
    # "…redirect to the redirect_uri with a code query parameter" (and the `state` given).
    return _redirect(asked, {"code": code})


def _consent_page(asked: Asked) -> HTMLResponse:
    """Mastodon's consent page (app/views/oauth/authorizations/new.html.haml): the request's
    parameters as hidden fields of a form that POSTs to /oauth/authorize to approve, and a
    second one that DELETEs (Rails' `_method`) to deny."""
    fields = {
        "client_id": asked.app.client_id,
        "redirect_uri": asked.redirect_uri,
        "state": asked.state or "",
        "response_type": "code",
        "scope": " ".join(asked.scopes),
        "code_challenge": asked.challenge or "",
        "code_challenge_method": "S256" if asked.challenge else "",
    }
    hidden = "".join(
        f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in fields.items()
    )
    name = html.escape(asked.app.name)
    scopes = "".join(f"<li>{html.escape(s)}</li>" for s in asked.scopes)
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>Authorization required</title></head><body><main>"
        f"<h1>Authorization required</h1><p><strong>{name}</strong> would like permission "
        f"to access your account. It is a third-party application.</p><ul>{scopes}</ul>"
        f'<form method="post" action="/oauth/authorize">{hidden}'
        '<button type="submit">Authorize</button></form>'
        f'<form method="post" action="/oauth/authorize">{hidden}'
        '<input type="hidden" name="_method" value="delete">'
        '<button type="submit">Deny</button></form></main></body></html>'
    )
    return HTMLResponse(page)


async def authorize(request: Request) -> Response:
    """GET /oauth/authorize (https://docs.joinmastodon.org/methods/oauth/#authorize): the
    consent form (see the module's docstring)."""
    asked = _asked(request, request.query_params)
    if isinstance(asked, Response):
        return asked
    if asked.redirect_uri == OOB:
        return _approve(request, asked)
    return _consent_page(asked)


async def decide(request: Request) -> Response:
    """The consent form's answer: POST /oauth/authorize approves, its `_method=delete` twin
    (Doorkeeper's DELETE /oauth/authorize) denies with RFC 6749 §4.1.2.1's access_denied."""
    async with form(request) as data:
        q = {k: v for k, v in data.items() if isinstance(v, str)}
    asked = _asked(request, q)
    if isinstance(asked, Response):
        return asked
    if q.get("_method", "").lower() == "delete":
        return _redirect(
            asked,
            {
                "error": "access_denied",
                "error_description": "The resource owner or authorization server denied "
                "the request.",
            },
        )
    return _approve(request, asked)


routes = [
    Route("/oauth/authorize", authorize, methods=["GET"]),
    Route("/oauth/authorize", decide, methods=["POST"]),
]
