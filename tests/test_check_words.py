"""What `stormer check` (and every command that reads a storm) says, word for word: files named
as the user named the storm folder, problems in the order of the files, a clear sentence for
every kind of bad contact, TOML syntax errors shown like a compiler's (issue 12)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.check_helpers import (
    CONFIG,
    EN_01,
    HASHTAG,
    PARTICIPANTS,
    append,
    edit,
    edit_config,
    line_of,
    run_main,
    write_post,
)

Run = tuple[int, str, str]


@pytest.fixture
def elsewhere(storm: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory beside the storm folder, as when someone runs `-s ../storm`."""
    cwd = storm.parent / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def stormer(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> Run:
    return run_main(monkeypatch, capsys, *args)


def problem_lines(out: str) -> list[str]:
    """The problem lines of `check`'s output (not the summary, not a quoted line)."""
    return [line for line in out.splitlines() if "error[" in line or "warning[" in line]


# --- 1. files as the user named them ---------------------------------------------------------


def test_problems_name_files_from_where_the_user_is(
    storm: Path,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    edit_config(storm, 'zone = "Europe/Paris"', 'zone = "Europe/Pariss"')
    zone_line = line_of(storm / CONFIG, "Europe/Pariss")
    post = write_post(storm, "zz.md", "no hashtag here")
    row = append(storm / PARTICIPANTS, "Somebody,Mars/Olympus,en,")
    code, out, _ = stormer(monkeypatch, capsys, "check", "-s", "../storm")
    assert code == 1
    lines = problem_lines(out)
    assert lines, out
    assert all(line.startswith("../storm/") for line in lines), lines
    assert any(
        line.startswith(f"../storm/config.toml:{zone_line}: error[unknown-zone]") for line in lines
    )
    assert any(line.startswith(f"../storm/{post.file}:{post.text_line}: warning") for line in lines)
    assert any(line.startswith(f"../storm/participants.csv:{row}: error") for line in lines)


def test_in_the_storm_folder_files_are_named_bare(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(storm)
    code, out, _ = stormer(monkeypatch, capsys, "check")
    assert code == 0
    assert problem_lines(out)[0].startswith("config.toml:")  # the storm is in the past
    code, out, _ = stormer(monkeypatch, capsys, "check", "-s", ".")
    assert problem_lines(out)[0].startswith("config.toml:")


def test_a_storm_that_cannot_be_loaded_names_its_config_as_given(
    storm: Path,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    edit_config(storm, 'hashtag = "#FreePalestinianStudents"', 'hashtag = "#Free"\ncolour = "red"')
    line = line_of(storm / CONFIG, 'colour = "red"')
    for command in ("check", "preview", "times", "schedule", "status"):
        code, out, err = stormer(monkeypatch, capsys, command, "-s", "../storm/")
        assert code == 1, (command, out, err)
        assert err.startswith(f"stormer: ../storm/config.toml:{line}: error[bad-config]: "), command


def test_commands_other_than_check_name_files_as_given(
    storm: Path,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    row = append(storm / PARTICIPANTS, "Somebody,Mars/Olympus,en,")
    for command in ("preview", "times"):
        code, _, err = stormer(monkeypatch, capsys, command, "--storm", "../storm")
        assert code == 1
        assert f"stormer: ../storm/participants.csv:{row}: error[bad-participant]" in err, err


def test_a_missing_image_is_located_in_the_post_as_given(
    storm: Path,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    edit(storm / EN_01, 'path = "images/flag-book.png"', 'path = "images/nope.png"')
    code, out, _ = stormer(monkeypatch, capsys, "check", "-s", "../storm")
    assert code == 1
    assert (
        f"../storm/{EN_01}:3: error[missing-image]: image 'images/nope.png' not found "
        "(looked for posts/images/nope.png)"
    ) in out


# --- 2. reading order ------------------------------------------------------------------------


def test_problems_come_by_file_then_line(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Rows whose problems come from loading (zone, language) and from the check (contact)
    # interleave: the report must still go down the file.
    first = append(
        storm / PARTICIPANTS,
        "\n".join(
            [
                "A,Europe/Paris,fr,not-a-contact",
                "B,Mars/Olympus,fr,",
                "C,Europe/Paris,fr,matrix:nobody",
                "D,Europe/Paris,!!,",
                "E,Europe/Paris,fr,tgram://nowhere",
            ]
        ),
    )
    # A post with a problem in its front matter (line 3) and one in its text (line 5).
    write_post(storm, "aa.md", "\u202e" + HASHTAG, front='accounts = ["nobody"]')
    # config.toml: an unknown zone (loading) below the storm time (the check's warning).
    edit_config(storm, 'zone = "Europe/Paris"', 'zone = "Europe/Pariss"')
    monkeypatch.chdir(storm)
    code, out, _ = stormer(monkeypatch, capsys, "check")
    assert code == 1
    located = [line.split(": ", 1)[0] for line in problem_lines(out)]
    files = [where.split(":")[0] for where in located]
    assert files == sorted(files, key=lambda f: (f != CONFIG, f)), located
    by_file: dict[str, list[int]] = {}
    for where in located:
        name, _, number = where.partition(":")
        by_file.setdefault(name, []).append(int(number or 0))
    for name, numbers in by_file.items():
        assert numbers == sorted(numbers), (name, numbers)
    assert by_file[PARTICIPANTS] == [first, first + 1, first + 2, first + 3, first + 4]
    assert by_file["posts/aa.md"] == [0, 3, 5]  # the whole file (unused) first, then lines
    assert by_file[CONFIG][0] == line_of(storm / CONFIG, 'at = "')
    assert line_of(storm / CONFIG, "Europe/Pariss") in by_file[CONFIG]


# --- 3. bad contacts: one clear sentence each, the contact never repeated ----------------------

_ACCEPTED = (
    "an e-mail address (name@example.org), a Telegram chat (tgram://CHAT_ID), a Matrix user or "
    "room (matrix:@name:example.org) or a complete Apprise URL (discord://…, ntfy://…)"
)


@pytest.mark.parametrize(
    ("contact", "reason"),
    [
        (
            "mailto:secret-bob",
            "after mailto: comes one e-mail address, like mailto:name@example.org (the "
            "organizer's own SMTP server goes in [reminders] senders, not here)",
        ),
        (
            "mailto://user:secret-pw@smtp.example.org",
            "after mailto: comes one e-mail address, like mailto:name@example.org (the "
            "organizer's own SMTP server goes in [reminders] senders, not here)",
        ),
        (
            "matrix:secret-alice",
            "after matrix: comes a Matrix user, room or alias with its server, like "
            "matrix:@name:example.org, matrix:!room:example.org or matrix:#alias:example.org",
        ),
        (
            "tgram://secret-chat",
            "after tgram:// comes a Telegram chat id (a number) or @channel name: "
            "tgram://CHAT_ID or tgram://@channelname (or a bot token and chat, as in an "
            "Apprise URL: tgram://BOT_TOKEN/CHAT_ID)",
        ),
        (
            "nosuchservice://secret-host/x",
            "Apprise cannot send to this URL (a service it does not know, or a part of the "
            "URL missing or wrong); each service's URL is described at "
            "https://github.com/caronc/apprise/wiki",
        ),
        (
            "discord://secret",
            "Apprise cannot send to this URL (a service it does not know, or a part of the "
            "URL missing or wrong); each service's URL is described at "
            "https://github.com/caronc/apprise/wiki",
        ),
        (
            "9secret://x",
            "what comes before :// is not a URL scheme (letters, like discord://); write "
            + _ACCEPTED,
        ),
        (
            "secret-alice@",
            "it is not a whole e-mail address (a name, @ and a domain with a dot, like "
            "name@example.org)",
        ),
        ("+34600000000", "a phone number is not a contact stormer can send to; write " + _ACCEPTED),
        ("secret-alice", "it is neither an e-mail address nor a URL; write " + _ACCEPTED),
    ],
)
def test_each_kind_of_bad_contact_says_what_is_wrong_and_what_is_right(
    storm: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    contact: str,
    reason: str,
) -> None:
    row = append(storm / PARTICIPANTS, f"Alice,Europe/Paris,fr,{contact}")
    monkeypatch.chdir(storm)
    code, out, err = stormer(monkeypatch, capsys, "check")
    assert code == 1
    [line] = [line for line in problem_lines(out) if "bad-contact" in line]
    assert line == (
        f"participants.csv:{row}: error[bad-contact]: row {row} (Alice): the contact cannot be "
        f"used, so no reminder goes there: {reason}"
    )
    assert "secret" not in out + err
    assert contact not in out + err


def test_which_of_several_contacts_is_bad(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    row = append(storm / PARTICIPANTS, "Alice,Europe/Paris,fr,alice@example.org matrix:nope")
    monkeypatch.chdir(storm)
    _, out, _ = stormer(monkeypatch, capsys, "check")
    [line] = [line for line in problem_lines(out) if "bad-contact" in line]
    assert f"row {row} (Alice): contact 2 of 2 cannot be used, so no reminder goes there: " in line


# --- 4. TOML syntax errors like a compiler's --------------------------------------------------


def test_a_front_matter_syntax_error_points_at_the_post_line_and_column(
    storm: Path,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (storm / "posts" / "zz.md").write_text(
        f'+++\nlang = "en"\nplatforms = ["x" "bluesky"]\n+++\n{HASHTAG}\n', encoding="utf-8"
    )
    code, out, _ = stormer(monkeypatch, capsys, "check", "-s", "../storm")
    assert code == 1
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("../storm/posts/zz.md:"))
    assert lines[at : at + 3] == [
        "../storm/posts/zz.md:3:18: error[bad-front-matter]: front matter is not valid TOML: "
        "Unclosed array",
        '    platforms = ["x" "bluesky"]',
        "                     ^",
    ]


def test_an_unclosed_front_matter_string_points_at_its_line(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (storm / "posts" / "zz.md").write_text(f'+++\nlang = "en\n+++\n{HASHTAG}\n', encoding="utf-8")
    monkeypatch.chdir(storm)
    _, out, _ = stormer(monkeypatch, capsys, "check")
    assert "posts/zz.md:2:11: error[bad-front-matter]: front matter is not valid TOML: " in out
    assert '    lang = "en\n              ^\n' in out


def test_a_syntax_error_on_a_line_that_may_hold_a_secret_does_not_quote_it(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    edit_config(
        storm,
        'credentials = { access_token = "FPS_MASTODON_TOKEN" }',
        'credentials = { access_token = "s3cr3t-t0ken }',
    )
    line = line_of(storm / CONFIG, "s3cr3t")
    monkeypatch.chdir(storm)
    code, out, err = stormer(monkeypatch, capsys, "check")
    assert code == 1
    assert "s3cr3t" not in out + err
    assert err.startswith(f"stormer: config.toml:{line}:")
    assert "(the line is not shown here: it may hold a secret)" in err


def test_json_gives_the_column_of_a_syntax_error(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    edit_config(storm, 'post_interval = "0s"', 'post_interval = "0s')
    monkeypatch.chdir(storm)
    code, out, _ = stormer(monkeypatch, capsys, "check", "--json")
    assert code == 1
    [problem] = json.loads(out)
    assert (problem["file"], problem["line"], problem["column"]) == (
        CONFIG,
        line_of(storm / CONFIG, 'post_interval = "0s'),
        20,
    )


def test_participants_import_says_the_same_sentence_and_names_the_form_as_given(
    storm: Path,
    elsewhere: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (elsewhere / "form.csv").write_text(
        "name,zone,lang,contact\nAlice,Europe/Paris,fr,tgram://secret-chat\n", encoding="utf-8"
    )
    code, _, err = stormer(
        monkeypatch, capsys, "participants", "import", "form.csv", "--dry-run", "-s", "../storm"
    )
    assert code == 1
    assert (
        "form.csv:2: error[bad-participant]: row 2 (Alice): the contact in column 4 ('contact') "
        "cannot be used: after tgram:// comes a Telegram chat id (a number) or @channel name: "
        "tgram://CHAT_ID or tgram://@channelname (or a bot token and chat, as in an Apprise "
        "URL: tgram://BOT_TOKEN/CHAT_ID). Correct it in the file, or empty the cell to import "
        "the row without it; the row was not imported"
    ) in err.splitlines()
    assert "secret" not in err


@pytest.mark.parametrize("value", ["x" * 300, "x\x1b[2Jx"])
def test_a_line_too_long_or_with_terminal_escapes_is_not_quoted(
    storm: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    edit_config(storm, 'label = "UTC"', f'label = "{value}')
    line = line_of(storm / CONFIG, 'label = "x')
    monkeypatch.chdir(storm)
    code, _, err = stormer(monkeypatch, capsys, "check")
    assert code == 1
    assert err.startswith(f"stormer: config.toml:{line}:")
    assert len(err.splitlines()) == 1 and "\x1b" not in err
