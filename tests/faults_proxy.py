"""A reverse proxy in front of the simulator that resets connections the way a network does:
a TCP RST (SO_LINGER 0, then close), not an HTTP answer.

Every request is read whole, so each one of a kept-alive connection is looked at. Once armed
(`arm`), the first post-creating request of each platform meets the fault:

- "before": the connection is reset once the request has arrived, and nothing is forwarded:
  the platform never sees it, the client cannot know that.
- "after": the request is forwarded, the platform answers (the post exists), and the
  client's connection is reset instead of the answer reaching it.

And `down` … `up`: nothing listens in between, and the open connections are reset: every
connection is refused, as when the platform's servers or the network are down.

Everything else is forwarded as it is, Host header included, so the simulator's URLs name
the proxy; `answers` records what each request was answered.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import threading
from dataclasses import dataclass, field
from typing import Any

# The path of a request that creates a post, per platform.
POSTING = {
    "mastodon": re.compile(r"^/api/v1/statuses$"),
    "bluesky": re.compile(r"/com\.atproto\.repo\.putRecord$"),
    "x": re.compile(r"^/2/tweets$"),
    "telegram": re.compile(r"^/bot[^/]+/send"),
    "discord": re.compile(r"/webhooks/"),
    "matrix": re.compile(r"/send/m\.room\.message/"),
}
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"}


def posting_platform(method: str, path: str) -> str | None:
    if method not in ("POST", "PUT"):
        return None
    return next((p for p, pattern in POSTING.items() if pattern.search(path)), None)


@dataclass
class ResetProxy:
    upstream: str
    url: str = ""
    mode: str | None = None
    pending: set[str] = field(default_factory=set)  # platforms whose reset is still to come
    applied: list[str] = field(default_factory=list)  # "platform: mode", in order
    # Every answer forwarded: (path, status, the body's `error` where it is an error).
    answers: list[tuple[str, int, str | None]] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _ready: threading.Event = field(default_factory=threading.Event)
    _stop: Any = None
    _session: Any = None  # aiohttp.ClientSession to the upstream
    _thread: Any = None
    _runner: Any = None  # aiohttp.web.AppRunner
    _site: Any = None  # the listening site; None while down
    _port: int = 0
    _open: set[Any] = field(default_factory=set)  # client connections' transports

    def arm(self, mode: str, platforms: tuple[str, ...] = tuple(POSTING)) -> None:
        assert mode in ("before", "after")
        self.mode, self.pending = mode, set(platforms)

    def down(self) -> None:
        """Stop listening and reset every open connection: from now on connecting is
        refused (ECONNREFUSED), as when the platform or the network is down."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._down(), self._loop).result(30)

    def up(self) -> None:
        """Listen again, on the same port."""
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(30)

    async def _down(self) -> None:
        await self._site.stop()
        self._site = None
        for transport in self._open:
            _reset_transport(transport)
        self._open.clear()

    async def _listen(self) -> None:
        from aiohttp import web

        listening = socket.socket()
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(("127.0.0.1", self._port))
        self._site = web.SockSite(self._runner, listening)
        await self._site.start()
        self._port = listening.getsockname()[1]

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="reset-proxy", daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the proxy did not start"

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)

    def _serve(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        import aiohttp
        from aiohttp import web

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await self._listen()
        self.url = f"http://127.0.0.1:{self._port}"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._runner.cleanup()
            await self._session.close()

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        self._open.add(request.transport)
        platform = posting_platform(request.method, request.path)
        fault = self.mode if platform in self.pending else None
        if fault is not None:
            assert platform is not None
            self.pending.discard(platform)
            self.applied.append(f"{platform}: {fault}")
        body = await request.read()
        if fault == "before":
            _reset(request)
            raise asyncio.CancelledError  # aiohttp drops the handler: nothing is answered
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body,
            allow_redirects=False,
        ) as answer:
            content = await answer.read()
            if fault == "after":
                _reset(request)
                raise asyncio.CancelledError
            self.answers.append((request.path, answer.status, _error_of(answer.status, content)))
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
            return web.Response(status=answer.status, headers=kept, body=content)


def _error_of(status: int, content: bytes) -> str | None:
    if status < 400:
        return None
    try:
        body = json.loads(content)
    except ValueError:
        return None
    return str(body.get("error")) if isinstance(body, dict) else None


def _reset(request: Any) -> None:
    """Close the client's connection with a TCP RST."""
    _reset_transport(request.transport)


def _reset_transport(transport: Any) -> None:
    if transport is None or transport.is_closing():
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
