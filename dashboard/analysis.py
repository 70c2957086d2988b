"""The numbers behind the dashboard's pages, as plain functions of arrays and tables.

The pages only fetch (through ``dashboard.store``) and arrange; everything they compute is here,
so it can be unit-tested without Streamlit. numpy, pandas and Pillow only.

Order: the Overview, the Image explorer, the Model comparison, the Deployed model page.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from training.data.labels import IGNORE_INDEX
from training.evaluation.metrics import iou_per_class, mean_iou

HOVER_CELLS = (128, 256)  # the hover grid has at most this many rows and columns
TOP_IMAGES = 10


def as_number(value) -> float:
    """A number of a metrics.json as a float; NaN for null and for anything that is not a number
    (a damaged file may hold a string, a list, ... where a number belongs)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return float("nan")
    return float(value)


# ---------------------------------------------------------------------------- overview

def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs table, best test mIoU first (runs without one last), with the training time in
    minutes."""
    minutes = pd.to_numeric(runs["train_seconds"], errors="coerce") / 60
    return runs.assign(train_minutes=minutes).sort_values("miou", ascending=False, na_position="last")


def number_text(value, spec: str = ".3f", unit: str = "") -> str:
    """``value`` formatted with ``spec`` (and `` unit``), or "-" when it is missing or not a number."""
    number = as_number(value)
    if np.isnan(number):
        return "-"
    return f"{number:{spec}}" + (f" {unit}" if unit else "")


def class_sets_note(classes: Sequence[str]) -> str | None:
    """A sentence when runs of several class sets are listed together (their mIoU are not
    comparable), else None."""
    names = list(dict.fromkeys(str(c) for c in classes))
    if len(names) < 2:
        return None
    return (f"These runs predict different class sets ({', '.join(names)}): compare their scores only "
            "within one class set.")


def tradeoff_points(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The runs that have both a test mIoU and an inference time (marker size: parameters, the
    smallest where unknown), and the names of those left out."""
    plotted = runs.dropna(subset=["miou", "inference_ms"])
    left_out = [str(run) for run in runs["run"] if run not in set(plotted["run"])]
    params = pd.to_numeric(plotted["params"], errors="coerce")
    return plotted.assign(params=params.fillna(params.min() if params.notna().any() else 1)), left_out


# ---------------------------------------------------------------------------- image explorer

def filter_and_rank_ids(ids: Sequence[int], classes: Sequence[str] = (), presence: pd.DataFrame | None = None,
                        per_image: pd.DataFrame | None = None, min_share: float = 0.0) -> list[int]:
    """The ``ids`` whose ground truth holds every class of ``classes`` (``presence``: one column per
    class, indexed by id: a bool, or the class's share of the image, then each must cover at least
    ``min_share`` of it, any pixel when 0), in their order; or, given a run's ``per_image`` table
    (id, miou), only the ids that run evaluated, lowest mIoU first (ties by id, NaN last)."""
    ids = [int(i) for i in ids]
    if classes:
        table = presence[list(classes)]
        enough = table >= min_share if min_share > 0 else table > 0
        matching = set(int(i) for i in presence.index[enough.all(axis=1)])
        ids = [i for i in ids if i in matching]
    if per_image is not None:
        ranked = per_image[per_image["id"].isin(ids)].sort_values(["miou", "id"], kind="stable",
                                                                  na_position="last")
        ids = [int(i) for i in ranked["id"]]
    return ids


def classes_filter_text(classes: Sequence[str], min_share: float = 0.0) -> str:
    """The class filter in words: "human >= 1% and object >= 1%" (any pixel when ``min_share`` is 0)."""
    bound = f" >= {min_share * 100:g}%" if min_share > 0 else ""
    return " and ".join(f"{name}{bound}" for name in classes)


def filter_summary(count: int, total: int, split: str, classes: Sequence[str], min_share: float = 0.0) -> str:
    """How far the class filter narrows the split: "12 of 100 test images have human >= 1% and object >= 1%"."""
    images = f"{split} images" if split != "all" else "images"
    return f"{count} of {total} {images} have {classes_filter_text(classes, min_share)}"


