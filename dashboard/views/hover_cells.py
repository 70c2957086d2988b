"""Where the explorer's hover grid samples an image, and how its cells name classes (numpy only, no
Streamlit): a grid of at most ``HOVER_CELLS`` cells, each reading the class of the full-size pixel
at the centre of its block, so the classes under the cursor are the image's own."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.data.labels import IGNORE_INDEX

HOVER_CELLS = (128, 256)  # the hover grid has at most this many rows and columns


def hover_grid(height: int, width: int,
               max_cells: tuple[int, int] = HOVER_CELLS) -> tuple[slice, slice, int, int]:
    """(rows, columns, step_y, step_x): strides that keep the hover grid within ``max_cells``,
    each cell sampling the centre of its block."""
    step_y, step_x = -(-height // max_cells[0]), -(-width // max_cells[1])
    return slice(step_y // 2, None, step_y), slice(step_x // 2, None, step_x), step_y, step_x


def class_name_lookup(names: Sequence[str], unlabelled: str = "ignored") -> np.ndarray:
    """A 256-entry array from a class index to its name, so a whole mask is named by indexing;
    ``unlabelled`` at ``IGNORE_INDEX`` ("ignored" in a ground truth, "no class" in an imported
    prediction), "?" for indices no class has."""
    lookup = np.array(list(names) + ["?"] * (256 - len(names)), dtype=object)
    lookup[IGNORE_INDEX] = unlabelled
    return lookup
