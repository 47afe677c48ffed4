"""The `stormer` command line. Thin: parse, call a service, render; nothing else imports it.

One module per command family, each registering its commands on `app.app` when imported;
this module imports them all, so `stormer.cli.app` holds every command once `stormer.cli` is
imported. Errors become one-line messages here, at the edge, and nowhere else.

Heavy packages (pydantic, Babel, SQLAlchemy, httpx, plugins) are imported inside command
bodies so that `stormer --help` stays fast; tests/test_cli_startup.py holds that line.
"""

from __future__ import annotations

import functools
import gc
import os
import sys
from typing import TYPE_CHECKING

from stormer.cli import (
    accounts,
    check_preview,
    doctor,
    impact,
    init,
    kit,
    participants,
    rehearse,
    run,
    schedule,
    simulator,
    status,
    times,
)
from stormer.cli.app import app
from stormer.errors import ConfigError, StormerError

if TYPE_CHECKING:
    from typer import _click as click

__all__ = [
    "accounts",
    "app",
    "check_preview",
    "doctor",
    "impact",
    "init",
    "kit",
    "main",
    "participants",
    "rehearse",
    "run",
    "schedule",
    "simulator",
    "status",
    "times",
]


# The cyclic collector's thresholds while a command runs (Python's are 700, 10, 10). A big
# storm is tens of thousands of long-lived objects (posts, accounts, items, payloads) made
# at once: at the default thresholds the collector walked them all again and again, 0.7 s
# of `stormer schedule`'s 4.7 s at 10,000 accounts (bench/prepare.py). Young objects are
# still collected every 10,000 allocations; the whole heap seldom. mypy raises them further
# (200,000, 30, 30) for the same reason.
_GC_THRESHOLDS = (10_000, 50, 100)


def main() -> None:
    """Entry point: errors become one-line messages and a non-zero exit code, never a
    traceback (STORMER_DEBUG=1 shows the traceback of an unexpected one)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(*_GC_THRESHOLDS)
    try:
        _run()
    finally:
        gc.set_threshold(*thresholds)  # as it was, for a caller in the same process


def _run() -> None:
    try:
        _command()(standalone_mode=True)
    except ConfigError as e:
        for problem in e.problems:
            print(f"stormer: {problem}", file=sys.stderr)
        sys.exit(1)
    except StormerError as e:
        print(f"stormer: error: {e}", file=sys.stderr)
        sys.exit(2)
    except Exception as e:  # the edge: whatever escaped becomes a message
        if os.environ.get("STORMER_DEBUG"):
            raise
        print(f"stormer: error: {unexpected(e)}", file=sys.stderr)
        sys.exit(_INTERNAL if _is_bug(e) else 2)


@functools.cache
def _command() -> click.Command:
    """The click command typer makes of `app`: made once per process (about 70 ms: typer
    reads every command's signature), not at every call of `main` (tests call it thousands
    of times). Called rather than `app()` because `main` handles every error itself, where
    `app()` would also install typer's pretty traceback hook."""
    import typer

    return typer.main.get_command(app)


_INTERNAL = 70  # EX_SOFTWARE: a defect of stormer's, not of the input


def _is_bug(e: Exception) -> bool:
    return not isinstance(e, OSError | UnicodeError) and not _is_database_error(e)


def _is_database_error(e: Exception) -> bool:
    return type(e).__module__.startswith("sqlalchemy")


def unexpected(e: Exception) -> str:
    """A message for an error no command turned into one: what, where, how to fix it."""
    from stormer.secrets import clean_error

    if _is_database_error(e):
        reason = str(getattr(e, "orig", None) or e).strip().splitlines()[0]
        if getattr(getattr(e, "orig", None), "sqlite_errorname", None) == "SQLITE_FULL":
            # The disk (or the file system's quota) is full: the URL is right, and the
            # failed transaction wrote nothing.
            return clean_error(
                f"the database cannot be written: {reason} — free space on the disk that "
                "holds it, then run the same command again (nothing was half-written)"
            )
        return clean_error(
            f"the database cannot be used: {reason} — check STORMER_DATABASE_URL or "
            "[database] url in config.toml, and that its server is running"
        )
    if isinstance(e, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({e.reason} at byte {e.start}): save it as UTF-8"
    if isinstance(e, OSError):
        where = f"{e.filename}: " if e.filename else ""
        return f"{where}{e.strerror or e}"
    return clean_error(
        f"unexpected {type(e).__name__}: {e} — this is a bug in stormer; please report it "
        "with the output of the same command run with STORMER_DEBUG=1"
    )
