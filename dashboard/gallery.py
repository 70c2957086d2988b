"""The Gallery's table: one row per image of a split, a column for every number the store has of it.

Columns (``column_label`` names them for people; the ids below are what the URL holds):

- ``id``, ``city``, ``stem`` of the index, and ``tags`` (``dashboard.tags_store``);
- per chosen run: ``miou:<run>`` and ``pixel_accuracy:<run>`` (per_image.csv), and where the run has
  its error anatomy ``boundary_miou:<run>``, ``objects:<run>``, ``missed:<run>`` (per_image_anatomy.csv);
- ``miou_a_minus_b`` when two runs or more are chosen: the first run's mIoU minus the second's;
- ``share:<class>``: the share of each class in the image's ground truth, from the first run's
  per-image confusion matrices (rows = ground truth, counted at full size by its evaluation), in that
  run's class set; NaN for the images it did not evaluate.

An image a run did not evaluate has NaN in that run's columns: sorting puts such rows last, a range
filter drops them. The pure functions (``image_table``, ``sort_rows``, ``filter_range``,
``filter_tags``, ``page_of``) are unit-tested without Streamlit; ``gallery_table`` fetches their
inputs through the store's cached readers. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st

import dashboard.analysis as analysis
import dashboard.store as store
from training.data.labels import get_class_set
from training.files import file_stamp
from training.runs.anatomy import PER_IMAGE_ANATOMY
from training.runs.store import RUNS, ArtifactError

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


# ---------------------------------------------------------------------------- the table (pure)

def truth_shares(ids: np.ndarray, matrices: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """Each class's share of an image's counted ground-truth pixels, from its K x K confusion matrix
    (rows = ground truth; a sink row beyond the K classes is not ground truth). Rows indexed by id;
    an image without counted pixels has shares of 0."""
    k = len(class_names)
    truth = np.asarray(matrices, dtype=np.float64)[:, :k, :].sum(axis=2)
    shares = truth / np.maximum(truth.sum(axis=1, keepdims=True), 1)
    frame = pd.DataFrame(shares, columns=[share_column(name) for name in class_names])
    frame.index = pd.Index(np.asarray(ids, dtype=np.int64), name="id")
    return frame[frame.index >= 0]  # -1: a per_image.csv row without an id


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
    number = analysis.as_number(value)
    if np.isnan(number):
        return "-"
    counts = column == "id" or column.partition(":")[0] in ("objects", "missed")
    return f"{int(number)}" if counts else f"{number:.3f}"


# ---------------------------------------------------------------------------- from the store (cached)

class GalleryTable(NamedTuple):
    """The table of a split for chosen runs (without tags: they change without the store), and a
    note per run whose numbers are left out or partial (markdown, no path)."""

    table: pd.DataFrame
    notes: tuple[str, ...]
    share_run: str | None  # the run whose evaluation gives the class shares


@st.cache_data(show_spinner=False, max_entries=64)
def _anatomy_rows(artifacts: str, run: str, uid: str, stamp: tuple | None) -> pd.DataFrame | str:
    """per_image_anatomy.csv as numbers, or why it cannot be read (``stamp``: the file's, so a run
    given its anatomy later is read again)."""
    try:
        frame = pd.DataFrame(store.open_run(artifacts, run, uid).per_image_anatomy())
    except (ArtifactError, OSError) as error:
        return store.readable(error, store.StoreKey(artifacts, (), ())).removeprefix(f"run {run}: ")
    if "id" not in frame:
        return f"{PER_IMAGE_ANATOMY} has no id column"
    return frame.apply(lambda column: pd.to_numeric(column, errors="coerce"))


@st.cache_data(show_spinner=False, max_entries=32)
def _shares(artifacts: str, run: str, uid: str, classes: str) -> pd.DataFrame:
    """The class shares of the ground truth of every image the run evaluated (its per-image
    confusion matrices, in per_image.csv order)."""
    opened = store.open_run(artifacts, run, uid)
    ids = [row.get("id") if isinstance(row.get("id"), int) else -1 for row in opened.per_image()]
    matrices = opened.per_image_confusion(mmap=True)
    if len(ids) != len(matrices):
        raise ArtifactError(f"run {run}: per_image_confusion.npy has {len(matrices)} images, "
                            f"per_image.csv {len(ids)}")
    return truth_shares(np.asarray(ids, dtype=np.int64), matrices, get_class_set(classes).names)


def _anatomy(key: store.StoreKey, run: str) -> pd.DataFrame | str | None:
    """A run's per-image anatomy, why it cannot be shown, or None (the run has none)."""
    path = Path(key.artifacts) / RUNS / run / PER_IMAGE_ANATOMY
    stamp = file_stamp(path)
    if stamp is None:
        return None
    return _anatomy_rows(key.artifacts, run, store.run_uid(key, run), stamp)


def gallery_table(key: store.StoreKey, split: str, runs: Sequence[str]) -> GalleryTable:
    """The gallery's table of ``split`` for ``runs`` (whole runs of the store), tags empty."""
    data = store.dataset(key)
    entries = [(entry.id, entry.city, entry.stem) for entry in data.index.split(split)]
    fingerprint = data.index.fingerprint()
    classes_of = store.run_classes(key)
    per_image, anatomy, notes = {}, {}, []
    for run in runs:
        try:
            if analysis.evaluated_on_another_index(store.run_metrics(key, run), fingerprint):
                notes.append(f"**{run}** was evaluated on another index of the dataset: its image ids may name "
                             "other pictures, so its numbers are left out.")
                continue
            per_image[run] = store.per_image(key, run)
        except ArtifactError as error:
            notes.append(f"**{run}**: {store.readable(error, key).removeprefix(f'run {run}: ')}")
            continue
        found = _anatomy(key, run)
        if isinstance(found, str):
            notes.append(f"**{run}**: no anatomy columns ({found}).")
        elif found is not None:
            anatomy[run] = found
    shares, share_run = None, None
    for run in per_image:
        if not store.known_class_set(classes_of[run]):
            continue
        try:
            shares = _shares(key.artifacts, run, store.run_uid(key, run), classes_of[run])
            share_run = run
        except ArtifactError as error:
            notes.append(f"**{run}**: no class shares ({store.readable(error, key).removeprefix(f'run {run}: ')}).")
        break
    return GalleryTable(image_table(entries, per_image, shares, anatomy), tuple(notes), share_run)
