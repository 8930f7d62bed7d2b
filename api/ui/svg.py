"""Small inline SVG plots drawn by hand: a histogram and a binned scatter (density grid).

Drawn here rather than by matplotlib because a page must render in well under 300 ms with
22,000-clip label sets: matplotlib takes tens of milliseconds per figure, and one marker per
clip would make megabytes of markup. The scatter is a GRID_BINS x GRID_BINS count grid drawn as
a tiny inline PNG (a few hundred bytes, the same cost for any number of clips) under SVG axes.
Every text that reaches the markup goes through `html.escape`, and the result is marked safe
for Jinja only here.
"""

import base64
import io
from html import escape

import numpy as np
from markupsafe import Markup
from PIL import Image

WIDTH, HEIGHT = 300, 240
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 24, 36
SCALE_WIDTH = 46  # room right of a density plot for its colour scale
GRID_BINS = 36
HIST_BINS = 40
BAR_COLOUR = "#3b6ea8"
DARKEST = np.array([20.0, 60.0, 130.0])  # the fullest cell; a one-clip cell is 25 % of it


def _ticks(lo: float, hi: float) -> list[float]:
    step = 10.0 ** np.floor(np.log10(max(hi - lo, 1e-9) / 2))
    for factor in (1, 2, 5, 10):
        if (hi - lo) / (step * factor) <= 6:
            step *= factor
            break
    first = np.ceil(lo / step) * step
    return [round(float(t), 10) for t in np.arange(first, hi + step * 1e-6, step)]


class _Frame:
    """Maps data coordinates into the plot area; collects the SVG elements."""

    def __init__(self, x: tuple[float, float], y: tuple[float, float], *,
                 extra_width: int = 0) -> None:
        self.x0, self.x1 = x
        self.y0, self.y1 = y
        self.width = WIDTH + extra_width
        self.w = WIDTH - LEFT - RIGHT
        self.h = HEIGHT - TOP - BOTTOM
        self.parts: list[str] = []

    def px(self, x: float) -> float:
        return LEFT + (x - self.x0) / (self.x1 - self.x0) * self.w

    def py(self, y: float) -> float:
        return TOP + self.h - (y - self.y0) / (self.y1 - self.y0) * self.h

    def axes(self, title: str, xlabel: str, ylabel: str, *, y_ticks: bool = True) -> None:
        p = self.parts
        p.append(f'<rect x="{LEFT}" y="{TOP}" width="{self.w}" height="{self.h}" '
                 'fill="#fff" stroke="#999"/>')
        for t in _ticks(self.x0, self.x1):
            x = self.px(t)
            p.append(f'<line x1="{x:.1f}" y1="{TOP + self.h}" x2="{x:.1f}" '
                     f'y2="{TOP + self.h + 4}" stroke="#666"/>'
                     f'<text x="{x:.1f}" y="{TOP + self.h + 15}" text-anchor="middle">{t:g}</text>')
        if y_ticks:
            for t in _ticks(self.y0, self.y1):
                y = self.py(t)
                p.append(f'<line x1="{LEFT - 4}" y1="{y:.1f}" x2="{LEFT}" y2="{y:.1f}" '
                         f'stroke="#666"/><text x="{LEFT - 6}" y="{y + 3:.1f}" '
                         f'text-anchor="end">{t:g}</text>')
        p.append(f'<text x="{LEFT + self.w / 2}" y="{HEIGHT - 4}" text-anchor="middle">'
                 f'{escape(xlabel)}</text>')
        p.append(f'<text transform="translate(11,{TOP + self.h / 2}) rotate(-90)" '
                 f'text-anchor="middle">{escape(ylabel)}</text>')
        p.append(f'<text x="{LEFT}" y="15" font-weight="bold">{escape(title)}</text>')

    def svg(self, label: str) -> Markup:
        body = "".join(self.parts)
        return Markup(f'<svg class="plot" role="img" aria-label="{escape(label)}" '
                      f'viewBox="0 0 {self.width} {HEIGHT}" width="{self.width}" '
                      f'height="{HEIGHT}" '
                      f'font-size="10" font-family="sans-serif"><title>{escape(label)}</title>'
                      f'{body}</svg>')


def histogram(values: np.ndarray, lo: float, hi: float, *, title: str, xlabel: str) -> Markup:
    """Counts of `values` in HIST_BINS bins over [lo, hi] (values outside land in the end bins)."""
    counts, edges = np.histogram(np.clip(values, lo, hi), bins=HIST_BINS, range=(lo, hi))
    top = max(int(counts.max()) if counts.size else 0, 1)
    frame = _Frame((lo, hi), (0, top * 1.05))
    frame.axes(title, xlabel, "clips")
    for count, left, right in zip(counts.tolist(), edges[:-1], edges[1:], strict=True):
        if count:
            x, y = frame.px(left), frame.py(count)
            frame.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="'
                               f'{frame.px(right) - x - 0.5:.1f}" height="'
                               f'{frame.py(0) - y:.1f}" fill="{BAR_COLOUR}"/>')
    return frame.svg(f"{title}: histogram of {len(values)} clips")


