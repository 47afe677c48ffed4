"""`GET /`: what this simulator serves — each platform's paths and how to point a storm's
account at it — and the control endpoints. Read from the routes themselves, so it cannot
fall behind them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ._web import json

# Where each platform's account in a storm's config.toml names its server: `{url}` is this
# simulator's address. Discord has no server setting: its webhook URL (a credential) is it.
POINT: Mapping[str, str] = {
    "mastodon": 'base_url = "{url}"',
    "bluesky": 'base_url = "{url}" (a second PDS: "{url}/pds2")',
    "x": 'base_url = "{url}"',
    "telegram": 'base_url = "{url}"',
    "discord": "the webhook_url credential = {url}/api/webhooks/<id>/<token>",
    "matrix": 'base_url = "{url}" (the homeserver)',
}
CONTROL_PREFIX = "/_sim/"
# Not served paths but the platforms' answer to any path they do not know (a 404 in their
# own error format): listing them would say the simulator serves everything.
_CATCH_ALL = "{rest:path}"


def how_to_point(url: str) -> dict[str, str]:
    """For each platform, what to write in a storm's account to use the simulator at `url`."""
    return {name: point.format(url=url) for name, point in POINT.items()}


def index(url: str, platforms: Mapping[str, Sequence[BaseRoute]]) -> dict[str, object]:
    """The answer to `GET /` for a simulator at `url` serving `platforms` (name → routes,
    the control routes under "control")."""
    served: dict[str, object] = {}
    control: list[str] = []
    for name, routes in platforms.items():
        paths: list[str] = []
        for method, path in _endpoints(routes):
            (control if path.startswith(CONTROL_PREFIX) else paths).append(f"{method} {path}")
        if name in POINT:
            served[name] = {"point": POINT[name].format(url=url), "paths": paths}
    return {
        "simulator": "a local imitation of six platform APIs: nothing sent here leaves this "
        "machine",
        "url": url,
        "platforms": served,
        "control": control,
    }


def _endpoints(routes: Sequence[BaseRoute]) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for route in routes:
        if not isinstance(route, Route) or route.path.endswith(_CATCH_ALL):
            continue
        if route.path.endswith("/") and route.path != "/":
            continue  # the same endpoint with a trailing slash
        methods = sorted((route.methods or set()) - {"HEAD"})
        found.extend((method, route.path) for method in methods)
    return found


def endpoint(platforms: Mapping[str, Sequence[BaseRoute]]) -> Route:
    """The `GET /` route listing `platforms`."""

    async def answer(request: Request) -> Response:
        return json(index(str(request.base_url).rstrip("/"), platforms))

    return Route("/", answer, methods=["GET"])
