"""The clock check of `stormer doctor`: this machine's clock against the platforms' servers.

stormer never posts early by its own clock, so a clock ahead means posts before T. The
`Date` header of each platform server the storm posts to is the reference.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

from stormer.errors import StormerError
from stormer.ops.findings import Finding, failed, passed, warned

if TYPE_CHECKING:
    import httpx

    from stormer.storm import Storm

CLOCK_WARN: Final = timedelta(seconds=2)
CLOCK_ERROR: Final = timedelta(seconds=30)
CLOCK_TIMEOUT_S: Final = 10.0


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Offset:
    origin: str
    seconds: float | None  # local clock minus the server's: > 0 means ahead
    problem: str | None = None
    reached: bool = True  # False: no connection at all (DNS, refused, network down)


async def clock_finding(
    storm: Storm, http: httpx.AsyncClient, now: Callable[[], datetime] = utcnow
) -> Finding:
    """The local clock against the `Date` header of each platform server the storm posts to.

    `Date` has one-second resolution (and servers may cache it for a second), so only
    offsets beyond `CLOCK_WARN` are reported; the median over servers is judged, so that one
    server with a wrong clock does not decide.
    """
    origins = sorted({o for o in (_origin(storm, a) for a in storm.accounts) if o})
    if not origins:
        return warned(
            "clock",
            "no platform server to compare the clock with",
            "make sure this machine's clock is synchronised (NTP)",
        )
    offsets = await asyncio.gather(*(_offset(http, o, now) for o in origins))
    measured = [o for o in offsets if o.seconds is not None]
    fix_sync = (
        "synchronise this machine's clock (e.g. `timedatectl set-ntp true`, or "
        "chrony), then run `stormer doctor` again"
    )
    reasons = "; ".join(f"{o.origin}: {o.problem}" for o in offsets if o.problem)
    if not any(o.reached for o in offsets):
        # Offline: the network is what to fix, and the clock's offset is simply unknown.
        return warned(
            "clock",
            f"cannot reach any platform server ({reasons}): this machine is offline, or DNS, "
            "a firewall or a proxy is in the way; the clock offset was not measured",
            "check this machine's network connection (the worker needs it at T), then run "
            "`stormer doctor` again",
        )
    if not measured:
        return warned(
            "clock",
            f"no platform server gave a time to compare the clock with ({reasons})",
            "make sure this machine's clock is synchronised (NTP)",
        )
    median = statistics.median(o.seconds for o in measured if o.seconds is not None)
    each = ", ".join(
        f"{urlsplit(o.origin).netloc} {o.seconds:+.1f} s" for o in measured if o.seconds is not None
    )
    if len(measured) < len(offsets):
        each += f"; not measured: {reasons}"
    if abs(median) <= CLOCK_WARN.total_seconds():
        return passed(
            "clock", f"within {CLOCK_WARN.total_seconds():.0f} s of the platforms ({each})"
        )
    direction = (
        f"{median:.1f} s AHEAD of the platforms: posts would go out that much "
        "BEFORE the storm's moment"
        if median > 0
        else f"{-median:.1f} s behind the platforms: posts would go out that much late"
    )
    make = failed if abs(median) > CLOCK_ERROR.total_seconds() else warned
    return make("clock", f"this machine's clock is {direction} ({each})", fix_sync)


def _origin(storm: Storm, account: Any) -> str | None:
    """scheme://host[:port] of the server `account` posts to; for a platform with no base
    URL (Discord webhooks), that of the URL credential. No path, no user info: no secret."""
    from stormer.channels import registry
    from stormer.secrets import resolve

    if account.platform not in registry.installed():
        return None
    plugin = registry.get(account.platform)
    url = plugin.base_url(account)
    if not url:
        try:
            values = resolve(account, plugin.credential_fields_for(account))
        except StormerError:
            return None
        url = next(
            (v.reveal() for v in values.values() if v.reveal().startswith(("https://", "http://"))),
            "",
        )
    parts = urlsplit(url)
    if not parts.scheme or not parts.hostname:
        return None
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


async def _offset(http: httpx.AsyncClient, origin: str, now: Callable[[], datetime]) -> Offset:
    import httpx

    sent = now()
    try:
        response = await http.head(origin + "/", timeout=CLOCK_TIMEOUT_S)
    except httpx.HTTPError as e:
        unreachable = _unreachable(e)
        if unreachable is not None:
            return Offset(origin, None, unreachable, reached=False)
        return Offset(origin, None, f"no answer ({type(e).__name__})")
    received = now()
    date = response.headers.get("date")
    if not date:
        return Offset(origin, None, "no Date header")
    try:
        server = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return Offset(origin, None, "unreadable Date header")
    if server.tzinfo is None:
        server = server.replace(tzinfo=UTC)
    # `Date` is truncated to the second: the server's time was somewhere in that second.
    local = sent + (received - sent) / 2
    return Offset(origin, (local - server).total_seconds() - 0.5)


def _unreachable(e: httpx.HTTPError) -> str | None:
    """Why no connection to the server was made at all (a name that does not resolve, a
    refused connection, no route); None when it was reached but did not answer well."""
    import errno
    import socket

    import httpx

    if isinstance(e, httpx.ConnectTimeout):
        return "cannot connect (timed out)"
    if not isinstance(e, httpx.ConnectError):
        return None
    cause: BaseException | None = e
    while cause is not None:  # httpx wraps httpcore, which wraps the socket's error
        if isinstance(cause, socket.gaierror):
            return "its name does not resolve (DNS)"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "no route to it (network unreachable)"
        cause = cause.__cause__ or cause.__context__
    return f"cannot connect ({e})"
