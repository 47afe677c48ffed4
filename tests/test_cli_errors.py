"""Errors are messages, never tracebacks: what is wrong, where, how to fix it, and a non-zero
exit code — through `stormer.cli.main`, the real entry point, in a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from example import copy_example
from ports import free_port
from timing import far_ahead

from stormer.timezones import MAX_DURATION, iso_utc, parse_duration


def stormer(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    code = "import sys; from stormer.cli import main; sys.argv = ['stormer', *sys.argv[1:]]; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {}), "STORMER_DEBUG": ""},
    )


@pytest.fixture
def storm(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "storm", at=iso_utc(far_ahead()))


def assert_message(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode not in (0, 70), output
    assert "Traceback" not in output and "╭" not in output, output
    for text in expected:
        assert text in output, output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--grace", "banana"], ["'--grace'", "'banana' is not a duration"]),
        (["rehearse", "--in", "-5s"], ["'--in'", "'-5s' is not a duration"]),
        (["run", "--lease", "99999999999d"], ["'--lease'", "too long: at most 366d"]),
        (["times", "--lang", "../../etc"], ["'--lang'", "is not a language code"]),
    ],
)
def test_a_bad_option_is_a_usage_error_naming_it(
    storm: Path, args: list[str], expected: list[str]
) -> None:
    result = stormer(*args, cwd=storm)
    assert result.returncode == 2
    assert_message(result, *expected)


@pytest.mark.parametrize("command", ["schedule", "status", "report"])
def test_an_unreachable_database_is_a_message(storm: Path, command: str) -> None:
    url = f"postgresql://organizer:pw-SECRET@127.0.0.1:{free_port()}/storm"
    result = stormer(command, cwd=storm, env={"STORMER_DATABASE_URL": url})
    assert_message(result, "the database cannot be used", "STORMER_DATABASE_URL")
    assert "pw-SECRET" not in result.stdout + result.stderr


def test_a_duration_too_long_for_a_date_is_refused_not_overflowed() -> None:
    assert parse_duration("366d") == MAX_DURATION
    for text in ("367d", "99999999999d", "9999999999999h"):
        with pytest.raises(ValueError, match="too long"):
            parse_duration(text)
