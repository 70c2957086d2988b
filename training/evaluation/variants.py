"""The ways to read "mIoU", defined once: which classes count, and how images are averaged.

Two choices make four numbers, and every page, command and route names them with ``label``:

* **classes** (``ALL_CLASSES`` or ``OFFICIAL``):

  - all classes (metrics.json's ``miou``): every labelled pixel counts, in the class set's
    training table (for ``categories8`` void is a class like the others);
  - official (metrics.json's ``miou_official``): the rules of ``cityscapesscripts``'
    ``evalPixelLevelSemanticLabeling``: ground-truth pixels of labels ignored in evaluation are not
    counted, a prediction of such a label is a miss of the true class, and the mean is over the
    scored classes (``ClassSet.scored``: for ``categories8`` void is left out). The number the
    official script and the benchmark server report; for ``cityscapes19`` the two coincide.

* **averaging** (``POOLED`` or ``PER_IMAGE``):

  - pooled: one confusion matrix summed over every pixel of the evaluated images, then its IoU per
    class and their mean (big images and frequent classes weigh more): how a run's own numbers
    are computed;
  - per image: each image's own mIoU (over the classes it has), then their mean: every image
    weighs the same.

The confusions behind them are stored per image (``per_image_confusion.npy`` for all classes,
``per_image_official_confusion.npy`` under the official rules), so every number here, and every
interval of ``training.evaluation.significance``, is exact for any subset of the images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.data.labels import ClassSet

ALL_CLASSES, OFFICIAL = "all classes", "official"
POOLED, PER_IMAGE = "pooled", "per-image"
AVERAGINGS = (POOLED, PER_IMAGE)
AVERAGING_TEXT = {POOLED: "pooled over the dataset", PER_IMAGE: "mean of per-image mIoU"}
AVERAGING_EXPLANATION = ("pooled: one confusion matrix over all pixels, big images and frequent classes weigh "
                         "more; per image: each image's mIoU averaged, every image weighs the same.")


@dataclass(frozen=True)
class MiouVariant:
    """Which classes an mIoU counts: ``key`` is its name in metrics.json and ``compare --json``."""

    key: str
    classes: str  # ALL_CLASSES or OFFICIAL
    description: str

    def label(self, averaging: str = POOLED) -> str:
        """How the product names the number: "mIoU (all classes)", "mIoU (official)", "mean per-image
        mIoU (official)"."""
        if averaging not in AVERAGINGS:
            raise ValueError(f"unknown averaging {averaging!r}; choose one of {', '.join(AVERAGINGS)}")
        return f"{'mIoU' if averaging == POOLED else 'mean per-image mIoU'} ({self.classes})"

    def scored(self, class_set: ClassSet) -> tuple[int, ...]:
        """The class indices the mean is over."""
        return tuple(class_set.scored) if self.classes == OFFICIAL else tuple(range(class_set.num_classes))


MIOU = MiouVariant("miou", ALL_CLASSES, "every labelled pixel counts, every class of the set is in the mean")
MIOU_OFFICIAL = MiouVariant("miou_official", OFFICIAL,
                            "the official evaluation's rules: labels it ignores are not counted, and the mean "
                            "leaves out the classes it does not score (void, for the categories)")
VARIANTS = (MIOU, MIOU_OFFICIAL)
BY_KEY = {variant.key: variant for variant in VARIANTS}


def variant(key: str) -> MiouVariant:
    """The variant called ``key`` ("miou" or "miou_official")."""
    if key not in BY_KEY:
        raise ValueError(f"unknown mIoU variant {key!r}; choose one of {', '.join(BY_KEY)}")
    return BY_KEY[key]


# ---------------------------------------------------------------------------- the numbers

def class_iou(confusions: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    """``(..., len(classes))`` IoU of ``classes`` from confusion matrices ``(..., E, E)`` (rows = ground
    truth; columns and rows beyond the classes, such as a sink, count as misses only); NaN where a
    class is absent from both ground truth and prediction."""
    counts = np.asarray(confusions, dtype=np.float64)
    picked = list(classes)
    true_positive = np.diagonal(counts, axis1=-2, axis2=-1)[..., picked]
    union = counts.sum(axis=-1)[..., picked] + counts.sum(axis=-2)[..., picked] - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positive / np.where(union > 0, union, 1.0), np.nan)


def mean_over_present(values: np.ndarray) -> np.ndarray:
    """The mean of the last axis over its finite entries; NaN where there is none."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    present = finite.sum(axis=-1)
    total = np.where(finite, values, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(present > 0, total / np.maximum(present, 1), np.nan)


def image_miou(confusions: np.ndarray, class_set: ClassSet, which: MiouVariant = MIOU) -> np.ndarray:
    """``(N,)`` each image's mIoU from its confusion ``(N, E, E)`` (the ``which`` variant's stack):
    NaN for an image without a class present."""
    return mean_over_present(class_iou(confusions, which.scored(class_set)))


def pooled_miou(confusions: np.ndarray, class_set: ClassSet, which: MiouVariant = MIOU) -> float:
    """The mIoU of the summed confusion of ``(N, E, E)`` (or of one ``(E, E)`` matrix)."""
    total = np.asarray(confusions)
    total = total.sum(axis=0) if total.ndim == 3 else total
    return float(mean_over_present(class_iou(total, which.scored(class_set))))


def miou(confusions: np.ndarray, class_set: ClassSet, which: MiouVariant = MIOU,
         averaging: str = POOLED) -> float:
    """The ``which`` mIoU of the images of ``confusions`` (``(N, E, E)``), pooled or per image; NaN
    when no class is present."""
    if averaging == POOLED:
        return pooled_miou(confusions, class_set, which)
    if averaging != PER_IMAGE:
        raise ValueError(f"unknown averaging {averaging!r}; choose one of {', '.join(AVERAGINGS)}")
    return float(mean_over_present(image_miou(confusions, class_set, which)))
