"""The Gallery's table: one row per image of a split, a column for every number the store has of it.

Columns (``column_label`` names them for people; the ids below are what the URL holds):

- ``id``, ``city``, ``stem`` of the index, and ``tags`` (``dashboard.readers.tags``);
- per chosen run: ``miou:<run>`` and ``pixel_accuracy:<run>`` (per_image.csv), and where the run has
  its error anatomy ``boundary_miou:<run>``, ``objects:<run>``, ``missed:<run>`` (per_image_anatomy.csv);
- ``miou_a_minus_b`` when two runs or more are chosen: the first run's mIoU minus the second's;
- ``share:<class>``: the share of each class in the image's ground truth (its pixels over the
  counted ones, ``training.evaluation.shares``), from the first run's per-image confusion matrices
  (rows = ground truth, counted at full size by its evaluation), in that run's class set; NaN for
  the images it did not evaluate.

An image a run did not evaluate has NaN in that run's columns: sorting puts such rows last, a range
filter drops them. Plain functions (no Streamlit): ``dashboard.readers.image_numbers`` fetches their
inputs through the store's cached readers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from dashboard.views.numbers import as_number
from training.evaluation.shares import class_shares, truth_pixels_of

SPLITS = ("test", "validation", "train", "all")
PAGE_SIZES, DEFAULT_PAGE_SIZE = (12, 24, 48), 24
ID_COLUMNS, TAGS = ("id", "city", "stem"), "tags"
DIFFERENCE = "miou_a_minus_b"
PER_IMAGE_METRICS = ("miou", "pixel_accuracy")
ANATOMY_METRICS = ("boundary_miou", "objects", "missed")
METRIC_NAMES = {"miou": "mIoU", "pixel_accuracy": "pixel accuracy", "boundary_miou": "boundary mIoU",
                "objects": "objects", "missed": "missed objects"}


def run_column(metric: str, run: str) -> str:
    return f"{metric}:{run}"


def share_column(class_name: str) -> str:
    return f"share:{class_name}"


def column_label(column: str, runs: Sequence[str] = (), names: Mapping[str, str] | None = None) -> str:
    """What people read for a column id: "mIoU, tiny_unet", "share of road", "mIoU, a minus b"
    (``names``: the runs' display names, e.g. their short names)."""
    names = names or {}
    if column == DIFFERENCE and len(runs) >= 2:
        return f"mIoU, {names.get(runs[0], runs[0])} minus {names.get(runs[1], runs[1])}"
    prefix, _, rest = column.partition(":")
    if prefix == "share" and rest:
        return f"share of {rest}"
    if prefix in METRIC_NAMES and rest:
        return f"{METRIC_NAMES[prefix]}, {names.get(rest, rest)}"
    return column


def column_run(column: str, runs: Sequence[str]) -> str | None:
    """The run a column's numbers are of: "worse" for "miou:worse", the first run for the mIoU
    difference (A minus B); None for the id, a class share, or a run not among ``runs``."""
    if column == DIFFERENCE:
        return runs[0] if runs else None
    prefix, _, rest = column.partition(":")
    return rest if prefix in METRIC_NAMES and rest in runs else None


def truth_shares(ids: np.ndarray, matrices: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """Each class's share of each image's counted ground truth (``training.evaluation.shares``), from
    its confusion matrix, as ``share:<class>`` columns indexed by id (a per_image.csv row without an
    id, -1, left out)."""
    shares = class_shares(truth_pixels_of(matrices, len(class_names)))
    frame = pd.DataFrame(shares, columns=[share_column(name) for name in class_names])
    frame.index = pd.Index(np.asarray(ids, dtype=np.int64), name="id")
    return frame[frame.index >= 0]


def image_table(entries: Sequence[tuple[int, str, str]], per_image: Mapping[str, pd.DataFrame],
                shares: pd.DataFrame | None = None, anatomy: Mapping[str, pd.DataFrame] | None = None,
                tags: Mapping[int, Sequence[str]] | None = None) -> pd.DataFrame:
    """One row per ``(id, city, stem)`` of ``entries`` (in their order): each run's per-image numbers
    (``per_image``: its per_image.csv as numbers, by run, in the order chosen), the first two runs'
    mIoU difference, the ground truth's class shares, the runs' anatomy, the image's tags."""
    table = pd.DataFrame(list(entries), columns=list(ID_COLUMNS)).astype({"id": np.int64})
    ids = table["id"]

    def numbers(frame: pd.DataFrame, metrics: Sequence[str]) -> dict[str, pd.Series]:
        return {column: ids.map(values).astype(float) for column, values in _by_id(frame, metrics).items()}

    runs = list(per_image)
    for run in runs:
        table = table.assign(**{run_column(m, run): v for m, v in numbers(per_image[run], PER_IMAGE_METRICS).items()})
    if len(runs) >= 2 and run_column("miou", runs[0]) in table and run_column("miou", runs[1]) in table:
        table[DIFFERENCE] = table[run_column("miou", runs[0])] - table[run_column("miou", runs[1])]
    for run, frame in (anatomy or {}).items():
        table = table.assign(**{run_column(m, run): v for m, v in numbers(frame, ANATOMY_METRICS).items()})
    if shares is not None:
        table = table.join(shares, on="id")
    return with_tags(table, tags or {})


def with_tags(table: pd.DataFrame, tags: Mapping[int, Sequence[str]]) -> pd.DataFrame:
    """``table`` with each image's tags (``tags``: image id -> its tags, images without any absent)."""
    return table.assign(**{TAGS: [tuple(tags.get(int(i), ())) for i in table["id"]]})


def _by_id(frame: pd.DataFrame, metrics: Sequence[str]) -> dict[str, pd.Series]:
    """The ``metrics`` columns of ``frame`` as numbers indexed by its ``id`` column (rows without an
    id, and repeated ids after the first, left out)."""
    if "id" not in frame:
        return {}
    ids = pd.to_numeric(frame["id"], errors="coerce")
    keep = ids.notna() & ~ids.duplicated()
    indexed = frame[keep].set_index(ids[keep].astype(np.int64))
    return {metric: pd.to_numeric(indexed[metric], errors="coerce") for metric in metrics if metric in indexed}


def numeric_columns(table: pd.DataFrame) -> list[str]:
    """The columns one can sort and filter by: the id and every number."""
    return ["id"] + [c for c in table.columns if c not in (*ID_COLUMNS, TAGS)]


def sort_rows(table: pd.DataFrame, column: str, descending: bool = False) -> pd.DataFrame:
    """Rows by ``column`` (missing values last either way), ties by id."""
    if column not in table:
        raise ValueError(f"no column {column!r} to sort by; columns: {', '.join(numeric_columns(table))}")
    order = table.sort_values("id", kind="stable").sort_values(column, ascending=not descending, kind="stable",
                                                              na_position="last")
    return order.reset_index(drop=True)


def filter_range(table: pd.DataFrame, column: str, low: float | None = None, high: float | None = None) -> pd.DataFrame:
    """Rows whose ``column`` lies in [low, high] (a bound of None: open); with a bound, rows
    without a value are dropped. Unknown column: ValueError."""
    if column not in table:
        raise ValueError(f"no column {column!r} to filter by; columns: {', '.join(numeric_columns(table))}")
    if low is None and high is None:
        return table
    values = pd.to_numeric(table[column], errors="coerce")
    keep = values.notna()
    if low is not None:
        keep &= values >= low
    if high is not None:
        keep &= values <= high
    return table[keep]


def filter_tags(table: pd.DataFrame, wanted: Sequence[str]) -> pd.DataFrame:
    """Rows tagged with every tag of ``wanted`` (all rows when it is empty)."""
    if not wanted:
        return table
    wanted = set(wanted)
    return table[[wanted.issubset(tags) for tags in table[TAGS]]]


def page_count(rows: int, size: int) -> int:
    return max(1, math.ceil(rows / max(1, size)))


def page_of(table: pd.DataFrame, page: int, size: int = DEFAULT_PAGE_SIZE) -> tuple[pd.DataFrame, int, int]:
    """(the rows of page ``page``, counted from 1 and brought within the pages, that page, the
    number of pages: at least 1, for an empty table too)."""
    pages = page_count(len(table), size)
    page = min(max(1, int(page)), pages)
    return table.iloc[(page - 1) * size:page * size], page, pages


def value_text(value, column: str = "") -> str:
    """A number of ``column`` for a caption: "-" when missing, a count (id, objects, missed) as an
    integer, anything else with 3 decimals."""
    number = as_number(value)
    if np.isnan(number):
        return "-"
    counts = column == "id" or column.partition(":")[0] in ("objects", "missed")
    return f"{int(number)}" if counts else f"{number:.3f}"
