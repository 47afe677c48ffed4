"""CORS as Mastodon sends it, so that a web page on another origin (the storm kit) can use
the API from the visitor's browser.

Mastodon answers CORS with rack-cors, configured in config/initializers/cors.rb
(https://github.com/mastodon/mastodon/blob/main/config/initializers/cors.rb), inserted
before every other middleware (so before rate limits: a preflight is never limited):
`origins '*'`, and these resources — the profile pages `/@:username` and `/users/:username`
as well, which the simulator does not serve. rack-cors's own rules
(https://github.com/cyu/rack-cors/blob/master/lib/rack/cors/resource.rb): a preflight
(OPTIONS with Origin and Access-Control-Request-Method) for an allowed method answers 200
with an empty body, `Access-Control-Allow-Origin: *` (public resources, no credentials),
the resource's methods, its exposed headers, `Access-Control-Max-Age: 7200` (the default
max_age) and the requested headers echoed back (`headers: :any`); a request with an Origin
gets the same headers on its answer. Any other preflight is answered 200 with no CORS
headers at all, which the browser takes as a refusal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class Resource:
    pattern: re.Pattern[str]
    methods: tuple[str, ...]
    expose: tuple[str, ...] = ()


# config/initializers/cors.rb; rack-cors compiles '/api/*' to ^/api/?(.*?)$.
RESOURCES = (
    Resource(re.compile(r"^/\.well-known/?.*$"), ("GET",)),
    Resource(
        re.compile(r"^/api/?.*$"),
        ("POST", "PUT", "DELETE", "GET", "PATCH", "OPTIONS"),
        ("Link", "X-RateLimit-Reset", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-Request-Id"),
    ),
    Resource(re.compile(r"^/oauth/token$"), ("POST",)),
    # Since Mastodon 4.3 (https://github.com/mastodon/mastodon/pull/31743, "Allow `POST
    # /oauth/revoke` through CORS"), so that a page can give back the token it obtained.
    Resource(re.compile(r"^/oauth/revoke$"), ("POST",)),
)
MAX_AGE = "7200"  # rack-cors: `opts[:max_age] || 7200`


def _resource(path: str) -> Resource | None:
    return next((r for r in RESOURCES if r.pattern.match(path)), None)


def _headers(resource: Resource) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", b"*"),
        (b"access-control-allow-methods", ", ".join(resource.methods).encode()),
        (b"access-control-expose-headers", ", ".join(resource.expose).encode()),
        (b"access-control-max-age", MAX_AGE.encode()),
    ]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class MastodonCors:
    """ASGI middleware: Mastodon's CORS answers. `elsewhere` names the paths it leaves alone:
    those of the other simulated platforms (Discord's /api/webhooks/ among them) and the
    simulator's own controls."""

    def __init__(self, app: ASGIApp, elsewhere: Callable[[str], bool]) -> None:
        self.app = app
        self.elsewhere = elsewhere

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        origin = _header(scope, b"origin") if scope["type"] == "http" else None
        if origin is None or self.elsewhere(path):
            await self.app(scope, receive, send)
            return
        resource = _resource(path)
        wanted = _header(scope, b"access-control-request-method")
        if scope["method"] == "OPTIONS" and wanted is not None:
            # A preflight is always answered here, 200 and empty; without the headers when
            # no resource allows it, so that the browser refuses the request.
            headers: list[tuple[bytes, bytes]] = []
            if resource is not None and wanted.upper() in resource.methods:
                headers = _headers(resource)
                asked = _header(scope, b"access-control-request-headers")
                if asked is not None:
                    headers.append((b"access-control-allow-headers", asked.encode("latin-1")))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        if resource is None:
            await self.app(scope, receive, send)
            return
        # rack-cors also says the answer depends on the Origin (Vary: Origin).
        extra = [*_headers(resource), (b"vary", b"Origin")]

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_cors)
