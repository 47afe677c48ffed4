"""What a new HTTPS connection per post costs the client: N concurrent POSTs to a local
HTTPS server (aiohttp, a throwaway self-signed certificate), on a pool and with a
connection each, in one event loop. Prints the client's CPU seconds and the wall time.

    .venv/bin/python bench/tls_connections.py [--posts 2000] [--connections 200]

Why: the burst sender gives each post on a platform that cannot be asked whether it landed
(Telegram, Discord) a connection of its own (stormer/dispatch/burst.py); the rest keep the
pool. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER = """
import ssl, sys
from aiohttp import web
async def answer(request):
    await request.read()
    return web.json_response({"id": "1"})
app = web.Application()
app.router.add_post("/", answer)
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(sys.argv[1], sys.argv[2])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[3]), ssl_context=context, print=None,
            backlog=4096)
"""


async def send_all(
    url: str, cafile: str, posts: int, connections: int, fresh: bool
) -> tuple[float, float]:
    import aiohttp

    context = ssl.create_default_context(cafile=cafile)
    connector = aiohttp.TCPConnector(limit=connections, ssl=context, force_close=fresh)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            async with session.post(url, data=b'{"status": "a post"}') as r:
                await r.read()

        await one()  # the server is up, its certificate verified
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one() for _ in range(posts)))
        return time.process_time() - cpu, time.perf_counter() - wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--port", type=int, default=8443)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "1",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
        server = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(cert), str(key), str(args.port)]
        )
        try:
            url = f"https://127.0.0.1:{args.port}/"
            for _ in range(100):  # until the server listens
                try:
                    asyncio.run(send_all(url, str(cert), 0, 1, False))
                    break
                except OSError:
                    time.sleep(0.1)
            for fresh in (False, True):
                cpu, wall = asyncio.run(
                    send_all(url, str(cert), args.posts, args.connections, fresh)
                )
                how = "a connection each" if fresh else f"a pool of {args.connections}"
                print(
                    f"{args.posts} posts, {how}: client CPU {cpu:.2f} s, wall {wall:.2f} s, "
                    f"{cpu / args.posts * 1000:.2f} ms of CPU per post"
                )
        finally:
            server.terminate()
            server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
