#!/usr/bin/env python3
"""Draw the sample storm's images into posts/images/.

Standard library only: a tiny RGB canvas with rectangles, circles, ellipses and
polygons, written out as PNG with zlib + struct. The output is deterministic
(no randomness, no timestamps), so running the script again gives the same bytes.

    python scripts/make_images.py            # writes posts/images/*.png
    python scripts/make_images.py OUTDIR     # writes somewhere else
"""

from __future__ import annotations

import math
import struct
import sys
import zlib
from pathlib import Path

Color = tuple[int, int, int]

# Palestinian flag colours.
BLACK: Color = (0, 0, 0)
WHITE: Color = (255, 255, 255)
GREEN: Color = (0, 122, 61)
RED: Color = (206, 17, 38)

PAPER: Color = (247, 241, 225)
INK: Color = (150, 142, 128)
COVER: Color = (92, 58, 33)
WALL: Color = (112, 112, 116)
WALL_DARK: Color = (88, 88, 92)
SKY: Color = (178, 214, 240)
OCEAN: Color = (38, 110, 190)
IRON: Color = (28, 28, 30)

WIDTH, HEIGHT = 800, 418


class Canvas:
    def __init__(self, width: int, height: int, background: Color) -> None:
        self.width = width
        self.height = height
        self.rows = [bytearray(bytes(background) * width) for _ in range(height)]

    def _span(self, y: int, x0: int, x1: int, color: Color) -> None:
        """Fill pixels x0..x1-1 of row y, clipped to the canvas."""
        if not 0 <= y < self.height:
            return
        x0, x1 = max(0, x0), min(self.width, x1)
        if x1 > x0:
            self.rows[y][3 * x0 : 3 * x1] = bytes(color) * (x1 - x0)

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        for yy in range(y, y + h):
            self._span(yy, x, x + w, color)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, color: Color) -> None:
        for yy in range(int(cy - ry), int(cy + ry) + 1):
            dy = (yy + 0.5 - cy) / ry
            if abs(dy) > 1:
                continue
            half = rx * (1 - dy * dy) ** 0.5
            self._span(yy, round(cx - half), round(cx + half), color)

    def circle(self, cx: float, cy: float, r: float, color: Color) -> None:
        self.ellipse(cx, cy, r, r, color)

    def polygon(self, points: list[tuple[float, float]], color: Color) -> None:
        """Scanline fill (even-odd rule), sampling each row at its pixel centre."""
        ys = [p[1] for p in points]
        n = len(points)
        for yy in range(max(0, int(min(ys))), min(self.height, int(max(ys)) + 1)):
            sy = yy + 0.5
            xs = []
            for i in range(n):
                (x0, y0), (x1, y1) = points[i], points[(i + 1) % n]
                if (y0 <= sy < y1) or (y1 <= sy < y0):
                    xs.append(x0 + (sy - y0) * (x1 - x0) / (y1 - y0))
            xs.sort()
            for a, b in zip(xs[0::2], xs[1::2], strict=True):
                self._span(yy, round(a), round(b), color)

    def png(self) -> bytes:
        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        raw = b"".join(b"\x00" + bytes(row) for row in self.rows)  # filter type 0 per row
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # 8-bit RGB
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def open_book(c: Canvas, cx: int, cy: int, w: int, h: int) -> None:
    """An open book seen from above: brown cover, two cream pages, lines of text."""
    c.rect(cx - w // 2 - 10, cy - h // 2 - 8, w + 20, h + 18, COVER)
    page_w = w // 2 - 4
    for left in (cx - w // 2, cx + 4):
        c.rect(left, cy - h // 2, page_w, h, PAPER)
        for i in range(9):
            y = cy - h // 2 + 22 + i * (h - 40) // 8
            short = 40 if i % 3 == 2 else 0
            c.rect(left + 18, y, page_w - 36 - short, 4, INK)
    c.rect(cx - 4, cy - h // 2, 8, h, COVER)  # spine


def flag_book() -> Canvas:
    """The flag's three bands and red triangle, with an open book on the right."""
    c = Canvas(WIDTH, HEIGHT, WHITE)
    band = HEIGHT // 3
    c.rect(0, 0, WIDTH, band, BLACK)
    c.rect(0, HEIGHT - band, WIDTH, band, GREEN)
    c.polygon([(0, 0), (WIDTH * 0.36, HEIGHT / 2), (0, HEIGHT)], RED)
    open_book(c, 560, HEIGHT // 2, 320, 210)
    return c


def graduation_cap() -> Canvas:
    """A black mortarboard with a red tassel on white, over a green band."""
    c = Canvas(WIDTH, HEIGHT, WHITE)
    c.rect(0, HEIGHT - 70, WIDTH, 70, GREEN)
    cx, top = WIDTH // 2, 70
    # Skull cap under the board: a trapezoid with a rounded bottom.
    c.polygon(
        [
            (cx - 120, top + 100),
            (cx + 120, top + 100),
            (cx + 110, top + 200),
            (cx - 110, top + 200),
        ],
        BLACK,
    )
    c.ellipse(cx, top + 200, 110, 28, BLACK)
    # The board itself: a flat diamond seen in perspective.
    c.polygon([(cx, top), (cx + 250, top + 80), (cx, top + 160), (cx - 250, top + 80)], BLACK)
    # Button, cord and tassel.
    c.circle(cx, top + 80, 12, RED)
    c.polygon(
        [(cx - 4, top + 80), (cx + 196, top + 140), (cx + 196, top + 150), (cx - 4, top + 88)], RED
    )
    c.rect(cx + 190, top + 140, 10, 90, RED)
    c.polygon(
        [
            (cx + 181, top + 230),
            (cx + 209, top + 230),
            (cx + 218, top + 280),
            (cx + 172, top + 280),
        ],
        RED,
    )
    return c


def book_behind_bars() -> Canvas:
    """Three stacked books, red, green and black, behind the bars of a window in a grey wall."""
    c = Canvas(WIDTH, HEIGHT, WALL)
    for row in range(0, HEIGHT, 38):  # brick courses
        c.rect(0, row, WIDTH, 3, WALL_DARK)
        offset = 0 if (row // 38) % 2 == 0 else 45
        for x in range(offset, WIDTH, 90):
            c.rect(x, row, 3, 38, WALL_DARK)
    wx, wy, ww, wh = 220, 59, 360, 300
    c.rect(wx - 14, wy - 14, ww + 28, wh + 28, IRON)  # window frame
    c.rect(wx, wy, ww, wh, SKY)
    # The books, seen from the side, stacked on the sill.
    sill = wy + wh
    for i, (color, w) in enumerate([(RED, 250), (GREEN, 224), (BLACK, 236)]):
        h = 44
        y = sill - (i + 1) * h
        x = wx + (ww - w) // 2 + (-10, 12, -4)[i]
        c.rect(x, y, w, h - 4, color)
        c.rect(x + w - 14, y + 6, 10, h - 16, PAPER)  # page edges
    # Bars in front of everything.
    for i in range(1, 7):
        c.rect(wx + i * ww // 7 - 6, wy, 12, wh, IRON)
    c.rect(wx, wy + wh // 2 - 6, ww, 12, IRON)
    return c


def globe_ring() -> Canvas:
    """A blue globe with green land, ringed by small red, black and green dots."""
    c = Canvas(WIDTH, HEIGHT, WHITE)
    cx, cy, r = WIDTH // 2, HEIGHT // 2, 150
    c.circle(cx, cy, r, OCEAN)
    land = [  # (dx, dy, rx, ry) relative to the centre: rough continents
        (-70, -60, 55, 40),
        (-45, 10, 30, 55),
        (-30, 75, 22, 40),  # the Americas
        (40, -70, 45, 28),
        (55, 0, 38, 55),
        (110, -35, 30, 35),  # Europe, Africa, Asia
        (100, 85, 30, 18),  # Australia
    ]
    for dx, dy, rx, ry in land:
        # Clip each blob to the globe by drawing it row by row inside the circle.
        for yy in range(int(cy + dy - ry), int(cy + dy + ry) + 1):
            ey = (yy + 0.5 - cy - dy) / ry
            gy = (yy + 0.5 - cy) / r
            if abs(ey) > 1 or abs(gy) > 1:
                continue
            half = rx * (1 - ey * ey) ** 0.5
            ghalf = r * (1 - gy * gy) ** 0.5
            x0 = max(cx + dx - half, cx - ghalf)
            x1 = min(cx + dx + half, cx + ghalf)
            c._span(yy, round(x0), round(x1), GREEN)
    # Ring of dots: 36 of them, cycling red, black, green.
    for i in range(36):
        a = 2 * math.pi * i / 36
        c.circle(
            cx + (r + 34) * math.cos(a), cy + (r + 34) * math.sin(a), 9, (RED, BLACK, GREEN)[i % 3]
        )
    return c


IMAGES = {
    "flag-book.png": flag_book,
    "graduation-cap.png": graduation_cap,
    "book-behind-bars.png": book_behind_bars,
    "globe-ring.png": globe_ring,
}


def main(argv: list[str]) -> int:
    out = (
        Path(argv[1])
        if len(argv) > 1
        else Path(__file__).resolve().parent.parent / "posts" / "images"
    )
    out.mkdir(parents=True, exist_ok=True)
    for name, draw in IMAGES.items():
        data = draw().png()
        (out / name).write_bytes(data)
        print(f"{out / name}  {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
