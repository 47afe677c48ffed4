"""`stormer check`: every error path has a test.

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
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stormer import cli
from stormer.channels import registry
from stormer.errors import ConfigError, Problem
from stormer.ops.checks import check, near_duplicate_key
from stormer.plan import plan
from stormer.storm import Storm, load_storm

REPO = Path(__file__).resolve().parents[1]
CONFIG = "config.toml"
PARTICIPANTS = "participants.csv"
HASHTAG = "#FreePalestinianStudents"
# The example storm is 2021-03-11T18:00:00Z; checking "as of" 2020 drops storm-in-past.
BEFORE = datetime(2020, 1, 1, tzinfo=UTC)
EXAMPLE_AT = datetime(2021, 3, 11, 18, 0, tzinfo=UTC)
EN_01 = "posts/en-01-right-to-education.md"


# --- the storm under test -------------------------------------------------------------------


@pytest.fixture
def storm(tmp_path: Path) -> Path:
    """A private copy of the example storm; tests edit it freely."""
    root = tmp_path / "storm"
    root.mkdir()
    shutil.copy2(REPO / CONFIG, root / CONFIG)
    shutil.copy2(REPO / PARTICIPANTS, root / PARTICIPANTS)
    shutil.copytree(REPO / "posts", root / "posts")
    return root


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
        f"config.toml:{at_line}: warning[storm-in-past]: the storm time 2021-03-11 18:00 UTC "
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


# --- too-long: each platform counted its own way -----------------------------------------------


@dataclass(frozen=True)
class LimitCase:
    platform: str
    title: str
    lang: str
    limit: int
    unit: str  # what the padding is made of
    weight: int  # how much one unit counts on this platform
    image: bool = False


LIMITS = [
    # X weighs CJK as 2: 128 × "中" after the 25-character "#FreePalestinianStudents ".
    LimitCase("x", "X", "en", 280, "中", 2),
    # Bluesky counts graphemes: "e" + combining acute is one.
    LimitCase("bluesky", "Bluesky", "en", 300, "e\u0301", 1),
    LimitCase("mastodon", "Mastodon", "en", 500, "ö", 1),
    # Telegram counts UTF-16 code units; with an image the text is a 1024-unit caption.
    LimitCase("telegram", "Telegram", "ar", 1024, "ب", 1, image=True),
    LimitCase("discord", "Discord", "en", 2000, "a", 1),
]
IMAGE = '{ path = "images/flag-book.png", alt = "A flag and a book" }'


def limit_post(root: Path, case: LimitCase, length: int, *, image: bool) -> Written:
    front = f'platforms = ["{case.platform}"]'
    if image:
        front += f"\nimages = [{IMAGE}]"
    return write_post(
        root,
        f"zz-{case.platform}.md",
        text_of_length(length, case.unit, case.weight),
        lang=case.lang,
        front=front,
    )


@pytest.mark.parametrize("case", LIMITS, ids=lambda c: c.platform)
def test_too_long(storm: Path, case: LimitCase) -> None:
    post = limit_post(storm, case, case.limit + 1, image=case.image)
    problems = report(storm)
    p = the_one(problems, "too-long")
    assert (p.severity, p.file, p.line) == ("error", post.file, post.text_line)
    assert p.message.startswith(f"{case.title}: {case.limit + 1} > {case.limit} ")
    assert ("(caption limit)" in p.message) == case.image
    assert codes(problems) == ["too-long"]


@pytest.mark.parametrize("case", LIMITS, ids=lambda c: c.platform)
def test_exactly_at_the_limit_passes(storm: Path, case: LimitCase) -> None:
    limit_post(storm, case, case.limit, image=case.image)
    assert report(storm) == []


def test_telegram_text_without_image_has_the_message_limit(storm: Path) -> None:
    case = LIMITS[3]
    limit_post(storm, case, 1025, image=False)  # too long as a caption, fine as a message
    assert report(storm) == []
    limit_post(storm, case, 4097, image=False)
    assert the_one(report(storm), "too-long").message.startswith("Telegram: 4097 > 4096 (limit)")


def test_x_counts_a_url_as_23(storm: Path) -> None:
    url = "https://example.org/" + "a" * 300
    post = write_post(
        storm, "zz-x.md", text_of_length(280 - 24) + " " + url, front='platforms = ["x"]'
    )
    assert report(storm) == []
    edit(storm / post.file, url, url + " b")
    assert the_one(report(storm), "too-long").message.startswith("X: 282 > 280")


def test_every_platform_a_post_goes_to_gets_its_own_problem(storm: Path) -> None:
    # An English post with no restriction goes to the English accounts: Mastodon, Bluesky,
    # X and Discord (Telegram and Matrix carry Arabic and French only).
    post = write_post(storm, "zz-long.md", text_of_length(2001))
    problems = report(storm)
    assert [(p.code, p.severity, p.file, p.line) for p in problems] == [
        ("too-long", "error", post.file, post.text_line)
    ] * 4
    assert [p.message.split(" (")[0] for p in problems] == [
        "Bluesky: 2001 > 300",
        "Discord: 2001 > 2000",
        "Mastodon: 2001 > 500",
        "X: 2001 > 280",
    ]


def test_too_long_on_the_cli(storm: Path) -> None:
    post = limit_post(storm, LIMITS[0], 281, image=False)
    code, problems = cli_check(storm)
    assert code == 1
    too_long = [p for p in problems if p["code"] == "too-long"]
    assert [(p["severity"], p["file"], p["line"]) for p in too_long] == [
        ("error", post.file, post.text_line)
    ]
    assert "X" in too_long[0]["message"] and "281 > 280" in too_long[0]["message"]


def test_too_many_images(storm: Path) -> None:
    images = ", ".join([IMAGE] * 5)
    post = write_post(
        storm,
        "zz-album.md",
        f"{HASHTAG} album",
        front=f'platforms = ["x", "discord"]\nimages = [{images}]',
    )
    p = the_one(report(storm), "too-many-images")  # Discord takes 10, X only 4
    assert (p.severity, p.file, p.line) == ("error", post.file, None)
    assert p.message == "X: 5 images, at most 4 allowed"


# --- images ---------------------------------------------------------------------------------

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


def test_missing_image(storm: Path) -> None:
    post = image_post(storm, '{ path = "images/nope.png", alt = "nothing" }')
    problems = report(storm)
    p = the_one(problems, "missing-image")
    assert (p.severity, p.file, p.line) == ("error", post.file, IMAGES_LINE)
    assert p.message == "image 'images/nope.png' not found (looked for posts/images/nope.png)"
    assert codes(problems) == ["missing-image"]


@pytest.mark.parametrize("path", ["../config.toml", "images/../../participants.csv", "ABSOLUTE"])
def test_image_outside_posts(storm: Path, path: str) -> None:
    if path == "ABSOLUTE":
        path = (storm / CONFIG).as_posix()
    post = image_post(storm, f'{{ path = "{path}", alt = "a file" }}')
    problems = report(storm)
    p = the_one(problems, "image-outside-posts")
    assert (p.severity, p.file, p.line) == ("error", post.file, IMAGES_LINE)
    assert p.message.startswith(f"image {path!r} is outside posts/")
    assert codes(problems) == ["image-outside-posts"]


@pytest.mark.parametrize(
    "spec",
    [
        '{ path = "images/flag-book.png", alt = "" }',
        '{ path = "images/flag-book.png", alt = "   " }',
        '{ path = "images/flag-book.png" }',
    ],
    ids=["empty", "blank", "absent"],
)
def test_missing_alt_text_is_a_warning(storm: Path, spec: str) -> None:
    post = image_post(storm, spec)
    problems = report(storm)
    p = the_one(problems, "missing-alt-text")
    assert (p.severity, p.file, p.line) == ("warning", post.file, IMAGES_LINE)
    assert "'images/flag-book.png' has no alt text" in p.message
    assert codes(problems) == ["missing-alt-text"]
    assert cli_check(storm)[0] == 0  # warnings alone do not fail the check


def test_bad_image(storm: Path) -> None:
    (storm / "posts" / "images" / "fake.png").write_text("not an image at all\n")
    post = image_post(storm, '{ path = "images/fake.png", alt = "fake" }')
    problems = report(storm)
    p = the_one(problems, "bad-image")
    assert (p.severity, p.file, p.line) == ("error", post.file, IMAGES_LINE)
    assert p.message == "fake.png is not a PNG, JPEG or GIF image"
    assert codes(problems) == ["bad-image"]


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00",  # cut inside the IHDR chunk
        b"\xff\xd8\xff\xe0",  # a JPEG cut after its first marker
    ],
    ids=["png", "jpeg"],
)
def test_truncated_image_is_a_bad_image(storm: Path, data: bytes) -> None:
    (storm / "posts" / "images" / "cut.png").write_bytes(data)
    post = image_post(storm, '{ path = "images/cut.png", alt = "cut" }')
    p = the_one(report(storm), "bad-image")
    assert (p.severity, p.file, p.line) == ("error", post.file, IMAGES_LINE)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ('{ path = "images/flag-book.png", alt = "x", title = "t" }', "unknown keys: title"),
        ('{ alt = "no path" }', 'images[0] must be { path = "...", alt = "..." }'),
    ],
    ids=["unknown-key", "no-path"],
)
def test_bad_image_spec(storm: Path, spec: str, fragment: str) -> None:
    post = image_post(storm, spec)
    p = the_one(report(storm), "bad-front-matter")
    assert (p.severity, p.file, p.line) == ("error", post.file, IMAGES_LINE)
    assert fragment in p.message


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


# --- posts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "warned"),
    [
        ("Free them all! #FreePalestinianStudentsNow", True),
        ("Free them all!", True),
        ("Free them all! #freepalestinianstudents", False),
        ("Free them all!\n#FreePalestinianStudents", False),
    ],
)
def test_missing_hashtag(storm: Path, text: str, warned: bool) -> None:
    post = write_post(storm, "zz-tag.md", text, front='platforms = ["mastodon"]')
    problems = report(storm)
    if not warned:
        assert problems == []
        return
    p = the_one(problems, "missing-hashtag")
    assert (p.severity, p.file, p.line) == ("warning", post.file, post.text_line)
    assert p.message == "the post does not carry the storm's hashtag #FreePalestinianStudents"
    assert codes(problems) == ["missing-hashtag"]


def test_missing_hashtag_points_at_the_text_after_blank_lines(storm: Path) -> None:
    post = write_post(storm, "zz-tag.md", "\n\nNo tag here.")
    assert the_one(report(storm), "missing-hashtag").line == post.text_line + 2


@pytest.mark.parametrize(
    ("content", "line", "fragment"),
    [
        ('lang = "en"\n+++\n#FreePalestinianStudents\n', 1, "starts with TOML front matter"),
        ("#FreePalestinianStudents\n", 1, "starts with TOML front matter"),
        ("", 1, "starts with TOML front matter"),
        ('+++\nlang = "en"\n#FreePalestinianStudents\n', 1, "not closed by a '+++' line"),
        (
            '+++\nlang = "en"\nplatforms = ["x"]\noops no equals sign\n+++\n#FreePalestinianStudents\n',
            4,
            "front matter is not valid TOML",
        ),
        (
            '+++\nlang = "en"\n\ncolour = "red"\n+++\n#FreePalestinianStudents\n',
            4,
            "colour: Extra inputs are not permitted",
        ),
        ('+++\nplatforms = ["x"]\n+++\n#FreePalestinianStudents\n', 2, "lang: Field required"),
        (
            '+++\nlang = "en"\nplatforms = "x"\n+++\n#FreePalestinianStudents\n',
            3,
            "platforms: Input should be a valid list",
        ),
    ],
    ids=[
        "no-opening",
        "no-front-matter",
        "empty-file",
        "unclosed",
        "invalid-toml",
        "unknown-key",
        "no-lang",
        "wrong-type",
    ],
)
def test_bad_front_matter(storm: Path, content: str, line: int, fragment: str) -> None:
    (storm / "posts" / "zz-bad.md").write_text(content, encoding="utf-8")
    problems = report(storm)
    p = the_one(problems, "bad-front-matter")
    assert (p.severity, p.file, p.line) == ("error", "posts/zz-bad.md", line)
    assert fragment in p.message
    assert codes(problems) == ["bad-front-matter"]
    assert "posts/zz-bad.md" not in [q.file for q in load(storm).posts]


def test_post_that_is_not_utf8(storm: Path) -> None:
    (storm / "posts" / "zz-latin1.md").write_bytes(
        '+++\nlang = "fr"\n+++\nÉtudier #FreePalestinianStudents\n'.encode("latin-1")
    )
    p = the_one(report(storm), "bad-post")
    assert (p.severity, p.file, p.line) == ("error", "posts/zz-latin1.md", None)
    assert p.message.startswith("not UTF-8 text")


def test_empty_post(storm: Path) -> None:
    write_post(storm, "zz-empty.md", "")
    p = the_one(report(storm), "empty-post")
    assert (p.severity, p.file) == ("error", "posts/zz-empty.md")
    assert p.message == "the post has neither text nor images"


def test_unknown_platform_in_a_post(storm: Path) -> None:
    post = write_post(
        storm, "zz-myspace.md", f"{HASHTAG} hello", front='platforms = ["mastodon", "myspace"]'
    )
    problems = report(storm)
    p = the_one(problems, "unknown-platform")
    assert (p.severity, p.file, p.line) == ("error", post.file, 3)
    assert p.message.startswith("unknown platform 'myspace'; installed: ")
    assert "bluesky, discord, mastodon, matrix, telegram, x" in p.message
    assert codes(problems) == ["unknown-platform"]


def test_unknown_platform_of_an_account(storm: Path) -> None:
    edit_config(storm, 'platform = "x"', 'platform = "twitter"')
    problems = report(storm)
    p = the_one(problems, "unknown-platform")
    assert (p.severity, p.file, p.line) == (
        "error",
        CONFIG,
        line_of(storm / CONFIG, 'platform = "twitter"'),
    )
    assert p.message.startswith("account 'campaign-x': unknown platform 'twitter'; installed: ")
    assert codes(problems) == ["unknown-platform"]


def test_unknown_account_in_a_post(storm: Path) -> None:
    post = write_post(
        storm, "zz-acct.md", f"{HASHTAG} hi", front='accounts = ["campaign-x", "nobody"]'
    )
    p = the_one(report(storm), "unknown-account")
    assert (p.severity, p.file, p.line) == ("error", post.file, 3)
    assert p.message == "no account named 'nobody' in config.toml"


def test_no_posts_folder(storm: Path) -> None:
    shutil.rmtree(storm / "posts")
    p = the_one(report(storm), "no-posts")
    assert (p.severity, p.file, p.line) == ("error", "posts/", None)
    assert "no posts/ folder" in p.message


def test_posts_folder_without_posts(storm: Path) -> None:
    remove_posts(storm, "*.md")
    p = the_one(report(storm), "no-posts")
    assert (p.severity, p.file, p.line) == ("error", "posts/", None)
    assert p.message == "posts/ holds no *.md sample posts"


# --- same text from many accounts --------------------------------------------------------------


def only_en_01(root: Path) -> None:
    """Leave en-01 as the one English sample post."""
    remove_posts(root, "en-0[234]-*.md")


def test_two_x_accounts_with_one_english_text_is_an_error(storm: Path) -> None:
    only_en_01(storm)
    add_account(storm, "campaign-x-2", "x", langs=["en"])
    problems = report(storm)
    p = the_one(problems, "same-text-many-accounts")
    assert (p.severity, p.file, p.line) == ("error", EN_01, None)
    assert p.message.startswith(
        "2 x accounts would post the same or nearly the same text (campaign-x, campaign-x-2)"
    )
    assert "X's rules forbid this" in p.message
    assert codes(problems) == ["same-text-many-accounts"]
    assert cli_check(storm)[0] == 1


def test_two_mastodon_accounts_sharing_a_text_is_a_warning(storm: Path) -> None:
    only_en_01(storm)
    add_account(
        storm,
        "campaign-mastodon-2",
        "mastodon",
        langs=["en"],
        extra='base_url = "https://social.example.org"\n',
    )
    problems = report(storm)
    p = the_one(problems, "same-text-many-accounts")
    assert (p.severity, p.file, p.line) == ("warning", EN_01, None)
    assert p.message.startswith(
        "2 mastodon accounts would post the same or nearly the same "
        "text (campaign-mastodon, campaign-mastodon-2)"
    )
    assert codes(problems) == ["same-text-many-accounts"]
    assert cli_check(storm)[0] == 0


def test_enough_distinct_texts_for_every_x_account(storm: Path) -> None:
    add_account(storm, "campaign-x-2", "x", langs=["en"])  # en-01..03 all go to X
    assert report(storm) == []


@pytest.mark.parametrize(
    ("variant", "same"),
    [
        (lambda t: t.upper(), True),
        (lambda t: t.replace(",", "").replace(".", "!!"), True),
        (lambda t: t + " https://example.org/more", True),
        (lambda t: t.replace(" ", "\n", 3), True),
        (lambda t: t.replace("Article 26", "Article 25"), False),
        (lambda t: "Again: " + t, False),
    ],
    ids=["case", "punctuation", "url", "spacing", "one-word", "prefix"],
)
def test_near_duplicate_texts(storm: Path, variant: Callable[[str], str], same: bool) -> None:
    only_en_01(storm)
    [original] = [p for p in load(storm).posts if p.file == EN_01]
    write_post(storm, "en-05-variant.md", variant(original.text), front='platforms = ["x"]')
    add_account(storm, "campaign-x-2", "x", langs=["en"])
    # Each X account posts its own file; only the texts may be (nearly) the same.
    x_items = sorted((i.account, i.source) for i in plan(load(storm)) if i.platform == "x")
    assert [a for a, _ in x_items] == ["campaign-x", "campaign-x-2"]
    assert {f for _, f in x_items} == {EN_01, "posts/en-05-variant.md"}
    found = with_code(report(storm), "same-text-many-accounts")
    assert [(p.severity, p.line) for p in found] == ([("error", None)] if same else [])
    assert (near_duplicate_key(original.text) == near_duplicate_key(variant(original.text))) == same


# --- secrets -------------------------------------------------------------------------------

WEBHOOK = (
    "https://discord.com/api/webhooks/112233445566778899/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789_-abc"
)


@dataclass(frozen=True)
class SecretCase:
    id: str
    old: str  # config text to replace…
    new: str  # …by this, which holds `secret`
    secret: str
    where: str  # the key path the message names


SECRETS = [
    SecretCase(
        "credentials",
        'credentials = { access_token = "FPS_X_TOKEN" }',
        'credentials = { access_token = "abc123realtokenQ9zX7wV" }',
        "abc123realtokenQ9zX7wV",
        "accounts.4.credentials.access_token",
    ),
    SecretCase(
        "token-in-storm",
        'hashtag = "#FreePalestinianStudents"',
        'hashtag = "#FreePalestinianStudents"\ntoken = "tok-9f8e7d6c5b4a"',
        "tok-9f8e7d6c5b4a",
        "storm.token",
    ),
    SecretCase(
        "token-in-database",
        "[database]",
        '[database]\ntoken = "tok-1a2b3c4d5e6f"',
        "tok-1a2b3c4d5e6f",
        "database.token",
    ),
    SecretCase(
        "token-in-labels",
        'label = "UTC"',
        'label = "UTC"\nlabels = { token = "tok-labels-77f" }',
        "tok-labels-77f",
        "announce.2.labels.token",
    ),
    SecretCase(
        "api-key-in-account",
        'handle = "fps-campaign.example.org"',
        'handle = "fps-campaign.example.org"\napi_key = "k3y-0987"',
        "k3y-0987",
        "accounts.2.api_key",
    ),
    SecretCase(
        "webhook-credential",
        '"FPS_DISCORD_WEBHOOK_URL"',
        f'"{WEBHOOK}"',
        WEBHOOK,
        "accounts.6.credentials.webhook_url",
    ),
    SecretCase(
        "webhook-kit-url",
        'kit_url = "https://storm.example.org/free-palestinian-students"',
        f'kit_url = "{WEBHOOK}"',
        WEBHOOK,
        "storm.kit_url",
    ),
    SecretCase(
        "webhook-label",
        'label = "Pacific"',
        f'label = "see {WEBHOOK} here"',
        WEBHOOK,
        "announce.0.label",
    ),
    SecretCase(
        "webhook-base-url",
        'target = "@freepalestinianstudents_example"',
        f'target = "@freepalestinianstudents_example"\nbase_url = "{WEBHOOK}"',
        WEBHOOK,
        "accounts.5.base_url",
    ),
    SecretCase(
        "telegram-bot-token",
        'target = "@freepalestinianstudents_example"',
        'target = "123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0"',
        "AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0",
        "accounts.5.target",
    ),
]


@pytest.mark.parametrize("case", SECRETS, ids=lambda c: c.id)
def test_secret_in_config(
    storm: Path,
    case: SecretCase,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    edit_config(storm, case.old, case.new)
    secret_line = line_of(storm / CONFIG, case.secret)
    problems = report(storm)
    p = the_one(problems, "secret-in-config")
    assert (p.severity, p.file, p.line) == ("error", CONFIG, secret_line)
    assert p.message.startswith(case.where + " ")
    assert "revoke" in p.message
    assert all(case.secret not in str(q) for q in problems)
    for args in (["check", "--storm", str(storm)], ["check", "--json", "--storm", str(storm)]):
        code, out, err = run_main(monkeypatch, capsys, *args)
        assert code == 1
        assert "secret-in-config" in out + err
        assert case.secret not in out + err
        assert_clean_failure(code, out, err)


def test_secret_never_printed_by_the_real_command(storm: Path) -> None:
    edit_config(storm, '"FPS_DISCORD_WEBHOOK_URL"', f'"{WEBHOOK}"')
    edit_config(storm, '"FPS_X_TOKEN"', '"abc123realtokenQ9zX7wV"')
    for extra in ([], ["--json"]):
        done = run_process("check", *extra, "--storm", str(storm), cwd=storm.parent)
        assert done.returncode == 1
        output = done.stdout + done.stderr
        assert output.count("secret-in-config") == 2
        assert "abc123realtoken" not in output
        assert "AbCdEfGhIjKlMnOpQrStUvWxYz" not in output
        assert_clean_failure(done.returncode, done.stdout, done.stderr)


@pytest.mark.parametrize("value", ["FPS_X_TOKEN", "keyring:fps-x", "X2"])
def test_named_secrets_are_fine(storm: Path, value: str) -> None:
    edit_config(storm, '"FPS_X_TOKEN"', f'"{value}"')
    assert report(storm) == []


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


# --- accounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("account", "old", "new", "fragment"),
    [
        (
            "campaign-x",
            '\ncredentials = { access_token = "FPS_X_TOKEN" }',
            "",
            "account 'campaign-x' (X) needs credentials.access_token",
        ),
        (
            "campaign-bluesky",
            '{ app_password = "FPS_BLUESKY_APP_PASSWORD" }',
            '{ password = "FPS_BLUESKY_APP_PASSWORD" }',
            "account 'campaign-bluesky' (Bluesky) needs credentials.app_password",
        ),
        (
            "campaign-discord",
            '\ncredentials = { webhook_url = "FPS_DISCORD_WEBHOOK_URL" }',
            "",
            "account 'campaign-discord' (Discord) needs credentials.webhook_url",
        ),
    ],
    ids=["x-none", "bluesky-wrong-field", "discord-none"],
)
def test_missing_credential(storm: Path, account: str, old: str, new: str, fragment: str) -> None:
    edit_config(storm, old, new)
    problems = report(storm)
    p = the_one(problems, "missing-credential")
    assert (p.severity, p.file, p.line) == ("error", CONFIG, account_line(storm, account))
    assert p.message.startswith(fragment)
    assert codes(problems) == ["missing-credential"]


@pytest.mark.parametrize(
    ("account", "old", "what"),
    [
        ("campaign-telegram", '\ntarget = "@freepalestinianstudents_example"', "chat"),
        ("campaign-matrix", '\ntarget = "!freepalestinianstudents:matrix.example.org"', "room"),
    ],
)
def test_missing_target(storm: Path, account: str, old: str, what: str) -> None:
    edit_config(storm, old, "")
    problems = report(storm)
    p = the_one(problems, "missing-target")
    assert (p.severity, p.file, p.line) == ("error", CONFIG, account_line(storm, account))
    assert p.message.endswith(f"needs target = the {what} to post to")
    assert codes(problems) == ["missing-target"]


def test_missing_handle(storm: Path) -> None:
    edit_config(storm, '\nhandle = "fps-campaign.example.org"', "")
    p = the_one(report(storm), "missing-handle")
    assert (p.severity, p.file, p.line) == (
        "error",
        CONFIG,
        account_line(storm, "campaign-bluesky"),
    )


def test_missing_base_url(storm: Path) -> None:
    edit_config(storm, '\nbase_url = "https://matrix.example.org"', "")
    problems = report(storm)
    p = the_one(problems, "missing-base-url")
    assert (p.severity, p.file, p.line) == ("error", CONFIG, account_line(storm, "campaign-matrix"))
    assert codes(problems) == ["missing-base-url"]


def test_account_without_posts(storm: Path) -> None:
    line = add_account(storm, "campaign-x-de", "x", langs=["de"])
    problems = report(storm)
    p = the_one(problems, "account-without-posts")
    assert (p.severity, p.file, p.line) == ("warning", CONFIG, line)
    assert codes(problems) == ["account-without-posts"]


def test_duplicate_account(storm: Path) -> None:
    line = add_account(storm, "campaign-x", "x", langs=["en"])
    p = the_one(report(storm), "duplicate-account")
    assert (p.severity, p.file, p.line) == ("error", CONFIG, line)


def test_unauthorized_account_is_skipped(storm: Path) -> None:
    add_account(storm, "campaign-x-2", "x", langs=["en"], extra="authorized = false\n")
    assert report(storm) == []
    assert "campaign-x-2" not in [a.name for a in load(storm).accounts]


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
    assert err == (
        f"stormer: config.toml:{line}: error[bad-config]: "
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
    ],
    ids=["hashtag", "posts-per-account", "post-interval", "reminder-offset", "account-name"],
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
    done = run_process("check", "--storm", str(storm), cwd=storm.parent)
    assert_clean_failure(done.returncode, done.stdout, done.stderr)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(
        f"stormer: config.toml:{line}: error[bad-config]: config.toml is not valid TOML"
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
    code, out, err = run_main(monkeypatch, capsys, "check", "--storm", str(storm))
    assert code == 1
    assert re.search(rf"^participants\.csv:{row}: error\[bad-participant\]: row {row} ", out, re.M)
    assert out.rstrip().endswith("— 1 error(s), 1 warning(s)")


# --- secrets never echoed, wherever they were pasted ------------------------------------------


def test_secret_pasted_into_a_zone_is_not_repeated(storm: Path) -> None:
    hook = "https://discord.com/api/webhooks/123456789/abcdefghijklmnopqrstuvwxyz0123"
    edit_config(storm, 'zone = "Europe/Paris"', f'zone = "{hook}"')
    problems = report(storm)
    assert {"secret-in-config", "unknown-zone"} <= set(codes(problems))
    assert all(hook not in p.message for p in problems)
    assert any("<redacted>" in p.message for p in problems if p.code == "unknown-zone")


def test_database_url_with_password_is_a_secret(storm: Path) -> None:
    edit_config(
        storm, "[database]", '[database]\nurl = "postgresql://stormer:hunter2pass@db/storm"'
    )
    problems = report(storm)
    p = the_one(problems, "secret-in-config")
    assert p.line == line_of(storm / CONFIG, 'url = "postgresql://')
    assert "hunter2pass" not in p.message


def test_configured_participants_file_that_is_missing_is_a_warning(storm: Path) -> None:
    edit_config(storm, 'file = "participants.csv"', 'file = "signups.csv"')
    p = the_one(report(storm), "missing-participants-file")
    assert p.severity == "warning" and "signups.csv" in p.message