def density(x: np.ndarray, y: np.ndarray, lo: float, hi: float, *, title: str, xlabel: str,
            ylabel: str) -> Markup:
    """A scatter of (x, y) over [lo, hi]^2 as a grid of cells shaded by log count (an inline
    PNG, one pixel per cell, scaled up without smoothing), with the diagonal y = x."""
    scale = GRID_BINS / (hi - lo)
    col = np.clip(((np.asarray(x, dtype=np.float64) - lo) * scale).astype(np.int64), 0,
                  GRID_BINS - 1)
    row = np.clip(((hi - np.asarray(y, dtype=np.float64)) * scale).astype(np.int64), 0,
                  GRID_BINS - 1)  # image rows run top-down, y up
    counts = np.bincount(row * GRID_BINS + col, minlength=GRID_BINS * GRID_BINS)
    top = int(counts.max()) if counts.size else 0
    rgb = _shades(counts, top).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb.reshape(GRID_BINS, GRID_BINS, 3), "RGB").save(buffer, "PNG")
    frame = _Frame((lo, hi), (lo, hi), extra_width=SCALE_WIDTH)
    frame.axes(title, xlabel, ylabel)
    frame.parts.append(
        f'<image x="{LEFT}" y="{TOP}" width="{frame.w}" height="{frame.h}" '
        'preserveAspectRatio="none" style="image-rendering: pixelated" '
        f'href="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"/>')
    frame.parts.append(f'<rect x="{LEFT}" y="{TOP}" width="{frame.w}" height="{frame.h}" '
                       'fill="none" stroke="#999"/>')
    frame.parts.append(f'<line x1="{frame.px(lo):.1f}" y1="{frame.py(lo):.1f}" '
                       f'x2="{frame.px(hi):.1f}" y2="{frame.py(hi):.1f}" stroke="#c33" '
                       'stroke-dasharray="3,3"/>')
    _colour_scale(frame, top)
    return frame.svg(f"{title}: {len(x)} clips")


def _shades(counts: np.ndarray, top: int) -> np.ndarray:
    """RGB (..., 3) of cells holding `counts` clips: white when empty, then from light blue
    (one clip) to dark blue (`top` clips), on a log scale (a few crowded cells would
    otherwise wash out everything else)."""
    counts = np.asarray(counts, dtype=np.float64)
    share = np.log1p(counts) / max(float(np.log1p(top)), 1e-9)
    level = np.where(counts > 0, 0.25 + 0.75 * share, 0.0)[..., None]
    return 255 - level * (255 - DARKEST)


def _colour_scale(frame: _Frame, top: int, steps: int = 24) -> None:
    """A vertical bar right of the plot: the shade of 1 clip at the bottom, of `top` at the
    top, with those counts (and one in between on the same log scale) written beside it."""
    x = LEFT + frame.w + 12
    y0, height = TOP + 14, frame.h - 14
    top = max(top, 1)
    parts = frame.parts
    parts.append(f'<text x="{x - 4}" y="{TOP + 6}">clips</text>')
    counts = np.expm1(np.linspace(np.log1p(1), np.log1p(top), steps))
    for i, rgb in enumerate(_shades(counts, top).round().astype(int)):
        y = y0 + height * (1 - (i + 1) / steps)
        parts.append(f'<rect x="{x}" y="{y:.1f}" width="10" height="{height / steps + 0.5:.1f}" '
                     f'fill="rgb({rgb[0]},{rgb[1]},{rgb[2]})"/>')
    parts.append(f'<rect x="{x}" y="{y0}" width="10" height="{height}" fill="none" '
                 'stroke="#999"/>')
    ticks = [1, top]
    if top >= 10:  # a middle tick, a round count near the scale's middle
        middle = float(np.expm1((np.log1p(1) + np.log1p(top)) / 2))
        ticks.insert(1, int(float(f"{middle:.1g}")))
    span = max(float(np.log1p(top) - np.log1p(1)), 1e-9)
    for count in dict.fromkeys(ticks):
        y = y0 + height * (1 - (np.log1p(count) - np.log1p(1)) / span)
        parts.append(f'<text class="scale-tick" x="{x + 13}" y="{y + 3:.1f}">{count}</text>')
