"""`stormer --help` stays fast: it must import none of the heavy packages."""

from __future__ import annotations

import subprocess
import sys

HEAVY = [
    "pydantic",
    "sqlalchemy",
    "alembic",
    "httpx",
    "babel",
    "apscheduler",
    "rich.table",
    "twitter_text",
    "tomli",
    "asyncio",  # 35 ms: only commands that run a loop need it
    "regex",
    "pytz",
    "stormer.storm",
    "stormer.channels.mastodon",
]


def test_help_imports_no_heavy_package() -> None:
    code = (
        "import sys\n"
        "sys.argv = ['stormer', '--help']\n"
        "from stormer.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: stormer" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_every_command_has_help() -> None:
    for command in [
        "times",
        "check",
        "preview",
        "schedule",
        "init",
        "db",
        "platforms",
        "post",
        "login",
        "simulator",
        "participants",
        "ics",
        "rehearse",
        "run",
        "status",
        "report",
        "doctor",
        "watchdog",
    ]:
        result = subprocess.run(
            [sys.executable, "-m", "stormer", command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout


def test_help_lists_commands_in_the_order_an_organizer_works() -> None:
    from typer.testing import CliRunner

    from stormer.cli import app
    from stormer.cli.app import SECTIONS

    output = CliRunner().invoke(app, ["--help"]).stdout
    headings = [line.rstrip(":") for line in output.splitlines() if line.endswith(":")]
    assert headings[-len(SECTIONS) :] == [title for title, _ in SECTIONS]
    listed = [line.split()[0] for line in output.splitlines() if line.startswith("  ")]
    order = [name for _, names in SECTIONS for name in names]
    assert [n for n in listed if n in order] == order  # every command, in work order
    assert not set(listed) - set(order) - {"--version", "--help", "Coordinated"}, "not placed"


def test_version() -> None:
    from importlib.metadata import version

    from typer.testing import CliRunner

    from stormer.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"stormer {version('stormer')}\n"
