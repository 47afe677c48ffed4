"""Defaults that more than one layer needs, written once: the worker's timing.

`stormer run` offers them as options, the dispatcher's `Settings` falls back to them, `doctor`
and the status read model judge a storm by them. Foundation level: imports nothing from
stormer, so any layer may import it (cheaply: `stormer --help` imports it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

# Stage (log in, upload media, build the requests) this long before each fire time. Long
# enough to stage a 10,000-item storm in a few passes and to retry a failed login or upload
# before T (after a minute, or the platform's Retry-After: Bluesky's login window is 5
# minutes); short enough that staged media still exist at T (a Bluesky PDS deletes an
# unreferenced blob after "minutes"). The watchdog's `[alerts] unstaged_before` must be
# shorter, or it alerts before any worker stages (`doctor` warns).
STAGING_WINDOW: Final = timedelta(minutes=10)

# An item not sent within this long after its time is `missed`, never sent late: a storm is
# one moment, and a post ten minutes late no longer joins it. It still covers a worker's
# restart (the lease) and a few Retry-After waits.
GRACE: Final = timedelta(minutes=10)

# How long a claim lasts without renewal. Renewed on every pass while held; short, so that
# after a crash (kill -9) another worker or a restart takes the items over within a minute,
# well inside the grace.
LEASE: Final = timedelta(seconds=60)

# Seconds between a worker's passes over the outbox; each pass renews its leases and beats
# its heartbeat. A dozen passes per lease: a slow pass never lets a lease lapse.
POLL_SECONDS: Final = 5.0

# A worker whose heartbeat is older than this is not counted live (`status`, `doctor`, the
# watchdog, whose alert says "no heartbeat in the last minute"): a dozen missed passes, so
# one slow pass (a large staging batch) is not a death.
STALE_AFTER: Final = timedelta(seconds=60)

# Items claimed per pass: several workers on one database interleave their claims, and a
# 10,000-item storm is staged in a few passes, well inside the staging window.
CLAIM_BATCH: Final = 2_000


def duration_text(value: timedelta) -> str:
    """`value` (whole seconds) as `stormer run` options and config.toml write a duration:
    "10m", "1h30m", "45s". How the CLI shows the defaults above."""
    seconds = int(value.total_seconds())
    parts = (
        (seconds // 86_400, "d"),
        (seconds % 86_400 // 3600, "h"),
        (seconds % 3600 // 60, "m"),
        (seconds % 60, "s"),
    )
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"
