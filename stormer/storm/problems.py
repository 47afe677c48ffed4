"""Collecting the problems of a storm, each with its file and line, without repeating a secret."""

from __future__ import annotations

from stormer.errors import Problem, Severity


class ProblemCollector:
    """The problems found while reading a storm's files, in the order found.

    Loading goes on after a problem, so that `stormer check` reports them all at once.
    `secrets` holds the values found written into config.toml: `redacted` masks them.
    """

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.secrets: set[str] = set()  # values found in config that must never be echoed

    def add(
        self, severity: Severity, code: str, file: str | None, line: int | None, msg: str
    ) -> None:
        self.problems.append(Problem(severity, code, file, line, msg))

    def redacted(self) -> list[Problem]:
        """The problems with every secret value found in config replaced: a message that
        quotes a bad value (a zone, a time) must not repeat a token pasted there."""
        if not self.secrets:
            return self.problems
        out = []
        for p in self.problems:
            message = p.message
            for value in self.secrets:
                message = message.replace(value, "<redacted>")
            out.append(Problem(p.severity, p.code, p.file, p.line, message))
        return out


def not_utf8(e: UnicodeDecodeError) -> str:
    """Where a file stops being UTF-8, for a message that says how to fix it."""
    return f"{e.reason} at byte {e.start}; save it as UTF-8"
