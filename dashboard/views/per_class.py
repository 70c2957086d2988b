"""Per-class tables of one or several runs, shaped for the pages: each run's per-class IoU from its
metrics.json, A against B, an image's own per-class table (``training.evaluation.confusions.
image_table``), the API's answers in class order. Plain functions (no Streamlit): every number is a
file's or a core function's, never computed here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from dashboard.views.numbers import as_number
from training.evaluation.shares import class_shares


def _iou(metrics: dict) -> dict:
    iou = metrics.get("iou")
    return iou if isinstance(iou, dict) else {}


def class_names(metrics: dict) -> list[str]:
    """A run's class names from its metrics.json (older runs only have the ``iou`` keys)."""
    names = metrics.get("class_names")
    return [str(name) for name in (names if isinstance(names, list) and names else _iou(metrics))]


def confusion_names(metrics: dict, size: int) -> list[str]:
    """A name for each of the ``size`` rows of a run's confusion matrix (which may have a sink
    row beyond the classes)."""
    names = metrics.get("confusion_names")
    names = [str(n) for n in names] if isinstance(names, list) and names else class_names(metrics)
    return names[:size] + [f"class {i}" for i in range(len(names), size)]


def iou_frame(metrics_by_run: Mapping[str, dict]) -> pd.DataFrame:
    """Per-class IoU of each run's metrics.json (rows: every run's classes in first-seen order,
    then mIoU; columns: runs; NaN where a run has no IoU for the class)."""
    columns, names = {}, []
    for run, metrics in metrics_by_run.items():
        run_names = class_names(metrics)
        names += [name for name in run_names if name not in names]
        iou = _iou(metrics)
        columns[run] = {**{name: as_number(iou.get(name)) for name in run_names},
                        "mIoU": as_number(metrics.get("miou"))}
    frame = pd.DataFrame(columns, index=names + ["mIoU"], dtype=float)
    frame.index.name = "class"
    return frame


def difference_frame(metrics_a: dict, metrics_b: dict) -> pd.DataFrame:
    """Per-class IoU and mIoU of run A and run B side by side, and B - A (NaN where either lacks it)."""
    frame = iou_frame({"A": metrics_a, "B": metrics_b})
    frame["B - A"] = frame["B"] - frame["A"]
    return frame


def image_frame(table: Mapping, class_names: Sequence[str]) -> pd.DataFrame:
    """An image's ``training.evaluation.confusions.image_table`` as a table: rows the classes, then
    mIoU; columns each class's share of the counted ground truth (``training.evaluation.shares``),
    then one per run."""
    columns = {run: [*map(float, iou), float(table["miou"][run])] for run, iou in table["iou"].items()}
    return pd.DataFrame({"share of image": [*map(float, table["shares"]), float("nan")], **columns},
                        index=pd.Index([*class_names, "mIoU"], name="class"))


def iou_in_class_order(names: Sequence[str], iou: Mapping[str, float | None]) -> pd.DataFrame:
    """The API's per-class IoU (a JSON object, which comes back sorted by name) in class order."""
    return pd.DataFrame({"class": list(names), "IoU": [iou.get(name) for name in names]})


def pixel_share_frame(class_pixels: Mapping[str, int]) -> pd.DataFrame:
    """Each class's share of a predicted mask (the API's ``class_pixels``; every pixel of a prediction
    counts), largest first (ties in the given order)."""
    shares = class_shares(np.array(list(class_pixels.values()), dtype=np.int64))
    frame = pd.DataFrame({"class": list(class_pixels), "share": shares.tolist()})
    return frame.sort_values("share", ascending=False, kind="stable")
