"""What a pre-flight check found: `doctor` and its parts (`stormer.ops.clock`) return these."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Severity = Literal["info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class Finding:
    """The result of one check. `ok` is False for warnings and errors; `fix` says what to do."""

    name: str
    ok: bool
    severity: Severity
    message: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def passed(name: str, message: str) -> Finding:
    return Finding(name, True, "info", message)


def warned(name: str, message: str, fix: str | None = None) -> Finding:
    return Finding(name, False, "warning", message, fix)


def failed(name: str, message: str, fix: str | None = None) -> Finding:
    return Finding(name, False, "error", message, fix)
