"""A tiny PNG line-chart writer, so ``make bench`` needs no plotting library.

Why not matplotlib: it is not in the pinned environment, and adding it would pull numpy, pillow and
friends into every CI install for one picture. A chart of a few lines against a ceiling needs only
pixels, straight lines, a small bitmap font and ``zlib``; that is all this module does.
"""

from __future__ import annotations

import itertools
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

Color = tuple[int, int, int]

WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)
GREY: Color = (200, 200, 200)
DARK_GREY: Color = (110, 110, 110)
RED: Color = (200, 30, 30)
PALETTE: tuple[Color, ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (23, 190, 207),
)

# A 5x7 bitmap font drawn for this module: each glyph is seven rows of five cells, "#" is ink.
# Lower-case text is drawn in upper case; unknown characters are drawn as a box.
_GLYPHS: dict[str, str] = {
    " ": ".....|.....|.....|.....|.....|.....|.....",
    "0": ".###.|#...#|#..##|#.#.#|##..#|#...#|.###.",
    "1": "..#..|.##..|..#..|..#..|..#..|..#..|.###.",
    "2": ".###.|#...#|....#|...#.|..#..|.#...|#####",
    "3": "#####|...#.|..#..|...#.|....#|#...#|.###.",
    "4": "...#.|..##.|.#.#.|#..#.|#####|...#.|...#.",
    "5": "#####|#....|####.|....#|....#|#...#|.###.",
    "6": "..##.|.#...|#....|####.|#...#|#...#|.###.",
    "7": "#####|....#|...#.|..#..|.#...|.#...|.#...",
    "8": ".###.|#...#|#...#|.###.|#...#|#...#|.###.",
    "9": ".###.|#...#|#...#|.####|....#|...#.|.##..",
    "A": ".###.|#...#|#...#|#####|#...#|#...#|#...#",
    "B": "####.|#...#|#...#|####.|#...#|#...#|####.",
    "C": ".###.|#...#|#....|#....|#....|#...#|.###.",
    "D": "###..|#..#.|#...#|#...#|#...#|#..#.|###..",
    "E": "#####|#....|#....|####.|#....|#....|#####",
    "F": "#####|#....|#....|####.|#....|#....|#....",
    "G": ".###.|#...#|#....|#.###|#...#|#...#|.####",
    "H": "#...#|#...#|#...#|#####|#...#|#...#|#...#",
    "I": ".###.|..#..|..#..|..#..|..#..|..#..|.###.",
    "J": "..###|...#.|...#.|...#.|...#.|#..#.|.##..",
    "K": "#...#|#..#.|#.#..|##...|#.#..|#..#.|#...#",
    "L": "#....|#....|#....|#....|#....|#....|#####",
    "M": "#...#|##.##|#.#.#|#.#.#|#...#|#...#|#...#",
    "N": "#...#|#...#|##..#|#.#.#|#..##|#...#|#...#",
    "O": ".###.|#...#|#...#|#...#|#...#|#...#|.###.",
    "P": "####.|#...#|#...#|####.|#....|#....|#....",
    "Q": ".###.|#...#|#...#|#...#|#.#.#|#..#.|.##.#",
    "R": "####.|#...#|#...#|####.|#.#..|#..#.|#...#",
    "S": ".####|#....|#....|.###.|....#|....#|####.",
    "T": "#####|..#..|..#..|..#..|..#..|..#..|..#..",
    "U": "#...#|#...#|#...#|#...#|#...#|#...#|.###.",
    "V": "#...#|#...#|#...#|#...#|#...#|.#.#.|..#..",
    "W": "#...#|#...#|#...#|#.#.#|#.#.#|#.#.#|.#.#.",
    "X": "#...#|#...#|.#.#.|..#..|.#.#.|#...#|#...#",
    "Y": "#...#|#...#|.#.#.|..#..|..#..|..#..|..#..",
    "Z": "#####|....#|...#.|..#..|.#...|#....|#####",
    ".": ".....|.....|.....|.....|.....|.##..|.##..",
    ",": ".....|.....|.....|.....|.##..|..#..|.#...",
    ":": ".....|.##..|.##..|.....|.##..|.##..|.....",
    "/": ".....|....#|...#.|..#..|.#...|#....|.....",
    "%": "##...|##..#|...#.|..#..|.#...|#..##|...##",
    "(": "...#.|..#..|.#...|.#...|.#...|..#..|...#.",
    ")": ".#...|..#..|...#.|...#.|...#.|..#..|.#...",
    "-": ".....|.....|.....|#####|.....|.....|.....",
    "+": ".....|..#..|..#..|#####|..#..|..#..|.....",
    "=": ".....|.....|#####|.....|#####|.....|.....",
    "_": ".....|.....|.....|.....|.....|.....|#####",
    ">": ".#...|..#..|...#.|....#|...#.|..#..|.#...",
    "<": "...#.|..#..|.#...|#....|.#...|..#..|...#.",
    "'": "..#..|..#..|.#...|.....|.....|.....|.....",
    "[": ".###.|.#...|.#...|.#...|.#...|.#...|.###.",
    "]": ".###.|...#.|...#.|...#.|...#.|...#.|.###.",
    "#": ".#.#.|.#.#.|#####|.#.#.|#####|.#.#.|.#.#.",
    "~": ".....|.....|.#...|#.#.#|...#.|.....|.....",
    "?": ".###.|#...#|....#|...#.|..#..|.....|..#..",
    "*": ".....|..#..|#.#.#|.###.|#.#.#|..#..|.....",
}
_BOX = "#####|#...#|#...#|#...#|#...#|#...#|#####"
GLYPH_W, GLYPH_H = 5, 7


