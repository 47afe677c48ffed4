"""A local imitation of the six platform APIs stormer posts to, for tests, benchmarks and
rehearsals: `create_app()` is an ASGI app serving all of them on one port (their paths do
not collide), with latency, errors, timeouts, ambiguous outcomes and rate limits on demand.

It shares no code with stormer's platform clients, on purpose: its rules are written again
from each platform's documentation, so a mistake in a client cannot pass because the
simulator makes the same one.

    Mastodon   /api/v1/…, /api/v2/…        Bluesky   /xrpc/… (a second PDS: /pds2/xrpc/…)
    X          /2/…                        Telegram  /bot<token>/<method>
    Discord    /api/webhooks/…, /api/v10/webhooks/…
    Matrix     /_matrix/…                  control   /_sim/posts, /_sim/reset, /_sim/config,
                                                     /_sim/reminders, /_sim/discord/forums,
                                                     /_sim/telegram/revoke, /_sim/clock
    GET /      what it serves, and how to point a storm's accounts at it (index.py)
"""

from __future__ import annotations

import logging

from starlette.applications import Starlette
from starlette.middleware import Middleware

from . import bluesky, control, discord, index, mastodon, matrix, telegram, x
from .clock import Ticks
from .faults import FaultLayer, Faults, RateLimit, SimConfig, SimulatedDrop, parse_latency
from .mastodon_cors import MastodonCors
from .mastodon_scheduled import publish_due
from .state import Sim

__all__ = ["Faults", "RateLimit", "SimConfig", "create_app", "parse_latency"]

# Discord's paths live under /api/ too, so it is asked before Mastodon.
PLATFORMS = [
    discord.PLATFORM,
    mastodon.PLATFORM,
    bluesky.PLATFORM,
    x.PLATFORM,
    telegram.PLATFORM,
    matrix.PLATFORM,
]


def _not_mastodons(path: str) -> bool:
    """Paths Mastodon's CORS leaves alone: the other platforms' and the controls."""
    return path.startswith(index.CONTROL_PREFIX) or any(
        p.owns(path) for p in PLATFORMS if p is not mastodon.PLATFORM
    )


class _QuietDrops(logging.Filter):
    """A dropped connection is a fault we injected on purpose, not a server error to log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SimulatedDrop))


def create_app(config: SimConfig | None = None) -> Starlette:
    """The simulator as an ASGI app; its state lives in `app.state.sim`."""
    config = config or SimConfig()
    sim = Sim(config)
    app = Starlette(
        routes=[
            index.endpoint(
                {
                    "control": control.routes,
                    "mastodon": mastodon.routes,
                    "bluesky": bluesky.routes,
                    "x": x.routes,
                    "telegram": telegram.routes,
                    "discord": discord.routes,
                    "matrix": matrix.routes,
                }
            ),
            *control.routes,
            *discord.routes,
            *mastodon.routes,
            *bluesky.routes,
            *x.routes,
            *telegram.routes,
            *matrix.routes,
        ],
        # Outermost first: Mastodon's CORS comes before everything, rate limits included
        # (mastodon_cors.py); then what fell due on the simulator's clock (clock.py).
        middleware=[
            Middleware(MastodonCors, elsewhere=_not_mastodons),
            Middleware(Ticks, tickers=[lambda: publish_due(sim)]),
            Middleware(FaultLayer, sim=sim, platforms=PLATFORMS),
        ],
    )
    app.state.sim = sim
    app.state.initial_config = config
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDrops) for f in error_log.filters):
        error_log.addFilter(_QuietDrops())
    return app
