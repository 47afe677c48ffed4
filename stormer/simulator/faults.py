"""The simulator's knobs (`SimConfig`) and the ASGI layer that applies them to every request.

Order for a platform request: stamp `received_at` (when the request arrived) → latency →
rate limit (the platform's own 429) → an error or ambiguous burst → injected error / timeout
→ the handler, whose answer an "ambiguous" fault then replaces after the post was created.
Randomness comes from one `random.Random(seed)`, so a sequence of requests meets the same
faults on every run.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ._asgi import read_whole_request

if TYPE_CHECKING:
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from .state import Sim

PLATFORMS = ("mastodon", "bluesky", "x", "telegram", "discord", "matrix")
AMBIGUOUS_MODES = ("500", "drop", "hang")


@dataclass(frozen=True)
class Faults:
    """What can go wrong on one platform. Rates are probabilities per request, 0…1."""

    latency_ms: tuple[float, float] = (0.0, 0.0)  # uniform [min, max] before any answer
    error_rate: float = 0.0  # answer `error_status`; nothing is created
    error_status: int = 503
    timeout_rate: float = 0.0  # hold the request `timeout_s`, then 504; nothing is created
    timeout_s: float = 30.0
    ambiguous_rate: float = 0.0  # create the post, then fail the answer (`ambiguous_mode`)
    ambiguous_mode: str = "500"  # "500": an error body; "drop": cut the connection; "hang"
    faults_on: str = "posts"  # error/timeout hit "posts" (create-post requests) or "all"
    # The next N create-post requests answer `error_status` (nothing is created), then the
    # rates above apply again: an outage of the platform's API at T, counted exactly.
    error_burst: int = 0
    # The next N create-post requests create the post, then lose its answer
    # (`ambiguous_mode`): each post's answer lost once at T, however it is asked again.
    ambiguous_burst: int = 0


@dataclass(frozen=True)
class RateLimit:
    """`limit` requests per account per fixed window of `window_s` seconds."""

    limit: int
    window_s: float


FAULT_FIELDS = tuple(f.name for f in fields(Faults))
MASTODON_LIMITS = (
    "mastodon_max_characters",
    "mastodon_characters_reserved_per_url",
    "mastodon_image_size_limit",
    "mastodon_description_limit",
)


@dataclass(frozen=True)
class SimConfig:
    """Everything the simulator can be told. `POST /_sim/config` takes the same keys as JSON."""

    seed: int = 0
    latency_ms: tuple[float, float] = (0.0, 0.0)
    error_rate: float = 0.0
    error_status: int = 503
    timeout_rate: float = 0.0
    timeout_s: float = 30.0
    ambiguous_rate: float = 0.0
    ambiguous_mode: str = "500"
    faults_on: str = "posts"
    error_burst: int = 0
    ambiguous_burst: int = 0
    # Per-platform overrides of the fault keys above, e.g. {"x": {"error_rate": 1.0}}.
    platforms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Per-platform limits per account, e.g. {"discord": RateLimit(5, 2.0)}; none by default.
    rate_limit: Mapping[str, RateLimit] = field(default_factory=dict)
    media_processing_s: float = 0.2  # Mastodon: 202 + url null until this has passed
    mastodon_idempotency_s: float = 3600.0  # Idempotency-Key kept one hour
    # The instance's limits, served at /api/v2/instance and enforced; Mastodon's defaults
    # (https://docs.joinmastodon.org/entities/Instance/#configuration).
    mastodon_max_characters: int = 500
    mastodon_characters_reserved_per_url: int = 23
    mastodon_image_size_limit: int = 16 * 1024 * 1024  # 16 MB, as the docs' example shows
    mastodon_description_limit: int = 1500
    mastodon_tags_need_token: bool = False  # an instance with its public preview turned off
    bluesky_blob_limit: int = 1_000_000  # bytes; larger → 400 BlobTooLarge
    bluesky_login_limit: RateLimit = RateLimit(30, 300.0)  # createSession per account
    bluesky_access_ttl_s: float = 7200.0  # accessJwt lifetime (the PDS default: 120 min)
    x_duplicate_window_s: float = 86400.0  # same text again from one account → 403
    x_access_ttl_s: float = 7200.0  # OAuth 2.0 access tokens the simulator issues (X: 2 h)
    # Matrix: the life of an access token issued to a client that asked for a refresh token
    # (0: none expire); 300 s is Synapse's `refreshable_access_token_lifetime` default.
    matrix_access_ttl_s: float = 300.0
    matrix_upload_bytes: int = 50 * 1024 * 1024  # m.upload.size (Synapse's default 50M)

    def __post_init__(self) -> None:
        for name in PLATFORMS:
            self.faults(name)  # validates the overrides
        self._check(self.global_faults())
        unknown = (set(self.platforms) | set(self.rate_limit)) - set(PLATFORMS)
        if unknown:
            raise ValueError(f"unknown platform(s): {', '.join(sorted(unknown))}")
        for name, rl in self.rate_limit.items():
            if rl.limit < 0 or rl.window_s <= 0:
                raise ValueError(f"rate_limit.{name}: limit ≥ 0 and window_s > 0 needed")
        for name in MASTODON_LIMITS:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1")

    def global_faults(self) -> Faults:
        return Faults(**{name: getattr(self, name) for name in FAULT_FIELDS})

    def faults(self, platform: str) -> Faults:
        """The faults that apply to one platform: the global ones, then its overrides."""
        overrides = dict(self.platforms.get(platform, {}))
        unknown = set(overrides) - set(FAULT_FIELDS)
        if unknown:
            raise ValueError(f"platforms.{platform}: unknown key(s) {', '.join(sorted(unknown))}")
        if "latency_ms" in overrides:
            overrides["latency_ms"] = _latency(overrides["latency_ms"])
        merged = replace(self.global_faults(), **overrides)
        self._check(merged)
        return merged

    @staticmethod
    def _check(f: Faults) -> None:
        low, high = f.latency_ms
        if not 0 <= low <= high:
            raise ValueError("latency_ms must be [min, max] with 0 ≤ min ≤ max")
        for name in ("error_rate", "timeout_rate", "ambiguous_rate"):
            if not 0.0 <= getattr(f, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if f.error_rate + f.timeout_rate + f.ambiguous_rate > 1.0:
            raise ValueError("error_rate + timeout_rate + ambiguous_rate must not exceed 1")
        if f.ambiguous_mode not in AMBIGUOUS_MODES:
            raise ValueError(f"ambiguous_mode must be one of {', '.join(AMBIGUOUS_MODES)}")
        if f.faults_on not in ("posts", "all"):
            raise ValueError("faults_on must be 'posts' or 'all'")
        if not 500 <= f.error_status <= 599:
            raise ValueError("error_status must be a 5xx status")
        if f.timeout_s < 0:
            raise ValueError("timeout_s must be ≥ 0")
        if f.error_burst < 0 or f.ambiguous_burst < 0:
            raise ValueError("error_burst and ambiguous_burst must be ≥ 0")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["latency_ms"] = list(self.latency_ms)
        data["platforms"] = {k: dict(v) for k, v in self.platforms.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: SimConfig | None = None) -> SimConfig:
        """`base` with the keys of `data` replaced; ValueError/TypeError on anything wrong."""
        base = base or cls()
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown config key(s): {', '.join(sorted(unknown))}")
        changes: dict[str, Any] = {}
        for key, value in data.items():
            if key == "latency_ms":
                value = _latency(value)
            elif key in ("rate_limit",):
                value = {
                    name: _rate_limit(rl, f"rate_limit.{name}")
                    for name, rl in _mapping(value, key).items()
                }
            elif key == "bluesky_login_limit":
                value = _rate_limit(value, key)
            elif key == "platforms":
                value = {
                    name: dict(_mapping(v, f"platforms.{name}"))
                    for name, v in _mapping(value, key).items()
                }
            elif (
                key in ("seed", "error_status", "bluesky_blob_limit", "matrix_upload_bytes")
                or key in ("error_burst", "ambiguous_burst")
                or key in MASTODON_LIMITS
            ):
                value = _number(value, key, int)
            elif key in ("ambiguous_mode", "faults_on"):
                value = str(value)
            elif key == "mastodon_tags_need_token":
                if not isinstance(value, bool):
                    raise TypeError(f"{key} must be true or false")
            else:
                value = _number(value, key, float)
            changes[key] = value
        return replace(base, **changes)


def parse_latency(text: str) -> tuple[float, float]:
    """'50-300' or '100' (milliseconds) → (min, max)."""
    low, sep, high = text.partition("-")
    try:
        return _latency([float(low), float(high if sep else low)])
    except ValueError as e:
        raise ValueError(f"latency must look like 50-300 (milliseconds), not {text!r}") from e


def _latency(value: Any) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        value = [value, value]
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError("latency_ms must be [min, max] in milliseconds")
    low, high = (_number(v, "latency_ms", float) for v in value)
    if not 0 <= low <= high:
        raise ValueError("latency_ms must be [min, max] with 0 ≤ min ≤ max")
    return (low, high)


def _rate_limit(value: Any, where: str) -> RateLimit:
    if isinstance(value, RateLimit):
        return value
    value = _mapping(value, where)
    if set(value) != {"limit", "window_s"}:
        raise ValueError(f'{where} must be {{"limit": N, "window_s": S}}')
    return RateLimit(_number(value["limit"], where, int), _number(value["window_s"], where, float))


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"{where} must be an object")
    return value


def _number(value: Any, where: str, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{where} must be a number")
    if kind is int and value != int(value):
        raise ValueError(f"{where} must be a whole number")
    return kind(value)


class Windows:
    """Fixed-window counters per key: the simplest limiter that still has a reset time."""

    def __init__(self) -> None:
        self._windows: dict[Any, tuple[float, int]] = {}

    def hit(self, key: Any, limit: RateLimit, now: float | None = None) -> tuple[bool, int, float]:
        """Count one request; → (allowed, remaining, reset_at as unix seconds)."""
        now = time.time() if now is None else now
        start, count = self._windows.get(key, (now, 0))
        if now >= start + limit.window_s:
            start, count = now, 0
        reset_at = start + limit.window_s
        if count >= limit.limit:
            return False, 0, reset_at
        self._windows[key] = (start, count + 1)
        return True, limit.limit - count - 1, reset_at

    def clear(self) -> None:
        self._windows.clear()


@dataclass(frozen=True)
class Platform:
    """What the fault layer needs to know about one platform module."""

    name: str
    owns: Callable[[str], bool]  # path → is it this platform's?
    is_post: Callable[[str, str], bool]  # (method, path) → does it create a post?
    account_of: Callable[[Scope], str | None]  # the rate-limit key, read without validating
    error: Callable[[int], Response]  # the platform's own body for an injected 5xx
    rate_limited: Callable[[RateLimit, float], Response]  # (limit, reset_at) → its 429
    limit_headers: Callable[[RateLimit, int, float], dict[str, str]] = lambda *_: {}


class SimulatedDrop(Exception):
    """Raised after half an answer was sent: the server closes the connection mid-response."""


def utcnow() -> datetime:
    return datetime.now(UTC)


class FaultLayer:
    """ASGI middleware: applies `Sim.config` to requests of the platforms it knows."""

    def __init__(self, app: ASGIApp, sim: Sim, platforms: list[Platform]) -> None:
        self.app = app
        self.sim = sim
        self.platforms = platforms

    def _platform(self, path: str) -> Platform | None:
        for platform in self.platforms:
            if platform.owns(path):
                return platform
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["received_at"] = utcnow()
        platform = self._platform(scope["path"])
        if platform is None:
            await self.app(scope, receive, send)
            return
        # A server reads the whole request before it works on it, and what it then does (a
        # post created) does not depend on the client still being connected: a client that
        # hangs up during the latency below must still find its post created, as on a real
        # platform. Uvicorn answers `receive` with a disconnect once the client has gone, even
        # for a body it had read, so the body is read now and handed on from here.
        whole_request = await read_whole_request(receive)
        if whole_request is None:  # the client left before its request was complete
            return
        receive = whole_request
        config = self.sim.config
        faults = self.sim.faults[platform.name]
        rng = self.sim.rng
        low, high = faults.latency_ms
        if high > 0:
            await asyncio.sleep(rng.uniform(low, high) / 1000)

        limit = config.rate_limit.get(platform.name)
        account = platform.account_of(scope) if limit else None
        if limit and account is not None:
            allowed, remaining, reset_at = self.sim.limits.hit((platform.name, account), limit)
            if not allowed:
                await platform.rate_limited(limit, reset_at)(scope, receive, send)
                return
            send = _with_headers(send, platform.limit_headers(limit, remaining, reset_at))

        is_post = platform.is_post(scope["method"], scope["path"])
        if is_post and self.sim.bursts[("error", platform.name)] > 0:
            self.sim.bursts[("error", platform.name)] -= 1
            await platform.error(faults.error_status)(scope, receive, send)
            return
        if is_post and self.sim.bursts[("ambiguous", platform.name)] > 0:
            self.sim.bursts[("ambiguous", platform.name)] -= 1
            await self._ambiguous(platform, faults, scope, receive, send)
            return
        if is_post or faults.faults_on == "all":
            draw = (
                rng.random()
                if (faults.error_rate or faults.timeout_rate or faults.ambiguous_rate)
                else 1.0
            )
            if draw < faults.error_rate:
                await platform.error(faults.error_status)(scope, receive, send)
                return
            if draw < faults.error_rate + faults.timeout_rate:
                await asyncio.sleep(faults.timeout_s)
                await platform.error(504)(scope, receive, send)
                return
            if is_post and draw < faults.error_rate + faults.timeout_rate + faults.ambiguous_rate:
                await self._ambiguous(platform, faults, scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _ambiguous(
        self, platform: Platform, faults: Faults, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Let the handler create the post, then lose or spoil its answer."""
        answer: list[Message] = []

        async def keep(message: Message) -> None:
            answer.append(message)

        await self.app(scope, receive, keep)
        if not answer or answer[0]["status"] >= 400:  # nothing was created: answer truthfully
            for message in answer:
                await send(message)
            return
        if faults.ambiguous_mode == "drop":
            body = b"".join(m.get("body", b"") for m in answer[1:])
            await send(answer[0])
            await send(
                {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
            )
            raise SimulatedDrop("ambiguous fault: connection dropped after the post was created")
        if faults.ambiguous_mode == "hang":
            await asyncio.sleep(faults.timeout_s)
            await platform.error(504)(scope, receive, send)
            return
        await platform.error(500)(scope, receive, send)


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    if not headers:
        return send
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]

    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *raw]}
        await send(message)

    return sender


def retry_after_s(reset_at: float, now: float | None = None) -> int:
    """Whole seconds until `reset_at`, at least 1 (what a Retry-After header carries)."""
    now = time.time() if now is None else now
    return max(1, math.ceil(reset_at - now))
