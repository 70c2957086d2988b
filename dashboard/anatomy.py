"""The numbers of the Error anatomy page, as plain functions of a run's anatomy files (no Streamlit).

A run evaluated by the current code has, beside its metrics.json (``training.runs.anatomy``):
``anatomy.json`` (Boundary IoU per class in both modes of the IoU, the official iIoU, object
counts), ``instances.csv`` (one row per object of the ground truth, with its recall),
``per_image_anatomy.csv`` and ``frame_errors.npy`` (pixels counted and pixels wrong on a fixed grid
over the frame). Runs evaluated before have none of them; the page says how to add them.

Everything here checks what it reads: a file of the run store may be damaged, and a damaged file
gives a message for its run (``AnatomyProblem``), never an exception on the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from dashboard.analysis import as_number
from training.evaluation.instances import INSTANCE_COLUMNS
from training.runs.anatomy import HOW_TO_ADD

NO_ANATOMY_NOTE = ("no error anatomy: this run was evaluated before it existed; re-evaluate to see this: "
                   f"`{HOW_TO_ADD}`")
MISSED_SHOWN = 200  # rows of the missed-objects table (largest first); the rest are counted


class AnatomyProblem(ValueError):
    """A run's anatomy file cannot be shown (its message names the file, never a path)."""


def no_anatomy_note(run: str) -> str:
    return f"{run}: " + NO_ANATOMY_NOTE.format(run=run)


# ---------------------------------------------------------------------------- the table per run

def _mapping(document: Mapping, name: str) -> Mapping:
    value = document.get(name)
    return value if isinstance(value, Mapping) else {}


def check_document(document) -> dict:
    """anatomy.json as the page reads it; AnatomyProblem if it is not an object with the
    Boundary IoU the page shows."""
    if not isinstance(document, Mapping) or not isinstance(document.get("boundary_iou"), Mapping):
        raise AnatomyProblem("anatomy.json holds no per-class boundary_iou")
    return dict(document)


def object_classes(document: Mapping) -> list[str]:
    """The classes the run's iIoU is computed for (human, vehicle; or person ... bicycle)."""
    return [str(name) for name in _mapping(document, "iiou")]


def summary_row(run: str, metrics: Mapping, document: Mapping) -> dict:
    """One row of the page's table: both mIoU (metrics.json), both mean Boundary IoU, the mean
    iIoU and per object class, objects and those missed (NaN where the run has no such number)."""
    objects = _mapping(document, "instances")
    row = {"run": run, "classes": str(document.get("classes") or metrics.get("classes") or ""),
           "images": as_number(document.get("images")),
           "mIoU": as_number(metrics.get("miou")), "mIoU (official)": as_number(metrics.get("miou_official")),
           "Boundary IoU": as_number(document.get("mean_boundary_iou")),
           "Boundary IoU (official)": as_number(document.get("mean_boundary_iou_official")),
           "iIoU": as_number(document.get("mean_iiou"))}
    row.update({f"iIoU {name}": as_number(value) for name, value in _mapping(document, "iiou").items()})
    if "mean_iiou_categories" in document:
        row["iIoU (categories)"] = as_number(document.get("mean_iiou_categories"))
    row.update({"objects": as_number(objects.get("objects")), "missed": as_number(objects.get("missed"))})
    row["missed share"] = row["missed"] / row["objects"] if row["objects"] > 0 else float("nan")
    return row


def summary_table(rows: Sequence[dict]) -> pd.DataFrame:
    """The rows of ``summary_row``, one per run; iIoU columns of every class set present (empty
    where a run's class set has no such class), objects last."""
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        return frame
    last = [column for column in ("objects", "missed", "missed share") if column in frame]
    return frame[[column for column in frame.columns if column not in last] + last].set_index("run")


