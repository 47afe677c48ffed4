"""`stormer participants import|list|export` and `stormer ics`.

The participants file lists people at risk: besides what each command does, these tests hold
that no contact reaches the terminal (import problems, list) and that an export is private.
Each test works on a copy of the example storm (tests/example.py).
"""

from __future__ import annotations

import csv
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from example import copy_example
from typer.testing import CliRunner

from stormer.cli import app
from stormer.errors import ConfigError
from stormer.ops.roster import import_file, normalized_contact, read_form
from stormer.storm import load_storm
from stormer.storm.contacts import parse_contact

runner = CliRunner()
HEADER = "name,zone,lang,contact"


@pytest.fixture
def storm(tmp_path: Path) -> Path:
    return copy_example(tmp_path / "storm")


def rows(storm: Path) -> list[list[str]]:
    with (storm / "participants.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def form(tmp_path: Path, text: str, *, bom: bool = False) -> Path:
    path = tmp_path / "form.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def run_import(storm: Path, source: Path, *extra: str) -> tuple[int, dict, str]:
    result = runner.invoke(
        app, ["participants", "import", str(source), "--json", "--storm", str(storm), *extra]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout), result.stderr


def test_merge_updates_appends_and_leaves_the_rest(storm: Path, tmp_path: Path) -> None:
    before = rows(storm)
    source = form(
        tmp_path,
        (
            "name,zone,lang,contact\n"
            # A known name, other case and spacing: new zone, new contact, the old one repeated.
            "  gazainfo ,Europe/Paris,fr,desk@gazainfo.example.org newsroom@gazainfo.example.org\n"
            # Known and identical: unchanged.
            "Free CUNY!,America/New_York,en,freecuny@example.com\n"
            "Collectif Nouveau,Europe/Brussels,fr,collectif@example.org\n"
            "Grupo Nuevo,America/Bogota,es,grupo@example.org\n"
        ),
    )
    code, report, _ = run_import(storm, source)
    assert code == 0
    assert (report["added"], report["updated"], report["unchanged"], report["bad"]) == (2, 1, 1, 0)
    after = rows(storm)
    assert after[0] == HEADER.split(",")
    # Existing rows keep their order; the new ones come last, in the form's order.
    assert [r[0] for r in after[: len(before)]] == [r[0] for r in before]
    assert after[len(before) :] == [
        ["Collectif Nouveau", "Europe/Brussels", "fr", "collectif@example.org"],
        ["Grupo Nuevo", "America/Bogota", "es", "grupo@example.org"],
    ]
    gaza = next(r for r in after if r[0] == "Gazainfo")
    assert gaza == [
        "Gazainfo",
        "Europe/Paris",
        "fr",
        "newsroom@gazainfo.example.org desk@gazainfo.example.org",
    ]
    untouched = [r for r in before if r[0] != "Gazainfo"]
    assert [r for r in after[: len(before)] if r[0] != "Gazainfo"] == untouched
    # The loader reads the result without a complaint about participants.
    loaded = load_storm(storm)
    assert not [p for p in loaded.problems if p.file == "participants.csv"]
    assert len(loaded.participants) == len(before) - 1 + 2


def test_importing_the_same_form_twice_changes_nothing(storm: Path, tmp_path: Path) -> None:
    source = form(tmp_path, "name,zone,lang,contact\nGrupo Nuevo,CO,ES,Grupo@Example.org\n")
    assert run_import(storm, source)[1]["added"] == 1
    text = (storm / "participants.csv").read_bytes()
    code, report, _ = run_import(storm, source)
    assert code == 0 and (report["added"], report["updated"], report["unchanged"]) == (0, 0, 1)
    assert report["written"] is False
    assert (storm / "participants.csv").read_bytes() == text


def test_country_code_becomes_its_zone_and_several_zones_are_refused(
    storm: Path, tmp_path: Path
) -> None:
    source = form(
        tmp_path,
        (
            "name,zone,lang,contact\n"
            "Nepal Group,np,en,nepal@example.org\n"
            "US Group,US,en,us@example.org\n"
        ),
    )
    code, report, _ = run_import(storm, source)
    assert code == 1 and report["added"] == 1 and report["bad"] == 1
    assert rows(storm)[-1] == ["Nepal Group", "Asia/Kathmandu", "en", "nepal@example.org"]
    [problem] = report["problems"]
    assert problem["line"] == 3 and problem["file"] == "form.csv"
    assert "country US has" in problem["message"]
    assert "America/New_York" in problem["message"] and "Pacific/Honolulu" in problem["message"]
    assert "us@example.org" not in json.dumps(report)


@pytest.mark.parametrize(
    "given, written", [("EN", "en"), ("pt-br", "pt_BR"), ("ar", "ar"), ("", "")]
)
def test_language_codes_are_normalized(
    storm: Path, tmp_path: Path, given: str, written: str
) -> None:
    source = form(tmp_path, f"name,zone,lang,contact\nSomeone,Europe/Rome,{given},s@example.org\n")
    assert run_import(storm, source)[0] == 0
    assert rows(storm)[-1][2] == written
    default = load_storm(storm).participants[-1].lang
    assert default == (written or "en")  # an empty language is the storm's default_lang


def test_a_bad_language_is_refused_saying_what_to_write(storm: Path, tmp_path: Path) -> None:
    source = form(tmp_path, "name,zone,lang,contact\nSomeone,Europe/Rome,English,s@example.org\n")
    code, report, _ = run_import(storm, source)
    assert code == 1 and report["added"] == 0
    message = report["problems"][0]["message"]
    assert "'English' is not a language code" in message and "en, es, ar" in message


BAD_CONTACTS = ["not-an-address-but-private", "mailto:someone-at-nowhere", "tgram://secretchat"]


@pytest.mark.parametrize("contact", BAD_CONTACTS)
def test_a_bad_contact_is_reported_by_column_never_by_value(
    storm: Path, tmp_path: Path, contact: str
) -> None:
    source = form(
        tmp_path,
        (
            "name,zone,lang,contact\n"
            "Good Group,Europe/Rome,it,good@example.org\n"
            f"Bad Group,Europe/Rome,it,{contact}\n"
        ),
    )
    before = (storm / "participants.csv").read_text(encoding="utf-8")
    for as_json in (True, False):
        result = runner.invoke(
            app,
            [
                "participants",
                "import",
                str(source),
                "--dry-run",
                "--storm",
                str(storm),
                *(["--json"] if as_json else []),
            ],
        )
        assert result.exit_code == 1
        assert contact not in result.stdout and contact not in result.stderr
        assert contact.split(":")[-1].strip("/") not in result.stdout + result.stderr
        shown = result.stdout if as_json else result.stderr
        assert "form.csv:3" in shown or '"line": 3' in shown
        assert "the contact in column 4 ('contact')" in shown
    assert (storm / "participants.csv").read_text(encoding="utf-8") == before
    # Without --dry-run the good row is kept, the bad one left out.
    code, report, _ = run_import(storm, source)
    assert code == 1 and (report["added"], report["bad"]) == (1, 1)
    assert [r[0] for r in rows(storm)[-1:]] == ["Good Group"]


def test_an_address_in_the_wrong_column_is_not_echoed(storm: Path, tmp_path: Path) -> None:
    # A form export whose columns shifted: the e-mail sits under "time zone".
    source = form(tmp_path, "name,zone,lang,contact\nShifted,shifted@example.org,en,\n")
    code, report, stderr = run_import(storm, source)
    assert code == 1 and "looks like a contact" in report["problems"][0]["message"]
    assert "shifted@example.org" not in json.dumps(report) + stderr


def test_row_numbers_are_lines_of_the_imported_file(storm: Path, tmp_path: Path) -> None:
    source = form(
        tmp_path,
        (
            "name,zone,lang,contact\n"
            "A Group,Europe/Rome,it,a@example.org\n"
            "\n"
            '"A name\nover two lines",Europe/Rome,it,b@example.org\n'  # lines 4-5
            "Line Six,Mars/Olympus,it,c@example.org\n"
            ",Europe/Rome,it,d@example.org\n"
        ),
    )
    code, report, _ = run_import(storm, source)
    assert code == 1 and report["added"] == 2
    assert [(p["line"], p["message"].split(":")[0]) for p in report["problems"]] == [
        (6, "row 6 (Line Six)"),
        (7, "row 7"),
    ]
    assert "the name is empty" in report["problems"][1]["message"]


def test_bom_synonyms_and_extra_columns(storm: Path, tmp_path: Path) -> None:
    source = form(
        tmp_path,
        (
            "Timestamp,Organisation,Time Zone (e.g. Europe/Paris),Language,E-mail address,"
            "Telegram,Comments\n"
            "2024-05-01,Synonym Group,TN,FR,Syn@Example.org mailto:syn@example.org,,hello\n"
        ),
        bom=True,
    )
    code, report, _ = run_import(storm, source)
    assert code == 0, report
    assert report["columns"] == {
        "name": ["Organisation"],
        "zone": ["Time Zone (e.g. Europe/Paris)"],
        "lang": ["Language"],
        "contact": ["E-mail address"],
    }
    # Telegram is not a contact column name: ignored, like Timestamp and Comments.
    assert rows(storm)[-1] == ["Synonym Group", "Africa/Tunis", "fr", "syn@example.org"]
    assert (storm / "participants.csv").read_bytes().startswith(b"name,zone,lang,contact\n")


def test_every_contact_column_is_read(storm: Path, tmp_path: Path) -> None:
    source = form(
        tmp_path,
        (
            "organization,timezone,email,contact\n"
            "Two Ways,Europe/Oslo,two@example.org,tgram://123456789\n"
        ),
    )
    assert run_import(storm, source)[0] == 0
    assert rows(storm)[-1] == ["Two Ways", "Europe/Oslo", "", "two@example.org tgram://123456789"]


def test_a_header_without_name_or_zone_is_refused(storm: Path, tmp_path: Path) -> None:
    source = form(tmp_path, "who,where,email\nX,Europe/Rome,x@example.org\n")
    with pytest.raises(ConfigError) as e:
        import_file(load_storm(storm), source)
    message = str(e.value)
    assert "no name or zone column" in message and "organisation" in message
    assert "timezone" in message


def test_contacts_are_normalized_to_what_the_planner_reads() -> None:
    source = (
        "name,zone,lang,contact\n"
        "N,Europe/Rome,it,MAILTO://Ana@Example.ORG ana@example.org matrix:@ana:m.org "
        "tgram://@ana_channel\n"
    )
    result = read_form(source, file="f.csv", default_lang="en")
    [row] = result.rows
    assert row.contacts == ("ana@example.org", "matrix:@ana:m.org", "tgram://@ana_channel")
    for text in row.contacts:
        assert normalized_contact(text) == (text, parse_contact(text).ref)


def test_dry_run_writes_nothing(storm: Path, tmp_path: Path) -> None:
    target = storm / "participants.csv"
    before, mtime = target.read_bytes(), target.stat().st_mtime_ns
    source = form(
        tmp_path,
        "name,zone,lang,contact\nNew One,Europe/Rome,it,n@example.org\n"
        "Gazainfo,Asia/Gaza,ar,other@example.org\n",
    )
    result = runner.invoke(
        app, ["participants", "import", str(source), "--dry-run", "--storm", str(storm)]
    )
    assert result.exit_code == 0, result.output
    assert "1 added, 1 updated, 0 unchanged, 0 bad (dry run: nothing written)" in result.stdout
    assert target.read_bytes() == before and target.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in storm.iterdir()) == ["config.toml", "participants.csv", "posts"]


