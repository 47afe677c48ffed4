"""What a web page needs from the simulated Mastodon: CORS as Mastodon's rack-cors sends it,
and the OAuth consent form (approve, deny) with PKCE checked at the token endpoint."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx
import pytest

KIT = "https://kit.example"  # a page's origin: any origin is allowed (`origins '*'`)
REDIRECT = f"{KIT}/back.html"
API_METHODS = "POST, PUT, DELETE, GET, PATCH, OPTIONS"
EXPOSED = "Link, X-RateLimit-Reset, X-RateLimit-Limit, X-RateLimit-Remaining, X-Request-Id"


def _preflight(simulator: str, path: str, method: str, headers: str = "") -> httpx.Response:
    asked = {"Origin": KIT, "Access-Control-Request-Method": method}
    if headers:
        asked["Access-Control-Request-Headers"] = headers
    return httpx.options(f"{simulator}{path}", headers=asked, timeout=10)


@pytest.mark.parametrize(
    "path", ["/api/v1/apps", "/api/v1/statuses", "/api/v1/scheduled_statuses/1", "/api/v2/media"]
)
def test_an_api_preflight_is_answered_as_rack_cors_does(simulator: str, path: str) -> None:
    answer = _preflight(simulator, path, "DELETE", "authorization, content-type")
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["access-control-allow-methods"] == API_METHODS
    assert answer.headers["access-control-allow-headers"] == "authorization, content-type"
    assert answer.headers["access-control-expose-headers"] == EXPOSED
    assert answer.headers["access-control-max-age"] == "7200"
    assert "access-control-allow-credentials" not in answer.headers


def test_the_token_and_revoke_endpoints_allow_post_only_and_other_paths_nothing(
    simulator: str,
) -> None:
    for endpoint in ("/oauth/token", "/oauth/revoke"):  # revoke: since Mastodon 4.3
        allowed = _preflight(simulator, endpoint, "POST", "content-type")
        assert allowed.headers["access-control-allow-methods"] == "POST", endpoint
    for path, method in [
        ("/oauth/token", "GET"),  # not a method of the resource
        ("/oauth/revoke", "GET"),
        ("/oauth/authorize", "POST"),  # a page, not a CORS resource: the browser navigates
    ]:
        refused = _preflight(simulator, path, method)
        assert refused.status_code == 200 and "access-control-allow-origin" not in refused.headers
    metadata = httpx.get(
        f"{simulator}/.well-known/oauth-authorization-server", headers={"Origin": KIT}
    )
    assert metadata.headers["access-control-allow-origin"] == "*"


def test_answers_carry_cors_headers_only_for_a_request_with_an_origin(simulator: str) -> None:
    body = {"client_name": "kit", "redirect_uris": REDIRECT}
    answer = httpx.post(f"{simulator}/api/v1/apps", json=body, headers={"Origin": KIT})
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["access-control-expose-headers"] == EXPOSED
    assert "Origin" in answer.headers["vary"]
    unauthorized = httpx.get(f"{simulator}/api/v1/scheduled_statuses", headers={"Origin": KIT})
    assert unauthorized.status_code == 401  # errors too: the page can read why
    assert unauthorized.headers["access-control-allow-origin"] == "*"
    plain = httpx.post(f"{simulator}/api/v1/apps", json=body)
    assert "access-control-allow-origin" not in plain.headers


def test_other_platforms_and_the_controls_get_no_mastodon_cors(simulator: str) -> None:
    for path in ("/api/webhooks/1/token", "/_sim/config", "/xrpc/com.atproto.server.createSession"):
        answer = _preflight(simulator, path, "POST", "content-type")
        assert "access-control-allow-origin" not in answer.headers, path


def _app(simulator: str, scopes: str = "write:statuses write:media") -> dict:
    body = {"client_name": "kit <b>", "redirect_uris": REDIRECT, "scopes": scopes}
    return httpx.post(f"{simulator}/api/v1/apps", json=body, timeout=10).json()


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _consent(simulator: str, app: dict, verifier: str) -> dict[str, str]:
    """Open the authorize page as a browser would; the fields its Authorize form submits."""
    page = httpx.get(
        f"{simulator}/oauth/authorize",
        params={
            "client_id": app["client_id"],
            "redirect_uri": REDIRECT,
            "response_type": "code",
            "scope": "write:statuses write:media",
            "state": "s&1",
            "code_challenge": _s256(verifier),
            "code_challenge_method": "S256",
        },
        timeout=10,
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "kit &lt;b&gt;" in page.text  # the app's name is text, not markup
    (first_form,) = re.findall(r"<form[^>]*>(.*?)</form>", page.text)[:1]
    return dict(re.findall(r'name="([^"]+)" value="([^"]*)"', first_form))


def test_the_consent_form_redirects_with_code_and_state_and_pkce_is_checked(
    simulator: str,
) -> None:
    app = _app(simulator)
    verifier = "a-verifier-of-at-least-forty-three-characters-long"
    fields = _consent(simulator, app, verifier)
    assert fields["state"] == "s&amp;1" and fields["code_challenge_method"] == "S256"
    fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
    approved = httpx.post(f"{simulator}/oauth/authorize", data=fields, timeout=10)
    assert approved.status_code == 302
    back = httpx.URL(approved.headers["location"])
    assert str(back).startswith(f"{REDIRECT}?") and back.params["state"] == "s&1"

    def exchange(code: str, code_verifier: str) -> httpx.Response:
        grant = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "redirect_uri": REDIRECT,
            "code_verifier": code_verifier,
        }
        return httpx.post(f"{simulator}/oauth/token", data=grant, timeout=10)

    wrong = exchange(back.params["code"], "another-verifier-of-at-least-forty-three-chars")
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    again = httpx.post(f"{simulator}/oauth/authorize", data=fields, timeout=10)
    token = exchange(httpx.URL(again.headers["location"]).params["code"], verifier)
    assert token.status_code == 200 and token.json()["scope"] == "write:statuses write:media"


def test_deny_redirects_with_access_denied_and_no_code(simulator: str) -> None:
    app = _app(simulator)
    fields = {k: v.replace("&amp;", "&") for k, v in _consent(simulator, app, "v" * 43).items()}
    denied = httpx.post(
        f"{simulator}/oauth/authorize", data={**fields, "_method": "delete"}, timeout=10
    )
    assert denied.status_code == 302
    back = httpx.URL(denied.headers["location"])
    assert back.params["error"] == "access_denied" and back.params["state"] == "s&1"
    assert "code" not in back.params


def test_a_forged_form_is_checked_like_the_authorize_request(simulator: str) -> None:
    app = _app(simulator)
    forged = {
        "client_id": app["client_id"],
        "redirect_uri": "https://elsewhere.example/steal",
        "response_type": "code",
        "scope": "write:statuses",
    }
    answer = httpx.post(f"{simulator}/oauth/authorize", data=forged, timeout=10)
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_redirect_uri"
