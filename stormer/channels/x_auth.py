"""How stormer's X client authenticates: OAuth 2.0 Authorization Code with PKCE (login,
refresh with rotation) and OAuth 1.0a user context (signed requests).

OAuth 2.0 (https://docs.x.com/fundamentals/authentication/oauth-2-0/authorization-code and
…/oauth-2-0/user-access-token): the organizer authorizes stormer in a browser; X redirects to
a loopback address on this machine (`Loopback`), or, when the browser runs elsewhere, the
organizer pastes the address it ended on. The code and the PKCE verifier buy an access token
that lives two hours and, with `offline.access`, a refresh token. Every refresh returns a new
refresh token and the old one stops working, so the pair is saved at once
(`Connection.rotate`).

OAuth 1.0a (https://docs.x.com/fundamentals/authentication/oauth-1-0a/authorizing-a-request):
consumer key/secret and access token/secret that do not expire; each request is signed by
oauthlib (HMAC-SHA1) just before it leaves, over the method and URL only (X's JSON and
multipart bodies are not part of an OAuth 1.0a signature).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit

from stormer.channels.http import Request
from stormer.errors import Transient

if TYPE_CHECKING:
    from stormer.channels.base import Connection
    from stormer.channels.http import Response

# https://docs.x.com/fundamentals/authentication/oauth-2-0/authorization-code ("Scopes"):
# posting needs tweet.read tweet.write users.read (https://docs.x.com/x-api/posts/create-post),
# uploading media.write (https://docs.x.com/x-api/media/media-upload), and offline.access
# brings the refresh token that keeps an account usable past two hours.
SCOPES = ("tweet.read", "tweet.write", "users.read", "media.write", "offline.access")
AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"  # docs: "Step 2: GET oauth2/authorize"
TOKEN_PATH = "/2/oauth2/token"  # docs: "Step 3: POST oauth2/token"
EXPIRES_AT = "access_token_expires_at"  # kept with the tokens: an ISO 8601 UTC instant
OAUTH1_FIELDS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
# The listener's page once the code has arrived.
DONE_PAGE = b"stormer received the authorization: return to the terminal and press Enter."


def pkce_pair() -> tuple[str, str]:
    """(verifier, S256 challenge): RFC 7636 §4.1-4.2, 43-128 unreserved characters."""
    verifier = secrets.token_urlsafe(64)[:96]
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(
    base: str, *, client_id: str, redirect_uri: str, state: str, challenge: str
) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(SCOPES),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{base}?{query}"


def token_request(
    url: str, fields: dict[str, str], client_id: str, client_secret: str | None
) -> Request:
    """POST oauth2/token: a confidential client authenticates with HTTP Basic (docs:
    "Working with confidential clients"), a public one names itself in the body."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    body = dict(fields)
    if client_secret:
        pair = base64.b64encode(f"{client_id}:{client_secret}".encode()).decode("ascii")
        headers["Authorization"] = f"Basic {pair}"
    else:
        body["client_id"] = client_id
    return Request("POST", url, headers, urlencode(body).encode())


def expires_at(expires_in: object, now: datetime | None = None) -> str | None:
    """The instant an access token answered with `expires_in` seconds stops working."""
    if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool):
        return None
    instant = (now or datetime.now(UTC)) + timedelta(seconds=float(expires_in))
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def code_from(answer: str, state: str) -> str | None:
    """The code in what the organizer pasted: the whole redirected address (its `state`
    must be ours) or the code alone. None if the address is not an answer to our request."""
    answer = answer.strip()
    if "?" not in answer and "=" not in answer:
        return answer or None
    query = parse_qs(urlsplit(answer).query or answer)
    if query.get("state", [""])[0] != state:
        return None
    return query.get("code", [""])[0] or None


def oauth_error(response: Response) -> str:
    """The token endpoint's words (RFC 6749 §5.2: `error`, `error_description`)."""
    body = response.json()
    if not isinstance(body, dict):
        return f"HTTP {response.status}"
    parts = [str(body[k]) for k in ("error", "error_description") if body.get(k)]
    return ": ".join(parts) or f"HTTP {response.status}"


def tokens_from(response: Response, platform: str) -> dict[str, str]:
    """The credentials in a token endpoint's answer, by the names stormer keeps them under."""
    body = response.json()
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        raise Transient("X's token endpoint answered without an access token", platform=platform)
    values = {"access_token": body["access_token"]}
    if isinstance(body.get("refresh_token"), str):
        values["refresh_token"] = body["refresh_token"]
    expiry = expires_at(body.get("expires_in"))
    if expiry:
        values[EXPIRES_AT] = expiry
    return values


def oauth1_signed(request: Request, conn: Connection) -> Request:
    """`request` with an OAuth 1.0a Authorization header, signed now by oauthlib."""
    from oauthlib.oauth1 import SIGNATURE_HMAC, Client  # type: ignore[import-untyped]

    key, key_secret, token, token_secret = (conn.secret(f) for f in OAUTH1_FIELDS)
    signer = Client(
        key,
        client_secret=key_secret,
        resource_owner_key=token,
        resource_owner_secret=token_secret,
        signature_method=SIGNATURE_HMAC,
    )
    # No body: X's JSON and multipart bodies are not signed (RFC 5849 §3.4.1.3.1 signs
    # form-encoded bodies only).
    _, signed, _ = signer.sign(request.url, request.method)
    return dataclasses.replace(
        request, headers={**request.headers, "Authorization": signed["Authorization"]}
    )


class Loopback:
    """A one-shot HTTP listener on 127.0.0.1 that receives X's redirect (`?code=&state=`).

    `async with Loopback(port) as listener:` — `listener.redirect_uri` is what X redirects
    to, `listener.query` the redirect's parameters once the browser has come back."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.query: dict[str, str] | None = None
        self.arrived = asyncio.Event()
        self._server: asyncio.Server | None = None

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    async def __aenter__(self) -> Loopback:
        self._server = await asyncio.start_server(self._answer, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = (await asyncio.wait_for(reader.readline(), 10)).decode("latin-1")
            target = line.split(" ")[1] if line.count(" ") >= 2 else ""
            query = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
            found = urlsplit(target).path == "/callback" and ("code" in query or "error" in query)
            if found and self.query is None:
                self.query = query
                self.arrived.set()
            status = b"200 OK" if found else b"404 Not Found"
            body = DONE_PAGE if found else b"not here"
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
                b"Connection: close\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()