def position_text(image_id: int, candidates: list[int], split: str, classes: Sequence[str],
                  order: str) -> str:
    """Where the image stands among the filter's candidates, and what the filter is (its share of
    the image is said by ``filter_summary``)."""
    what = f"{split} split" + (f" with {', '.join(classes)}" if classes else "")
    what += f", worst first for {order}" if order else ""
    if image_id in candidates:
        return f"{candidates.index(image_id) + 1} of {len(candidates)} images ({what})"
    if not candidates:
        return f"no image matches ({what})"
    return f"not among the {len(candidates)} images of the filter ({what})"


def group_by_class_set(runs: Sequence[str], classes_of: Mapping[str, str]) -> dict[str, list[str]]:
    """``runs`` grouped by their class set, class sets in the order their first run comes."""
    groups: dict[str, list[str]] = {}
    for run in runs:
        groups.setdefault(str(classes_of[run]), []).append(run)
    return groups


def prediction_problem(predicted: np.ndarray, truth_shape: tuple[int, ...], num_classes: int,
                       filename: str, no_class_allowed: bool = False) -> str | None:
    """Why a prediction cannot be shown next to its ground truth (``filename`` names it), or None:
    another size, or class indices outside the run's ``num_classes`` classes. ``no_class_allowed``:
    ``IGNORE_INDEX`` means "no class" (an imported run's prediction of a label outside its class
    set), not damage; a run trained here never predicts it."""
    if predicted.shape != tuple(truth_shape):
        return f"{filename} has shape {predicted.shape}, the ground truth {tuple(truth_shape)}"
    if predicted.size == 0 or int(predicted.max()) < num_classes:
        return None  # the usual case, in one fast pass (a 2048x1024 bincount holds the GIL for 4 ms)
    counts = np.bincount(predicted.ravel(), minlength=256)
    if no_class_allowed:
        counts[IGNORE_INDEX] = 0
    outside = np.flatnonzero(counts[num_classes:]) + num_classes
    if not outside.size:
        return None
    pixels = int(counts[outside].sum())
    return (f"{filename} holds class {int(outside[0])} ({pixels} pixel{'s' if pixels != 1 else ''} outside "
            f"the {num_classes} classes)")


def evaluated_on_another_index(metrics: Mapping, fingerprint: str) -> bool:
    """Whether a run's metrics.json names another dataset index than ``fingerprint`` (then its
    predictions' ids may name other images); False when the run does not say."""
    dataset = metrics.get("dataset")
    recorded = dataset.get("fingerprint") if isinstance(dataset, dict) else None
    return isinstance(recorded, str) and bool(recorded) and recorded != fingerprint


def wrong_share(confusion: np.ndarray) -> float:
    """Share of the pixels with ground truth that are predicted wrong, from an image's K x K
    confusion matrix (0 when no pixel has ground truth)."""
    total = confusion.sum()
    return float(1 - np.trace(confusion) / total) if total else 0.0


def iou_table(confusions: Mapping[str, np.ndarray], class_names: Sequence[str]) -> pd.DataFrame:
    """This image's per-class IoU from each run's K x K confusion matrix of it (rows: classes,
    then mIoU; columns: each class's share of the counted ground truth, then one per run). The
    runs of one class set share the ground truth, so the first matrix's rows give the shares.
    A matrix may have a sink beyond the K classes (an imported run's "no class" predictions): its
    pixels are wrong for their true class, and it has no IoU of its own."""
    k = len(class_names)
    columns = {}
    for run, confusion in confusions.items():
        iou = iou_per_class(confusion)[:k]
        columns[run] = list(iou) + [mean_iou(iou)]
    counts = next(iter(confusions.values())).sum(axis=1)[:k] if confusions else np.zeros(k)
    share = counts / max(counts.sum(), 1)
    return pd.DataFrame({"share of image": list(share) + [float("nan")], **columns},
                        index=pd.Index(list(class_names) + ["mIoU"], name="class"))


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


