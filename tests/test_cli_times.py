"""`stormer times` end to end, including its errors as a user sees them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from example import REPO
from typer.testing import CliRunner

from stormer.cli import app

runner = CliRunner()


def stormer(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the real command line in a fresh interpreter (as a user would)."""
    return subprocess.run(
        [sys.executable, "-m", "stormer", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_json_for_the_example_storm() -> None:
    result = runner.invoke(app, ["times", "--json", "--storm", str(REPO)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["at_utc"] == "2021-03-11T18:00:00Z"
    by_zone = {t["zone"]: t for t in data["times"]}
    assert by_zone["Asia/Gaza"] == {
        "zone": "Asia/Gaza",
        "local": "2021-03-11T20:00:00+02:00",
        "weekday": "Thursday",
        "abbreviation": "EET",
    }
    assert by_zone["Asia/Kathmandu"]["local"] == "2021-03-11T23:45:00+05:45"
    assert by_zone["Pacific/Auckland"]["local"] == "2021-03-12T07:00:00+13:00"
    assert by_zone["Pacific/Auckland"]["weekday"] == "Friday"
    assert by_zone["America/Sao_Paulo"]["local"] == "2021-03-11T15:00:00-03:00"
    # Default zones: the announce zones first, then every participant's zone.
    assert [t["zone"] for t in data["times"][:5]] == [
        "America/Los_Angeles",
        "America/New_York",
        "UTC",
        "Europe/Paris",
        "Asia/Gaza",
    ]
    assert {"Europe/Madrid", "Africa/Tunis", "Asia/Kathmandu"} <= set(by_zone)
    assert data["announcement"] == (
        "Thursday 11 March, 10 am Pacific / 1 pm Eastern / "
        "6 pm UTC / 7 pm central Europe / 8 pm Palestine"
    )


@pytest.mark.parametrize(
    "lang, expected",
    [
        (
            "en",
            "Thursday 11 March, 10 am Pacific / 1 pm Eastern / 6 pm UTC / 7 pm central Europe"
            " / 8 pm Palestine",
        ),
        (
            "es",
            "jueves, 11 de marzo, 10:00 Pacífico / 13:00 Este de EE. UU. / 18:00 UTC / "
            "19:00 Europa central / 20:00 Palestina",
        ),
        ("fr", "jeudi 11 mars, 10:00 Pacifique"),
        ("it", "giovedì 11 marzo, 10:00 Pacifico"),
        ("ar", "الخميس، 11 مارس، 10:00 المحيط الهادئ"),
    ],
)
def test_announce_in_each_language(lang: str, expected: str) -> None:
    result = runner.invoke(app, ["times", "--announce", "--lang", lang, "--storm", str(REPO)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().startswith(expected)


def test_wall_time_with_zone_and_explicit_zones() -> None:
    result = runner.invoke(
        app,
        [
            "times",
            "--at",
            "2021-03-11 19:00",
            "--tz",
            "Europe/Madrid",
            "--zone",
            "Asia/Gaza",
            "--zone",
            "Pacific/Auckland",
            "--json",
            "--storm",
            str(REPO),
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["at_utc"] == "2021-03-11T18:00:00Z"
    assert [t["local"] for t in data["times"]] == [
        "2021-03-11T20:00:00+02:00",
        "2021-03-12T07:00:00+13:00",
    ]


def test_times_without_a_storm_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(
        app,
        [
            "times",
            "--at",
            "2021-03-11T20:00:00+02:00",
            "--zone",
            "UTC",
            "--json",
            "--storm",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["times"][0]["local"] == "2021-03-11T18:00:00+00:00"


@pytest.mark.parametrize(
    "args, fragments",
    [
        (
            ["--at", "2021-03-28 02:30", "--tz", "Europe/Madrid"],
            ["does not exist", "Europe/Madrid"],
        ),
        (
            ["--at", "2021-10-31 02:30", "--tz", "Europe/Madrid"],
            ["ambiguous", "2021-10-31T00:30:00Z", "2021-10-31T01:30:00Z"],
        ),
        (
            ["--at", "2021-03-11 20:00", "--tz", "Europe/Madird"],
            ["unknown time zone", "Europe/Madrid"],
        ),
        (["--zone", "Asia/Gazza"], ["unknown time zone", "Asia/Gaza"]),
        (["--at", "2021-02-30 20:00", "--tz", "Asia/Gaza"], ["not a valid date"]),
        (["--at", "2021-03-11 20:00"], ["without a zone", "--tz"]),
    ],
)
def test_errors_are_messages_not_tracebacks(args: list[str], fragments: list[str]) -> None:
    result = stormer("times", *args)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in result.stderr


def test_list_zones_names_every_zone_the_unknown_zone_message_points_to() -> None:
    from typer.testing import CliRunner

    from stormer.cli import app
    from stormer.errors import UnknownZone

    assert "stormer times --list-zones" in str(UnknownZone("Mars/Base", []))
    result = CliRunner().invoke(app, ["times", "--list-zones"])
    zones = result.stdout.split()
    assert result.exit_code == 0 and "Asia/Gaza" in zones and "Europe/Madrid" in zones
    assert zones == sorted(zones) and "Mars/Base" not in zones
