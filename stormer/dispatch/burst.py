"""The engine for the burst at T: pooled aiohttp sessions sending plugins' final requests.

httpx stays the API everywhere else (staging, confirmation, MockTransport in tests); at T the
transport decides how fast 10,000 posts leave (DESIGN.md, "The hot path"). Failures are
classified here, not by a generic adapter: only a failure to *connect* proves the request
never left; anything after that may have reached the platform and is OutcomeUnknown.

A pooled connection may be one the server has already closed for idleness: aiohttp stamps
a connection idle when its event loop gets round to reading the answer and takes the
*oldest* idle one first, so a worker whose loop runs seconds late (a burst, staging on a
loaded machine) sends on connections that were idle past the server's keep-alive (uvicorn's
and Apache's default: 5 s) although its own limit is 3 s. The server never reads such a
request, but the client cannot tell that from a post that landed and lost its answer (RFC
9110 §9.2.2: only idempotent requests are retried). A post on a platform that can be asked
afterwards (an idempotency key, a record key, a transaction id, a read-back) then ends
OutcomeUnknown and is asked and sent once: it keeps the pool. A post on a platform that
cannot be asked (Telegram, Discord) would end unconfirmed though it never left
(bench/README.md, scale), so it goes on a connection of its own, which cannot have been
closed for idleness. Not every post does: over HTTPS a new connection costs the client a
TLS handshake, 2.3 ms of CPU per post more than the pool (bench/tls_connections.py: 0.7 ms
pooled, 3.0 ms with a connection each), seconds of a 10,000-post burst.
Requests safe to repeat keep the pool and, failing on it, are sent once more at once on a
fresh connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stormer.channels import registry
from stormer.channels.http import Response
from stormer.errors import OutcomeUnknown, Transient, UnknownPlatform

if TYPE_CHECKING:
    import aiohttp

    from stormer.channels.http import Request


class AiohttpSender:
    """A `Sender` (see platforms.base.Connection) over aiohttp: a pool, and a connection of
    its own for each post on a platform that cannot be asked whether it landed."""

    def __init__(self, *, connections: int = 1000, timeout: float = 60.0) -> None:
        self.connections = connections
        self.timeout = timeout
        self._pooled: aiohttp.ClientSession | None = None
        self._fresh: aiohttp.ClientSession | None = None
        self._unaskable: dict[str, bool] = {}  # by platform name

    def _cannot_be_asked(self, platform: str) -> bool:
        """Whether a post on `platform` cannot be asked about afterwards (idempotency
        "none"): it must not ride a connection the server may have closed. An unknown
        platform is taken to be one of those."""
        verdict = self._unaskable.get(platform)
        if verdict is None:
            try:
                verdict = registry.get(platform).idempotency == "none"
            except UnknownPlatform:
                verdict = True
            self._unaskable[platform] = verdict
        return verdict

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
        import asyncio

        for session in (self._pooled, self._fresh):
            if session is not None:
                await session.close()
        self._pooled = self._fresh = None
        # Closing a connection only schedules its transport's end: one turn of the loop lets
        # it run, or a loop closed right after leaves the socket to the garbage collector
        # (aiohttp's docs, "Graceful Shutdown").
        await asyncio.sleep(0)

    async def __call__(self, request: Request, *, platform: str, mutating: bool) -> Response:
        import aiohttp

        assert self._pooled is not None and self._fresh is not None, (
            "use `async with AiohttpSender()`"
        )
        try:
            if mutating:
                fresh = self._cannot_be_asked(platform)
                return await _send(self._fresh if fresh else self._pooled, request)
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
