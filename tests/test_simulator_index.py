"""`stormer simulator serve` says how to point a storm at it, and `GET /` lists what it
serves: each platform's paths and setting, and the control endpoints."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import httpx
from starlette.routing import Route

from stormer.simulator import create_app


def test_get_root_lists_the_platforms_their_setting_and_the_control_endpoints(
    simulator: str,
) -> None:
    answer = httpx.get(f"{simulator}/", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    doc = answer.json()
    assert doc["url"] == simulator
    platforms = doc["platforms"]
    assert set(platforms) == {"mastodon", "bluesky", "x", "telegram", "discord", "matrix"}
    for name in ("mastodon", "bluesky", "x", "telegram", "matrix"):
        assert platforms[name]["point"].startswith(f'base_url = "{simulator}"')
    assert platforms["discord"]["point"] == (
        f"the webhook_url credential = {simulator}/api/webhooks/<id>/<token>"
    )
    # The endpoints that post are listed, under their platform.
    assert "POST /api/v1/statuses" in platforms["mastodon"]["paths"]
    assert "POST /xrpc/{method}" in platforms["bluesky"]["paths"]
    assert "POST /2/tweets" in platforms["x"]["paths"]
    assert "POST /bot{token}/{method}" in platforms["telegram"]["paths"]
    assert "POST /api/webhooks/{id}/{token}" in platforms["discord"]["paths"]
    assert (
        "PUT /_matrix/client/v3/rooms/{room}/send/{type}/{txn:path}"
        in (platforms["matrix"]["paths"])
    )
    # Control endpoints apart, platform-specific ones included; no catch-alls, no HEAD.
    control = doc["control"]
    for endpoint in ("GET /_sim/posts", "POST /_sim/config", "POST /_sim/reset"):
        assert endpoint in control
    assert "POST /_sim/discord/forums" in control
    assert "POST /_sim/telegram/revoke" in control
    listed = [e for p in platforms.values() for e in p["paths"]] + control
    assert not any("{rest:path}" in e or e.startswith("HEAD ") for e in listed)
    assert not any(e.endswith("/") for e in listed)


def test_every_route_of_the_app_is_listed_once() -> None:
    """The index is read from the routes: a new endpoint cannot be left out of it."""
    app = create_app()

    async def get_index() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            return dict((await client.get("/")).json())

    index = asyncio.run(get_index())
    listed = [e for p in index["platforms"].values() for e in p["paths"]] + index["control"]
    assert len(listed) == len(set(listed))
    served = {
        f"{method} {route.path}"
        for route in app.routes
        if isinstance(route, Route)
        and route.path != "/"
        and not route.path.endswith(("{rest:path}", "/"))
        for method in (route.methods or set()) - {"HEAD"}
    }
    assert set(listed) == served


def test_serve_says_how_to_point_a_storm_at_it() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "stormer", "simulator", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()  # the address alone, first: scripts read it
        assert url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{url}/", timeout=10).json()["url"] == url
    finally:
        process.terminate()
        _, told = process.communicate(timeout=15)
    assert f"platform simulator at {url}" in told
    assert f'    mastodon  base_url = "{url}"' in told
    assert f"    discord   the webhook_url credential = {url}/api/webhooks/<id>/<token>" in told
    assert f"{url}/ lists every path it serves" in told
