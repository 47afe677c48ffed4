"""Matrix client-server API, the part a poster uses (https://spec.matrix.org/latest/client-server-api/).
Logging in, devices and expiring tokens: matrix_auth.py.

A transaction id is scoped to the device behind the access token ("The scope of a
transaction ID is for a single device", https://spec.matrix.org/v1.13/client-server-api/#transaction-identifiers;
Synapse does the same): the same txnId from the same device answers the first event_id and
sends nothing, also after a refresh or a new login with the same device_id; a new device
sends again. Joining a room id or alias the simulator has not seen creates the room,
so rehearsals need no set-up; sending to a room one has not joined is refused.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._web import body_json, json, received_at, sim
from .faults import Platform, RateLimit, retry_after_s
from .matrix_auth import SERVER, error, login, login_flows, logout, random_id, refresh, whoami
from .matrix_auth import who as _whoami
from .state import Media, Post, digest, scope_header

if TYPE_CHECKING:
    from starlette.types import Scope

EVENT_LIMIT = 65536
CLIENT = "/_matrix/client/v3"
VERSIONS = [
    "r0.6.1",
    "v1.1",
    "v1.2",
    "v1.3",
    "v1.4",
    "v1.5",
    "v1.6",
    "v1.7",
    "v1.8",
    "v1.9",
    "v1.10",
    "v1.11",
]


@dataclass
class Room:
    id: str
    members: set[str] = field(default_factory=set)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class State:
    rooms: dict[str, Room] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    txns: dict[tuple[str, str, str, str, str], str] = field(default_factory=dict)
    uploads: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # media id → (data, mime)


def _state(request: Request) -> State:
    return sim(request).store.space("matrix", State)


async def versions(request: Request) -> Response:
    return json({"versions": VERSIONS, "unstable_features": {}})


def _event(
    room: Room, sender: str, kind: str, content: dict[str, Any], state_key: str | None = None
) -> dict[str, Any]:
    seed = f"{room.id}\x00{len(room.events)}\x00{time.time_ns()}".encode()
    event: dict[str, Any] = {
        "event_id": "$"
        + base64.urlsafe_b64encode(hashlib.sha256(seed).digest()).decode().rstrip("="),
        "room_id": room.id,
        "sender": sender,
        "type": kind,
        "content": content,
        "origin_server_ts": int(time.time() * 1000),
        "unsigned": {},
    }
    if state_key is not None:
        event["state_key"] = state_key
    room.events.append(event)
    return event


def _join(room: Room, user: str) -> None:
    if user not in room.members:
        room.members.add(user)
        _event(room, user, "m.room.member", {"membership": "join"}, user)


async def create_room(request: Request) -> Response:
    who = _whoami(request)
    if isinstance(who, Response):
        return who
    body = await body_json(request)
    body = body if isinstance(body, dict) else {}
    state = _state(request)
    alias = body.get("room_alias_name")
    if alias and f"#{alias}:{SERVER}" in state.aliases:
        return error(400, "M_ROOM_IN_USE", "Room alias already taken")
    room = Room(f"!{random_id(18)}:{SERVER}")
    state.rooms[room.id] = room
    _event(room, who[0], "m.room.create", {"creator": who[0], "room_version": "10"}, "")
    _join(room, who[0])
    if isinstance(body.get("name"), str):
        _event(room, who[0], "m.room.name", {"name": body["name"]}, "")
    if alias:
        state.aliases[f"#{alias}:{SERVER}"] = room.id
    return json({"room_id": room.id})


async def join(request: Request) -> Response:
    who = _whoami(request)
    if isinstance(who, Response):
        return who
    target = request.path_params["room"]
    state = _state(request)
    if target.startswith("#") and ":" in target:
        room_id = state.aliases.setdefault(
            target, f"!{digest('matrix-alias', target)[:18]}:{SERVER}"
        )
    elif target.startswith("!") and ":" in target:
        room_id = target
    else:
        return error(400, "M_INVALID_PARAM", f"{target} was not legal room ID or room alias")
    room = state.rooms.setdefault(room_id, Room(room_id))
    _join(room, who[0])
    return json({"room_id": room.id})


async def joined_rooms(request: Request) -> Response:
    who = _whoami(request)
    if isinstance(who, Response):
        return who
    return json(
        {"joined_rooms": [r.id for r in _state(request).rooms.values() if who[0] in r.members]}
    )


async def upload(request: Request) -> Response:
    who = _whoami(request)
    if isinstance(who, Response):
        return who
    data = await request.body()
    limit = sim(request).config.matrix_upload_bytes
    if len(data) > limit:
        # 413 M_TOO_LARGE: "The uploaded content is too large for the server."
        # https://spec.matrix.org/v1.13/client-server-api/#post_matrixmediav3upload
        return error(413, "M_TOO_LARGE", f"Cannot upload files larger than {limit} bytes")
    media_id = random_id(24)
    mime = request.headers.get("content-type") or "application/octet-stream"
    _state(request).uploads[media_id] = (data, mime)
    return json({"content_uri": f"mxc://{SERVER}/{media_id}"})


async def media_config(request: Request) -> Response:
    """The upload limit, to authenticated clients: "m.upload.size: The maximum size an upload
    can be in bytes" (GET /_matrix/client/v1/media/config, added in v1.11 with "requires
    authentication"; the legacy /_matrix/media/v3/config too).
    https://spec.matrix.org/v1.13/client-server-api/#get_matrixclientv1mediaconfig"""
    who = _whoami(request)
    if isinstance(who, Response):
        return who
    return json({"m.upload.size": sim(request).config.matrix_upload_bytes})


