"""Boundary IoU (Cheng et al., "Boundary IoU: Improving Object-Centric Image Segmentation
Evaluation", CVPR 2021), for every class of a class map at once, with OpenCV and numpy.

The reference ``mask_to_boundary`` pads a binary mask with one pixel of zeros, erodes it ``d``
times with a 3x3 kernel (``d = max(1, round(ratio x image diagonal))``), crops the padding and keeps
the mask minus its erosion. A pixel of class ``c`` therefore lies on the boundary of ``c`` exactly
when its ``(2d+1) x (2d+1)`` window holds another value, or reaches the zero padding (it is within
``d`` pixels of the image border). That test does not depend on ``c``, so one pass over a class
map gives every class's boundary (``boundary_band``): the boundary of ``c`` is
``(map == c) & band``. ``tests/test_boundary.py`` checks this against the reference, written
with OpenCV as published.

Boundary IoU of class ``c`` is ``|G_d & P_d| / |G_d | P_d|`` with the ground truth's and the
prediction's boundary regions, intersections and unions summed over all images like IoU. Pixels
whose ground truth has no class (ignored) are not counted, as for IoU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from training.evaluation.metrics import mean_iou

DEFAULT_RATIO = 0.005  # the paper's choice for Cityscapes-sized images
IGNORE = 255


def boundary_width(shape: tuple[int, int], ratio: float = DEFAULT_RATIO) -> int:
    """``d``: the reference's erosion count, ``max(1, round(ratio x diagonal))`` (11 at 2048x1024,
    3 at 256x512)."""
    if not ratio > 0:
        raise ValueError(f"the boundary ratio must be positive, got {ratio}")
    height, width = shape[:2]
    return max(1, int(round(ratio * math.hypot(height, width))))


# The element types cv2.dilate / cv2.erode take as they are.
_MORPHOLOGY_DTYPES = {np.dtype(t) for t in (np.uint8, np.uint16, np.int16, np.float32, np.float64)}


def _as_morphology_input(class_map: np.ndarray) -> np.ndarray:
    """``class_map`` in an element type OpenCV's min / max filters take, with equal values staying
    equal and different ones different (all that the band depends on)."""
    if class_map.dtype in _MORPHOLOGY_DTYPES:
        return class_map
    if class_map.dtype == bool:
        return class_map.view(np.uint8)
    if class_map.dtype == np.int8:
        return class_map.astype(np.int16)
    if np.issubdtype(class_map.dtype, np.integer) and class_map.dtype.itemsize <= 4:
        return class_map.astype(np.float64)  # exact for every 32-bit integer
    _, codes = np.unique(class_map, return_inverse=True)  # 64-bit values: their ranks instead
    return codes.reshape(class_map.shape).astype(np.float64)


def boundary_band(class_map: np.ndarray, width: int) -> np.ndarray:
    """``(H, W)`` bool: the pixels on the boundary of their own class (``mask_to_boundary`` of
    every class, united): their ``(2 width + 1)`` square window is not constant, or they lie
    within ``width`` pixels of the image border.

    A window is constant exactly when its maximum equals its minimum: OpenCV's dilation and
    erosion with the square kernel give both. Their border handling never matters, since the
    pixels whose window leaves the image are in the band anyway.
    """
    class_map = np.asarray(class_map)
    if class_map.ndim != 2:
        raise ValueError(f"a class map is (H, W), got shape {class_map.shape}")
    d = int(width)
    if d < 1:
        raise ValueError(f"the boundary width must be at least 1, got {width}")
    values = _as_morphology_input(class_map)
    kernel = np.ones((2 * d + 1, 2 * d + 1), dtype=np.uint8)
    band = cv2.dilate(values, kernel) != cv2.erode(values, kernel)
    band[:d] = True
    band[-d:] = True
    band[:, :d] = True
    band[:, -d:] = True
    return band


def boundary_counts(truth: np.ndarray, predicted: np.ndarray, num_classes: int, width: int,
                    truth_band: np.ndarray | None = None, predicted_band: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One image's per-class ``(intersection, union)`` of the boundary regions, ``(K,)`` each.

    Args:
        truth: ``(H, W)`` class indices, 255 where the ground truth has no class (not counted).
        predicted: ``(H, W)`` class indices; values ``>= num_classes`` are nobody's boundary.
        truth_band, predicted_band: ``boundary_band`` of the two maps, when the caller has them.
    """
    if truth.shape != predicted.shape:
        raise ValueError(f"shapes differ: truth {truth.shape}, prediction {predicted.shape}")
    if truth_band is None:
        truth_band = boundary_band(truth, width)
    if predicted_band is None:
        predicted_band = boundary_band(predicted, width)
    counted = truth != IGNORE
    on_truth = truth_band & counted
    on_prediction = predicted_band & counted
    size = max(num_classes, 256)
    truth_region = np.bincount(truth[on_truth], minlength=size)[:num_classes]
    predicted_region = np.bincount(predicted[on_prediction], minlength=size)[:num_classes]
    both = on_truth & on_prediction & (truth == predicted)
    intersection = np.bincount(truth[both], minlength=size)[:num_classes]
    return intersection.astype(np.int64), (truth_region + predicted_region - intersection).astype(np.int64)


def boundary_iou(intersection: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Per-class Boundary IoU from summed counts; NaN where the union is empty."""
    intersection = np.asarray(intersection, dtype=np.float64)
    union = np.asarray(union, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / union, np.nan)


def mean_boundary_iou(intersection: np.ndarray, union: np.ndarray, classes=None) -> float:
    """Mean over ``classes`` (all by default) with a non-empty union; NaN if none has one."""
    return mean_iou(boundary_iou(intersection, union), classes)


# ---------------------------------------------------------------------------- an image's errors in the band

@dataclass(frozen=True)
class BandCounts:
    """A prediction's wrong pixels and those in the boundary band, at full size."""

    wrong: int
    in_band: int
    band: int  # the band's pixels (with ground truth)
    width: int  # d, in full-size pixels

    @property
    def share(self) -> float:
        """The share of the wrong pixels that lie in the band (NaN when none is wrong)."""
        return self.in_band / self.wrong if self.wrong else float("nan")


def error_band(truth: np.ndarray, predicted: np.ndarray, width: int) -> tuple[np.ndarray, BandCounts]:
    """The boundary band of an image for one prediction (``boundary_band`` of the ground truth
    united with the prediction's, both full size, in the same class indices; 255 in the truth:
    no class, its pixels never counted) and the counts of wrong pixels, as the error map counts them."""
    if truth.shape != predicted.shape:
        raise ValueError(f"ground truth {truth.shape} and prediction {predicted.shape} differ in size")
    band = boundary_band(truth, width) | boundary_band(predicted, width)
    counted = truth != IGNORE
    wrong = (truth != predicted) & counted
    return band, BandCounts(int(wrong.sum()), int((wrong & band).sum()), int((band & counted).sum()), int(width))
