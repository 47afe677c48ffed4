"""Pieces shared by the per-platform client tests (Telegram, Discord, Matrix)."""

from __future__ import annotations

import traceback
from pathlib import Path

import pytest

from stormer.queue import MediaRef

PNG = b"\x89PNG\r\n\x1a\n" + b"first image"
JPEG = b"\xff\xd8\xff\xe0" + b"second image"


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


def shown(error: BaseException) -> list[str]:
    """Everything an error can put in front of someone: message, repr, traceback."""
    return [str(error), repr(error), "".join(traceback.format_exception(error))]
