"""Sans-I/O requests and responses, sending them with httpx, and classifying failures.

A plugin *builds* its final request (`Request`) and *parses* the answer (`Response`), so the
dispatcher may send the burst at T on whatever engine is fastest, while staging, confirmation
and tests go through an injected `httpx.AsyncClient` (MockTransport in tests).
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stormer.errors import (
    AuthError,
    OutcomeUnknown,
    PlatformError,
    RateLimited,
    Rejected,
    Transient,
)
from stormer.secrets import redact

if TYPE_CHECKING:
    import httpx


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, fully built: what goes on the wire, credentials included.

    Never log or print it; `describe()` is the safe summary."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""

    @classmethod
    def json(
        cls, method: str, url: str, body: Any, headers: Mapping[str, str] | None = None
    ) -> Request:
        return cls(
            method,
            url,
            {**(headers or {}), "Content-Type": "application/json"},
            json.dumps(body, ensure_ascii=False).encode(),
        )

    @classmethod
    def multipart(
        cls,
        method: str,
        url: str,
        *,
        data: Mapping[str, str],
        files: Mapping[str, tuple[str, bytes, str]],
        headers: Mapping[str, str] | None = None,
    ) -> Request:
        """Multipart form: `files` maps field → (filename, bytes, mime type)."""
        import httpx

        built = httpx.Request(
            method, url, data=dict(data), files=dict(files), headers=dict(headers or {})
        )
        return cls(
            method,
            url,
            {**(headers or {}), "Content-Type": built.headers["Content-Type"]},
            built.read(),
        )

    def describe(self) -> str:
        return redact(f"{self.method} {self.url.split('?')[0]}")

    def __repr__(self) -> str:
        # Replaces the dataclass repr, which would show the URL (a Telegram bot token, a
        # Discord webhook) and the Authorization header wherever a Staged is printed.
        return f"Request({self.describe()})"


@dataclass(frozen=True, slots=True)
class Response:
    """The parts of an HTTP answer a plugin needs to read it."""

    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes

    @classmethod
    def from_httpx(cls, r: httpx.Response) -> Response:
        return cls(r.status_code, {k.lower(): v for k, v in r.headers.items()}, r.content)

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


FileTuple = tuple[str, bytes, str]  # (filename, content, mime type)


def fill(spec: Any, values: Mapping[str, Any]) -> Any:
    """`spec` (a rendered request, with `secret()`/`staged()` placeholders) with every
    placeholder replaced from `values`. A string that *is* a placeholder takes the value as
    it is (a blob dict, a file tuple); a string that *contains* one gets it spliced in."""
    if isinstance(spec, str):
        if spec in values:
            return values[spec]
        if "<" in spec:
            for key, value in values.items():
                if isinstance(value, str) and key in spec:
                    spec = spec.replace(key, value)
        return spec
    if isinstance(spec, dict):
        return {k: fill(v, values) for k, v in spec.items()}
    if isinstance(spec, list):
        return [fill(v, values) for v in spec]
    return spec


def materialize(spec: Mapping[str, Any], values: Mapping[str, Any]) -> Request:
    """The wire request for a rendered request `spec` ({method, url, headers, json |
    multipart}) once staging has produced `values` for its placeholders. Any file tuple
    among the fields makes it a multipart request (other structured fields JSON-encoded)."""
    filled = fill(dict(spec), values)
    if "<secret:" in json.dumps(filled, default=str) or "<staged:" in json.dumps(
        filled, default=str
    ):
        raise ValueError(f"unfilled placeholder in {spec.get('method')} request")  # a bug
    headers = filled.get("headers", {})
    body = filled.get("json", filled.get("multipart"))
    if "multipart" not in filled and not _has_file(body):
        return Request.json(filled["method"], filled["url"], body, headers)
    data: dict[str, str] = {}
    files: dict[str, FileTuple] = {}
    for name, value in (body or {}).items():
        if _is_file(value):
            files[name] = value
        elif isinstance(value, (dict, list)):
            data[name] = json.dumps(value, ensure_ascii=False)
        elif value is not None:
            data[name] = str(value)
    return Request.multipart(
        filled["method"], filled["url"], data=data, files=files, headers=headers
    )


def _is_file(value: Any) -> bool:
    return isinstance(value, tuple) and len(value) == 3 and isinstance(value[1], bytes)


def _has_file(body: Any) -> bool:
    return isinstance(body, dict) and any(_is_file(v) for v in body.values())


async def send(
    client: httpx.AsyncClient, request: Request, *, platform: str, mutating: bool
) -> Response:
    """Send `request`; a failure becomes Transient (it never arrived) or OutcomeUnknown (it
    may have arrived). Messages never carry the URL, which may hold a token."""
    import httpx

    try:
        r = await client.request(
            request.method, request.url, headers=dict(request.headers), content=request.content
        )
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
        raise Transient(
            f"could not reach the server ({type(e).__name__})", platform=platform
        ) from None
    except httpx.TransportError as e:
        # The request may have been sent: for a post, only the platform can say whether it
        # landed. A read-only request is simply repeated.
        cls = OutcomeUnknown if mutating else Transient
        raise cls(f"no answer from the server ({type(e).__name__})", platform=platform) from None
    return Response.from_httpx(r)


def until_reset(reset_epoch: int) -> float:
    """Seconds to wait for a window that resets at `reset_epoch` (whole seconds): one more
    second, because the true reset may fall anywhere within that second."""
    return max(reset_epoch - time.time(), 0.0) + 1.0


def retry_after(headers: Mapping[str, str], default: float = 1.0) -> float:
    """Seconds to wait from Retry-After (seconds or an HTTP date) or a rate-limit reset."""
    value = headers.get("retry-after")
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(value)
            if parsed is not None:
                return max(parsed.timestamp() - time.time(), 0.0)
    for reset in ("x-rate-limit-reset", "ratelimit-reset", "x-ratelimit-reset"):
        value = headers.get(reset, "")
        if value.isdigit():
            return until_reset(int(value))
        if value:  # Mastodon sends an ISO 8601 instant
            try:
                from datetime import datetime

                return max(
                    datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() - time.time(),
                    0.0,
                )
            except ValueError:
                continue
    return default


def classify(
    response: Response,
    *,
    platform: str,
    mutating: bool,
    message: str = "",
    wait: float | None = None,
) -> PlatformError:
    """The error for an unsuccessful `response`, by HTTP status; plugins pass the platform's
    own `message` and, for 429s signalled in the body, `wait`."""
    status = response.status
    text = redact(message or f"HTTP {status}")
    if status == 429:
        seconds = wait if wait is not None else retry_after(response.headers)
        return RateLimited(
            f"rate limited ({text}); retry in {seconds:.1f} s",
            retry_after=seconds,
            platform=platform,
        )
    if status in (401, 403) and "duplicate" not in text.lower():
        return AuthError(
            f"{text} — check this account's credentials", platform=platform, status=status
        )
    if status >= 500 or status == 408:
        # Even a 503 may come from a proxy after the server acted: for a post, reconcile.
        cls = OutcomeUnknown if mutating else Transient
        return cls(f"server error: {text}", platform=platform, status=status)
    return Rejected(text, platform=platform, status=status)
