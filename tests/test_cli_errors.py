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
        # found by tests/test_cli_fuzz.py: a port over 65535 reached bind() (OverflowError)
        (["simulator", "serve", "--port", "99999999"], ["'--port'", "less than or equal to 65535"]),
        # found by test_cli_fuzz: an interval over the sleep's range was an OverflowError (70)
        (["status", "--watch", "--count", "2", "--interval", "1e308"], ["'--interval'"]),
        # found by test_cli_fuzz: a host with NUL or U+202E was a TypeError at bind() (exit 70)
        (["simulator", "serve", "--host", "a\u202eb"], ["--host", r"cannot listen on 'a\u202eb'"]),
        (["simulator", "serve", "--host", "no.such.host.invalid"], ["--host", "cannot listen"]),
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


def check(storm: Path) -> subprocess.CompletedProcess[str]:
    return stormer("check", cwd=storm)


def test_a_config_that_is_not_utf8_is_a_message_naming_it(storm: Path) -> None:
    (storm / "config.toml").write_bytes((storm / "config.toml").read_bytes() + b"\xff\xfe")
    result = check(storm)
    assert result.returncode == 1
    assert_message(result, "config.toml: error[bad-config]: not UTF-8 text", "save it as UTF-8")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"name,zone\n\xff\xfe bad\n", "not UTF-8 text"),
        (b"name,zone,lang,contact\n" + b"a" * 200_000 + b",UTC,en,\n", "cannot be read as CSV"),
    ],
)
def test_a_participants_file_that_cannot_be_read_is_a_problem(
    storm: Path, content: bytes, expected: str
) -> None:
    (storm / "participants.csv").write_bytes(content)
    result = check(storm)
    assert result.returncode == 1
    assert_message(result, f"participants.csv: error[bad-participant]: {expected}")
    assert "aaaa" not in result.stdout  # a refused field is never quoted


def test_a_folder_named_like_a_post_is_reported_and_ignored(storm: Path) -> None:
    (storm / "posts" / "draft.md").mkdir()
    result = check(storm)
    assert "posts/draft.md: warning[not-a-post]" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("at", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z"])
def test_a_storm_year_out_of_range_is_refused_by_every_command(storm: Path, at: str) -> None:
    from example import set_storm_time

    set_storm_time(storm, at)
    for command in ("check", "times"):
        result = stormer(command, cwd=storm)
        assert result.returncode == 1
        assert_message(result, "is not a storm's year: write one from 1970 to 2999")


@pytest.mark.parametrize("command", [["times"], ["preview", "--json"], ["preview"]])
def test_a_command_that_reads_a_rejected_storm_says_so_and_fails(
    storm: Path, command: list[str]
) -> None:
    (storm / "posts" / "zz-long.md").write_text(
        '+++\nlang = "en"\n+++\n' + "word " * 400 + "#FreePalestinianStudents\n", encoding="utf-8"
    )
    result = stormer(*command, cwd=storm)
    assert result.returncode == 1
    assert result.stdout.strip()  # the output itself is still there
    assert "error[too-long]" in result.stderr
    assert "`stormer check` rejects this storm" in result.stderr
