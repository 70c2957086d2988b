"""How far a model's confidence can be trusted: calibration (ECE) and mIoU against coverage.

Every pixel is counted once, in one of ``BINS`` equal-width bins of its top softmax probability
as stored (``round(255 p)``, so every number here can be recomputed from ``confidence/<id>.png``),
into a per-bin confusion matrix (``bins x K x K``, rows = ground truth; pixels whose ground
truth has no class of the set are left out, as in the all-classes mIoU). Everything else is
read from that table:

* per bin: pixel count, accuracy (its diagonal share) and mean confidence;
* ECE (expected calibration error): ``sum_b n_b / N * |accuracy_b - confidence_b|``, pixel
  weighted (Guo et al. 2017, with 15 bins as there);
* mIoU against coverage: keep the pixels whose confidence reaches a threshold (a bin's lower
  edge), score only those: coverage falls as the threshold rises, and mIoU should rise if the
  confidence means anything.
"""

from __future__ import annotations

import cv2
import numpy as np

from training.evaluation.boundary import pixel_histogram, scratch
from training.evaluation.metrics import iou_per_class, mean_iou
from training.files import finite_or_none

BINS = 15
IGNORE = 255


def bin_of(levels: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Bin index of each stored confidence level ``round(255 p)``: bin ``b`` holds the levels
    ``[255 b / bins, 255 (b + 1) / bins)`` (``v // 17`` for 15 bins), 255 in the last bin. Bins are
    taken on the stored levels so that the numbers can be recomputed exactly from the maps."""
    return np.minimum(np.asarray(levels, dtype=np.int64) * bins // 255, bins - 1)


def calibration_counts(truth: np.ndarray, predicted: np.ndarray, levels: np.ndarray, num_classes: int,
                       bins: int = BINS) -> tuple[np.ndarray, np.ndarray]:
    """One image's ``(bins, K, K)`` confusion per confidence bin and ``(bins,)`` sums of confidence.

    Args:
        truth: ``(H, W)`` class indices, 255 where the ground truth has no class (left out).
        predicted: ``(H, W)`` class indices ``< num_classes``.
        levels: ``(H, W)`` uint8 confidence, ``round(255 x top probability)`` (``to_uint8``).
    """
    truth, predicted, levels = (np.ascontiguousarray(a, dtype=np.uint8) for a in (truth, predicted, levels))
    if not truth.shape == predicted.shape == levels.shape:
        raise ValueError(f"shapes differ: truth {truth.shape}, prediction {predicted.shape}, levels {levels.shape}")
    if truth.ndim != 2 or num_classes > IGNORE:
        return _calibration_counts_numpy(truth, predicted, levels, num_classes, bins)
    # One OpenCV histogram of (truth, prediction, stored level): pixels without a class of the set
    # (255) fall outside the truth's range; the per-level table gives both the bins' confusions
    # and the sums of confidence (2048x1024: 3 ms where the bincount of a (H, W) code took 18).
    cells = num_classes * num_classes
    if cells < 256:  # truth x K + prediction in one byte (255 x K saturates past the cells): a 2-D histogram
        code = cv2.scaleAdd(truth, num_classes, predicted, dst=scratch("calibration code", truth.shape, np.uint8))
        table = pixel_histogram([code, levels], [cells, 256]).reshape(num_classes, num_classes, 256)
    else:
        table = pixel_histogram([truth, predicted, levels], [num_classes, num_classes, 256])
    by_level = np.moveaxis(table, 2, 0).astype(np.int64)  # (256, K, K)
    kept_levels = by_level.sum(axis=(1, 2))
    level_bins = bin_of(np.arange(256), bins)
    counts = np.zeros((bins, num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, level_bins, by_level)
    return counts, _confidence_sums(kept_levels, bins)


def _confidence_sums(kept_levels: np.ndarray, bins: int) -> np.ndarray:
    """``(bins,)``: the confidences ``level / 255`` of the counted pixels, summed per bin."""
    return np.bincount(bin_of(np.arange(256), bins), weights=kept_levels * np.arange(256) / 255.0, minlength=bins)


def _calibration_counts_numpy(truth: np.ndarray, predicted: np.ndarray, levels: np.ndarray, num_classes: int,
                              bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``calibration_counts`` for what OpenCV's histogram does not take (maps of other ranks, more
    than 255 classes): the ``bincount`` of one combined code."""
    cells_per_bin = num_classes * num_classes
    size = bins * cells_per_bin
    bin_cells = bin_of(np.arange(256), bins) * cells_per_bin
    truth_cells = np.arange(256) * num_classes
    truth_cells[IGNORE] = size  # no class: past the table, cut off with its tail
    cells = bin_cells[levels] + truth_cells[truth] + predicted
    counts = np.bincount(cells.ravel(), minlength=size + 1)[:size]
    kept_levels = np.bincount(levels[truth != IGNORE].ravel(), minlength=256)
    return counts.reshape(bins, num_classes, num_classes), _confidence_sums(kept_levels, bins)


def summarize_calibration(counts: np.ndarray, confidence_sums: np.ndarray) -> dict:
    """The JSON-ready ``calibration`` block of metrics.json from the accumulated table."""
    bins = counts.shape[0]
    pixels = counts.sum(axis=(1, 2)).astype(np.int64)
    correct = np.trace(counts, axis1=1, axis2=2).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = correct / pixels
        mean_confidence = confidence_sums / pixels
    total = int(pixels.sum())
    gaps = np.where(pixels > 0, np.abs(accuracy - mean_confidence), 0.0)
    ece = float((pixels * gaps).sum() / total) if total else None
    return {
        "bins": bins, "ece": finite_or_none(ece), "pixels": total,
        "edges": [round(i / bins, 6) for i in range(bins + 1)],
        "count": pixels.tolist(),
        "accuracy": [finite_or_none(v) for v in accuracy],
        "confidence": [finite_or_none(v) for v in mean_confidence],
        "coverage_curve": coverage_curve(counts),
    }


def coverage_curve(counts: np.ndarray) -> dict:
    """For each bin's lower edge as a threshold: the share of pixels at or above it (coverage),
    their pixel accuracy and their mIoU (classes absent from what is kept are left out)."""
    bins = counts.shape[0]
    kept = np.cumsum(counts[::-1], axis=0)[::-1]  # kept[b] = pixels with confidence in bins >= b
    total = kept[0].sum()
    curve = {"threshold": [], "coverage": [], "accuracy": [], "miou": []}
    for b in range(bins):
        confusion = kept[b]
        pixels = confusion.sum()
        curve["threshold"].append(round(b / bins, 6))
        curve["coverage"].append(finite_or_none(pixels / total) if total else None)
        curve["accuracy"].append(finite_or_none(np.trace(confusion) / pixels) if pixels else None)
        curve["miou"].append(finite_or_none(mean_iou(iou_per_class(confusion))) if pixels else None)
    return curve


def to_uint8(confidence: np.ndarray) -> np.ndarray:
    """``round(255 x p)``: the stored confidence map (a grey PNG, 1/255 resolution)."""
    return np.rint(np.clip(confidence, 0.0, 1.0) * 255.0).astype(np.uint8)


def level_histogram(levels: np.ndarray) -> np.ndarray:
    """``(256,)`` int64: an image's pixels per stored confidence level ``round(255 p)``."""
    return np.bincount(np.asarray(levels, dtype=np.uint8).ravel(), minlength=256).astype(np.int64)


def kept_share(histogram: np.ndarray, threshold: float) -> float:
    """The share of an image's pixels whose stored confidence (level / 255, as ``Run.confidence``
    reads it back) reaches ``threshold``: what a threshold keeps labelled (0 for an empty map)."""
    total = int(histogram.sum())
    levels = np.arange(256, dtype=np.float32) / np.float32(255.0)
    return float(histogram[levels >= np.float32(threshold)].sum() / total) if total else 0.0
