"""`/_sim/*`: what tests and rehearsals ask the simulator — the post log, reset, faults, the
simulator's clock."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._web import body_json, json, sim
from .clock import Clock
from .faults import SimConfig


async def posts(request: Request) -> Response:
    """Every accepted post in the order received; `?platform=` and `?account=` filter."""
    wanted = request.query_params
    return json(
        [
            post.as_json()
            for post in sim(request).store.posts
            if wanted.get("platform", post.platform) == post.platform
            and wanted.get("account", post.account) == post.account
        ]
    )


async def receive_reminder(request: Request) -> Response:
    """An inbox for notifications (Apprise's json:// posts here): a rehearsal sends every
    participant's reminder to it instead of the participant. Kept with the receive time and
    the `X-Rehearsal-To` header (which participant it stands for)."""
    received_at = datetime.now(UTC)
    body = await body_json(request)
    if not isinstance(body, dict):
        return json({"error": "the body must be a JSON object"}, 400)
    sim(request).store.reminders.append(
        {
            "to": request.headers.get("x-rehearsal-to"),
            "title": body.get("title"),
            "message": body.get("message"),
            "received_at": received_at.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        }
    )
    return json({"ok": True})


async def reminders(request: Request) -> Response:
    return json(sim(request).store.reminders)


async def reset(request: Request) -> Response:
    """Forget posts, media, sessions and idempotency keys; the config stays."""
    sim(request).reset()
    return json({"ok": True})


async def get_config(request: Request) -> Response:
    return json(sim(request).config.to_dict())


async def set_config(request: Request) -> Response:
    """Keys given replace those the app was created with; `{}` restores that config."""
    body = await body_json(request)
    if not isinstance(body, dict):
        return json({"error": "the body must be a JSON object"}, 400)
    state = sim(request)
    try:
        config = SimConfig.from_dict(body, base=request.app.state.initial_config)
    except (ValueError, TypeError) as e:
        return json({"error": str(e)}, 400)
    state.configure(config)
    return json(config.to_dict())


def _now_json(clock: Clock) -> dict[str, object]:
    moment = datetime.fromtimestamp(clock.now(), UTC)
    return {
        "now": moment.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "offset_s": clock.offset_s,
    }


async def get_clock(request: Request) -> Response:
    return json(_now_json(sim(request).clock))


async def move_clock(request: Request) -> Response:
    """`{"advance_s": 3600}` moves the clock ahead; `{"to": "2026-12-02T12:00:00Z"}` sets it
    to a moment (not in its past). `POST /_sim/reset` puts it back to real time."""
    body = await body_json(request)
    clock = sim(request).clock
    try:
        if not isinstance(body, dict) or len(body) != 1 or not {"advance_s", "to"} & set(body):
            raise ValueError('the body must be {"advance_s": seconds} or {"to": an ISO time}')
        if "to" in body:
            target = datetime.fromisoformat(str(body["to"]))
            if target.tzinfo is None:
                raise ValueError('"to" needs a UTC offset, e.g. 2026-12-02T12:00:00Z')
            clock.advance(target.timestamp() - clock.now())
        else:
            clock.advance(float(body["advance_s"]))
    except (ValueError, TypeError) as e:
        return json({"error": str(e)}, 400)
    return json(_now_json(clock))


routes = [
    Route("/_sim/posts", posts),
    Route("/_sim/reset", reset, methods=["POST"]),
    Route("/_sim/reminders", receive_reminder, methods=["POST"]),
    Route("/_sim/reminders", reminders, methods=["GET"]),
    Route("/_sim/config", get_config, methods=["GET"]),
    Route("/_sim/config", set_config, methods=["POST"]),
    Route("/_sim/clock", get_clock, methods=["GET"]),
    Route("/_sim/clock", move_clock, methods=["POST"]),
]
