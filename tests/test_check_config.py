"""`stormer check`: config.toml: times and zones, and a config that cannot be used (unknown
keys, bad values, invalid TOML, no config at all).

The approach and the helpers: check_helpers.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from check_helpers import (
    BEFORE,
    CONFIG,
    EXAMPLE_AT,
    assert_clean_failure,
    codes,
    edit_config,
    line_of,
    load,
    report,
    run_main,
    run_process,
    the_one,
)

from stormer.errors import ConfigError, Problem
from stormer.ops.checks import check

# --- times and zones -----------------------------------------------------------------------


def set_time(root: Path, at: str, tz: str | None = None) -> int:
    """Set [storm] at (and tz); return the line of `at`."""
    new = f'at = "{at}"' + (f'\ntz = "{tz}"' if tz else "")
    edit_config(root, 'at = "2021-03-11T18:00:00Z"', new)
    return line_of(root / CONFIG, f'at = "{at}"')


def test_wall_time_with_zone_is_localized(storm: Path) -> None:
    set_time(storm, "2021-03-11 19:00", "Europe/Madrid")
    loaded = load(storm)
    assert loaded.at == EXAMPLE_AT
    assert check(loaded, now=BEFORE) == []


def test_unknown_announce_zone_suggests_the_right_one(storm: Path) -> None:
    edit_config(storm, 'zone = "Europe/Paris"', 'zone = "Europe/Madird"')
    problems = report(storm)
    p = the_one(problems, "unknown-zone")
    assert (p.severity, p.file, p.line) == (
        "error",
        CONFIG,
        line_of(storm / CONFIG, '"Europe/Madird"'),
    )
    assert "'Europe/Madird'" in p.message
    assert "Did you mean: Europe/Madrid" in p.message
    assert codes(problems) == ["unknown-zone"]
    assert "Europe/Madird" not in [a.zone for a in load(storm).announce]


def test_unknown_storm_tz(storm: Path) -> None:
    set_time(storm, "2021-03-11 19:00", "Europe/Madird")
    problems = report(storm)
    p = the_one(problems, "unknown-zone")
    assert (p.severity, p.file, p.line) == (
        "error",
        CONFIG,
        line_of(storm / CONFIG, 'tz = "Europe/Madird"'),
    )
    assert "Did you mean: Europe/Madrid" in p.message
    assert codes(problems) == ["unknown-zone"]
    assert load(storm).at is None


def test_zone_that_is_a_tzdata_folder_is_unknown(storm: Path) -> None:
    edit_config(storm, 'zone = "Europe/Paris"', 'zone = "America/Indiana"')
    assert codes(report(storm)) == ["unknown-zone"]


def test_nonexistent_local_time(storm: Path) -> None:
    line = set_time(storm, "2021-03-28 02:30", "Europe/Madrid")
    problems = report(storm)
    p = the_one(problems, "nonexistent-local-time")
    assert (p.severity, p.file, p.line) == ("error", CONFIG, line)
    assert "2021-03-28 02:30 does not exist in Europe/Madrid" in p.message
    assert "02:00 to 03:00" in p.message
    assert codes(problems) == ["nonexistent-local-time"]


def test_ambiguous_local_time(storm: Path) -> None:
    line = set_time(storm, "2021-10-31 02:30", "Europe/Madrid")
    problems = report(storm)
    p = the_one(problems, "ambiguous-local-time")
    assert (p.severity, p.file, p.line) == ("error", CONFIG, line)
    assert "ambiguous" in p.message
    assert "2021-10-31T00:30:00Z" in p.message and "2021-10-31T01:30:00Z" in p.message
    assert codes(problems) == ["ambiguous-local-time"]


@pytest.mark.parametrize(
    ("at", "tz", "fragment"),
    [
        (
            "2021-02-30T18:00:00Z",
            None,
            "2021-02-30 18:00:00 is not a valid date and time: day is out of range for month",
        ),
        ("2021-03-11 25:00", "Europe/Madrid", "2021-03-11 25:00 is not a valid date and time"),
        ("next thursday", None, "cannot read 'next thursday' as a time"),
        ("2021-03-11 19:00", None, "is a wall time without a zone"),
        ("2021-03-11T18:00:00Z", "Europe/Madrid", "already has a UTC offset"),
        ("2021-03-11T18:00:00+25:00", None, "'+25:00' is not a valid UTC offset"),
    ],
    ids=[
        "impossible-date",
        "impossible-hour",
        "unreadable",
        "wall-without-zone",
        "offset-and-zone",
        "bad-offset",
    ],
)
def test_bad_time(storm: Path, at: str, tz: str | None, fragment: str) -> None:
    if at == "2021-03-11T18:00:00Z":  # unchanged `at`, only a zone added
        edit_config(storm, 'at = "2021-03-11T18:00:00Z"', f'at = "{at}"\ntz = "{tz}"')
        line = line_of(storm / CONFIG, f'at = "{at}"')
    else:
        line = set_time(storm, at, tz)
    problems = report(storm)
    p = the_one(problems, "bad-time")
    assert (p.severity, p.file, p.line) == ("error", CONFIG, line)
    assert fragment in p.message
    assert codes(problems) == ["bad-time"]


# --- config.toml that cannot be used ---------------------------------------------------------


def test_unknown_key_in_storm_section(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_config(
        storm,
        'hashtag = "#FreePalestinianStudents"',
        'hashtag = "#FreePalestinianStudents"\ncolour = "red"',
    )
    line = line_of(storm / CONFIG, 'colour = "red"')
    with pytest.raises(ConfigError) as e:
        load(storm)
    assert e.value.problems == [
        Problem("error", "bad-config", CONFIG, line, "storm.colour: Extra inputs are not permitted")
    ]
    code, out, err = run_main(monkeypatch, capsys, "check", "--storm", str(storm))
    assert_clean_failure(code, out, err)
    assert err == (  # the file as the user named it
        f"stormer: {storm / CONFIG}:{line}: error[bad-config]: "
        "storm.colour: Extra inputs are not permitted\n"
    )
    # With --json the problems are JSON on stdout even when the storm cannot be loaded.
    code, out, err = run_main(monkeypatch, capsys, "check", "--json", "--storm", str(storm))
    assert_clean_failure(code, out, err)
    assert json.loads(out) == [
        {
            "severity": "error",
            "code": "bad-config",
            "file": CONFIG,
            "line": line,
            "message": "storm.colour: Extra inputs are not permitted",
        }
    ]


@pytest.mark.parametrize(
    ("old", "new", "key", "fragment"),
    [
        (
            'hashtag = "#FreePalestinianStudents"',
            'hashtag = "FreePalestinianStudents"',
            "hashtag",
            "storm.hashtag: String should match pattern",
        ),
        (
            "posts_per_account = 1",
            "posts_per_account = 0",
            "posts_per_account",
            "storm.posts_per_account: Input should be greater than or equal to 1",
        ),
        (
            'post_interval = "0s"',
            'post_interval = "soon"',
            "post_interval",
            "'soon' is not a duration",
        ),
        (
            'offsets = ["24h", "1h", "10m"]',
            'offsets = ["24h", "an hour"]',
            "offsets",
            "'an hour' is not a duration",
        ),
        (
            'name = "campaign-x"',
            'name = "campaign x"',
            'name = "campaign x"',
            "accounts.4.name: String should match pattern",
        ),
        (  # found by test_cli_fuzz: `doctor` failed on it with "unexpected ValueError"
            'base_url = "https://matrix.example.org"',
            'base_url = "http://[::1"',
            'base_url = "http://[::1"',
            "accounts.7.base_url: Value error, 'http://[::1' is not a URL (Invalid IPv6 URL)",
        ),
        (
            'base_url = "https://matrix.example.org"',
            'base_url = "matrix.example.org"',
            'base_url = "matrix.example.org"',
            "'matrix.example.org' is not a URL: write it like https://",
        ),
    ],
    ids=[
        "hashtag",
        "posts-per-account",
        "post-interval",
        "reminder-offset",
        "account-name",
        "base-url-unparsable",
        "base-url-no-scheme",
    ],
)
def test_bad_config_value(storm: Path, old: str, new: str, key: str, fragment: str) -> None:
    edit_config(storm, old, new)
    problems = report(storm)
    p = the_one(problems, "bad-config")
    assert (p.severity, p.file, p.line) == ("error", CONFIG, line_of(storm / CONFIG, key))
    assert fragment in p.message


def test_invalid_toml(storm: Path) -> None:
    edit_config(storm, 'post_interval = "0s"', 'post_interval = "0s')  # unterminated string
    line = line_of(storm / CONFIG, 'post_interval = "0s')
    with pytest.raises(ConfigError) as e:
        load(storm)
    [p] = e.value.problems
    assert (p.severity, p.code, p.file, p.line) == ("error", "bad-config", CONFIG, line)
    assert p.message.startswith("config.toml is not valid TOML: ")
    done = run_process("check", "--storm", storm.name, cwd=storm.parent)
    assert_clean_failure(done.returncode, done.stdout, done.stderr)
    assert done.returncode == 1
    assert done.stdout == ""
    # Like a compiler: the file as given, the line and column, the line quoted, a caret.
    assert done.stderr == (
        f"stormer: storm/config.toml:{line}:20: error[bad-config]: config.toml is not valid "
        "TOML: Illegal character '\\n' (a string not closed by a quote on its line?)\n"
        '    post_interval = "0s\n'
        "                       ^\n"
    )


def test_missing_config(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (storm / CONFIG).unlink()
    with pytest.raises(ConfigError) as e:
        load(storm)
    [p] = e.value.problems
    assert (p.severity, p.code, p.line) == ("error", "no-config", None)
    assert p.message == (
        f"no config.toml in {storm}: run `stormer init {storm}` to start a "
        "storm, or pass --storm DIR"
    )
    code, out, err = run_main(monkeypatch, capsys, "check", "--storm", str(storm))
    assert_clean_failure(code, out, err)
    assert code == 1
    assert f"no config.toml in {storm}" in err


def test_missing_config_in_a_real_process(tmp_path: Path) -> None:
    done = run_process("check", cwd=tmp_path)  # the current folder is not a storm
    assert_clean_failure(done.returncode, done.stdout, done.stderr)
    assert done.returncode == 1
    assert "error[no-config]: no config.toml in ." in done.stderr


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("notadb://user:pw-SECRET@host/x", True),
        ("sqlite:///:memory:", True),  # found by test_cli_fuzz: lost when a command ends
        ("sqlite:///stormer.db", False),
        ("postgresql://organizer@127.0.0.1/storm", False),
    ],
)
def test_a_database_url_stormer_cannot_use_is_an_error(
    storm: Path, url: str, refused: bool
) -> None:
    edit_config(storm, "[database]\n", f'[database]\nurl = "{url}"\n')
    problems = [p for p in report(storm) if p.code == "bad-database-url"]
    assert bool(problems) == refused
    assert all("SECRET" not in p.message and p.severity == "error" for p in problems)


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("posts/en-01-right-to-education.md", 'lang = "en"', 'lang = "zz"'),
        ("posts/en-01-right-to-education.md", 'lang = "en"', 'lang = "9999-12-31T23:59:59Z"'),
        ("config.toml", 'default_lang = "en"', 'default_lang = "xx"'),
        ("config.toml", 'langs = ["en"]', 'langs = ["qq"]'),
    ],
)
def test_a_language_babel_cannot_write_in_is_an_error_on_its_line(
    tmp_path: Path, file: str, old: str, new: str
) -> None:
    """Found by the property test: a post in lang "9999-12-31T23:59:59Z" (or "zz") passed
    `check`, and `kit build` failed on it with Babel's ValueError (exit 70)."""
    from example import copy_example

    from stormer.storm import load_storm

    storm = copy_example(tmp_path / "storm")
    path = storm / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    problems = [p for p in load_storm(storm).errors if p.code == "bad-lang"]
    assert len(problems) == 1 and problems[0].line is not None
    assert "is not a language code stormer knows" in problems[0].message
