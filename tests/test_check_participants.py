"""`stormer check`: participants.csv (zones, languages, contacts) and the participants file.

The approach and the helpers: check_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from check_helpers import (
    PARTICIPANTS,
    append,
    codes,
    edit_config,
    load,
    report,
    the_one,
)

# --- participants --------------------------------------------------------------------------

GOOD_ROW = "Late Joiners Collective,Europe/Lisbon,en,late@example.org"


@pytest.mark.parametrize(
    ("row", "fragments"),
    [
        (
            "Mars Society,Mars/Olympus_Mons,en,",
            ["(Mars Society): unknown time zone 'Mars/Olympus_Mons'"],
        ),
        (
            "Madrid Students,Europe/Madird,es,",
            ["unknown time zone 'Europe/Madird'", "Did you mean: Europe/Madrid"],
        ),
        ("Nowhere Org,XX,en,", ["unknown time zone or country code 'XX'"]),
        (
            "US Solidarity,US,en,",
            [
                "(US Solidarity): country US has",
                "time zones; write one of:",
                "America/New_York",
                "America/Chicago",
            ],
        ),
        (",Europe/Madrid,es,", ["the name is empty"]),
        ("   ,Europe/Madrid,es,", ["the name is empty"]),
        ("French Org,Europe/Paris,french,", ["(French Org): 'french' is not a language code"]),
        ("Arabic Org,Asia/Gaza,AR,", ["'AR' is not a language code"]),
        ("Nul\x00Org,Asia/Gaza,ar,", ["the name contains control characters"]),
    ],
    ids=[
        "unknown-zone",
        "misspelt-zone",
        "unknown-country",
        "multi-zone-country",
        "empty-name",
        "blank-name",
        "bad-lang",
        "uppercase-lang",
        "nul-in-name",
    ],
)
def test_bad_participant(storm: Path, row: str, fragments: list[str]) -> None:
    before = len(load(storm).participants)
    line = append(storm / PARTICIPANTS, f"{row}\n{GOOD_ROW}")
    problems = report(storm)
    p = the_one(problems, "bad-participant")
    assert (p.severity, p.file, p.line) == ("error", PARTICIPANTS, line)
    assert p.message.startswith(f"row {line}")
    for fragment in fragments:
        assert fragment in p.message
    assert codes(problems) == ["bad-participant"]
    participants = load(storm).participants
    assert len(participants) == before + 1  # the good row after the bad one is loaded
    assert (participants[-1].name, participants[-1].row) == ("Late Joiners Collective", line + 1)


def test_single_zone_country_resolves(storm: Path) -> None:
    nepal = [p for p in load(storm).participants if p.name.startswith("All Nepal Peasants")]
    assert [(p.zone, p.row) for p in nepal] == [("Asia/Kathmandu", 8)]
    line = append(storm / PARTICIPANTS, "Kathmandu Friends,np,ne,")
    added = load(storm).participants[-1]
    assert (added.name, added.zone, added.lang, added.row) == (
        "Kathmandu Friends",
        "Asia/Kathmandu",
        "ne",
        line,
    )


def test_participant_lang_defaults_to_the_storm_language(storm: Path) -> None:
    append(storm / PARTICIPANTS, "No Lang Org,Europe/Rome,,")
    assert load(storm).participants[-1].lang == "en"


def test_participant_rows_after_a_quoted_newline_keep_their_line(storm: Path) -> None:
    line = append(storm / PARTICIPANTS, '"Two\nLines",Europe/Rome,it,\nBad,Mars/Base,en,')
    assert the_one(report(storm), "bad-participant").line == line + 2


def test_participants_header_without_zone(storm: Path) -> None:
    (storm / PARTICIPANTS).write_text("name,timezone,lang\nOrg,Europe/Rome,it\n", encoding="utf-8")
    p = the_one(report(storm), "bad-participant")
    assert (p.severity, p.file, p.line) == ("error", PARTICIPANTS, 1)
    assert p.message.endswith("missing: zone")
    assert load(storm).participants == []


def test_configured_participants_file_that_is_missing_is_a_warning(storm: Path) -> None:
    edit_config(storm, 'file = "participants.csv"', 'file = "signups.csv"')
    p = the_one(report(storm), "missing-participants-file")
    assert p.severity == "warning" and "signups.csv" in p.message
