"""Cityscapes label definitions and the two class sets the product trains on.

Everything is derived from the official ``cityscapesscripts`` label table (never hand-copied):

* ``categories8``: void, flat, construction, object, nature, sky, human, vehicle (the
  ``categoryId`` of every label; void is a real class the model predicts).
* ``cityscapes19``: the 19 evaluated classes (``trainId``; every other label is 255 = ignore).

Each class set carries 256-entry lookup tables from a labelId to a class index, so mapping a
whole 2048x1024 mask is one indexing operation: ``class_set.lut[label_ids]``.

Evaluation follows ``cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling``: ground-truth
pixels of labels that are ignored in evaluation never count, and a prediction of such a label
is a false negative of the true class. Both rules are encoded in an *evaluation space*: the
class set's classes plus, where needed, a ``sink`` column that collects those predictions.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from cityscapesscripts.helpers.labels import labels as _OFFICIAL_LABELS

IGNORE_INDEX = 255
NUM_LABEL_IDS = 34  # labelIds 0..33 appear in gtFine/*_labelIds.png
LUT_SIZE = 256

LABELS = tuple(label for label in _OFFICIAL_LABELS if label.id >= 0)
ID_TO_LABEL = {label.id: label for label in LABELS}
LABEL_NAMES = tuple(label.name for label in LABELS)
VALID_LABEL_IDS = np.array(sorted(ID_TO_LABEL), dtype=np.uint8)

CATEGORY_NAMES = ("void", "flat", "construction", "object", "nature", "sky", "human", "vehicle")


def label_id(name: str) -> int:
    """The labelId of an official label name, e.g. ``label_id("car") == 26``."""
    for label in LABELS:
        if label.name == name:
            return label.id
    raise KeyError(f"unknown Cityscapes label {name!r}; known: {', '.join(LABEL_NAMES)}")


@dataclass(frozen=True)
class ClassSet:
    """A set of classes a model predicts, with lookup tables from Cityscapes labelIds.

    Attributes:
        name: ``categories8`` or ``cityscapes19``.
        names: class names, index = class index.
        colors: ``(K, 3)`` uint8 official colours.
        lut: ``(256,)`` uint8, labelId -> class index for training (255 = ignore).
        eval_gt_lut: labelId -> evaluation-space index of the ground truth, 255 for labels the
            official evaluation ignores.
        eval_pred_lut: labelId -> evaluation-space index of a *prediction*; labels the official
            evaluation ignores go to ``sink`` (a false negative of the true class).
        sink: evaluation-space index that collects predictions of ignored labels.
        scored: class indices that enter the official-compatible mean.
    """

    name: str
    names: tuple[str, ...]
    colors: np.ndarray
    lut: np.ndarray
    eval_gt_lut: np.ndarray
    eval_pred_lut: np.ndarray
    sink: int
    scored: tuple[int, ...]

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def num_eval_classes(self) -> int:
        """Size of the evaluation space: the classes, plus a sink column if it is extra."""
        return max(self.num_classes, self.sink + 1)

    @property
    def eval_names(self) -> tuple[str, ...]:
        extra = ("no class (ignored label)",) * (self.num_eval_classes - self.num_classes)
        return self.names + extra

    @property
    def official_is_all_classes(self) -> bool:
        """Whether the official rules count every pixel as the training table does (cityscapes19:
        both confusion matrices, and both mIoU, are the same; not categories8, whose void and
        ignored labels the official evaluation leaves out)."""
        valid = VALID_LABEL_IDS
        predicted_all = np.where(self.lut == IGNORE_INDEX, self.sink, self.lut)
        return (np.array_equal(self.lut[valid], self.eval_gt_lut[valid])
                and np.array_equal(predicted_all[valid], self.eval_pred_lut[valid])
                and tuple(self.scored) == tuple(range(self.num_classes)))

    def palette(self) -> np.ndarray:
        """256x3 uint8 palette indexed by class index (ignore = black), for ``P``-mode PNGs."""
        palette = np.zeros((LUT_SIZE, 3), dtype=np.uint8)
        palette[: self.num_classes] = self.colors
        return palette

    def colorize(self, class_mask: np.ndarray) -> np.ndarray:
        """``(H, W)`` class indices -> ``(H, W, 3)`` uint8 official colours."""
        class_mask = np.asarray(class_mask)
        if class_mask.dtype == np.uint8 and class_mask.ndim == 2 and class_mask.size:
            # OpenCV's table lookup: 2 ms at 2048x1024 where numpy's fancy indexing took 15-20
            import cv2

            return cv2.LUT(cv2.merge([class_mask] * 3), self.palette().reshape(LUT_SIZE, 1, 3))
        return self.palette()[class_mask]


@lru_cache(maxsize=None)
def _categories8() -> ClassSet:
    lut = np.full(LUT_SIZE, IGNORE_INDEX, dtype=np.uint8)
    eval_gt = np.full(LUT_SIZE, IGNORE_INDEX, dtype=np.uint8)
    eval_pred = np.full(LUT_SIZE, IGNORE_INDEX, dtype=np.uint8)
    void = CATEGORY_NAMES.index("void")
    for label in LABELS:
        lut[label.id] = label.categoryId
        eval_gt[label.id] = IGNORE_INDEX if label.ignoreInEval else label.categoryId
        eval_pred[label.id] = void if label.ignoreInEval else label.categoryId
    # A category's colour is the colour of its first evaluated label (flat -> road,
    # human -> person, ...): the colours of the official category visualisation.
    colors = np.zeros((len(CATEGORY_NAMES), 3), dtype=np.uint8)
    for index, category in enumerate(CATEGORY_NAMES):
        evaluated = [label for label in LABELS if label.category == category and not label.ignoreInEval]
        colors[index] = evaluated[0].color if evaluated else (0, 0, 0)
    scored = tuple(i for i in range(len(CATEGORY_NAMES)) if i != void)
    return ClassSet("categories8", CATEGORY_NAMES, colors, lut, eval_gt, eval_pred, void, scored)


@lru_cache(maxsize=None)
def _cityscapes19() -> ClassSet:
    evaluated = sorted((label for label in LABELS if not label.ignoreInEval), key=lambda label: label.trainId)
    names = tuple(label.name for label in evaluated)
    colors = np.array([label.color for label in evaluated], dtype=np.uint8)
    lut = np.full(LUT_SIZE, IGNORE_INDEX, dtype=np.uint8)
    for label in evaluated:
        lut[label.id] = label.trainId
    sink = len(names)
    eval_pred = np.where(lut == IGNORE_INDEX, sink, lut).astype(np.uint8)
    return ClassSet(
        "cityscapes19", names, colors, lut, lut.copy(), eval_pred, sink, tuple(range(len(names)))
    )


CLASS_SET_NAMES = ("categories8", "cityscapes19")


def get_class_set(name: str = "categories8") -> ClassSet:
    """The class set called ``name`` (``categories8`` or ``cityscapes19``); ValueError for any other
    value (a damaged file may hold a list or a number where a name belongs)."""
    if name == "categories8":
        return _categories8()
    if name == "cityscapes19":
        return _cityscapes19()
    raise ValueError(f"unknown class set {name!r}; choose one of {', '.join(CLASS_SET_NAMES)}")
