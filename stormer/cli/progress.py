"""Progress bars for the commands that prepare a storm (check, preview, schedule): on a
terminal, a bar per step that can take seconds on a big storm (reading posts, checking them,
planning, rendering, writing the outbox); in a pipe, a file or with --json, nothing at all.

The steps themselves only call `progress(step, done, total)` (as `stormer impact`'s reading
calls `on_page`): they know nothing of terminals. Bars go to stderr and vanish when done.
"""

from __future__ import annotations

import sys
from typing import Any


class Steps:
    """`with Steps(quiet=as_json) as progress:` then pass `progress` to the steps; or call
    `progress.spin(step)` for a step that cannot count (planning)."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> Steps:
        if not self.quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Take the bars off the terminal (before the command prints its own output)."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def __call__(self, step: str, done: int, total: int) -> None:
        if self.bar is None:
            return
        task = self.tasks.get(step)
        if task is None:
            task = self.tasks[step] = self.bar.add_task(step, total=total)
        self.bar.update(task, completed=done, total=total)

    def spin(self, step: str) -> None:
        """A step of unknown length: a spinner with the time it has taken so far."""
        if self.bar is not None and step not in self.tasks:
            self.tasks[step] = self.bar.add_task(step, total=None)

    def done(self, step: str) -> None:
        if self.bar is not None and step in self.tasks:
            self.bar.update(self.tasks[step], total=1, completed=1)
