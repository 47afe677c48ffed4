"""Fixtures for the per-platform client tests (Telegram, Discord, Matrix)."""

from __future__ import annotations

from pathlib import Path

import pytest
from platform_fakes import JPEG, PNG

from stormer.queue import MediaRef


@pytest.fixture
def images(tmp_path: Path) -> tuple[MediaRef, MediaRef]:
    """Two small images on disk under tmp_path/img, as queue items carry them."""
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "banner.png").write_bytes(PNG)
    (tmp_path / "img" / "photo.jpg").write_bytes(JPEG)
    return (
        MediaRef("img/banner.png", "A banner", 1200, 675, "image/png"),
        MediaRef("img/photo.jpg", "Students at a gate", 800, 600, "image/jpeg"),
    )
