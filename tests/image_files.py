"""Real image files made with Pillow, for the image checks and --fix-images tests."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

GPS = {1: "N", 2: (31.0, 46.0, 12.0), 3: "E", 4: (35.0, 13.0, 0.0)}  # EXIF GPS IFD


def noisy_png(path: Path, width: int, height: int) -> int:
    """A PNG of noise (which compresses hardly at all: about 3 bytes a pixel); its size."""
    noise = Image.effect_noise((width, height), 90)
    Image.merge("RGB", [noise, noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT), noise]).save(path)
    return path.stat().st_size


def flat_png(path: Path, width: int, height: int) -> None:
    Image.new("RGB", (width, height), (20, 120, 60)).save(path)


def jpeg_with_gps(path: Path, width: int, height: int, *, orientation: int = 6) -> None:
    """A JPEG whose EXIF says where it was taken, held sideways (`orientation` 6: the picture
    shows turned a quarter, height × width)."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    image.paste((30, 30, 200), (0, 0, width // 2, height // 4))  # a mark to tell the way up
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x8825] = GPS
    image.save(path, exif=exif, quality=90)