def unavailable_notes(run: str, document: Mapping) -> list[str]:
    """Why some of a run's numbers are empty: no instanceIds in the dataset, or classes nobody
    scored (no object of them, or none predicted)."""
    notes = []
    if document.get("instances_note"):
        notes.append(f"{run}: iIoU n/a: {document['instances_note']}.")
    else:
        empty = [name for name, value in _mapping(document, "iiou").items() if np.isnan(as_number(value))]
        if empty:
            notes.append(f"{run}: iIoU of {', '.join(empty)} n/a: no object of theirs in the ground truth, "
                         "and none predicted.")
    return notes


def width_text(document: Mapping) -> str:
    """The boundary width the run was scored with: "3 px at 256x512" (one entry per image size)."""
    widths = _mapping(document, "boundary_width_px")
    parts = [f"{int(d)} px at {size}" for size, d in widths.items() if not np.isnan(as_number(d))]
    return ", ".join(parts) or "n/a"


# ---------------------------------------------------------------------------- objects

def instances_frame(rows: list[dict]) -> pd.DataFrame:
    """instances.csv as a table (id, instance, label, class, pixels, box, recall, missed);
    AnatomyProblem if it lacks a column or a number."""
    frame = pd.DataFrame(rows, columns=list(rows[0]) if rows else list(INSTANCE_COLUMNS))
    missing = [column for column in INSTANCE_COLUMNS if column not in frame]
    if missing:
        raise AnatomyProblem(f"instances.csv lacks the columns {', '.join(missing)}")
    numbers = [column for column in INSTANCE_COLUMNS if column not in ("label", "class")]
    converted = frame[numbers].apply(pd.to_numeric, errors="coerce")
    bad = converted.isna().any(axis=1)
    if bad.any():
        raise AnatomyProblem(f"instances.csv: row {int(np.flatnonzero(bad.to_numpy())[0]) + 2} holds "
                             "something other than a number where one belongs")
    frame[numbers] = converted
    for column in numbers:
        if column != "recall":
            frame[column] = frame[column].astype(np.int64)
    frame["label"], frame["class"] = frame["label"].astype(str), frame["class"].astype(str)
    return frame


def size_bins(pixels: pd.Series) -> pd.Series:
    """The log2 size bin of each object: bin ``b`` holds ``2^b <= pixels < 2^(b+1)``."""
    return np.floor(np.log2(pixels.clip(lower=1).astype(float))).astype(int)


