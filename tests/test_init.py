"""`stormer init` scaffolds a storm whose only problems are the sample texts left to write."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from example import write_own_posts
from typer.testing import CliRunner

from stormer.cli import app
from stormer.storm import load_storm

runner = CliRunner()


def test_scaffold_passes_check_once_the_posts_are_written(tmp_path: Path) -> None:
    target = tmp_path / "new-storm"
    result = runner.invoke(
        app, ["init", str(target), "--name", "Free Them All", "--hashtag", "#FreeThemAll"]
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (target / "posts").glob("*.md")) == [
        "ar-01.md",
        "en-01.md",
        "es-01.md",
        "fr-01.md",
        "it-01.md",
    ]
    checked = runner.invoke(app, ["check", "--json", "--storm", str(target)])
    assert checked.exit_code == 1, checked.output
    problems = json.loads(checked.stdout)
    # An unedited sample would be queued and handed to participants as theirs.
    assert {(p["code"], p["file"]) for p in problems} == {
        ("placeholder-post", f"posts/{lang}-01.md") for lang in ("ar", "en", "es", "fr", "it")
    }
    write_own_posts(target, "#FreeThemAll")
    checked = runner.invoke(app, ["check", "--json", "--storm", str(target)])
    assert checked.exit_code == 0, checked.output
    assert json.loads(checked.stdout) == []
    storm = load_storm(target)
    assert storm.name == "Free Them All" and storm.hashtag == "#FreeThemAll"
    assert storm.at is not None and storm.at > datetime.now(UTC)
    assert all("#FreeThemAll" in p.text for p in storm.posts)


def test_scaffold_with_wall_time(tmp_path: Path) -> None:
    target = tmp_path / "s"
    result = runner.invoke(
        app, ["init", str(target), "--at", "2031-03-13 20:00", "--tz", "Asia/Gaza"]
    )
    assert result.exit_code == 0, result.output
    storm = load_storm(target)
    assert storm.at == datetime(2031, 3, 13, 18, tzinfo=UTC)


def test_scaffold_refuses_an_existing_storm_and_bad_input(tmp_path: Path) -> None:
    target = tmp_path / "s"
    assert runner.invoke(app, ["init", str(target)]).exit_code == 0
    config = (target / "config.toml").read_text(encoding="utf-8")
    again = runner.invoke(app, ["init", str(target)])
    assert again.exit_code != 0 and "exists already" in str(again.exception)
    assert (target / "config.toml").read_text(encoding="utf-8") == config
    bad = runner.invoke(app, ["init", str(tmp_path / "t"), "--hashtag", "no hash"])
    assert bad.exit_code != 0 and "not a hashtag" in str(bad.exception)
    gap = runner.invoke(
        app, ["init", str(tmp_path / "u"), "--at", "2031-03-30 02:30", "--tz", "Europe/Madrid"]
    )
    assert gap.exit_code == 2 and "Invalid value for --at" in gap.output
    assert "does not exist in Europe/Madrid" in gap.output
    assert not (tmp_path / "u").exists()


FORMS = (
    "--at takes an instant such as 2031-03-13T18:00:00Z or 2031-03-13T20:00:00+02:00, or a "
    "wall time such as '2031-03-13 20:00' with --tz ZONE"
)


@pytest.mark.parametrize(
    ("args", "option", "says"),
    [
        (["--at", "next friday"], "--at", "cannot read 'next friday' as a time: write an instant"),
        (
            ["--at", "2031-02-30 20:00", "--tz", "UTC"],
            "--at",
            f"day is out of range for month ({FORMS})",
        ),
        (["--at", "9999-12-31T23:59:59Z"], "--at", "9999 is not a storm's year"),
        (["--at", "2031-03-13 20:00"], "--at", "a wall time without a zone: add --tz ZONE"),
        (["--at", "2031-03-13T18:00Z", "--tz", "UTC"], "--at", "already has a UTC offset"),
        (["--at", "2031-03-13 20:00", "--tz", "Asia/Gazza"], "--tz", "Did you mean: Asia/Gaza"),
        (["--tz", "Asia/Gaza"], "--tz", "--tz needs --at"),
    ],
)
def test_a_bad_storm_time_is_a_usage_error_naming_its_option(
    tmp_path: Path, args: list[str], option: str, says: str
) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "s"), *args])
    assert result.exit_code == 2, result.output
    assert f"Invalid value for {option}: " in result.output
    assert says in " ".join(result.output.split())  # the usage box may wrap the message
    assert "Traceback" not in result.output
    assert not (tmp_path / "s").exists()
