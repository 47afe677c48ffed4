"""A storm's own reminder templates (templates/reminders/<lang>.txt.j2 in the storm folder):
they override stormer's, add languages, and `check` reads them before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stormer.reminder_templates import PACKAGE_TEMPLATES, VARIABLES
from stormer.reminders import plan_reminders
from tests.check_helpers import PARTICIPANTS, append, assert_clean_failure, load, run_main

GERMAN = """{#- Erinnerung auf Deutsch. -#}
{% block subject %}{{ storm }} {{ hashtag }}: {{ until }}{% endblock %}
{% block body %}
Der Sturm {{ storm }} beginnt {{ until }}, am {{ date }} um {{ time }} ({{ zone }}).
{% if sample %}{{ sample }}{% endif %}
{% endblock %}
"""


def own_template(root: Path, lang: str, text: str) -> str:
    folder = root / "templates" / "reminders"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{lang}.txt.j2").write_text(text, encoding="utf-8")
    return f"templates/reminders/{lang}.txt.j2"


def check_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, list[str]]:
    code, out, err = run_main(monkeypatch, capsys, "check", *args)
    assert "Traceback" not in out + err
    return code, out.splitlines()


def test_a_language_of_the_storms_own_is_written_with_its_template(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    append(storm / PARTICIPANTS, "Berlin Students,Europe/Berlin,de,berlin@example.org")
    monkeypatch.chdir(storm)
    _, lines = check_lines(monkeypatch, capsys)
    [warning] = [line for line in lines if "no-reminder-template" in line]
    assert warning == (
        "participants.csv: warning[no-reminder-template]: 1 participant(s) speak 'de', which "
        "has no reminder template: they get the 'en' text. To remind them in 'de', create the "
        "template templates/reminders/de.txt.j2 in the storm folder (see “Reminder templates” "
        "in the README)"
    )
    own_template(storm, "de", GERMAN)
    code, lines = check_lines(monkeypatch, capsys)
    assert code == 0 and not [line for line in lines if "template" in line], lines
    reminders = [r for r in plan_reminders(load(storm)) if r.account == "Berlin Students"]
    assert reminders and all(r.lang == "de" for r in reminders)
    assert reminders[0].text.startswith("Der Sturm Free Palestinian Students beginnt in 24 ")
    assert "Donnerstag, 11. März 2021 um 19:00" in reminders[0].text


def test_the_missing_template_is_named_from_where_the_user_is(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    append(storm / PARTICIPANTS, "Berlin Students,Europe/Berlin,de,berlin@example.org")
    monkeypatch.chdir(storm.parent)
    _, lines = check_lines(monkeypatch, capsys, "-s", "storm")
    [warning] = [line for line in lines if "no-reminder-template" in line]
    assert "create the template storm/templates/reminders/de.txt.j2 (see" in warning
    assert str(PACKAGE_TEMPLATES) not in warning and "stormer/templates" not in warning


def test_a_storms_template_overrides_stormers_and_other_languages_keep_stormers(
    storm: Path,
) -> None:
    own_template(
        storm,
        "en",
        "{% block subject %}Ours: {{ storm }}{% endblock %}"
        "{% block body %}Our own words, {{ until }}.{% endblock %}",
    )
    by_lang = {}
    for r in plan_reminders(load(storm)):
        by_lang.setdefault(r.lang, r)  # the first offset: 24 h before
    assert by_lang["en"].payload["subject"] == "Ours: Free Palestinian Students"
    assert by_lang["en"].text == "Our own words, in 24 hours.\n"
    assert by_lang["es"].text.startswith("La tormenta Free Palestinian Students")


def test_a_template_syntax_error_is_a_problem_with_file_and_line(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    own_template(storm, "de", GERMAN.replace("{% endif %}", "{% endfi %}"))
    monkeypatch.chdir(storm.parent)
    code, lines = check_lines(monkeypatch, capsys, "-s", "storm")
    assert code == 1
    [line] = [line for line in lines if "bad-template" in line]
    assert line.startswith(
        "storm/templates/reminders/de.txt.j2:5: error[bad-template]: not a valid Jinja "
        "template: Encountered unknown tag 'endfi'."
    )
    # A command that writes reminders says the same, without a traceback.
    code, out, err = run_main(monkeypatch, capsys, "preview", "-s", "storm")
    assert_clean_failure(code, out, err)
    assert "stormer: storm/templates/reminders/de.txt.j2:5: error[bad-template]" in err


def test_a_variable_reminders_do_not_have_is_named_with_those_they_have(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    own_template(storm, "de", GERMAN.replace("{{ zone }}", "{{ zone }} {{ naem }}"))
    monkeypatch.chdir(storm)
    code, lines = check_lines(monkeypatch, capsys)
    assert code == 1
    [line] = [line for line in lines if "bad-template" in line]
    assert line == (
        "templates/reminders/de.txt.j2:4: error[bad-template]: uses 'naem', which reminders "
        "do not have; the variables are storm, hashtag, kit_url, date, time, zone, utc, "
        "until, sample, links"
    )


def test_a_template_without_its_blocks_is_refused(storm: Path) -> None:
    from stormer.ops.checks import check

    own_template(storm, "de", "Hallo {{ storm }}")
    [problem] = [p for p in check(load(storm)) if p.code == "bad-template"]
    assert (problem.file, problem.line) == ("templates/reminders/de.txt.j2", None)
    assert problem.message.startswith(
        "has no {% block subject %} and no {% block body %}: a reminder template has a "
        "`subject` block (one line) and a `body` block"
    )


def test_what_fails_only_when_written_is_found_by_check(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The sandbox: a template formats its values, it cannot reach into Python.
    own_template(
        storm, "de", GERMAN.replace("{{ storm }} {{ hashtag }}", "{{ hashtag.__class__.__mro__ }}")
    )
    monkeypatch.chdir(storm)
    code, out, _ = run_main(monkeypatch, capsys, "check", "--json")
    assert code == 1
    [problem] = [p for p in json.loads(out) if p["code"] == "bad-template"]
    assert problem["file"] == "templates/reminders/de.txt.j2"
    assert problem["message"].startswith("cannot be written: ")
    assert "unsafe" in problem["message"]


def test_a_file_not_named_after_a_language_is_a_warning(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    own_template(storm, "de", GERMAN)
    (storm / "templates" / "reminders" / "german.j2").write_text(GERMAN, encoding="utf-8")
    monkeypatch.chdir(storm)
    code, lines = check_lines(monkeypatch, capsys)
    assert code == 0
    assert (
        "templates/reminders/german.j2: warning[bad-template]: not used: a reminder template "
        "is named after its language, like de.txt.j2"
    ) in lines


def test_stormers_templates_use_only_the_documented_variables() -> None:
    from jinja2 import Environment, meta

    for path in PACKAGE_TEMPLATES.glob("*.txt.j2"):
        tree = Environment().parse(path.read_text(encoding="utf-8"))
        assert meta.find_undeclared_variables(tree) <= set(VARIABLES), path.name


def test_every_documented_variable_is_given_to_a_template(storm: Path) -> None:
    own_template(
        storm,
        "en",
        "{% block subject %}s{% endblock %}{% block body %}"
        + " ".join(f"{{{{ {name} is defined }}}}" for name in VARIABLES)
        + "{% endblock %}",
    )
    [text, *_] = {r.text for r in plan_reminders(load(storm)) if r.lang == "en"}
    assert text.split() == ["True"] * len(VARIABLES)


def test_extends_is_refused_with_what_to_do_instead(storm: Path) -> None:
    from stormer.ops.checks import check

    own_template(storm, "en", '{% extends "en.txt.j2" %}\n{% block subject %}Hi{% endblock %}')
    problems = [p for p in check(load(storm)) if p.code == "bad-template"]
    assert [(p.line, p.message.split(":")[0]) for p in problems] == [
        (None, "has no {% block body %}"),  # the whole file first, then by line
        (1, "{% extends %} is not supported"),
    ]


def test_a_template_that_includes_itself_is_a_problem_not_a_crash(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    own_template(
        storm,
        "en",
        '{% block subject %}Hi{% endblock %}{% block body %}{% include "en.txt.j2" %}'
        "{% endblock %}",
    )
    monkeypatch.chdir(storm)
    code, lines = check_lines(monkeypatch, capsys)
    assert code == 1
    assert (
        "templates/reminders/en.txt.j2: error[bad-template]: cannot be written: it includes "
        "itself, without end"
    ) in lines