async def download(request: Request) -> Response:
    who = _whoami(request)
    if isinstance(who, Response):
        return who
    found = _state(request).uploads.get(request.path_params["media_id"])
    if request.path_params["server"] != SERVER or found is None:
        return error(404, "M_NOT_FOUND", "Not found")
    return Response(found[0], media_type=found[1])


def _member_room(request: Request, user: str) -> Room | Response:
    room = _state(request).rooms.get(request.path_params["room"])
    if room is None or user not in room.members:
        return error(403, "M_FORBIDDEN", f"User {user} not in room {request.path_params['room']}")
    return room


async def send(request: Request) -> Response:
    who = _whoami(request)
    if isinstance(who, Response):
        return who
    user, device = who
    room = _member_room(request, user)
    if isinstance(room, Response):
        return room
    state = _state(request)
    kind, txn = request.path_params["type"], request.path_params["txn"]
    key = (user, device, room.id, kind, txn)
    if key in state.txns:  # a retransmission: the first answer, and nothing new
        return json({"event_id": state.txns[key]})
    content = await body_json(request)
    if not isinstance(content, dict):
        return error(400, "M_NOT_JSON", "Content not JSON.")
    if len(orjson.dumps(content)) + 512 > EVENT_LIMIT:  # 512: the envelope around the content
        return error(413, "M_TOO_LARGE", "Event too large")
    event = _event(room, user, kind, content)
    event["unsigned"]["transaction_id"] = txn
    state.txns[key] = event["event_id"]
    if kind == "m.room.message":
        _log(request, state, user, room, event)
    return json({"event_id": event["event_id"]})


def _log(request: Request, state: State, user: str, room: Room, event: dict[str, Any]) -> None:
    content = event["content"]
    body = str(content.get("body", ""))
    text, media = body, []
    if content.get("msgtype") in ("m.image", "m.file", "m.video", "m.audio"):
        # Matrix has no alt-text field. Since v1.10 `body` is a caption when `filename` is set
        # and differs from it: shown with the image, and its only text alternative
        # (https://spec.matrix.org/v1.13/client-server-api/#media-captions); equal to
        # `filename` it is just the file's name; without `filename` it is, as before v1.10,
        # "a textual representation of the image".
        filename = content.get("filename")
        caption = bool(filename) and filename != body
        info = content.get("info") if isinstance(content.get("info"), dict) else {}
        url = str(content.get("url", ""))
        uploaded = state.uploads.get(url.rsplit("/", 1)[-1]) if url.startswith("mxc://") else None
        media = [
            Media(
                size=len(uploaded[0]) if uploaded else int(info.get("size") or 0),
                mime=uploaded[1] if uploaded else str(info.get("mimetype", "")),
                alt=None if filename == body else body,
            )
        ]
        text = body if caption else ""
    sim(request).store.add(
        Post(
            platform="matrix",
            account=user,
            target=room.id,
            text=text,
            media=media,
            remote_id=event["event_id"],
            received_at=received_at(request),
            url=f"https://matrix.to/#/{room.id}/{event['event_id']}?via={SERVER}",
        )
    )


def _visible(event: dict[str, Any], who: tuple[str, str], state: State) -> dict[str, Any]:
    """An event as its reader sees it: transaction_id only for the device that sent it."""
    out = {**event, "unsigned": dict(event["unsigned"])}
    txn = out["unsigned"].pop("transaction_id", None)
    mine = (
        txn is not None
        and state.txns.get((who[0], who[1], event["room_id"], event["type"], txn))
        == event["event_id"]
    )
    if mine:
        out["unsigned"]["transaction_id"] = txn
    out["unsigned"]["age"] = int(time.time() * 1000) - event["origin_server_ts"]
    return out


async def get_event(request: Request) -> Response:
    who = _whoami(request)
    if isinstance(who, Response):
        return who
    room = _member_room(request, who[0])
    if isinstance(room, Response):
        return room
    wanted = request.path_params["event_id"]
    event = next((e for e in room.events if e["event_id"] == wanted), None)
    if event is None:
        return error(404, "M_NOT_FOUND", "Event not found.")
    return json(_visible(event, who, _state(request)))


