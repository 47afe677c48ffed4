"""`stormer check` on the example storm, and what a run reports: everything at once, printed as
file:line: severity[code].

The approach and the helpers: check_helpers.py."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from check_helpers import (
    BEFORE,
    CONFIG,
    EXAMPLE_AT,
    IMAGES_LINE,
    PARTICIPANTS,
    account_line,
    append,
    cli_check,
    codes,
    edit_config,
    image_post,
    line_of,
    load,
    report,
    run_main,
    the_one,
    write_post,
)
from typer.testing import CliRunner

from stormer import cli
from stormer.ops.checks import check

# --- the example storm ----------------------------------------------------------------------


def test_example_storm_has_only_the_storm_in_past_warning(storm: Path) -> None:
    code, problems = cli_check(storm)
    assert code == 0
    assert problems == [
        {
            "severity": "warning",
            "code": "storm-in-past",
            "file": CONFIG,
            "line": line_of(storm / CONFIG, 'at = "2021-03-11T18:00:00Z"'),
            "message": "the storm time 2021-03-11 18:00 UTC has passed; `stormer schedule` will "
            "refuse it (fine for a rehearsal or a look back)",
        }
    ]


def test_example_storm_checked_before_2021_has_no_problems(storm: Path) -> None:
    loaded = load(storm)
    assert loaded.at == EXAMPLE_AT
    assert check(loaded, now=BEFORE) == []
    assert (len(loaded.posts), len(loaded.accounts), len(loaded.participants)) == (15, 8, 50)


def test_example_storm_text_output(storm: Path) -> None:
    result = CliRunner().invoke(cli.app, ["check", "--storm", str(storm)])
    assert result.exit_code == 0
    at_line = line_of(storm / CONFIG, 'at = "')
    assert result.stdout.splitlines() == [
        f"{storm / CONFIG}:{at_line}: warning[storm-in-past]: the storm time 2021-03-11 18:00 UTC "
        "has passed; "
        "`stormer schedule` will refuse it (fine for a rehearsal or a look back)",
        "Free Palestinian Students: 15 posts, 8 accounts, 50 participants — 0 error(s), "
        "1 warning(s)",
    ]


@pytest.mark.parametrize(
    ("now", "warned"),
    [
        (EXAMPLE_AT - timedelta(seconds=1), False),
        (EXAMPLE_AT, True),
        (EXAMPLE_AT + timedelta(days=365), True),
    ],
)
def test_storm_in_past(storm: Path, now: datetime, warned: bool) -> None:
    problems = report(storm, now=now)
    if not warned:
        assert problems == []
        return
    p = the_one(problems, "storm-in-past")
    assert (p.severity, p.file, p.line) == ("warning", CONFIG, line_of(storm / CONFIG, 'at = "'))
    assert "2021-03-11 18:00 UTC has passed" in p.message
    assert codes(problems) == ["storm-in-past"]


# --- everything at once --------------------------------------------------------------------


def test_many_problems_are_reported_in_one_run(storm: Path) -> None:
    post = image_post(storm, '{ path = "images/nope.png", alt = "nothing" }')
    edit_config(storm, 'zone = "Europe/Paris"', 'zone = "Europe/Madird"')
    zone_line = line_of(storm / CONFIG, "Europe/Madird")
    row = append(storm / PARTICIPANTS, "US Solidarity,US,en,")
    no_tag = write_post(storm, "zz-untagged.md", "No hashtag", front='platforms = ["mastodon"]')
    edit_config(storm, '\ntarget = "@freepalestinianstudents_example"', "")
    code, problems = cli_check(storm)
    assert code == 1
    assert sorted((p["code"], p["severity"], p["file"], p["line"]) for p in problems) == sorted(
        [
            ("unknown-zone", "error", CONFIG, zone_line),
            ("missing-image", "error", post.file, IMAGES_LINE),
            ("missing-hashtag", "warning", no_tag.file, no_tag.text_line),
            ("bad-participant", "error", PARTICIPANTS, row),
            ("missing-target", "error", CONFIG, account_line(storm, "campaign-telegram")),
            ("storm-in-past", "warning", CONFIG, line_of(storm / CONFIG, 'at = "')),
        ]
    )


def test_problems_print_as_file_line_severity_code(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    row = append(storm / PARTICIPANTS, "US Solidarity,US,en,")
    code, out, _ = run_main(monkeypatch, capsys, "check", "--storm", str(storm))
    assert code == 1
    where = re.escape(f"{storm / PARTICIPANTS}:{row}")
    assert re.search(rf"^{where}: error\[bad-participant\]: row {row} ", out, re.M)
    assert out.rstrip().endswith("— 1 error(s), 1 warning(s)")
