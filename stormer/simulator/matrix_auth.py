"""Matrix client-server API, authentication: password login, devices, expiring access tokens
and their refresh (https://spec.matrix.org/v1.13/client-server-api/#client-authentication).

Every rule below is the spec's, cited beside it. A token the simulator did not issue is still
accepted as a static, never-expiring token of a user derived from it (rehearsals and tests
paste made-up tokens); tokens it issued follow the spec: they expire when the client asked
for a refresh token, a refresh rotates them, a login with a known device_id replaces them.
"""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ._web import body_json, json, sim
from .state import bearer, digest, unusable

SERVER = "sim"


@dataclass
class Session:
    """An access token the simulator issued."""

    user: str
    device: str
    expires_at: float | None  # None: it never expires
    # The refresh token this one was refreshed from: revoked once this one is used.
    predecessor: str | None = None


@dataclass
class Grant:
    """A refresh token: what it refreshes, and the one it replaced (revoked when it is used)."""

    user: str
    device: str
    access: str  # the access token issued with it
    predecessor: str | None = None


@dataclass
class State:
    sessions: dict[str, Session] = field(default_factory=dict)  # access token → session
    grants: dict[str, Grant] = field(default_factory=dict)  # refresh token → grant


def _state(request: Request) -> State:
    return sim(request).store.space("matrix-auth", State)


def error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    return json({"errcode": code, "error": message, **extra}, status, headers)


def random_id(length: int) -> str:
    return base64.urlsafe_b64encode(os.urandom(length)).decode().rstrip("=")[:length]


def token_of(request: Request) -> str | None:
    return bearer(request.headers) or request.query_params.get("access_token")


def who(request: Request) -> tuple[str, str] | Response:
    """(user_id, device_id) behind the access token, or the homeserver's 401."""
    token = token_of(request)
    if not token:
        return error(401, "M_MISSING_TOKEN", "Missing access token")
    state = _state(request)
    session = state.sessions.get(token)
    if session is not None:
        if session.expires_at is not None and time.time() >= session.expires_at:
            # https://spec.matrix.org/v1.13/client-server-api/#refreshing-access-tokens
            # "Any HTTP calls that use an expired access token will return with an error
            # code M_UNKNOWN_TOKEN, preferably with soft_logout: true"; soft: the device
            # and its transaction ids live on.
            return error(401, "M_UNKNOWN_TOKEN", "Access token has expired", soft_logout=True)
        if session.predecessor is not None:
            # https://spec.matrix.org/v1.13/client-server-api/#refreshing-access-tokens
            # "The old refresh token remains valid until the new access token or refresh
            # token is used, at which point the old refresh token is revoked."
            state.grants.pop(session.predecessor, None)
            session.predecessor = None
        return session.user, session.device
    if unusable(token) or token.startswith("syt_"):  # ours, but replaced, logged out or forgotten
        return error(401, "M_UNKNOWN_TOKEN", "Invalid access token passed.", soft_logout=False)
    h = digest("matrix", token)
    return f"@u{h[:8]}:{SERVER}", f"DEV{h[8:16].upper()}"


def _user_id(identifier: str) -> str:
    identifier = identifier.strip()
    if identifier.startswith("@") and ":" in identifier:
        return identifier
    local = identifier.lstrip("@").split("@")[0].split(":")[0].lower()
    return f"@{local}:{SERVER}"


def _issue(
    request: Request, user: str, device: str, *, refreshable: bool, predecessor: str | None = None
) -> dict[str, Any]:
    """A new access token for (user, device), with a refresh token and a lifetime if the
    client supports refresh tokens and the homeserver expires them (`matrix_access_ttl_s`)."""
    state = _state(request)
    prefix = base64.urlsafe_b64encode(user.encode()).decode().rstrip("=")
    access = f"syt_{prefix}_{random_id(20)}"
    ttl = sim(request).config.matrix_access_ttl_s
    # A client that did not ask for a refresh token gets a token that does not expire: the
    # login's `refresh_token` is "If true, the client supports refresh tokens", and without
    # `expires_in_ms` "the client can assume that the access token will not expire"
    # (https://spec.matrix.org/v1.13/client-server-api/#post_matrixclientv3login).
    expires = refreshable and ttl > 0
    state.sessions[access] = Session(
        user, device, time.time() + ttl if expires else None, predecessor
    )
    out: dict[str, Any] = {"access_token": access}
    if expires:
        refresh = f"syr_{prefix}_{random_id(20)}"
        state.grants[refresh] = Grant(user, device, access, predecessor)
        out.update(refresh_token=refresh, expires_in_ms=int(ttl * 1000))
    return out


