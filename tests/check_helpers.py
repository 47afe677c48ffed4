"""Helpers for the `stormer check` tests (tests/test_check_*.py), by concern.

Each test copies the example storm (config.toml, posts/, participants.csv at the repo root)
into a temporary folder, breaks one thing, and asserts the exact problem: code, severity,
file and line (where stormer gives one). Most tests call `load_storm` + `checks.check`
directly; the CLI is exercised in-process with typer's CliRunner (`check --json`), through
`stormer.cli.main` (which turns StormerError into messages and exit codes), and, for the
"no traceback, non-zero exit" promise, in a real subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stormer import cli
from stormer.channels import registry
from stormer.errors import ConfigError, Problem
from stormer.ops.checks import check
from stormer.storm import Storm, load_storm

REPO = Path(__file__).resolve().parents[1]
CONFIG = "config.toml"
PARTICIPANTS = "participants.csv"
HASHTAG = "#FreePalestinianStudents"
# The example storm is 2021-03-11T18:00:00Z; checking "as of" 2020 drops storm-in-past.
BEFORE = datetime(2020, 1, 1, tzinfo=UTC)
EXAMPLE_AT = datetime(2021, 3, 11, 18, 0, tzinfo=UTC)
EN_01 = "posts/en-01-right-to-education.md"


# --- editing files --------------------------------------------------------------------------


def edit(path: Path, old: str, new: str) -> None:
    """Replace `old`, which must occur exactly once, by `new`."""
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path.name}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def edit_config(root: Path, old: str, new: str) -> None:
    edit(root / CONFIG, old, new)


def append(path: Path, block: str) -> int:
    """Append `block` (whole lines) to `path`; return the line number of its first line."""
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text += "\n"
    first = len(text.splitlines()) + 1
    path.write_text(text + block.rstrip("\n") + "\n", encoding="utf-8")
    return first


def line_of(path: Path, needle: str) -> int:
    """The 1-based number of the one line of `path` containing `needle`."""
    hits = [
        n
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if needle in line
    ]
    assert len(hits) == 1, f"{needle!r} is on lines {hits} of {path.name}"
    return hits[0]


def account_line(root: Path, name: str) -> int:
    """The line of the `[[accounts]]` header of account `name` (where its problems point)."""
    lines = (root / CONFIG).read_text(encoding="utf-8").splitlines()
    n = line_of(root / CONFIG, f'name = "{name}"')
    while lines[n - 1].strip() != "[[accounts]]":
        n -= 1
    return n


def add_account(root: Path, name: str, platform: str, *, langs: list[str], extra: str = "") -> int:
    """Append an account to config.toml; return its header line."""
    creds = {
        "x": 'access_token = "X2_TOKEN"',
        "mastodon": 'access_token = "M2_TOKEN"',
        "bluesky": 'app_password = "B2_PASSWORD"',
    }[platform]
    return append(
        root / CONFIG,
        (
            "[[accounts]]\n"
            f'name = "{name}"\n'
            f'platform = "{platform}"\n'
            f"langs = {json.dumps(langs)}\n"
            f"{extra}"
            f"credentials = {{ {creds} }}\n"
        ),
    )


@dataclass(frozen=True)
class Written:
    file: str  # relative to the storm root, as problems name it
    text_line: int  # the line of the post's first line of text


def write_post(root: Path, name: str, text: str, *, lang: str = "en", front: str = "") -> Written:
    """Write posts/NAME with `lang` and the extra front matter lines `front`."""
    head = ["+++", f'lang = "{lang}"', *front.splitlines(), "+++"]
    (root / "posts" / name).write_text("\n".join([*head, text]) + "\n", encoding="utf-8")
    return Written(f"posts/{name}", len(head) + 1)


def remove_posts(root: Path, pattern: str) -> None:
    doomed = list((root / "posts").glob(pattern))
    assert doomed, f"no post matches {pattern}"
    for path in doomed:
        path.unlink()


def text_of_length(n: int, unit: str = "a", weight: int = 1) -> str:
    """The storm hashtag, a space, then `unit`s (each counting `weight`) and "a"s (1 each):
    a text whose length is `n` on a platform that counts `unit` as `weight`."""
    pad = n - len(HASHTAG) - 1
    assert pad >= 0
    return f"{HASHTAG} " + unit * (pad // weight) + "a" * (pad % weight)


# --- running the check ----------------------------------------------------------------------


def load(root: Path) -> Storm:
    return load_storm(root, known_platforms=set(registry.installed()))


def report(root: Path, now: datetime = BEFORE) -> list[Problem]:
    """Every problem `stormer check` would report, whether loading stopped or not."""
    try:
        storm = load(root)
    except ConfigError as e:
        return e.problems
    return check(storm, now=now)


def with_code(problems: list[Problem], code: str) -> list[Problem]:
    return [p for p in problems if p.code == code]


def codes(problems: list[Problem]) -> list[str]:
    return [p.code for p in problems]


def the_one(problems: list[Problem], code: str) -> Problem:
    found = with_code(problems, code)
    assert len(found) == 1, f"expected one {code}, got: {problems}"
    return found[0]


def cli_check(root: Path) -> tuple[int, list[dict]]:
    """`stormer check --json --storm ROOT` in-process: (exit code, problems as dicts)."""
    result = CliRunner().invoke(cli.app, ["check", "--json", "--storm", str(root)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, json.loads(result.stdout)


def run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """`stormer ARGS` through `stormer.cli.main`, in-process: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["stormer", *args])
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # typer replaces it
    monkeypatch.delenv("STORMER_STORM", raising=False)
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else (0 if code is None else 1)), out, err


def run_process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`python -m stormer ARGS` in a real subprocess."""
    env = {k: v for k, v in os.environ.items() if k != "STORMER_STORM"}
    env["COLUMNS"] = "200"
    return subprocess.run(
        [sys.executable, "-m", "stormer", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


def assert_clean_failure(code: int, out: str, err: str) -> None:
    assert code != 0
    assert "Traceback" not in out + err
    assert "╭" not in err  # no rich traceback box either


IMAGE = '{ path = "images/flag-book.png", alt = "A flag and a book" }'
IMAGES_LINE = 4  # image problems point at the `images` line of the front matter


def image_post(root: Path, spec: str) -> Written:
    post = write_post(
        root,
        "zz-image.md",
        f"{HASHTAG} with an image",
        front=f'platforms = ["mastodon"]\nimages = [{spec}]',
    )
    assert line_of(root / post.file, "images = ") == IMAGES_LINE
    return post
