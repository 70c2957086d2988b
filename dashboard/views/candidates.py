"""The Check labels page's list of candidate regions as a table, and the defaults it starts from
(no Streamlit): the regions themselves are ``training.evaluation.consensus``'s, scanned by
``dashboard.readers.label_scan``."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dashboard.views.regions import BOX, Outline
from training.evaluation.consensus import Scan

PER_PAGE = 25  # rows of the list at a time


def default_min_pixels(height: int, width: int) -> int:
    """A size that leaves out specks: a thousandth of the frame (2,100 pixels at 2048x1024, 130 at
    256x512), with two significant digits."""
    size = max(1, height * width // 1000)
    digits = max(0, len(str(size)) - 2)
    return max(1, round(size, -digits))


def common_ids(per_run_ids: dict[str, Sequence[int]], index) -> list[int]:
    """The ids every run predicted that the index knows, in id order."""
    sets = [{int(i) for i in ids if i == i and int(i) >= 0} for ids in per_run_ids.values()]  # i == i: not NaN
    shared = set.intersection(*sets) if sets else set()
    return sorted(i for i in shared if i in index)


def candidates_frame(found: Scan) -> pd.DataFrame:
    """The scan's rows as a table, largest first (``runs`` left out: they are the regions' pixels)."""
    columns = ["id", "pixels", "x0", "y0", "x1", "y1", "ground_truth", "truth_share", "runs_say", "agreed_share"]
    frame = pd.DataFrame([{column: row[column] for column in columns} for row in found.rows], columns=columns)
    frame["box"] = [f"{x0},{y0},{x1},{y1}" for x0, y0, x1, y1 in frame[["x0", "y0", "x1", "y1"]].itertuples(
        index=False)]
    return frame


def box_outline(row) -> Outline:
    """The ``?outline=`` of a candidate region: its bounding box."""
    return Outline(BOX, box=(int(row["x0"]), int(row["y0"]), int(row["x1"]), int(row["y1"])))