# ---------------------------------------------------------------------------- model comparison

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


def largest_confusion(matrix: np.ndarray) -> tuple[int, int]:
    """(true, predicted) of the largest count off the diagonal (the first such cell on ties)."""
    off = matrix.astype(float).copy()
    np.fill_diagonal(off, -1)
    true_class, predicted_class = np.unravel_index(int(np.argmax(off)), off.shape)
    return int(true_class), int(predicted_class)


def row_normalised(matrix: np.ndarray) -> np.ndarray:
    """Each row of a confusion matrix divided by its sum: the share of a true class's pixels
    predicted as each class (a row without pixels stays 0)."""
    return matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)


def confused_images(ids: np.ndarray, matrices: np.ndarray, image_miou: Mapping[int, float], true_class: int,
                    predicted_class: int, limit: int = TOP_IMAGES) -> pd.DataFrame:
    """The (at most ``limit``) images with the most pixels of ``true_class`` predicted as
    ``predicted_class``, most first (ties in ``ids`` order), from their N x K x K confusion
    matrices: id, pixels, share of image (of its counted pixels), image mIoU (NaN if unknown)."""
    counts = matrices[:, true_class, predicted_class]
    order = np.argsort(-counts, kind="stable")[:limit]
    order = order[counts[order] > 0]
    totals = matrices.reshape(len(ids), -1).sum(axis=1)
    return pd.DataFrame({
        "id": ids[order].astype(int),
        "pixels": counts[order].astype(int),
        "share of image": counts[order] / np.maximum(totals[order], 1),
        "image mIoU": [float(image_miou.get(int(i), np.nan)) for i in ids[order]],
    })


def pick_pair(runs: Sequence[str], available: Sequence[str], classes_of: Mapping[str, str]) -> tuple[str, str]:
    """Default runs A and B: the first selected run, and the next run (selected first) of its
    class set, else simply the next run."""
    order = list(dict.fromkeys([*runs, *available]))
    first, others = order[0], order[1:]
    same = [run for run in others if classes_of.get(run) == classes_of.get(first)]
    return first, (same or others or [first])[0]


def difference_frame(metrics_a: dict, metrics_b: dict) -> pd.DataFrame:
    """Per-class IoU and mIoU of run A and run B side by side, and B - A (NaN where either lacks it)."""
    frame = iou_frame({"A": metrics_a, "B": metrics_b})
    frame["B - A"] = frame["B"] - frame["A"]
    return frame


def symmetric_limit(values: np.ndarray, minimum: float = 0.05, margin: float = 1.25) -> float:
    """An axis half-width that shows every value, centred on zero (``minimum`` when all are NaN)."""
    values = np.asarray(values, dtype=float)
    if np.isnan(values).all():
        return minimum
    return max(minimum, float(np.nanmax(np.abs(values))) * margin)


# ---------------------------------------------------------------------------- deployed model

def decode_image(data: bytes) -> np.ndarray:
    """An image file's bytes (PNG, JPEG, palette or not) as an RGB array.

    Raises:
        PIL.UnidentifiedImageError, OSError, ValueError: the bytes are not a readable image.
    """
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def decode_png(encoded: str) -> np.ndarray:
    """A base64 PNG of the API (palette or RGB) as an RGB array."""
    return decode_image(base64.b64decode(encoded))


def iou_in_class_order(names: Sequence[str], iou: Mapping[str, float | None]) -> pd.DataFrame:
    """The API's per-class IoU (a JSON object, which comes back sorted by name) in class order."""
    return pd.DataFrame({"class": list(names), "IoU": [iou.get(name) for name in names]})


def pixel_shares(class_pixels: Mapping[str, int]) -> pd.DataFrame:
    """Each class's share of the predicted pixels, largest first (ties in the given order)."""
    total = max(1, sum(class_pixels.values()))
    shares = pd.DataFrame({"class": list(class_pixels),
                           "share": [count / total for count in class_pixels.values()]})
    return shares.sort_values("share", ascending=False, kind="stable")
