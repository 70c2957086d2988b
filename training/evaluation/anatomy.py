"""Error anatomy: what pixel mIoU hides, counted in the same pass as the IoU.

Per evaluated image, next to the confusion counts:

* **objects** (``training.evaluation.instances``): the official iIoU and one row per object
  with its recall, from ``gtFine_instanceIds`` when the dataset has them;
* **boundaries** (``training.evaluation.boundary``): Boundary IoU per class, in both modes of
  the IoU: all classes (the class set's training table; for ``categories8`` void is a class) and
  official (labels ignored in evaluation have no ground truth; the mean over the scored classes);
* **where in the frame**: pixels counted and pixels wrong (all-classes mode) on a fixed grid of
  ``FRAME_GRID`` cells, every image mapped onto it by relative position, so runs can be
  subtracted cell by cell.

The ground truth's share of the work (class maps, boundary bands) is ``prepare_truth``, which a
reader thread can run ahead while the model predicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from training.data.labels import IGNORE_INDEX, LUT_SIZE, ClassSet
from training.data.png import read_png
from training.evaluation.boundary import (
    DEFAULT_RATIO,
    boundary_band,
    boundary_counts,
    boundary_iou,
    boundary_width,
    mean_boundary_iou,
)
from training.evaluation.instances import InstanceScores
from training.evaluation.metrics import pair_counts
from training.files import finite_or_none

FRAME_GRID = (128, 256)  # rows x columns: 8x8 pixels per cell at 2048x1024
PER_IMAGE_COLUMNS = ("id", "boundary_miou", "objects", "missed")


def instance_path(label_path: str | Path) -> Path:
    """The ``gtFine_instanceIds`` file beside a ``gtFine_labelIds`` file."""
    label_path = Path(label_path)
    return label_path.with_name(label_path.name.replace("_labelIds.png", "_instanceIds.png"))


def read_instance_ids(label_path: str | Path) -> np.ndarray | None:
    """The image's instanceIds (int32), or None when the dataset has no such file."""
    path = instance_path(label_path)
    if not path.is_file():
        return None
    _, ids = read_png(path)
    if ids.ndim != 2:
        raise ValueError(f"{path}: instanceIds must be a single-channel PNG, got shape {ids.shape}")
    return ids.astype(np.int32)


@dataclass
class Truth:
    """One image's ground truth, ready for the anatomy."""

    label_ids: np.ndarray
    instance_ids: np.ndarray | None
    all_classes: np.ndarray  # class indices, 255 = no class
    official: np.ndarray  # evaluation space, 255 = label ignored in evaluation
    all_band: np.ndarray
    official_band: np.ndarray
    width: int  # the boundary width d at this image's size
    counted_cells: np.ndarray  # frame_count of the pixels that have a class


def prepare_truth(class_set: ClassSet, label_ids: np.ndarray, instance_ids: np.ndarray | None,
                  ratio: float = DEFAULT_RATIO, grid: tuple[int, int] = FRAME_GRID) -> Truth:
    width = boundary_width(label_ids.shape, ratio)
    all_classes = class_set.lut[label_ids]
    all_band = boundary_band(all_classes, width)
    if np.array_equal(class_set.lut, class_set.eval_gt_lut):
        official, official_band = all_classes, all_band
    else:
        official = class_set.eval_gt_lut[label_ids]
        official_band = all_band if _same_regions(class_set, label_ids) else boundary_band(official, width)
    if instance_ids is not None and instance_ids.shape != label_ids.shape:
        raise ValueError(f"instanceIds {instance_ids.shape} and labelIds {label_ids.shape} differ in shape")
    counted_cells = frame_count(all_classes != IGNORE_INDEX, grid)
    return Truth(label_ids, instance_ids, all_classes, official, all_band, official_band, width, counted_cells)