def _forget_device(state: State, user: str, device: str) -> None:
    """ "If the client sets the device_id, the server will invalidate any access and refresh
    tokens previously assigned to that device."
    https://spec.matrix.org/v1.13/client-server-api/#relationship-between-access-tokens-and-devices
    """
    for token in [t for t, s in state.sessions.items() if (s.user, s.device) == (user, device)]:
        del state.sessions[token]
    for token in [t for t, g in state.grants.items() if (g.user, g.device) == (user, device)]:
        del state.grants[token]


async def login_flows(request: Request) -> Response:
    return json({"flows": [{"type": "m.login.password"}]})


async def login(request: Request) -> Response:
    """POST /login with m.login.password.
    https://spec.matrix.org/v1.13/client-server-api/#post_matrixclientv3login
    """
    body = await body_json(request)
    if not isinstance(body, dict):
        return error(400, "M_NOT_JSON", "Content not JSON.")
    if body.get("type") != "m.login.password":
        return error(400, "M_UNKNOWN", "Unknown login type")
    identifier = body.get("identifier") or {}
    name = identifier.get("user") or identifier.get("address") or body.get("user")
    if not isinstance(name, str) or not name:
        return error(400, "M_INVALID_PARAM", "Invalid login submission")
    password = body.get("password")
    if not isinstance(password, str) or unusable(password):
        return error(403, "M_FORBIDDEN", "Invalid username or password")
    refreshable = body.get("refresh_token", False)
    if not isinstance(refreshable, bool):  # "refresh_token: boolean"
        return error(400, "M_INVALID_PARAM", "refresh_token should be true or false")
    user_id = _user_id(name)
    state = _state(request)
    device = body.get("device_id")
    if isinstance(device, str) and device:
        _forget_device(state, user_id, device)
    else:
        # "The server will auto-generate a device_id if this is not specified."
        device = random_id(10).upper()
    issued = _issue(request, user_id, device, refreshable=refreshable)
    return json({"user_id": user_id, "device_id": device, "home_server": SERVER, **issued})


async def refresh(request: Request) -> Response:
    """POST /refresh, authenticated by the refresh token alone: a new access token and a
    new refresh token for the same device.
    https://spec.matrix.org/v1.13/client-server-api/#post_matrixclientv3refresh
    """
    body = await body_json(request)
    token = body.get("refresh_token") if isinstance(body, dict) else None
    if not isinstance(token, str):
        return error(400, "M_INVALID_PARAM", "Invalid param: refresh_token")
    grant = _state(request).grants.get(token)
    if grant is None:
        # 401: "The provided token was unknown, or has already been used."
        return error(401, "M_UNKNOWN_TOKEN", "Soft logged out", soft_logout=True)
    state = _state(request)
    if grant.predecessor is not None:  # this refresh token is in use: its predecessor goes
        state.grants.pop(grant.predecessor, None)
        grant.predecessor = None
    # "After an access token has been refreshed, a server can choose to invalidate the old
    # access token immediately": this one does, so a client that keeps using it is caught.
    state.sessions.pop(grant.access, None)
    return json(_issue(request, grant.user, grant.device, refreshable=True, predecessor=token))


async def logout(request: Request) -> Response:
    found = who(request)
    if isinstance(found, Response):
        return found
    state = _state(request)
    if request.url.path.endswith("/all"):
        for other in [t for t, s in state.sessions.items() if s.user == found[0]]:
            del state.sessions[other]
        for other in [t for t, g in state.grants.items() if g.user == found[0]]:
            del state.grants[other]
    token = token_of(request) or ""
    state.sessions.pop(token, None)
    for other in [t for t, g in state.grants.items() if g.access == token]:
        del state.grants[other]
    return json({})


async def whoami(request: Request) -> Response:
    found = who(request)
    if isinstance(found, Response):
        return found
    return json({"user_id": found[0], "device_id": found[1], "is_guest": False})
