"""What an image file is: its type, its size as people see it, whether it tells where it was
taken. Read with Pillow, imported only when an image is read (never for `stormer --help`).

Pillow reads only the header to answer (not the pixels), so loading a storm stays quick.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from PIL.Image import Image as PILImage

# The formats stormer attaches: those every platform shows. Pillow names the format; a
# camera's MPO (a JPEG with a second picture appended) is sent as the JPEG it starts with.
WEB_FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg"}
WEB_FORMATS |= {"GIF": "image/gif", "WEBP": "image/webp"}
ORIENTATION = 0x0112  # EXIF tag: how the camera was held; 5 to 8 turn the picture a quarter
GPS_IFD = 0x8825  # EXIF: where the picture was taken


class UnsupportedImage(ValueError):
    """Not an image Pillow can read, damaged, or in a format the platforms do not show."""


@dataclass(frozen=True, slots=True)
class ImageFile:
    mime: str
    width: int  # as shown: a camera's EXIF orientation applied
    height: int
    gps: bool  # its EXIF metadata say where it was taken
    animated: bool = False  # a GIF or WebP of several frames


def read_image(path: Path) -> ImageFile:
    """What `path` holds; UnsupportedImage (saying why) when it is not a usable image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            mime = WEB_FORMATS.get(im.format or "")
            if mime is None:
                raise UnsupportedImage(
                    f"a {im.format} image; platforms show PNG, JPEG, GIF or WebP: save it "
                    "in one of those"
                )
            width, height = im.size
            exif = im.getexif()
            if exif.get(ORIENTATION) in (5, 6, 7, 8):
                width, height = height, width
            gps = bool(exif.get_ifd(GPS_IFD))
            return ImageFile(mime, width, height, gps, getattr(im, "is_animated", False))
    except UnidentifiedImageError:
        raise UnsupportedImage(
            "not an image (Pillow cannot read it as PNG, JPEG, GIF or WebP)"
        ) from None
    except Image.DecompressionBombError as e:
        raise UnsupportedImage(f"too many pixels to open safely ({e})") from None
    except (OSError, SyntaxError, ValueError) as e:
        if isinstance(e, UnsupportedImage):
            raise
        raise UnsupportedImage(f"damaged: {e}") from None


def open_upright(path: Path) -> PILImage:
    """The image's pixels, turned as its EXIF orientation says (so a copy, which carries no
    metadata, still shows the right way up)."""
    from PIL import Image, ImageOps

    with Image.open(path) as im:
        im.load()
        return ImageOps.exif_transpose(im)