def _same_regions(class_set: ClassSet, label_ids: np.ndarray) -> bool:
    """Whether the two modes cut the image into the same regions (the values differ, the
    boundaries do not): true when, over the labels present, each all-classes value goes with one
    official value and back (for ``categories8``: no label that is ignored yet not void, such as
    parking or a guard rail, whose pixels leave their category's region)."""
    present = np.flatnonzero(np.bincount(label_ids.ravel(), minlength=LUT_SIZE))
    pairs = set(zip(class_set.lut[present].tolist(), class_set.eval_gt_lut[present].tolist()))
    return len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})


@lru_cache(maxsize=8)
def frame_cells(shape: tuple[int, int], grid: tuple[int, int] = FRAME_GRID) -> np.ndarray:
    """``(H, W)`` int32: the grid cell of every pixel (row ``y`` is in cell row ``y x rows // H``)."""
    (height, width), (rows, columns) = shape, grid
    cell_rows = np.arange(height) * rows // height
    cell_columns = np.arange(width) * columns // width
    cells = (cell_rows[:, None] * columns + cell_columns[None, :]).astype(np.int32)
    cells.flags.writeable = False
    return cells


def frame_count(flags: np.ndarray, grid: tuple[int, int] = FRAME_GRID) -> np.ndarray:
    """``(rows, columns)`` int64: how many pixels of each grid cell are set in ``flags``."""
    cells = frame_cells(flags.shape, grid)
    return np.bincount(cells[flags], minlength=grid[0] * grid[1]).reshape(grid)