async def messages(request: Request) -> Response:
    who = _whoami(request)
    if isinstance(who, Response):
        return who
    room = _member_room(request, who[0])
    if isinstance(room, Response):
        return room
    params = request.query_params
    backwards = params.get("dir", "b") == "b"
    try:
        limit = max(1, min(1000, int(params.get("limit", "10"))))
        position = int(params["from"].lstrip("t")) if params.get("from") else None
    except ValueError:
        return error(400, "M_INVALID_PARAM", "Invalid pagination parameters")
    total = len(room.events)
    if backwards:
        start = total if position is None else min(position, total)
        indices = list(range(start - 1, max(-1, start - 1 - limit), -1))
        end = indices[-1] if indices else start
    else:
        start = 0 if position is None else position
        indices = list(range(start, min(total, start + limit)))
        end = indices[-1] + 1 if indices else start
    chunk = [_visible(room.events[i], who, _state(request)) for i in indices]
    out: dict[str, Any] = {"chunk": chunk, "start": f"t{start}"}
    if indices and (end > 0 if backwards else end < total):
        out["end"] = f"t{end}"
    return json(out)


async def sync(request: Request) -> Response:
    who = _whoami(request)
    if isinstance(who, Response):
        return who
    state = _state(request)
    rooms = [r for r in state.rooms.values() if who[0] in r.members]
    batch = f"s{sum(len(r.events) for r in state.rooms.values())}"
    since = request.query_params.get("since")
    if since == batch:
        try:
            timeout = int(request.query_params.get("timeout", "0")) / 1000
        except ValueError:
            timeout = 0.0
        await asyncio.sleep(min(max(timeout, 0.0), 30.0))  # a long poll with nothing new
        return json({"next_batch": batch, "rooms": {"join": {}, "invite": {}, "leave": {}}})
    join = {
        room.id: {
            "timeline": {
                "events": [
                    _visible(e, who, state) for e in room.events[-20:] if "state_key" not in e
                ],
                "limited": len(room.events) > 20,
                "prev_batch": "t0",
            },
            "state": {"events": [e for e in room.events if "state_key" in e]},
            "ephemeral": {"events": []},
            "account_data": {"events": []},
            "unread_notifications": {"highlight_count": 0, "notification_count": 0},
            "summary": {"m.joined_member_count": len(room.members)},
        }
        for room in rooms
    }
    return json(
        {
            "next_batch": batch,
            "rooms": {"join": join, "invite": {}, "leave": {}},
            "account_data": {"events": []},
            "presence": {"events": []},
            "to_device": {"events": []},
            "device_lists": {"changed": [], "left": []},
            "device_one_time_keys_count": {},
        }
    )


async def unrecognized(request: Request) -> Response:
    return error(404, "M_UNRECOGNIZED", "Unrecognized request")


routes = [
    Route("/_matrix/client/versions", versions),
    Route(f"{CLIENT}/login", login_flows, methods=["GET"]),
    Route(f"{CLIENT}/login", login, methods=["POST"]),
    Route(f"{CLIENT}/refresh", refresh, methods=["POST"]),
    Route(f"{CLIENT}/logout", logout, methods=["POST"]),
    Route(f"{CLIENT}/logout/all", logout, methods=["POST"]),
    Route(f"{CLIENT}/account/whoami", whoami),
    Route(f"{CLIENT}/createRoom", create_room, methods=["POST"]),
    Route(f"{CLIENT}/join/{{room}}", join, methods=["POST"]),
    Route(f"{CLIENT}/rooms/{{room}}/join", join, methods=["POST"]),
    Route(f"{CLIENT}/joined_rooms", joined_rooms),
    Route(f"{CLIENT}/rooms/{{room}}/send/{{type}}/{{txn:path}}", send, methods=["PUT"]),
    Route(f"{CLIENT}/rooms/{{room}}/event/{{event_id}}", get_event),
    Route(f"{CLIENT}/rooms/{{room}}/messages", messages),
    Route(f"{CLIENT}/sync", sync),
    Route("/_matrix/media/v3/upload", upload, methods=["POST"]),
    Route("/_matrix/media/v3/config", media_config),
    Route("/_matrix/client/v1/media/config", media_config),
    Route("/_matrix/client/v1/media/download/{server}/{media_id}", download),
    Route("/_matrix/{rest:path}", unrecognized, methods=["GET", "POST", "PUT", "DELETE"]),
]


def _account_of(scope: Scope) -> str | None:
    value = scope_header(scope, b"authorization")
    return value.partition(" ")[2] or None if value else None


def _rate_limited(limit: RateLimit, reset_at: float) -> Response:
    wait = retry_after_s(reset_at)
    return error(
        429,
        "M_LIMIT_EXCEEDED",
        "Too Many Requests",
        {"Retry-After": str(wait)},
        retry_after_ms=int(max(0.0, reset_at - time.time()) * 1000),
    )


PLATFORM = Platform(
    name="matrix",
    owns=lambda path: path.startswith("/_matrix/"),
    is_post=lambda method, path: method == "PUT" and "/send/" in path,
    account_of=_account_of,
    error=lambda status: error(status, "M_UNKNOWN", "Simulated failure"),
    rate_limited=_rate_limited,
)
