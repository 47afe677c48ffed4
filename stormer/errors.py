"""Every error stormer raises, in one tree.

    StormerError
    ├── ConfigError          a storm's files are wrong (carries the Problems found)
    ├── TimeError            a time or zone the user gave cannot be used
    │   ├── UnknownZone
    │   ├── NonexistentTime  a wall time inside a DST gap
    │   └── AmbiguousTime    a wall time inside a DST fold
    ├── StormInPast          scheduling a storm whose moment has passed
    ├── UnknownPlatform      no installed plugin by that name (or it is not a Platform)
    ├── AlertFailed          some of the organizer's alert URLs did not take an alert
    └── PlatformError        a platform refused, failed or could not be reached
        ├── AuthError        bad or expired credentials: stop this account, tell the organizer
        │   └── MissingCredential   none set at all
        ├── RateLimited      429: wait `retry_after` seconds, then retry with the same key
        ├── Transient        never reached the platform (or it said so): retry, same key
        ├── OutcomeUnknown   the request may have landed: reconcile before anything else
        └── Rejected         permanent: too long, duplicate, forbidden — do not retry
            └── (channels.x.DuplicateText   X's "duplicate content": a plugin's own)

Library code raises these; only the CLI turns them into one-line messages and exit codes.
Two ValueErrors stay with the parsers that raise them, for their callers to turn into
Problems: storm.contacts.BadContact (a participant's contact) and storm.images.
UnsupportedImage (an image file).
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a storm, located as precisely as we can.

    `file` is relative to the storm folder (what --json reports); `folder` is that folder as
    the user named it (`-s ../storm2`), so that a message names the file they would open
    from where they are: `../storm2/config.toml:11`. `column` and `excerpt` (the text of the
    line) show a syntax error the way a compiler does, with a caret under the column.
    """

    severity: Severity
    code: str
    file: str | None
    line: int | None
    message: str
    column: int | None = None
    excerpt: str | None = field(default=None, repr=False)
    folder: str = field(default="", compare=False)

    @property
    def path(self) -> str | None:
        """`file` as the user would open it from their working directory."""
        return shown_path(self.folder, self.file) if self.file is not None else None

    def in_folder(self, folder: str | os.PathLike[str]) -> Problem:
        """This problem located in the storm folder `folder` (a path as the user gave it),
        unless it already names a folder or no file."""
        if self.folder or self.file is None:
            return self
        return replace(self, folder=str(folder))

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {
            "severity": self.severity,
            "code": self.code,
            "file": self.file,
            "line": self.line,
            "message": self.message,
        }
        if self.column is not None:
            found["column"] = self.column
        return found

    def __str__(self) -> str:
        where = self.path or ""
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        prefix = f"{where}: " if where else ""
        text = f"{prefix}{self.severity}[{self.code}]: {self.message}"
        if self.excerpt is not None and self.column is not None:
            text += f"\n    {self.excerpt}\n    {_caret_pad(self.excerpt, self.column)}^"
        return text


def shown_path(folder: str, file: str) -> str:
    """`file` (relative to a storm folder) as seen from the working directory, the storm
    folder being `folder` as the user named it ("" or "." for the working directory)."""
    if not folder or folder == ".":
        return file
    return os.path.join(folder, file)


def _caret_pad(line: str, column: int) -> str:
    """What goes before a caret under `column` (1-based) of `line`: tabs kept as tabs and
    wide characters as two spaces, so that the caret lands under the character."""
    pad = []
    for ch in line[: column - 1]:
        if ch == "\t":
            pad.append("\t")
        elif unicodedata.east_asian_width(ch) in ("W", "F"):
            pad.append("  ")
        else:
            pad.append(" ")
    return "".join(pad)


class StormerError(Exception):
    """Base of every error stormer raises on purpose; its message is meant for people."""


@dataclass
class ConfigError(StormerError):
    """The storm cannot be used; `problems` lists everything that is wrong."""

    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems) or "invalid storm"


class TimeError(StormerError):
    """A time or zone given by the user cannot be turned into one instant."""

    code = "bad-time"


class UnknownZone(TimeError):
    code = "unknown-zone"

    def __init__(self, zone: str, suggestions: list[str]):
        self.zone = zone
        self.suggestions = suggestions
        hint = f" Did you mean: {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(
            f"unknown time zone {zone!r}.{hint} Zones are IANA names such as "
            "'Europe/Madrid' or 'Asia/Gaza' (list them with `stormer times --list-zones`)."
        )


class NonexistentTime(TimeError):
    code = "nonexistent-local-time"


class AmbiguousTime(TimeError):
    code = "ambiguous-local-time"


class StormInPast(StormerError):
    """Refused: the storm's moment is not in the future."""


class UnknownPlatform(StormerError):
    """No platform plugin is installed under that name, or what is installed under it is
    not a `stormer.channels.base.Platform`."""


class AlertFailed(StormerError):
    """Some alert URLs did not take the alert. `delivered` is how many did; `failed` holds
    (position in the list, reason) — never the URL, which carries secrets."""

    def __init__(self, failed: list[tuple[int, str]], delivered: int) -> None:
        self.failed = failed
        self.delivered = delivered
        super().__init__("; ".join(f"alert URL #{i + 1}: {why}" for i, why in failed))


class PlatformError(StormerError):
    """A platform refused, failed, or could not be reached. `retryable` says whether sending
    the same request again (with the same idempotency key) is safe and may succeed."""

    retryable = False

    def __init__(self, message: str, *, platform: str = "", status: int | None = None):
        self.platform = platform
        self.status = status
        super().__init__(f"{platform}: {message}" if platform else message)


class AuthError(PlatformError):
    """The credentials are wrong, expired or lack a permission: fix them, then retry."""


class MissingCredential(AuthError):
    """No value for a credential: neither in the keyring nor in the named variable."""


class RateLimited(PlatformError):
    """Too many requests: wait `retry_after` seconds, then send the same request again."""

    retryable = True

    def __init__(
        self, message: str, *, retry_after: float, platform: str = "", status: int | None = 429
    ):
        self.retry_after = retry_after
        super().__init__(message, platform=platform, status=status)


class Transient(PlatformError):
    """The request did not take effect (connection refused, 503 before processing…)."""

    retryable = True


class OutcomeUnknown(PlatformError):
    """The request left and no answer came back: it may have been posted. Never resend
    blindly; reconcile with the platform first (idempotency key, record key, read-back)."""


class Rejected(PlatformError):
    """The platform refused this post for good (too long, duplicate, forbidden)."""
