"""Segmentation metrics as pure numpy functions (no TensorFlow import, ever).

The confusion matrix has rows = ground truth and columns = prediction. Everything else (IoU,
mIoU, pixel accuracy) is derived from it, so training callbacks, evaluation, the API and the
dashboard all compute the same numbers from the same counts.

.. math::

    IoU_k = \\frac{TP_k}{TP_k + FP_k + FN_k}
          = \\frac{C_{kk}}{\\sum_j C_{kj} + \\sum_i C_{ik} - C_{kk}}

A class absent from both ground truth and prediction has no IoU (NaN) and is left out of the
mean, as in the official Cityscapes evaluation.

Example (the worked example of the report we build on)::

    >>> cm = np.array([[71, 85], [36, 0]])  # 71 TP, 85 FN, 36 FP for class 0
    >>> round(float(iou_per_class(cm)[0]), 2)
    0.37
"""

from __future__ import annotations

import numpy as np

from training.data.labels import IGNORE_INDEX


def confusion_matrix(
    ground_truth: np.ndarray,
    prediction: np.ndarray,
    num_classes: int,
    ignore_index: int | None = IGNORE_INDEX,
) -> np.ndarray:
    """Count (ground truth, prediction) pixel pairs with one ``bincount``.

    Args:
        ground_truth: integer class indices, any shape.
        prediction: integer class indices, same shape.
        num_classes: K; the matrix is K x K.
        ignore_index: ground-truth value whose pixels are not counted (None: count all).

    Returns:
        ``(K, K)`` int64, rows = ground truth, columns = prediction.

    Raises:
        ValueError: shapes differ, or a counted pixel holds a value outside ``[0, K)``.
    """
    ground_truth = np.asarray(ground_truth)
    prediction = np.asarray(prediction)
    if ground_truth.shape != prediction.shape:
        raise ValueError(
            f"ground truth {ground_truth.shape} and prediction {prediction.shape} differ in shape"
        )
    gt = ground_truth.ravel()
    pred = prediction.ravel()
    if ignore_index is not None:
        keep = gt != ignore_index
        if not keep.all():
            gt, pred = gt[keep], pred[keep]
    if gt.size and (int(gt.max()) >= num_classes or int(pred.max()) >= num_classes
                    or int(gt.min()) < 0 or int(pred.min()) < 0):
        bad = "ground truth" if int(gt.max()) >= num_classes or int(gt.min()) < 0 else "prediction"
        raise ValueError(f"{bad} holds a class index outside [0, {num_classes})")
    # int64 arithmetic: K*K fits easily and bincount wants intp anyway.
    pairs = gt.astype(np.int64) * num_classes + pred
    counts = np.bincount(pairs, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def pair_counts(first: np.ndarray, second: np.ndarray, size: int = 256) -> np.ndarray:
    """``(size, size)`` co-occurrence counts of two uint8 maps, without any mapping.

    Used to count (labelId, labelId) or (labelId, class) pairs once per image; class sets are
    applied to the small count table afterwards (``remap_counts``), which is much cheaper than
    remapping every pixel for every class set.
    """
    if first.shape != second.shape:
        raise ValueError(f"shapes differ: {first.shape} and {second.shape}")
    if first.dtype != np.uint8 or second.dtype != np.uint8:
        raise ValueError("pair_counts expects uint8 maps")
    if size > 256:
        raise ValueError("size must be at most 256 for uint8 maps")
    pairs = (first.astype(np.uint16) << 8) | second
    counts = np.bincount(pairs.ravel(), minlength=65536).reshape(256, 256)
    return counts[:size, :size]


def remap_counts(
    counts: np.ndarray,
    row_lut: np.ndarray,
    column_lut: np.ndarray,
    num_classes: int,
    ignore_index: int = IGNORE_INDEX,
) -> np.ndarray:
    """Fold a co-occurrence table into a K x K confusion matrix through lookup tables.

    ``counts[i, j]`` pixels had raw row value i and raw column value j; they are added to
    ``cm[row_lut[i], column_lut[j]]``. Rows mapped to ``ignore_index`` are dropped.

    Raises:
        ValueError: a counted column maps outside ``[0, K)`` (a value the table cannot place).
    """
    rows, columns = np.nonzero(counts)
    values = counts[rows, columns]
    mapped_rows = row_lut[rows].astype(np.int64)
    mapped_columns = column_lut[columns].astype(np.int64)
    keep = mapped_rows != ignore_index
    mapped_rows, mapped_columns, values = mapped_rows[keep], mapped_columns[keep], values[keep]
    if mapped_rows.size and (mapped_rows.max() >= num_classes or mapped_columns.max() >= num_classes):
        raise ValueError(f"a counted value maps outside [0, {num_classes})")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (mapped_rows, mapped_columns), values)
    return cm


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """Per-class IoU from a confusion matrix; NaN where the class is absent from both."""
    cm = np.asarray(cm, dtype=np.float64)
    true_positive = np.diag(cm)
    union = cm.sum(axis=1) + cm.sum(axis=0) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positive / union, np.nan)


