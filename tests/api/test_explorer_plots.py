"""The explorer's hand-drawn plots: counts land where the axes say (no browser needed)."""

import base64
import io
import re

import numpy as np
from PIL import Image

from api.ui.svg import GRID_BINS, HIST_BINS, density, histogram


def _grid(svg: str) -> np.ndarray:
    png = re.search(r'href="data:image/png;base64,([^"]+)"', svg)
    assert png is not None
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(png.group(1)))))


def test_density_puts_points_on_the_diagonal_where_x_equals_y() -> None:
    x = np.linspace(-2.9, 2.9, 500)
    grid = _grid(str(density(x, x, -3, 3, title="t", xlabel="x", ylabel="y")))
    assert grid.shape == (GRID_BINS, GRID_BINS, 3)
    filled = grid.min(axis=2) < 255
    rows, cols = np.nonzero(filled)
    # Image rows run top-down while y runs up: y = x is the anti-diagonal of the image.
    assert (rows + cols == GRID_BINS - 1).all() and len(rows) >= GRID_BINS - 2


def test_density_darker_where_more_clips() -> None:
    x = np.array([-2.5] * 50 + [2.5])
    grid = _grid(str(density(x, x, -3, 3, title="t", xlabel="x", ylabel="y")))
    # 6 cells per unit: x = y = -2.5 is column 3 and row 33 (counted from the top).
    busy, lone = grid[33, 3].astype(int).sum(), grid[3, 33].astype(int).sum()
    assert busy < lone < 3 * 255


def test_histogram_draws_one_bar_per_filled_bin_and_escapes_labels() -> None:
    values = np.array([-0.875, -0.875, 0.025, 0.975, 5.0])  # 5.0 lands in the last bin
    svg = str(histogram(values, -1, 1, title="<b>", xlabel="a & b"))
    assert svg.count('fill="#3b6ea8"') == 3 and HIST_BINS == 40
    assert "&lt;b&gt;" in svg and "a &amp; b" in svg and "<b>" not in svg


def test_density_has_a_colour_scale_matching_its_cells() -> None:
    x = np.array([-2.5] * 50 + [2.5])
    svg = str(density(x, x, -3, 3, title="t", xlabel="x", ylabel="y"))
    ticks = re.findall(r'class="scale-tick"[^>]*>(\d+)<', svg)
    assert ticks == ["1", "9", "50"]  # one clip, the fullest cell, a round count between
    bar = re.findall(r'fill="rgb\((\d+),(\d+),(\d+)\)"', svg)
    grid = _grid(svg)
    # The bar's bottom is the shade of the one-clip cell, its top that of the 50-clip cell.
    assert tuple(map(int, bar[0])) == tuple(grid[3, 33]) and len(bar) >= 10
    assert tuple(map(int, bar[-1])) == tuple(grid[33, 3])
    assert 'width="346"' in svg  # the plot keeps its size; the scale sits beside it
