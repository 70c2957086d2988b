"""How the Image explorer lays its pictures out in rows for the number of runs chosen. The pictures
fill the page's width, a row per kind, every row as many columns as the widest so that pictures
line up (a prediction above its error map):

- one run: photo | ground truth | prediction | error map, in one row;
- two or three runs of one class set: photo | each prediction, then ground truth | each error map;
- four runs, or runs of several class sets: photo | ground truths, then the predictions, then the
  error maps.

Plain functions (no Streamlit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

PHOTO, TRUTH, PREDICTION, ERRORS = "photo", "ground truth", "prediction", "errors"


class Cell(NamedTuple):
    """One picture of the grid: ``kind`` (PHOTO, TRUTH, PREDICTION, ERRORS) and whose (a class
    set for TRUTH, a run for PREDICTION and ERRORS)."""

    kind: str
    of: str = ""


Grid = list[list[Cell | None]]  # rows of equal length; None: an empty place


def _padded(rows: list[list[Cell]]) -> Grid:
    width = max(len(row) for row in rows)
    return [[*row, *([None] * (width - len(row)))] for row in rows]


def picture_grid(truths: Sequence[str], runs: Sequence[str]) -> Grid:
    """The explorer's pictures in rows (see the module's docstring): ``truths`` the class sets of
    the ground truths shown, ``runs`` the runs in their order."""
    photo, truth_cells = Cell(PHOTO), [Cell(TRUTH, classes) for classes in truths]
    predictions = [Cell(PREDICTION, run) for run in runs]
    errors = [Cell(ERRORS, run) for run in runs]
    if not runs:
        return _padded([[photo, *truth_cells]])
    if len(runs) == 1 and len(truths) == 1:
        return [[photo, *truth_cells, *predictions, *errors]]
    if len(runs) <= 3 and len(truths) == 1:
        return [[photo, *predictions], [*truth_cells, *errors]]
    return _padded([[photo, *truth_cells], predictions, errors])