def test_the_write_is_atomic_and_keeps_mode_and_extra_columns(storm: Path, tmp_path: Path) -> None:
    target = storm / "participants.csv"
    target.write_text(
        "name,zone,lang,contact,notes\nOld,Europe/Rome,it,,keep me\n", encoding="utf-8"
    )
    target.chmod(0o640)
    inode = target.stat().st_ino
    source = form(
        tmp_path, "name,zone,lang,contact\nold,Europe/Rome,it,o@example.org\nNew,Europe/Rome,it,\n"
    )
    assert run_import(storm, source)[0] == 0
    assert target.read_text(encoding="utf-8") == (
        "name,zone,lang,contact,notes\nOld,Europe/Rome,it,o@example.org,keep me\n"
        "New,Europe/Rome,it,,\n"
    )
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert target.stat().st_ino != inode  # replaced, not written over
    assert sorted(p.name for p in storm.iterdir()) == ["config.toml", "participants.csv", "posts"]


def test_a_new_participants_file_is_private(storm: Path, tmp_path: Path) -> None:
    (storm / "participants.csv").unlink()
    source = form(tmp_path, "name,zone,lang,contact\nFirst,Europe/Rome,it,f@example.org\n")
    assert run_import(storm, source)[0] == 0
    assert rows(storm) == [HEADER.split(","), ["First", "Europe/Rome", "it", "f@example.org"]]
    assert stat.S_IMODE((storm / "participants.csv").stat().st_mode) == 0o600


