"""The Image explorer's view of its pictures, as pure functions (numpy only, no Streamlit): which
classes are painted (the "Show classes" toggles, ``?show=``) and how the pictures are laid out in
rows for the number of runs chosen.

**Shown classes.** With a few classes chosen, the ground truth and the predictions paint only
those classes over the photo (the other pixels show the photo), and an error map keeps only the
errors that count in the chosen classes' IoU: the wrong pixels whose true class or predicted
class is chosen (a miss or a false alarm of a chosen class); the rest look like correct pixels
(the photo dimmed to grey). Everything works on display-size arrays (``dashboard.display``).

**The grid.** The pictures fill the page's width, a row per kind, every row as many columns as
the widest so that pictures line up (a prediction above its error map):

- one run: photo | ground truth | prediction | error map, in one row;
- two or three runs of one class set: photo | each prediction, then ground truth | each error map;
- four runs, or runs of several class sets: photo | ground truths, then the predictions, then the
  error maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from training.viz import ERROR_DIM

SHOW_PARAM = "show"  # ?show=human,object (absent: every class)
PHOTO, TRUTH, PREDICTION, ERRORS = "photo", "ground truth", "prediction", "errors"


# ---------------------------------------------------------------------------- shown classes

def parse_shown(raw: str | None, names: Sequence[str]) -> list[str]:
    """The classes ``?show=`` names, in ``names``' order (unknown names dropped); every class when
    the parameter is absent, none when it is empty."""
    if raw is None:
        return list(names)
    wanted = {part.strip() for part in raw.split(",")}
    return [name for name in names if name in wanted]


def shown_param(shown: Sequence[str], names: Sequence[str]) -> str | None:
    """The ``?show=`` value for ``shown`` (None: every class, the parameter is left out)."""
    return None if set(names) <= set(shown) else ",".join(shown)


def shown_indices(names: Sequence[str], shown: Sequence[str]) -> tuple[int, ...] | None:
    """The indices in ``names`` (one class set's) of the ``shown`` classes; None when every class is
    shown (then the pictures are the plain ones)."""
    indices = tuple(number for number, name in enumerate(names) if name in set(shown))
    return None if len(indices) == len(names) else indices


def _is_shown(classes: np.ndarray, shown: Sequence[int]) -> np.ndarray:
    lookup = np.zeros(256, dtype=bool)
    lookup[list(shown)] = True
    return lookup[classes]


def keep_classes(picture: np.ndarray, photo: np.ndarray, classes: np.ndarray, shown: Sequence[int]) -> np.ndarray:
    """An overlay (``H, W, 3``) with the pixels whose class (``classes``, ``H, W``; 255 no class) is
    not among ``shown`` turned back to the ``photo``."""
    out = picture.copy()
    hidden = ~_is_shown(classes, shown)
    out[hidden] = photo[hidden]
    return out


def keep_errors(picture: np.ndarray, photo: np.ndarray, truth: np.ndarray, predicted: np.ndarray,
                shown: Sequence[int]) -> np.ndarray:
    """An error map (``training.viz.error_map``) keeping only the pixels whose true or predicted
    class is among ``shown`` (the errors in those classes' IoU); the others are drawn as correct
    pixels are: the photo dimmed to grey."""
    hidden = ~(_is_shown(truth, shown) | _is_shown(predicted, shown))
    grey = (photo[hidden].astype(np.float32).mean(axis=-1) * ERROR_DIM).round().astype(np.uint8)
    out = picture.copy()
    out[hidden] = grey[:, None]
    return out


# ---------------------------------------------------------------------------- the grid

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
