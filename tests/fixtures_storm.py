"""Fixtures: the example storm (config.toml, posts/, participants.csv at the repo root),
copied where a test may break it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from check_helpers import CONFIG, PARTICIPANTS, REPO


@pytest.fixture
def storm(tmp_path: Path) -> Path:
    """A private copy of the example storm; tests edit it freely."""
    root = tmp_path / "storm"
    root.mkdir()
    shutil.copy2(REPO / CONFIG, root / CONFIG)
    shutil.copy2(REPO / PARTICIPANTS, root / PARTICIPANTS)
    shutil.copytree(REPO / "posts", root / "posts")
    return root
