"""Pieces shared by the per-platform client tests (Telegram, Discord, Matrix)."""

from __future__ import annotations

import traceback

PNG = b"\x89PNG\r\n\x1a\n" + b"first image"
JPEG = b"\xff\xd8\xff\xe0" + b"second image"


def shown(error: BaseException) -> list[str]:
    """Everything an error can put in front of someone: message, repr, traceback."""
    return [str(error), repr(error), "".join(traceback.format_exception(error))]