def mean_iou(iou: np.ndarray, classes=None) -> float:
    """Mean of the per-class IoU over ``classes`` (all by default), NaN entries left out.

    Returns NaN when no selected class has an IoU.
    """
    iou = np.asarray(iou, dtype=np.float64)
    if classes is not None:
        iou = iou[list(classes)]
    present = iou[~np.isnan(iou)]
    return float(present.mean()) if present.size else float("nan")


def pixel_accuracy(cm: np.ndarray) -> float:
    """Fraction of counted pixels predicted correctly (NaN for an empty matrix)."""
    total = np.asarray(cm).sum()
    return float(np.trace(cm) / total) if total else float("nan")


# Two runs on the same pixels: who is right where (the A-vs-B pixel map and its counts).
BOTH_RIGHT, ONLY_A_RIGHT, ONLY_B_RIGHT, BOTH_WRONG = 0, 1, 2, 3
OUTCOME_NAMES = ("both right", "A right, B wrong", "B right, A wrong", "both wrong")


def paired_outcomes(truth: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(H, W)`` uint8: ``ONLY_A_RIGHT`` where A matches the ground truth and B does not,
    ``ONLY_B_RIGHT`` the reverse, ``BOTH_WRONG``, ``BOTH_RIGHT``; ``IGNORE_INDEX`` where the
    ground truth has no class (``truth`` in class indices, 255 = none)."""
    if not truth.shape == a.shape == b.shape:
        raise ValueError(f"shapes differ: truth {truth.shape}, A {a.shape}, B {b.shape}")
    a_right = a == truth
    b_right = b == truth
    codes = (~a_right).astype(np.uint8) * np.uint8(2) + (~b_right)  # A wrong: 2, B wrong: 1
    outcome = np.array([BOTH_RIGHT, ONLY_A_RIGHT, ONLY_B_RIGHT, BOTH_WRONG], dtype=np.uint8)[codes]
    outcome[truth == IGNORE_INDEX] = IGNORE_INDEX
    return outcome


def outcome_counts(outcomes: np.ndarray) -> dict[str, int]:
    """Pixels of each outcome of ``paired_outcomes`` (not-scored pixels left out)."""
    counts = np.bincount(outcomes.ravel(), minlength=256)
    return {name: int(counts[code]) for code, name in enumerate(OUTCOME_NAMES)}


def rank_b_worse(ids, counts: np.ndarray, limit: int | None = None) -> list[dict]:
    """The images where B got worse: those with pixels A gets right and B wrong (``counts``: ``(N, 4)``
    pixels of each outcome per image, in ``OUTCOME_NAMES`` order), most such pixels first (ties by
    id), each with ``share``: those pixels over the image's scored pixels."""
    counts = np.asarray(counts, dtype=np.int64).reshape(-1, len(OUTCOME_NAMES))
    ids = np.asarray(ids, dtype=np.int64)
    worse = counts[:, ONLY_A_RIGHT]
    order = np.lexsort((ids, -worse))
    order = order[worse[order] > 0][:limit]
    return [{"id": int(ids[i]), **{name: int(counts[i, code]) for code, name in enumerate(OUTCOME_NAMES)},
             "share": float(worse[i] / max(int(counts[i].sum()), 1))} for i in order]