class Anatomy:
    """Streaming error anatomy of one class set.

    Example::

        anatomy = Anatomy(get_class_set("categories8"))
        for image_id, label_ids, instance_ids, predicted in images:
            anatomy.add(image_id, anatomy.truth(label_ids, instance_ids), predicted)
        anatomy.summary(), anatomy.instance_rows, anatomy.frame, anatomy.per_image
    """

    def __init__(self, class_set: ClassSet, prediction_kind: str = "classes", ratio: float = DEFAULT_RATIO,
                 grid: tuple[int, int] = FRAME_GRID):
        self.class_set, self.prediction_kind, self.ratio, self.grid = class_set, prediction_kind, ratio, grid
        k = class_set.num_classes
        self.boundary = np.zeros((2, 2, k), dtype=np.int64)  # mode (all, official) x (intersection, union)
        self.frame = np.zeros((2, *grid), dtype=np.int64)
        self.objects = InstanceScores(class_set, prediction_kind)
        self.per_image: list[dict] = []
        self.widths: dict[str, int] = {}
        self.images = 0

    def truth(self, label_ids: np.ndarray, instance_ids: np.ndarray | None) -> Truth:
        """``prepare_truth`` with this anatomy's settings (safe to run in another thread)."""
        return prepare_truth(self.class_set, label_ids, instance_ids, self.ratio, self.grid)

    def _class_maps(self, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The prediction in the all-classes space and in the evaluation space (values of no
        class of the set are kept as a region of their own, never anybody's boundary)."""
        if self.prediction_kind == "label_ids":
            cs = self.class_set
            return cs.lut[prediction], cs.eval_pred_lut[prediction]
        return prediction, prediction

    def add(self, image_id: int, truth: Truth, prediction: np.ndarray, counts: np.ndarray | None = None) -> None:
        """Add one image (``counts``: its ``pair_counts(label_ids, prediction)`` if already made)."""
        if prediction.shape != truth.label_ids.shape:
            raise ValueError(f"ground truth {truth.label_ids.shape} and prediction {prediction.shape} differ in shape")
        k = self.class_set.num_classes
        predicted_all, predicted_official = self._class_maps(prediction)
        predicted_band = boundary_band(predicted_all, truth.width)
        official_band = (predicted_band if predicted_official is predicted_all
                         else boundary_band(predicted_official, truth.width))
        image_all = boundary_counts(truth.all_classes, predicted_all, k, truth.width, truth.all_band, predicted_band)
        image_official = boundary_counts(truth.official, predicted_official, k, truth.width, truth.official_band,
                                         official_band)
        self.boundary[0] += image_all
        self.boundary[1] += image_official
        self.widths[f"{prediction.shape[0]}x{prediction.shape[1]}"] = truth.width
        wrong = predicted_all != truth.all_classes
        wrong &= truth.all_classes != IGNORE_INDEX
        self.frame[0] += truth.counted_cells
        self.frame[1] += frame_count(wrong, self.grid)
        objects_before = len(self.objects.rows)
        if truth.instance_ids is not None:
            if counts is None:
                counts = pair_counts(truth.label_ids, prediction)
            self.objects.add(image_id, truth.instance_ids, prediction, counts)
        new_rows = self.objects.rows[objects_before:]
        has_objects = truth.instance_ids is not None
        self.per_image.append({
            "id": image_id, "boundary_miou": finite_or_none(mean_boundary_iou(*image_all), 6),
            "objects": len(new_rows) if has_objects else None,
            "missed": sum(r["missed"] for r in new_rows) if has_objects else None})
        self.images += 1

    @property
    def instance_rows(self) -> list[dict]:
        return self.objects.rows

    def summary(self) -> dict:
        """The JSON-ready numbers: ``boundary_iou`` / ``mean_boundary_iou`` (all classes),
        ``boundary_iou_official`` / ``mean_boundary_iou_official``, the iIoU block of
        ``InstanceScores.summary`` (None when some image has no instanceIds), the settings."""
        cs = self.class_set
        all_iou = boundary_iou(*self.boundary[0])
        official_iou = boundary_iou(*self.boundary[1])
        scored = set(cs.scored)
        official_iou = np.where([i in scored for i in range(cs.num_classes)], official_iou, np.nan)
        result = {
            "boundary_ratio": self.ratio,
            "boundary_width_px": dict(self.widths),
            "boundary_iou": {name: finite_or_none(v) for name, v in zip(cs.names, all_iou)},
            "mean_boundary_iou": finite_or_none(mean_boundary_iou(*self.boundary[0])),
            "boundary_iou_official": {name: finite_or_none(v) for name, v in zip(cs.names, official_iou)},
            "mean_boundary_iou_official": finite_or_none(mean_boundary_iou(*self.boundary[1], cs.scored)),
            "frame_grid": list(self.grid),
            "instance_images": self.objects.images,
        }
        objects = self.objects.summary()
        if self.objects.images < self.images:
            objects = {key: None if key.startswith(("iiou", "mean_iiou")) else value
                       for key, value in objects.items()}
            result["instances_note"] = (f"no gtFine_instanceIds for {self.images - self.objects.images} of "
                                        f"{self.images} images: no instance-level scores")
        return {**result, **objects}


def format_anatomy(summary: dict) -> str:
    """The anatomy's lines of a command's report (mean Boundary IoU, iIoU, objects missed)."""
    def number(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    widths = ", ".join(f"{d} px at {size}" for size, d in summary["boundary_width_px"].items())
    lines = [f"{'Boundary mIoU, all classes':<28}{number(summary['mean_boundary_iou'])}  "
             f"(ratio {summary['boundary_ratio']}: {widths or 'no image'})",
             f"{'Boundary mIoU, official':<28}{number(summary['mean_boundary_iou_official'])}"]
    if summary.get("instances_note"):
        lines.append(f"{'iIoU':<28}n/a ({summary['instances_note']})")
        return "\n".join(lines)
    level = "categories" if "mean_iiou_categories" not in summary else "classes"
    lines.append(f"{'iIoU (' + level + ')':<28}{number(summary['mean_iiou'])}  "
                 + "  ".join(f"{name} {number(v)}" for name, v in summary["iiou"].items()))
    if "mean_iiou_categories" in summary:
        lines.append(f"{'iIoU (categories)':<28}{number(summary['mean_iiou_categories'])}  "
                     + "  ".join(f"{name} {number(v)}" for name, v in summary["iiou_categories"].items()))
    objects = summary["instances"]
    lines.append(f"{'objects missed':<28}{objects['missed']} of {objects['objects']} "
                 f"(recall < {objects['missed_below_recall']})")
    return "\n".join(lines)
