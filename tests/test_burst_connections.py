"""The burst's aiohttp sender and the connections it sends on, against a real local HTTP/1.1
server that closes idle keep-alive connections, as uvicorn and Apache do after 5 s
(https://httpd.apache.org/docs/2.4/mod/core.html#keepalivetimeout).

A worker whose event loop runs late (a burst, staging on a loaded machine) has not yet read
the server's close when it takes a pooled connection: aiohttp reuses it, the server never
reads the request, and the client gets `ServerDisconnectedError`. For a post that is
OutcomeUnknown — on Telegram and Discord an `unconfirmed` item that never left
(bench/README.md, scale). The tests stall the loop until the server has closed the idle
connection (the late loop, without a timing guess), then send."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest

from stormer.channels.http import Request
from stormer.dispatch.burst import AiohttpSender
from stormer.errors import OutcomeUnknown, Transient

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


class KeepAliveServer:
    """Answers every request 200 on a kept-alive connection, and closes a connection left
    idle for `idle_close` seconds; counts the requests it read and the idle closes."""

    def __init__(self, idle_close: float = 0.05) -> None:
        self.idle_close = idle_close
        self.requests: list[bytes] = []
        self.connections = 0  # accepted so far
        self.closed_idle = threading.Semaphore(0)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.Server
        self.port = 0

    def __enter__(self) -> KeepAliveServer:
        self._thread.start()
        self._ready.wait(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=15)
        self._loop.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.idle_close)
                except TimeoutError:
                    self.closed_idle.release()
                    return
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                self.requests.append(head.split(b" ", 2)[0] + await reader.readexactly(length))
                writer.write(ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


@pytest.fixture
def server() -> Iterator[KeepAliveServer]:
    with KeepAliveServer() as running:
        yield running


def late_loop(server: KeepAliveServer) -> None:
    """Block this event loop (as a burst's CPU does) until the server has closed the idle
    connection: the loop has not read that close when the next request takes a connection."""
    assert server.closed_idle.acquire(timeout=60), "the server never closed the idle connection"


def test_a_post_never_goes_on_a_connection_the_server_closed_while_idle(
    server: KeepAliveServer,
) -> None:
    async def main() -> int:
        async with AiohttpSender(timeout=30) as sender:
            await sender(Request("GET", server.url), platform="discord", mutating=False)
            late_loop(server)
            post = Request("POST", f"{server.url}/webhook", content=b"the post")
            answer = await sender(post, platform="discord", mutating=True)
            return answer.status

    assert asyncio.run(main()) == 200
    assert server.requests == [b"GET", b"POSTthe post"]


@pytest.mark.parametrize(("platform", "connections"), [("discord", 3), ("mastodon", 1)])
def test_only_posts_that_cannot_be_asked_about_open_a_connection_each(
    server: KeepAliveServer, platform: str, connections: int
) -> None:
    """Over HTTPS each new connection is a TLS handshake (2.3 ms of the client's CPU per post,
    bench/tls_connections.py): posts that can be asked about afterwards keep the pool."""

    async def main() -> None:
        async with AiohttpSender(timeout=30) as sender:
            for n in range(3):
                post = Request("POST", f"{server.url}/post", content=b"post %d" % n)
                await sender(post, platform=platform, mutating=True)

    asyncio.run(main())
    assert server.connections == connections
    assert server.requests == [b"POSTpost 0", b"POSTpost 1", b"POSTpost 2"]


def test_a_post_that_can_be_asked_about_ends_unknown_on_a_closed_connection(
    server: KeepAliveServer,
) -> None:
    """It keeps the pool, so a stale connection can take it: the server never read it, and
    it is OutcomeUnknown, which firing settles by asking Mastodon (its idempotency key)."""

    async def main() -> None:
        async with AiohttpSender(timeout=30) as sender:
            await sender(Request("GET", server.url), platform="mastodon", mutating=False)
            late_loop(server)
            post = Request("POST", f"{server.url}/statuses", content=b"the post")
            await sender(post, platform="mastodon", mutating=True)

    with pytest.raises(OutcomeUnknown):
        asyncio.run(main())
    assert server.requests == [b"GET"]


def test_a_request_safe_to_repeat_is_sent_again_at_once_on_a_fresh_connection(
    server: KeepAliveServer,
) -> None:
    async def main() -> list[int]:
        async with AiohttpSender(timeout=30) as sender:
            first = await sender(Request("GET", server.url), platform="bluesky", mutating=False)
            late_loop(server)
            upload = Request("POST", f"{server.url}/upload", content=b"image")
            second = await sender(upload, platform="bluesky", mutating=False)
            return [first.status, second.status]

    assert asyncio.run(main()) == [200, 200]
    assert server.requests == [b"GET", b"POSTimage"]


def test_a_connection_the_server_never_accepts_is_transient_not_unknown() -> None:
    """A server whose accept queue is full drops the connection attempt (Linux: listen(2)'s
    backlog); the connection is never made within the timeout, so the post cannot have left
    and may be sent again."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    address = listener.getsockname()
    waiting = [socket.socket() for _ in range(2)]
    for s in waiting:  # the queue fills; a later attempt is dropped, not refused
        s.setblocking(False)
        s.connect_ex(address)
    post = Request("POST", f"http://127.0.0.1:{address[1]}/post", content=b"the post")

    async def main() -> None:
        async with AiohttpSender(timeout=0.5) as sender:
            await sender(post, platform="telegram", mutating=True)

    try:
        with pytest.raises(Transient, match="could not reach the server"):
            asyncio.run(main())
    finally:
        for s in (*waiting, listener):
            s.close()
