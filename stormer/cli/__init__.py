"""The `stormer` command line. Thin: parse, call a service, render; nothing else imports it.

One module per command family, each registering its commands on `app.app` when imported;
this module imports them all, so `stormer.cli.app` holds every command once `stormer.cli` is
imported. Errors become one-line messages here, at the edge, and nowhere else.

Heavy packages (pydantic, Babel, SQLAlchemy, httpx, plugins) are imported inside command
bodies so that `stormer --help` stays fast; tests/test_cli_startup.py holds that line.
"""

from __future__ import annotations

import sys

from stormer.cli import (
    accounts,
    check_preview,
    doctor,
    init,
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

__all__ = [
    "accounts",
    "app",
    "check_preview",
    "doctor",
    "init",
    "main",
    "participants",
    "rehearse",
    "run",
    "schedule",
    "simulator",
    "status",
    "times",
]


def main() -> None:
    """Entry point: library errors become one-line messages and a non-zero exit code."""
    try:
        app()
    except ConfigError as e:
        for problem in e.problems:
            print(f"stormer: {problem}", file=sys.stderr)
        sys.exit(1)
    except StormerError as e:
        print(f"stormer: error: {e}", file=sys.stderr)
        sys.exit(2)
