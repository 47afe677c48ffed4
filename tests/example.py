"""The example storm at the repo root, copied where a test may change it."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def copy_example(dest: Path, *, at: str | None = None) -> Path:
    """Copy config.toml, posts/ and participants.csv into `dest`; optionally move the storm."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "config.toml", dest / "config.toml")
    shutil.copy(REPO / "participants.csv", dest / "participants.csv")
    shutil.copytree(REPO / "posts", dest / "posts")
    if at is not None:
        set_storm_time(dest, at)
    return dest


def set_storm_time(storm: Path, at: str) -> None:
    config = storm / "config.toml"
    text = re.sub(r'(?m)^at = ".*"$', f'at = "{at}"', config.read_text(encoding="utf-8"))
    config.write_text(text, encoding="utf-8")


def add_accounts(storm: Path, block: str) -> None:
    """Insert `[[accounts]]` tables (TOML text) into the storm's config.toml."""
    config = storm / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[reminders]", f"{block}\n[reminders]", 1), encoding="utf-8")
