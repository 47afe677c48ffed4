"""Collecting the problems of a storm, each with its file and line, without repeating a secret."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from os import PathLike

from stormer.errors import Problem, Severity
from stormer.storm.schema import CONFIG_NAME


class ProblemCollector:
    """The problems found while reading a storm's files, in the order found.

    Loading goes on after a problem, so that `stormer check` reports them all at once.
    `secrets` holds the values found written into config.toml: `redacted` masks them.
    """

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.secrets: set[str] = set()  # values found in config that must never be echoed

    def add(
        self,
        severity: Severity,
        code: str,
        file: str | None,
        line: int | None,
        msg: str,
        *,
        column: int | None = None,
        excerpt: str | None = None,
    ) -> None:
        self.problems.append(Problem(severity, code, file, line, msg, column, excerpt))

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
            out.append(replace(p, message=message))
        return out


def in_reading_order(problems: Iterable[Problem], folder: str | PathLike[str]) -> list[Problem]:
    """`problems` located in the storm `folder` (as the user named it) and sorted the way a
    person fixes them from the top: config.toml first, then the other files by name, each
    from its top (a problem about the whole file first) down; the order found within a line.
    """
    located = [p.in_folder(folder) for p in problems]
    return sorted(
        located, key=lambda p: (p.file is None, p.file != CONFIG_NAME, p.file or "", p.line or 0)
    )


def not_utf8(e: UnicodeDecodeError) -> str:
    """Where a file stops being UTF-8, for a message that says how to fix it."""
    return f"{e.reason} at byte {e.start}; save it as UTF-8"
