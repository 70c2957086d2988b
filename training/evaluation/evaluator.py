"""Accumulate ground truth vs prediction over images and report IoU the two ways.

Per image, one ``bincount`` counts (ground-truth labelId, prediction) pairs; the class set's
lookup tables are then applied to that small table, never to the pixels again. Two confusion
matrices come out of the same counts:

* ``confusion``: every labelId mapped by the class set's training table (for ``categories8``
  void is a class like the others); its mean is "mIoU, all classes".
* ``official_confusion``: the rules of ``cityscapesscripts``' ``evalPixelLevelSemanticLabeling``
  (ground truth of labels ignored in evaluation is dropped, a predicted ignored label is a false
  negative); its mean over the scored classes is the official-compatible mIoU (for
  ``categories8`` the official category score, which leaves void out).

Both are also kept per image (``per_image_confusions``), so a run's mIoU over any subset of its
images, pooled or per image, is exact (``training.evaluation.variants``). Predictions are either
class indices of the class set (a model's output) or Cityscapes labelIds
(``prediction_kind="label_ids"``, e.g. PNGs from any other tool).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from training.data.labels import IGNORE_INDEX, NUM_LABEL_IDS, ClassSet, get_class_set
from training.evaluation.metrics import iou_per_class, mean_iou, pair_counts, pixel_accuracy, remap_counts
from training.files import finite_or_none

PREDICTION_KINDS = ("classes", "label_ids")


class ImageConfusion(NamedTuple):
    """One image's confusion matrices (rows = ground truth), or a stack of them: all classes, and
    under the official rules."""

    all_classes: np.ndarray
    official: np.ndarray


class Evaluator:
    """Streaming evaluation of one class set.

    Example::

        evaluator = Evaluator(get_class_set("categories8"))
        for gt_label_ids, predicted_classes in pairs:
            evaluator.add(gt_label_ids, predicted_classes)
        summary = evaluator.summary()   # per-class IoU, both means, pixel accuracy
    """

    def __init__(self, class_set: ClassSet | str = "categories8", prediction_kind: str = "classes"):
        if prediction_kind not in PREDICTION_KINDS:
            raise ValueError(f"prediction_kind must be one of {PREDICTION_KINDS}, got {prediction_kind!r}")
        self.class_set = get_class_set(class_set) if isinstance(class_set, str) else class_set
        self.prediction_kind = prediction_kind
        size = self.class_set.num_eval_classes
        if prediction_kind == "classes":
            identity = np.arange(256, dtype=np.int64)
            identity[self.class_set.num_classes:] = size  # out of range: remap_counts rejects it
            self._all_columns = self._official_columns = identity
        else:
            cs = self.class_set
            self._all_columns = np.where(cs.lut == IGNORE_INDEX, cs.sink, cs.lut).astype(np.int64)
            self._official_columns = cs.eval_pred_lut.astype(np.int64)
            for columns in (self._all_columns, self._official_columns):
                columns[NUM_LABEL_IDS:] = size  # not a Cityscapes labelId: remap_counts rejects it
        self.confusion = np.zeros((size, size), dtype=np.int64)
        self.official_confusion = np.zeros((size, size), dtype=np.int64)
        self._images: list[ImageConfusion] = []

    @property
    def images(self) -> int:
        return len(self._images)

    def add(self, ground_truth_label_ids: np.ndarray, prediction: np.ndarray) -> ImageConfusion:
        """Add one image; returns that image's own confusion matrices.

        Raises:
            ValueError: shapes differ, the arrays are not uint8, or a prediction is not a valid
                class index / labelId.
        """
        counts = pair_counts(np.asarray(ground_truth_label_ids), np.asarray(prediction))
        return self.add_counts(counts)

    def add_counts(self, counts: np.ndarray) -> ImageConfusion:
        """Add a 256x256 (labelId, prediction) count table, e.g. computed in a worker; returns the
        image's confusion matrices."""
        cs, size = self.class_set, self.class_set.num_eval_classes
        try:
            image_confusion = remap_counts(counts, cs.lut, self._all_columns, size)
            official = remap_counts(counts, cs.eval_gt_lut, self._official_columns, size)
        except ValueError:
            bad_columns = np.nonzero(counts.sum(axis=0) * (self._all_columns >= size))[0]
            what = "class indices" if self.prediction_kind == "classes" else "labelIds"
            raise ValueError(
                f"prediction holds values that are not {what} of {cs.name}: "
                f"{', '.join(map(str, bad_columns[:10]))}") from None
        self.confusion += image_confusion
        self.official_confusion += official
        self._images.append(ImageConfusion(image_confusion, official))
        return self._images[-1]

    def per_image_confusions(self) -> ImageConfusion:
        """``(N, E, E)`` int64 stacks of every image's matrices, in the order they were added."""
        size = self.class_set.num_eval_classes
        if not self._images:
            empty = np.zeros((0, size, size), dtype=np.int64)
            return ImageConfusion(empty, empty.copy())
        return ImageConfusion(*(np.stack(stack).astype(np.int64) for stack in zip(*self._images)))

    def summary(self) -> dict:
        """Per-class IoU, mIoU (all classes and official-compatible), pixel accuracy."""
        return summarize(self.class_set, self.confusion, self.official_confusion, self.images)


def image_scores(class_set: ClassSet, confusion: np.ndarray) -> dict:
    """One image's row of per_image.csv (without its id and split): ``miou`` (all classes; NaN as
    None), ``pixel_accuracy`` and ``iou_<class>`` from its all-classes confusion matrix."""
    iou = iou_per_class(confusion)[:class_set.num_classes]
    return {"miou": finite_or_none(mean_iou(iou), 6),
            "pixel_accuracy": finite_or_none(pixel_accuracy(confusion), 6),
            **{f"iou_{name}": finite_or_none(v) for name, v in zip(class_set.names, iou)}}


def summarize(class_set: ClassSet, confusion: np.ndarray, official_confusion: np.ndarray,
              images: int) -> dict:
    """The JSON-ready numbers of an evaluation; NaN becomes None."""
    k = class_set.num_classes
    iou = iou_per_class(confusion)[:k]
    official_iou = iou_per_class(official_confusion)[:k]
    scored = set(class_set.scored)
    official_iou = np.where([i in scored for i in range(k)], official_iou, np.nan)
    return {
        "classes": class_set.name,
        "class_names": list(class_set.names),
        "images": images,
        "pixels": int(confusion.sum()),
        "miou": finite_or_none(mean_iou(iou)),
        "miou_official": finite_or_none(mean_iou(official_iou, class_set.scored)),
        "pixel_accuracy": finite_or_none(pixel_accuracy(confusion)),
        "iou": {name: finite_or_none(v) for name, v in zip(class_set.names, iou)},
        "iou_official": {name: finite_or_none(v) for name, v in zip(class_set.names, official_iou)},
        "confusion_names": list(class_set.eval_names),
        "confusion": confusion.tolist(),
    }
