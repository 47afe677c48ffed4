"""The engine for the burst at T: one pooled aiohttp session sending plugins' final requests.

httpx stays the API everywhere else (staging, confirmation, MockTransport in tests); at T the
transport decides how fast 10,000 posts leave (DESIGN.md, "The hot path"). Failures are
classified here, not by a generic adapter: only a failure to *connect* proves the request
never left; anything after that may have reached the platform and is OutcomeUnknown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stormer.channels.http import Response
from stormer.errors import OutcomeUnknown, Transient

if TYPE_CHECKING:
    import aiohttp

    from stormer.channels.http import Request


class AiohttpSender:
    """A `Sender` (see platforms.base.Connection) over one pooled aiohttp session."""

    def __init__(self, *, connections: int = 1000, timeout: float = 60.0) -> None:
        self.connections = connections
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AiohttpSender:
        import aiohttp

        self._session = aiohttp.ClientSession(
            # Idle connections are dropped after 3 s: servers commonly close theirs after 5 s,
            # and a request sent on a connection the server just closed fails ambiguously.
            connector=aiohttp.TCPConnector(
                limit=self.connections, limit_per_host=0, ttl_dns_cache=600, keepalive_timeout=3
            ),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __call__(self, request: Request, *, platform: str, mutating: bool) -> Response:
        import aiohttp

        assert self._session is not None, "use `async with AiohttpSender()`"
        try:
            async with self._session.request(
                request.method,
                request.url,
                headers=dict(request.headers),
                data=request.content or None,
                allow_redirects=False,
            ) as r:
                body = await r.read()
                return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, body)
        except aiohttp.ClientConnectorError as e:
            raise Transient(
                f"could not reach the server ({type(e).__name__})", platform=platform
            ) from None
        except (TimeoutError, aiohttp.ClientError) as e:
            cls = OutcomeUnknown if mutating else Transient
            raise cls(
                f"no answer from the server ({type(e).__name__})", platform=platform
            ) from None