def _glyph_cells(char: str) -> list[tuple[int, int]]:
    rows = _GLYPHS.get(char.upper(), _BOX).split("|")
    return [(x, y) for y, row in enumerate(rows) for x, cell in enumerate(row) if cell == "#"]


class Canvas:
    """An RGB pixel buffer with just enough drawing to make a chart."""

    def __init__(self, width: int, height: int, background: Color = WHITE) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def set(self, x: int, y: int, color: Color) -> None:
        """Paint one pixel; out-of-bounds pixels are ignored so callers need not clip."""
        if 0 <= x < self.width and 0 <= y < self.height:
            offset = 3 * (y * self.width + x)
            self.pixels[offset : offset + 3] = bytes(color)

    def fill(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fill the rectangle with corners (x0, y0) and (x1, y1), inclusive."""
        for y in range(max(0, min(y0, y1)), min(self.height, max(y0, y1) + 1)):
            for x in range(max(0, min(x0, x1)), min(self.width, max(x0, x1) + 1)):
                self.set(x, y, color)

    def line(
        self, x0: float, y0: float, x1: float, y1: float, color: Color, width: int = 1, dash: int = 0
    ) -> None:
        """A straight line by stepping along its longer axis; ``dash`` > 0 draws dashes that long."""
        steps = max(1, int(max(abs(x1 - x0), abs(y1 - y0))))
        half = width // 2
        for i in range(steps + 1):
            if dash and (i // dash) % 2:
                continue
            x = round(x0 + (x1 - x0) * i / steps)
            y = round(y0 + (y1 - y0) * i / steps)
            for dx in range(-half, width - half):
                for dy in range(-half, width - half):
                    self.set(x + dx, y + dy, color)

    def text(self, x: int, y: int, text: str, color: Color = BLACK, scale: int = 1) -> None:
        """Draw ``text`` with its top-left corner at (x, y)."""
        for index, char in enumerate(text):
            left = x + index * (GLYPH_W + 1) * scale
            for gx, gy in _glyph_cells(char):
                self.fill(
                    left + gx * scale,
                    y + gy * scale,
                    left + gx * scale + scale - 1,
                    y + gy * scale + scale - 1,
                    color,
                )

    def text_vertical(self, x: int, y: int, text: str, color: Color = BLACK) -> None:
        """Draw ``text`` rotated a quarter turn counter-clockwise, reading bottom to top from (x, y)."""
        for index, char in enumerate(text):
            bottom = y - index * (GLYPH_W + 1)
            for gx, gy in _glyph_cells(char):
                self.set(x + gy, bottom - gx, color)

    @staticmethod
    def text_width(text: str, scale: int = 1) -> int:
        """Width in pixels of ``text`` drawn at ``scale``."""
        return max(0, len(text) * (GLYPH_W + 1) * scale - scale)

    def png(self) -> bytes:
        """The canvas as PNG bytes (8-bit RGB, no filtering)."""
        stride = 3 * self.width
        raw = b"".join(
            b"\x00" + bytes(self.pixels[row * stride : (row + 1) * stride]) for row in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


@dataclass
class Series:
    """One line of a panel: (x, y) points, drawn in order."""

    label: str
    points: list[tuple[float, float]]
    color: Color | None = None
    dashed: bool = False


@dataclass
class Panel:
    """One chart: its lines plus horizontal reference lines (ceilings) with their labels."""

    title: str
    series: list[Series]
    ceilings: list[tuple[str, float]] = field(default_factory=list)
    x_label: str = "seconds since start"
    y_label: str = "pairs/s"


def nice_step(span: float, ticks: int = 5) -> float:
    """A round tick step (1, 2 or 5 x 10^k) giving about ``ticks`` ticks over ``span``."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _tick_label(value: float) -> str:
    if abs(value) >= 1000 and value == int(value):
        return f"{int(value):,}"
    if value == int(value):
        return str(int(value))
    return f"{value:g}"


def draw_panel(canvas: Canvas, panel: Panel, left: int, top: int, width: int, height: int) -> None:
    """Draw one panel inside the given box: axes, grid, ticks, lines, ceilings and a legend."""
    margin_left, margin_right, margin_top, margin_bottom = 62, 12, 22, 30
    x0, y0 = left + margin_left, top + margin_top
    x1, y1 = left + width - margin_right, top + height - margin_bottom
    canvas.text(left + margin_left, top + 6, panel.title, BLACK)

    xs = [x for s in panel.series for x, _ in s.points] or [0.0, 1.0]
    ys = [y for s in panel.series for _, y in s.points] + [c for _, c in panel.ceilings] or [0.0, 1.0]
    x_max = max(max(xs), 1e-9)
    y_max = max(max(ys) * 1.1, 1e-9)
    x_step, y_step = nice_step(x_max), nice_step(y_max)
    x_max = math.ceil(x_max / x_step) * x_step
    y_max = math.ceil(y_max / y_step) * y_step

    def px(x: float) -> float:
        return x0 + (x1 - x0) * x / x_max

    def py(y: float) -> float:
        return y1 - (y1 - y0) * y / y_max

    tick = 0.0
    while tick <= y_max + 1e-9:
        canvas.line(x0, py(tick), x1, py(tick), GREY)
        label = _tick_label(tick)
        canvas.text(x0 - 4 - Canvas.text_width(label), round(py(tick)) - 3, label, DARK_GREY)
        tick += y_step
    tick = 0.0
    while tick <= x_max + 1e-9:
        canvas.line(px(tick), y0, px(tick), y1, GREY)
        label = _tick_label(tick)
        canvas.text(round(px(tick)) - Canvas.text_width(label) // 2, y1 + 4, label, DARK_GREY)
        tick += x_step
    canvas.line(x0, y1, x1, y1, BLACK)
    canvas.line(x0, y0, x0, y1, BLACK)
    canvas.text((x0 + x1 - Canvas.text_width(panel.x_label)) // 2, y1 + 16, panel.x_label, DARK_GREY)
    canvas.text_vertical(
        left + 4, (y0 + y1 + Canvas.text_width(panel.y_label)) // 2, panel.y_label, DARK_GREY
    )

    legend: list[tuple[str, Color, bool]] = []
    for index, series in enumerate(panel.series):
        color = series.color or PALETTE[index % len(PALETTE)]
        points = sorted(series.points)
        for (ax, ay), (bx, by) in itertools.pairwise(points):
            canvas.line(px(ax), py(ay), px(bx), py(by), color, width=2, dash=4 if series.dashed else 0)
        legend.append((series.label, color, series.dashed))
    # Ceilings last, so that a line running at the ceiling does not hide it.
    for label, value in panel.ceilings:
        canvas.line(x0, py(value), x1, py(value), RED, width=1, dash=6)
        legend.insert(0, (label, RED, True))
    ly = y0 + 4
    for label, color, dashed in legend:
        lx = x1 - Canvas.text_width(label) - 30
        canvas.fill(lx - 3, ly - 2, x1 - 2, ly + 8, WHITE)
        canvas.line(lx, ly + 3, lx + 18, ly + 3, color, width=2, dash=3 if dashed else 0)
        canvas.text(lx + 24, ly, label, BLACK)
        ly += 12


def render(
    panels: Sequence[Panel],
    path: Path,
    *,
    columns: int = 2,
    panel_size: tuple[int, int] = (560, 300),
    title: str = "",
) -> Path:
    """Lay ``panels`` out in a grid and write them as one PNG at ``path``."""
    columns = max(1, min(columns, len(panels) or 1))
    rows = max(1, math.ceil(len(panels) / columns))
    header = 26 if title else 0
    canvas = Canvas(columns * panel_size[0], rows * panel_size[1] + header)
    if title:
        canvas.text(10, 7, title, BLACK, scale=2)
    for index, panel in enumerate(panels):
        row, column = divmod(index, columns)
        draw_panel(canvas, panel, column * panel_size[0], header + row * panel_size[1], *panel_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(canvas.png())
    return path
