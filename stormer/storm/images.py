"""Image type and size from a file's first bytes (no imaging library needed).

Platforms want the MIME type and, for Bluesky, the aspect ratio; reading headers is enough.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO


class UnsupportedImage(ValueError):
    """Not a PNG, JPEG or GIF, or a damaged one."""


def image_info(path: Path) -> tuple[str, int, int]:
    """(mime type, width, height) of a PNG, JPEG or GIF file."""
    try:
        return _read_header(path)
    except struct.error:
        raise UnsupportedImage(f"{path.name} is damaged: its header is cut short") from None


def _read_header(path: Path) -> tuple[str, int, int]:
    with path.open("rb") as f:
        head = f.read(32)
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            width, height = struct.unpack(">II", head[16:24])
            return "image/png", width, height
        if head[:6] in (b"GIF87a", b"GIF89a"):
            width, height = struct.unpack("<HH", head[6:10])
            return "image/gif", width, height
        if head.startswith(b"\xff\xd8"):
            f.seek(2)
            return "image/jpeg", *_jpeg_size(f)
    raise UnsupportedImage(f"{path.name} is not a PNG, JPEG or GIF image")


def _jpeg_size(f: BinaryIO) -> tuple[int, int]:
    # Walk the marker segments to the first start-of-frame, which holds the size.
    while True:
        marker = f.read(2)
        if len(marker) < 2 or marker[0] != 0xFF:
            raise UnsupportedImage("damaged JPEG: no frame header found")
        kind = marker[1]
        if kind in (0xD8, 0x01) or 0xD0 <= kind <= 0xD7:
            continue
        (length,) = struct.unpack(">H", f.read(2))
        if 0xC0 <= kind <= 0xCF and kind not in (0xC4, 0xC8, 0xCC):
            _precision, height, width = struct.unpack(">BHH", f.read(5))
            return width, height
        f.seek(length - 2, 1)
