"""A run's error anatomy as the Error anatomy page shows it (no Streamlit).

A run evaluated by the current code has, beside its metrics.json (``training.runs.anatomy``):
``anatomy.json`` (Boundary IoU per class in both variants of the IoU, the official iIoU, object
counts), ``instances.csv`` (one row per object of the ground truth, with its recall),
``per_image_anatomy.csv`` and ``frame_errors.npy`` (pixels counted and pixels wrong on a fixed grid
over the frame). Runs evaluated before have none of them; the page says how to add them.

The numbers (recall by object size, the missed objects, error rates across the frame) are the
core's (``training.evaluation.anatomy_report``); here they become tables. Everything checks what
it reads: a damaged file gives a message for its run (``AnatomyProblem``), never an exception on a
page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from dashboard.views.numbers import as_number
from training.evaluation.anatomy_report import missed_objects, missed_share, object_columns, recall_by_size
from training.evaluation.instances import INSTANCE_COLUMNS
from training.evaluation.variants import MIOU, MIOU_OFFICIAL
from training.runs.anatomy import HOW_TO_ADD

NO_ANATOMY_NOTE = ("no error anatomy: this run was evaluated before it existed; re-evaluate to see this: "
                   f"`{HOW_TO_ADD}`")
MISSED_SHOWN = 200  # rows of the missed-objects table (largest first); the rest are counted
SCORE_COLUMNS = (MIOU.label(), MIOU_OFFICIAL.label(), "Boundary IoU (all classes)", "Boundary IoU (official)", "iIoU")


class AnatomyProblem(ValueError):
    """A run's anatomy file cannot be shown (its message names the file, never a path)."""


def no_anatomy_note(run: str) -> str:
    return f"{run}: " + NO_ANATOMY_NOTE.format(run=run)


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
           MIOU.label(): as_number(metrics.get(MIOU.key)),
           MIOU_OFFICIAL.label(): as_number(metrics.get(MIOU_OFFICIAL.key)),
           "Boundary IoU (all classes)": as_number(document.get("mean_boundary_iou")),
           "Boundary IoU (official)": as_number(document.get("mean_boundary_iou_official")),
           "iIoU": as_number(document.get("mean_iiou"))}
    row.update({f"iIoU {name}": as_number(value) for name, value in _mapping(document, "iiou").items()})
    if "mean_iiou_categories" in document:
        row["iIoU (categories)"] = as_number(document.get("mean_iiou_categories"))
    row.update({"objects": as_number(objects.get("objects")), "missed": as_number(objects.get("missed"))})
    row["missed share"] = missed_share(objects.get("objects"), objects.get("missed"))
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
    AnatomyProblem naming the column or the line that keeps it from being read."""
    try:
        columns = object_columns(rows)
    except ValueError as error:
        raise AnatomyProblem(str(error)) from None
    return pd.DataFrame(columns, columns=list(INSTANCE_COLUMNS))


def recall_frame(instances: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Mean recall per run, class and size bin (``training.evaluation.anatomy_report.recall_by_size``):
    run, class, bin, low, high (pixels), centre (geometric), objects, recall, missed."""
    rows = [{"run": run, **row} for run, frame in instances.items() if not frame.empty
            for row in recall_by_size(frame["class"], frame["pixels"], frame["recall"], frame["missed"])]
    return pd.DataFrame(rows, columns=["run", "class", "bin", "low", "high", "centre", "objects", "recall", "missed"])


def missed_frame(instances: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every missed object of every run (``training.evaluation.anatomy_report.missed_objects``),
    largest first (then the lowest recall, run, image id, instance): run, id, instance, label, class,
    pixels, recall, box and the box's corners."""
    columns = ["run", "id", "instance", "label", "class", "pixels", "recall", "box", "x0", "y0", "x1", "y1"]
    parts = [pd.DataFrame(missed_objects({name: frame[name].to_numpy() for name in INSTANCE_COLUMNS})).assign(run=run)
             for run, frame in instances.items() if not frame.empty]
    if not parts:
        return pd.DataFrame(columns=columns)
    missed = pd.concat(parts, ignore_index=True)
    missed = missed.sort_values(["pixels", "recall", "run", "id", "instance"],
                                ascending=[False, True, True, True, True], kind="stable")
    missed["box"] = [box_text(row) for row in missed.to_dict("records")]
    return missed[columns].reset_index(drop=True)


def class_order(instances: Mapping[str, pd.DataFrame], document_classes: Mapping[str, list[str]]) -> list[str]:
    """The object classes of the runs, in their class sets' order (those with objects)."""
    present = {name for frame in instances.values() for name in frame["class"].unique()}
    ordered = [name for names in document_classes.values() for name in names]
    return list(dict.fromkeys([name for name in ordered if name in present] + sorted(present)))


def box_text(row: Mapping) -> str:
    """A box as people read it: columns x0 to x1 - 1, rows y0 to y1 - 1 (full-size pixels)."""
    return f"x {int(row['x0'])}-{int(row['x1']) - 1}, y {int(row['y0'])}-{int(row['y1']) - 1}"


# ---------------------------------------------------------------------------- boundaries

def boundary_points(run: str, metrics: Mapping, document: Mapping, official: bool) -> pd.DataFrame:
    """Per class of a run: its IoU and Boundary IoU (both in the same mode), classes with both."""
    suffix = "_official" if official else ""
    iou, boundary = _mapping(metrics, "iou" + suffix), _mapping(document, "boundary_iou" + suffix)
    rows = [{"run": run, "class": str(name), "IoU": as_number(iou.get(name)),
             "Boundary IoU": as_number(value)} for name, value in boundary.items()]
    frame = pd.DataFrame(rows, columns=["run", "class", "IoU", "Boundary IoU"])
    return frame.dropna(subset=["IoU", "Boundary IoU"]).reset_index(drop=True)


LABELLED_CLASSES = 8  # class names written on the Boundary IoU chart; every other in its hover
LABEL_POSITIONS = ("top center", "bottom center", "middle right", "middle left")


def boundary_labels(points: pd.DataFrame, top: int = LABELLED_CLASSES) -> pd.DataFrame:
    """``points`` (``boundary_points`` of the runs) with ``label`` and ``position`` for the chart:
    only the ``top`` points furthest under the diagonal (the largest IoU - Boundary IoU: the classes
    whose edges are worst) are named on it, the others in the hover only; named points close to
    each other take turns above, below, right and left of their marker (in order of IoU), so their
    names do not sit on one another."""
    gap = points["IoU"] - points["Boundary IoU"]
    named = gap.sort_values(ascending=False, kind="stable").index[:top]
    labels = pd.Series("", index=points.index, dtype=object)
    labels[named] = points.loc[named, "class"]
    positions = pd.Series(LABEL_POSITIONS[0], index=points.index, dtype=object)
    order = points.loc[named].sort_values(["IoU", "Boundary IoU"], kind="stable").index
    for turn, at in enumerate(order):
        positions[at] = LABEL_POSITIONS[turn % len(LABEL_POSITIONS)]
    return points.assign(label=labels, position=positions)