def recall_by_size(instances: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Mean recall per run, class and size bin (objects binned by pixel count on a log2 scale):
    run, class, bin, low, high (pixels), centre (geometric), objects, recall, missed."""
    parts = []
    for run, frame in instances.items():
        if frame.empty:
            continue
        binned = frame.assign(bin=size_bins(frame["pixels"]))
        grouped = binned.groupby(["class", "bin"], sort=True).agg(
            objects=("recall", "size"), recall=("recall", "mean"), missed=("missed", "sum")).reset_index()
        parts.append(grouped.assign(run=run))
    if not parts:
        return pd.DataFrame(columns=["run", "class", "bin", "low", "high", "centre", "objects", "recall", "missed"])
    table = pd.concat(parts, ignore_index=True)
    table["low"] = 2 ** table["bin"]
    table["high"] = 2 ** (table["bin"] + 1) - 1
    table["centre"] = np.sqrt(table["low"] * (table["high"] + 1.0))
    return table[["run", "class", "bin", "low", "high", "centre", "objects", "recall", "missed"]]


def class_order(instances: Mapping[str, pd.DataFrame], document_classes: Mapping[str, list[str]]) -> list[str]:
    """The object classes of the runs, in their class sets' order (those with objects)."""
    present = {name for frame in instances.values() for name in frame["class"].unique()}
    ordered = [name for names in document_classes.values() for name in names]
    return list(dict.fromkeys([name for name in ordered if name in present] + sorted(present)))


def box_text(row: Mapping) -> str:
    """A box as people read it: columns x0 to x1 - 1, rows y0 to y1 - 1 (full-size pixels)."""
    return f"x {int(row['x0'])}-{int(row['x1']) - 1}, y {int(row['y0'])}-{int(row['y1']) - 1}"


def missed_objects(instances: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every missed object of every run, largest first (then the lowest recall, run, image id,
    instance): run, id, instance, label, class, pixels, recall, box and the box's corners."""
    parts = [frame[frame["missed"] == 1].assign(run=run) for run, frame in instances.items() if not frame.empty]
    columns = ["run", "id", "instance", "label", "class", "pixels", "recall", "box", "x0", "y0", "x1", "y1"]
    if not parts:
        return pd.DataFrame(columns=columns)
    missed = pd.concat(parts, ignore_index=True)
    missed = missed.sort_values(["pixels", "recall", "run", "id", "instance"],
                                ascending=[False, True, True, True, True], kind="stable")
    missed["box"] = [box_text(row) for row in missed.to_dict("records")]
    return missed[columns].reset_index(drop=True)


# ---------------------------------------------------------------------------- boundaries

def boundary_points(run: str, metrics: Mapping, document: Mapping, official: bool) -> pd.DataFrame:
    """Per class of a run: its IoU and Boundary IoU (both in the same mode), classes with both."""
    suffix = "_official" if official else ""
    iou, boundary = _mapping(metrics, "iou" + suffix), _mapping(document, "boundary_iou" + suffix)
    rows = [{"run": run, "class": str(name), "IoU": as_number(iou.get(name)),
             "Boundary IoU": as_number(value)} for name, value in boundary.items()]
    frame = pd.DataFrame(rows, columns=["run", "class", "IoU", "Boundary IoU"])
    return frame.dropna(subset=["IoU", "Boundary IoU"]).reset_index(drop=True)


# ---------------------------------------------------------------------------- where in the frame

def check_frame_errors(counts: np.ndarray) -> np.ndarray:
    """frame_errors.npy as counts; AnatomyProblem if it cannot be: negative, or more wrong than counted."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 3 or counts.shape[0] != 2 or (counts < 0).any() or (counts[1] > counts[0]).any():
        raise AnatomyProblem("frame_errors.npy does not hold (pixels counted, pixels wrong) per cell")
    return counts


def pooled(counts: np.ndarray, factor: int) -> np.ndarray:
    """``(2, rows, columns)`` counts summed over ``factor x factor`` blocks of cells (a coarser
    grid; a partial block at an edge is summed as it is)."""
    if factor == 1:
        return counts
    _, rows, columns = counts.shape
    padded = np.zeros((2, -(-rows // factor) * factor, -(-columns // factor) * factor), dtype=np.int64)
    padded[:, :rows, :columns] = counts
    return padded.reshape(2, padded.shape[1] // factor, factor, padded.shape[2] // factor, factor).sum(axis=(2, 4))


def error_rate(counts: np.ndarray) -> np.ndarray:
    """Wrong / counted per cell; NaN where nothing was counted (shown blank)."""
    counted, wrong = counts[0].astype(np.float64), counts[1].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counted > 0, wrong / counted, np.nan)


def rate_difference(counts_a: np.ndarray, counts_b: np.ndarray) -> np.ndarray:
    """A's error rate minus B's per cell (positive: A is wrong more often there); NaN where
    either counted nothing. Both must be on the same grid."""
    if counts_a.shape != counts_b.shape:
        raise AnatomyProblem(f"the runs' frame grids differ: {counts_a.shape[1:]} and {counts_b.shape[1:]}")
    return error_rate(counts_a) - error_rate(counts_b)


def overall_rate(counts: np.ndarray) -> float:
    """The run's share of wrong pixels over the whole frame (NaN if it counted none)."""
    counted = int(counts[0].sum())
    return float(counts[1].sum()) / counted if counted else float("nan")


def grid_factors(grid: tuple[int, int], smallest: int = 8) -> list[int]:
    """The coarsenings offered for a grid: 1, 2, 4, ... while both sides keep ``smallest`` cells."""
    factors, factor = [1], 2
    while min(grid) // factor >= smallest:
        factors.append(factor)
        factor *= 2
    return factors
