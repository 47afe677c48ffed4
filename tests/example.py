"""The example storm at the repo root, copied where a test may change it."""

from __future__ import annotations

import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest
    from sqlalchemy import Engine

    from stormer.storm import Storm

REPO = Path(__file__).resolve().parents[1]


def copy_example(dest: Path, *, at: str | None = None, reminders: bool = False) -> Path:
    """Copy config.toml, posts/ and participants.csv into `dest`; optionally move the storm.

    Without `reminders` the copy plans no participants' reminders (`offsets = []`): the
    example's participants are real organizations at example addresses, and tests of posting
    must not count or try to deliver them. Reminder tests point them at local sinks."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config.toml", dest / "config.toml")
    shutil.copy(REPO / "participants.csv", dest / "participants.csv")
    shutil.copytree(REPO / "posts", dest / "posts")
    if at is not None:
        set_storm_time(dest, at)
    if not reminders:
        set_reminder_offsets(dest, [])
    return dest


def set_reminder_offsets(storm: Path, offsets: list[str]) -> None:
    config = storm / "config.toml"
    listed = ", ".join(f'"{o}"' for o in offsets)
    text = re.sub(
        r"(?m)^offsets = \[.*\]$", f"offsets = [{listed}]", config.read_text(encoding="utf-8")
    )
    config.write_text(text, encoding="utf-8")


def set_storm_time(storm: Path, at: str) -> None:
    config = storm / "config.toml"
    text = re.sub(r'(?m)^at = ".*"$', f'at = "{at}"', config.read_text(encoding="utf-8"))
    config.write_text(text, encoding="utf-8")


def add_accounts(storm: Path, block: str) -> None:
    """Insert `[[accounts]]` tables (TOML text) into the storm's config.toml."""
    config = storm / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[reminders]", f"{block}\n[reminders]", 1), encoding="utf-8")


CREDENTIALS = {
    "FPS_MASTODON_TOKEN": "tok-m",
    "FPS_MASTODON_FR_TOKEN": "tok-fr",
    "FPS_BLUESKY_APP_PASSWORD": "pw-b",
    "FPS_BLUESKY_ES_APP_PASSWORD": "pw-es",
    "FPS_X_TOKEN": "tok-x",
    "FPS_TELEGRAM_BOT_TOKEN": "12345:tok-t",
    "FPS_MATRIX_TOKEN": "tok-mx",
}


def point_accounts_at(storm: Path, sim: str) -> None:
    """Every account of the example storm talks to the simulator instead of the world."""
    config = storm / "config.toml"
    text = config.read_text(encoding="utf-8")
    text = re.sub(r'base_url = "[^"]*"', f'base_url = "{sim}"', text)
    for platform in ("bluesky", "x", "telegram"):
        text = text.replace(
            f'platform = "{platform}"\n', f'platform = "{platform}"\nbase_url = "{sim}"\n'
        )
    config.write_text(text, encoding="utf-8")


def example_against(
    dest: Path, server: str, monkeypatch: pytest.MonkeyPatch, *, at: str | None = None
) -> Path:
    """The example storm copied to `dest` (see `copy_example`), every account talking to
    `server` (the simulator, or a proxy in front of it), their credentials in the environment,
    and no keyring."""
    root = copy_example(dest, at=at)
    point_accounts_at(root, server)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FPS_DISCORD_WEBHOOK_URL", f"{server}/api/webhooks/7/tok-d")
    monkeypatch.setattr("keyring.get_password", lambda *args: None)
    return root


def schedule_storm(root: Path, engine: Engine, at: datetime) -> Storm:
    """The storm at `root` moved to `at`, loaded, planned and scheduled into `engine`'s
    outbox, as `stormer schedule` does."""
    from datetime import UTC

    from sqlalchemy.orm import Session

    from stormer.outbox.schedule import schedule
    from stormer.plan import plan
    from stormer.preview import with_payloads
    from stormer.storm import load_storm
    from stormer.timezones import iso_utc

    set_storm_time(root, iso_utc(at))
    storm = load_storm(root)
    with Session(engine) as session, session.begin():
        schedule(
            with_payloads(storm, plan(storm)),
            session=session,
            storm=storm.slug,
            now=datetime.now(UTC),
        )
    return storm


def write_own_posts(storm: Path, hashtag: str) -> None:
    """Replace the placeholder texts `stormer init` wrote (check refuses them) with posts in
    the organizer's own words, one distinct text per file."""
    for n, post in enumerate(sorted((storm / "posts").glob("*.md"))):
        head = post.read_text(encoding="utf-8").rpartition("+++")[0]
        post.write_text(f"{head}+++\nOur own words, number {n}. {hashtag}\n", encoding="utf-8")
