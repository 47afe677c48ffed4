"""The engine for the burst at T: pooled aiohttp sessions sending plugins' final requests.

httpx stays the API everywhere else (staging, confirmation, MockTransport in tests); at T the
transport decides how fast 10,000 posts leave (DESIGN.md, "The hot path"). Failures are
classified here, not by a generic adapter: only a failure to *connect* proves the request
never left; anything after that may have reached the platform and is OutcomeUnknown.

Posts go on connections of their own. A pooled connection may be one the server has
already closed for idleness: aiohttp stamps a connection idle when its event loop gets round
to reading the answer and takes the *oldest* idle one first, so a worker whose loop runs
seconds late (a burst, staging on a loaded machine) sends on connections that were idle past
the server's keep-alive (uvicorn's and Apache's default: 5 s) although its own limit is 3 s.
The server never reads such a request, but the client cannot tell that from a post that
landed and lost its answer (RFC 9110 §9.2.2: only idempotent requests are retried), so a
post would end unconfirmed (Telegram, Discord) though it never left (bench/README.md, scale).
A fresh connection cannot have been closed for idleness. Requests safe to repeat keep the pool
and, failing on it, are sent once more at once on a fresh connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stormer.channels.http import Response
from stormer.errors import OutcomeUnknown, Transient

if TYPE_CHECKING:
    import aiohttp

    from stormer.channels.http import Request


class AiohttpSender:
    """A `Sender` (see platforms.base.Connection) over aiohttp: a pool for requests safe to
    repeat, a connection of its own for each post."""

    def __init__(self, *, connections: int = 1000, timeout: float = 60.0) -> None:
        self.connections = connections
        self.timeout = timeout
        self._pooled: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AiohttpSender:
        import aiohttp

        def session(connector: aiohttp.TCPConnector) -> aiohttp.ClientSession:
            # A connection not made (a free slot included) within half the timeout raises
            # ConnectionTimeoutError, which says nothing left; the total timeout cannot.
            timeout = aiohttp.ClientTimeout(total=self.timeout, connect=self.timeout / 2)
            return aiohttp.ClientSession(connector=connector, timeout=timeout)

        # Idle connections are dropped after 3 s: servers commonly close theirs after 5 s.
        self._pooled = session(
            aiohttp.TCPConnector(
                limit=self.connections, limit_per_host=0, ttl_dns_cache=600, keepalive_timeout=3
            )
        )
        self._fresh = session(
            aiohttp.TCPConnector(
                limit=self.connections, limit_per_host=0, ttl_dns_cache=600, force_close=True
            )
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        for session in (self._pooled, self._fresh):
            if session is not None:
                await session.close()
        self._pooled = self._fresh = None

    async def __call__(self, request: Request, *, platform: str, mutating: bool) -> Response:
        import aiohttp

        assert self._pooled is not None and self._fresh is not None, (
            "use `async with AiohttpSender()`"
        )
        try:
            if mutating:
                return await _send(self._fresh, request)
            try:
                return await _send(self._pooled, request)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as e:
                if isinstance(e, aiohttp.ClientConnectorError):
                    raise
                # Most likely a pooled connection the server had closed: safe to repeat.
                return await _send(self._fresh, request)
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as e:
            # No connection, or none within the timeout (a free slot included): nothing left.
            raise Transient(
                f"could not reach the server ({type(e).__name__})", platform=platform
            ) from None
        except (TimeoutError, aiohttp.ClientError) as e:
            cls = OutcomeUnknown if mutating else Transient
            raise cls(
                f"no answer from the server ({type(e).__name__})", platform=platform
            ) from None


async def _send(session: aiohttp.ClientSession, request: Request) -> Response:
    async with session.request(
        request.method,
        request.url,
        headers=dict(request.headers),
        data=request.content or None,
        allow_redirects=False,
    ) as r:
        body = await r.read()
        return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, body)
