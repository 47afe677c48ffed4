"""What the organizer is told when a worker's database cannot be used (unreachable,
restarted, locked past the busy timeout, its disk full): one line when it starts (what
waits, and why nothing is lost), one when it ends — not a traceback at every pass. An
error that is not the database's stays a traceback: that is a bug to report.

A database that cannot be written holds every burst back (an attempt is recorded before any
request leaves), so items wait, up to their grace, and go late once it can be used, or are
marked missed; a burst whose outcomes could not be written is reconciled with each platform.
"""

from __future__ import annotations

import logging
import time

from stormer.secrets import clean_error

log = logging.getLogger("stormer.dispatch")


def database_error(error: BaseException) -> str | None:
    """The reason, in one line, if `error` is the database failing (unreachable, restarted,
    locked, disk full); None for anything else."""
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    if not isinstance(error, OperationalError | InterfaceError | PoolTimeout):
        return None
    text = str(getattr(error, "orig", None) or error).strip()
    return clean_error(text.splitlines()[0] if text else type(error).__name__)


class Outage:
    """Whether this worker's database can be used, told once per change."""

    def __init__(self) -> None:
        self._since: float | None = None  # monotonic time of the first failure

    def failed(self, doing: str, error: BaseException) -> bool:
        """Note that `doing` failed with `error`: True (and said once per outage) if it was
        the database; False if not, for the caller to log as the bug it is."""
        reason = database_error(error)
        if reason is None:
            return False
        if self._since is None:
            self._since = time.monotonic()
            log.error(
                "the database cannot be used (%s, while %s): nothing is sent until it can; "
                "items wait for it up to their grace, then are marked missed",
                reason,
                doing,
            )
        else:
            log.debug("the database still cannot be used (%s, while %s)", reason, doing)
        return True

    def burst_failed(self, instant: str, sent: int, error: BaseException) -> bool:
        """The burst for `instant` failed with `error` after `sent` requests had left: True
        (and said what becomes of its items) if the database failed it; False if not."""
        reason = database_error(error)
        if reason is None:
            return False
        self.failed(f"the burst for {instant}", error)
        if sent:
            log.error(
                "the burst for %s: %d request(s) left, but their outcomes could not be written "
                "(%s); each is checked with its platform once the database can be used, and "
                "never sent twice",
                instant,
                sent,
                reason,
            )
        else:
            log.error(
                "the burst for %s was held back: its attempts could not be recorded (%s), and "
                "nothing is sent unrecorded; its items go once the database can be used, "
                "within their grace",
                instant,
                reason,
            )
        return True

    def answered(self) -> None:
        if self._since is not None:
            since = time.monotonic() - self._since
            log.warning("the database can be used again, after %.0f s", since)
            self._since = None