def test_list_shows_kinds_never_addresses(storm: Path) -> None:
    participants = load_storm(storm).participants
    addresses = [c for p in participants for c in p.contacts]
    assert any("@" in a for a in addresses)
    for args in (["--json"], []):
        result = runner.invoke(
            app, ["participants", "list", "--storm", str(storm), *args], env={"COLUMNS": "300"}
        )
        assert result.exit_code == 0, result.output
        out = result.stdout + result.stderr
        assert "@" not in out  # no name in the example holds one
        for address in addresses:
            assert address.split("@")[-1] not in out
    data = json.loads(
        runner.invoke(app, ["participants", "list", "--json", "--storm", str(storm)]).stdout
    )
    assert len(data) == len(participants)
    gaza = next(r for r in data if r["name"] == "Gazainfo")
    assert gaza == {
        "row": gaza["row"],
        "name": "Gazainfo",
        "zone": "Asia/Gaza",
        "lang": "ar",
        "contacts": ["email"],
    }
    assert {k for r in data for k in r["contacts"]} >= {"email", "ntfy", "json"}


def test_export_is_private_and_never_overwrites(storm: Path, tmp_path: Path) -> None:
    out = tmp_path / "export.csv"
    old_umask = os.umask(0o022)
    try:
        result = runner.invoke(
            app, ["participants", "export", "--out", str(out), "--storm", str(storm)]
        )
    finally:
        os.umask(old_umask)
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert "contacts" in result.stderr and "at risk" in result.stderr
    assert result.stdout == ""
    exported = list(csv.reader(out.read_text(encoding="utf-8").splitlines()))
    assert exported[0] == HEADER.split(",")
    assert ["Gazainfo", "Asia/Gaza", "ar", "newsroom@gazainfo.example.org"] in exported
    assert len(exported) - 1 == len(load_storm(storm).participants)

    out.write_text("someone else's file", encoding="utf-8")
    result = runner.invoke(
        app, ["participants", "export", "--out", str(out), "--storm", str(storm)]
    )
    assert result.exit_code == 1 and "--force" in result.stderr
    assert out.read_text(encoding="utf-8") == "someone else's file"

    out.chmod(0o644)
    result = runner.invoke(
        app, ["participants", "export", "--out", str(out), "--force", "--storm", str(storm)]
    )
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").startswith(HEADER + "\n")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_ics_is_the_storm_with_an_alarm(storm: Path, tmp_path: Path) -> None:
    from icalendar import Calendar

    out = tmp_path / "storm.ics"
    result = runner.invoke(app, ["ics", "--out", str(out), "--storm", str(storm)])
    assert result.exit_code == 0, result.output
    calendar = Calendar.from_ical(out.read_bytes())
    [event] = calendar.walk("VEVENT")
    assert event.decoded("DTSTART") == datetime(2021, 3, 11, 18, 0, tzinfo=UTC)
    assert event.decoded("DTSTART") == load_storm(storm).at
    [alarm] = event.walk("VALARM")
    assert alarm["TRIGGER"].to_ical() == b"-PT10M"
    assert alarm.decoded("TRIGGER") == -timedelta(minutes=10)
