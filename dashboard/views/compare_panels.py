"""The Image explorer's comparison view as plain values (no Streamlit, no plotly): which layout the
page takes for the number of runs, where the panels sit, and what the cursor says over them.

The comparison view ("side by side") shows the photo, the ground truth and every chosen run's
prediction (or error map) as large panels, two a row, zoomed and panned together. It takes up to
``MAX_RUNS`` runs; more fall back to the small multiples (``views.picture_grid``), which stay a
choice (``?layout=grid``).

Every panel tells, under the cursor, the true class and every run's class there: the same text on
every panel, read from the full-size maps at the cells of a grid coarser than the zoom view's
(``views.hover_cells``): the text is sent once per panel, so its cells are bounded for all panels
together (``HOVER_BUDGET``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

SIDE_BY_SIDE, SMALL_MULTIPLES = "side by side", "small multiples"
LAYOUTS = (SIDE_BY_SIDE, SMALL_MULTIPLES)
LAYOUT_PARAM, GRID_VALUE = "layout", "grid"  # ?layout=grid: the small multiples
MAX_RUNS = 4  # the comparison view's runs at most; more: the small multiples
COLUMNS = 2  # panels a row
# Hover cells of all panels together: their names are most of what the figure sends at 256x512
# (bench_dashboard.py --compare-view: 24 576 cells sent 0.6 MB for 1 run, 1.2 MB for 4).
HOVER_BUDGET = 12_288
PREDICTION, ERROR_MAP = "prediction", "error map"  # what a run's panel shows (the zoom view's names)
PANEL_KINDS = (PREDICTION, ERROR_MAP)


def chosen_layout(param: str | None, runs: int) -> str:
    """The layout for ``runs`` chosen runs and the ``?layout=`` value: side by side for 1 to
    ``MAX_RUNS`` runs unless the URL asks for the grid; the small multiples for more runs."""
    if runs > MAX_RUNS or param == GRID_VALUE:
        return SMALL_MULTIPLES
    return SIDE_BY_SIDE


def layout_param(layout: str) -> str | None:
    """The ``?layout=`` value of a layout (None: the default, left out of the URL)."""
    return GRID_VALUE if layout == SMALL_MULTIPLES else None


def panel_rows(panels: int, columns: int = COLUMNS) -> int:
    return max(1, -(-panels // columns))


def hover_stride(cells: tuple[int, int], panels: int, budget: int = HOVER_BUDGET) -> int:
    """The stride ``k`` over the zoom view's hover cells (``cells``: its rows, columns) that keeps
    the comparison view's cells, all ``panels`` together, within ``budget`` (1: every cell)."""
    per_panel = max(1, budget // max(1, panels))
    k = 1
    while -(-cells[0] // k) * -(-cells[1] // k) > per_panel:
        k += 1
    return k


def coarse_cells(cells: np.ndarray, k: int) -> np.ndarray:
    """Every ``k``-th cell of a hover grid, the middle one of each k x k block of cells."""
    return np.ascontiguousarray(cells[k // 2::k, k // 2::k]) if k > 1 else cells


def hover_cells(lines: Sequence[tuple[str, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, str]:
    """(names, template) of the text under the cursor: ``names`` (rows, columns, lines) the class
    name of each line at each cell, ``template`` the plotly hovertemplate that labels them, a line
    for each ``(label, classes, lookup)``: ``classes`` the class indices at the cells (all the same
    shape), ``lookup`` an array from an index to its name (``views.hover_cells.class_name_lookup``),
    such as ``("true", truth, lookup)``. The labels are written once in the template, not at every
    cell (a third of the bytes of a text per cell)."""
    names = np.stack([lookup[classes].astype(str) for _, classes, lookup in lines], axis=-1)
    template = "<br>".join(f"{html.escape(label)}: %{{customdata[{number}]}}"
                           for number, (label, _, _) in enumerate(lines))
    return names, template
