"""Without Chromium the browser tests are skipped with a reason a person sees, and fail
under CI=true, where a missing browser must not pass unnoticed (tests/fixtures_browser.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def _run_browser_test(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-rs",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            str(TESTS / "test_browser_mastodon.py"),
        ],
        env={**os.environ, "STORMER_CHROMIUM": "/nonexistent/chromium", **env},
        cwd=TESTS.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(
    ("ci", "exit_code", "outcome"), [("", 0, "1 skipped"), ("true", 1, "1 error")]
)
def test_a_missing_chromium_skips_loudly_and_fails_under_ci(
    ci: str, exit_code: int, outcome: str
) -> None:
    run = _run_browser_test(CI=ci)
    assert run.returncode == exit_code, run.stdout + run.stderr
    assert "browser tests NOT RUN: no Chromium" in run.stdout
    assert "make browser" in run.stdout
    assert outcome in run.stdout
