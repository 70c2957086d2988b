"""The maths of the pixel losses: cross-entropy, Dice, soft IoU (pure functions, tensors in).

See ``training/losses.py`` for the input conventions (sparse labels with an ignore index,
softmax probabilities) and the Keras classes that wrap these functions.

.. math::

    CE = -\\frac{1}{N} \\sum_n \\sum_k Y_{nk} \\log X_{nk}
    \\qquad
    \\mathcal{L}_{IoU} = 1 - \\frac{1}{K} \\sum_k \\frac{I_k}{U_k},\\;
    I_k = \\sum_n Y_{nk} X_{nk},\\; U_k = \\sum_n X_{nk} + \\sum_n Y_{nk} - I_k
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from training.data.labels import IGNORE_INDEX

# --------------------------------------------------------------------------- input handling


def _probabilities(y_pred) -> tf.Tensor:
    y_pred = tf.convert_to_tensor(y_pred)
    return y_pred if y_pred.dtype == tf.float64 else tf.cast(y_pred, tf.float32)


def _sparse_labels(y_true, rank: int) -> tf.Tensor:
    """int32 labels of rank ``rank - 1``: trailing channel squeezed, floats rounded back."""
    y_true = tf.convert_to_tensor(y_true)
    if y_true.shape.rank == rank:
        y_true = tf.squeeze(y_true, axis=-1)
    if y_true.dtype.is_floating:
        y_true = tf.round(y_true)  # 255.0 (or 254.9999 after a resize) -> 255
    return tf.cast(y_true, tf.int32)


def _prepare(y_true, y_pred, ignore_index):
    """Probabilities, one-hot Y with ignored rows all zero, and the float validity mask.

    Returns ``(x, y, valid)`` shaped ``(B, H, W, K)``, ``(B, H, W, K)``, ``(B, H, W, 1)``.
    """
    x = _probabilities(y_pred)
    labels = _sparse_labels(y_true, x.shape.rank)
    num_classes = x.shape[-1]
    if ignore_index is None:
        valid = tf.ones_like(labels, dtype=x.dtype)
    else:
        valid = tf.cast(tf.not_equal(labels, ignore_index), x.dtype)
        labels = tf.where(labels == ignore_index, tf.zeros_like(labels), labels)
    valid = valid[..., None]
    y = tf.one_hot(labels, num_classes, dtype=x.dtype) * valid
    return x, y, valid


def _safe_divide(numerator, denominator):
    """``numerator / denominator`` where the denominator is positive, else 0 (no NaN gradient)."""
    positive = denominator > 0
    return tf.where(positive, numerator / tf.where(positive, denominator, tf.ones_like(denominator)),
                    tf.zeros_like(numerator))


# --------------------------------------------------------------------------- cross-entropy, Dice, IoU


def categorical_crossentropy(
    y_true, y_pred, ignore_index: int | None = IGNORE_INDEX, class_weights: Sequence[float] | None = None
) -> tf.Tensor:
    """Cross-entropy averaged over the counted (non-ignored) pixels, optionally class-weighted.

    .. math::

        CE = -\\frac{1}{N} \\sum_{n=1}^{N} \\sum_{k=1}^{K} Y_{nk} \\log X_{nk}
        \\qquad
        CE_w = -\\frac{\\sum_n w_{c_n} \\log X_{n c_n}}{\\sum_n w_{c_n}}

    With ``class_weights`` w, a pixel of true class c counts w_c times, and the sum is divided by
    the total weight of the counted pixels (the weighted mean of PyTorch's ``CrossEntropyLoss``):
    rare classes (poles, people: 1-2 % of the pixels) weigh more without changing the loss's scale.
    Probabilities are clipped below at ``keras.backend.epsilon()`` (a perfect prediction gives
    exactly 0). A batch with no counted pixel gives 0.

    Args:
        y_true: ``(B, H, W)`` or ``(B, H, W, 1)`` integer class indices.
        y_pred: ``(B, H, W, K)`` softmax probabilities.
        ignore_index: label whose pixels are not counted (None: count all).
        class_weights: ``(K,)`` positive weights, one per class (None: all 1).

    Returns:
        scalar float tensor.
    """
    x, y, valid = _prepare(y_true, y_pred, ignore_index)
    probability_of_truth = tf.reduce_sum(x * y, axis=-1)
    eps = tf.constant(keras.backend.epsilon(), x.dtype)
    per_pixel = -tf.math.log(tf.clip_by_value(probability_of_truth, eps, 1.0))
    if class_weights is None:
        weight = valid[..., 0]
    else:
        weight = tf.reduce_sum(y * _class_weight_vector(class_weights, x), axis=-1)  # 0 where ignored
    return _safe_divide(tf.reduce_sum(per_pixel * weight), tf.reduce_sum(weight))


def _class_weight_vector(class_weights: Sequence[float], x: tf.Tensor) -> tf.Tensor:
    """``class_weights`` as a ``(K,)`` tensor of ``x``'s dtype; a wrong length is a clear error."""
    weights = [float(w) for w in class_weights]
    if len(weights) != x.shape[-1]:
        raise ValueError(f"class_weights has {len(weights)} values for {x.shape[-1]} classes")
    return tf.constant(weights, x.dtype)


def dice_loss(
    y_true,
    y_pred,
    ignore_index: int | None = IGNORE_INDEX,
    smooth: float = 1e-5,
    beta: float = 1,
    class_weights=1.0,
    class_indexes: Sequence[int] | None = None,
    per_image: bool = False,
) -> tf.Tensor:
    """1 - soft F-beta score averaged over classes (segmentation_models' ``DiceLoss``).

    .. math::

        L = 1 - \\frac{1}{K} \\sum_k w_k
            \\frac{(1 + \\beta^2) TP_k + s}{(1 + \\beta^2) TP_k + \\beta^2 FN_k + FP_k + s}

    with soft counts :math:`TP_k = \\sum_n Y_{nk} X_{nk}`, :math:`FP_k = \\sum_n X_{nk} - TP_k`,
    :math:`FN_k = \\sum_n Y_{nk} - TP_k` over the counted pixels. With ``beta = 1`` this is the
    Dice coefficient. A class absent from both ground truth and prediction scores
    ``s / s = 1`` (perfect), as in segmentation_models.

    Args:
        y_true: ``(B, H, W)`` or ``(B, H, W, 1)`` integer class indices.
        y_pred: ``(B, H, W, K)`` softmax probabilities.
        ignore_index: label whose pixels are not counted (None: count all).
        smooth: s, keeps the ratio defined for empty classes.
        beta: weight of recall against precision.
        class_weights: scalar or ``(K,)`` weights w multiplied into the per-class scores.
        class_indexes: classes to average over (default: all K).
        per_image: score each image separately, then average the scores over the batch.

    Returns:
        scalar float tensor.
    """
    x, y, valid = _prepare(y_true, y_pred, ignore_index)
    x = x * valid
    if class_indexes is not None:
        x = tf.gather(x, list(class_indexes), axis=-1)
        y = tf.gather(y, list(class_indexes), axis=-1)
    axes = [1, 2] if per_image else [0, 1, 2]
    tp = tf.reduce_sum(x * y, axis=axes)
    fp = tf.reduce_sum(x, axis=axes) - tp
    fn = tf.reduce_sum(y, axis=axes) - tp
    b2 = float(beta) ** 2
    score = ((1 + b2) * tp + smooth) / ((1 + b2) * tp + b2 * fn + fp + smooth)
    if per_image:
        score = tf.reduce_mean(score, axis=0)
    score = score * tf.cast(class_weights, score.dtype)
    return 1.0 - tf.reduce_mean(score)


def soft_iou_loss(
    y_true, y_pred, ignore_index: int | None = IGNORE_INDEX, classes: str = "all"
) -> tf.Tensor:
    """1 + the continuous mIoU of the report (a soft Jaccard loss; 0 for a perfect prediction).

    .. math::

        L = 1 - \\frac{1}{K'} \\sum_{k : U_k > 0} \\frac{I_k}{U_k},\\quad
        I_k = \\sum_n Y_{nk} X_{nk},\\quad U_k = \\sum_n X_{nk} + \\sum_n Y_{nk} - I_k

    Gradient (source B, eq. 3.7): :math:`\\partial L / \\partial X_{nk} = -\\frac{1}{K'U_k}` where
    :math:`Y_{nk} = 1` and :math:`+\\frac{I_k}{K'U_k^2}` where :math:`Y_{nk} = 0`.

    Classes: with ``classes="all"`` (the source formula) K' counts the classes with
    :math:`U_k > 0`. A softmax never outputs an exact 0, so K' = K: a class absent from the ground
    truth has :math:`I_k = 0` and adds a constant 1/K with zero gradient (the loss then cannot
    go below #absent / K). A class with :math:`U_k = 0` (absent and predicted exactly 0, e.g. a
    one-hot prediction) is skipped, so a perfect one-hot prediction gives 0.
    ``classes="present"`` averages over the classes present in ``y_true`` only.

    Args:
        y_true: ``(B, H, W)`` or ``(B, H, W, 1)`` integer class indices.
        y_pred: ``(B, H, W, K)`` probabilities (any non-negative scores work).
        ignore_index: label whose pixels are not counted (None: count all).
        classes: ``"all"`` or ``"present"``.

    Returns:
        scalar float tensor (0 when no class is counted).
    """
    if classes not in ("all", "present"):
        raise ValueError(f"classes must be 'all' or 'present', got {classes!r}")
    x, y, valid = _prepare(y_true, y_pred, ignore_index)
    x = x * valid
    axes = [0, 1, 2]
    intersection = tf.reduce_sum(x * y, axis=axes)
    y_sum = tf.reduce_sum(y, axis=axes)
    union = tf.reduce_sum(x, axis=axes) + y_sum - intersection
    counted = union > 0
    if classes == "present":
        counted = counted & (y_sum > 0)
    counted = tf.cast(counted, x.dtype)
    ratio = _safe_divide(intersection, union) * counted
    mean_ratio = _safe_divide(tf.reduce_sum(ratio), tf.reduce_sum(counted))
    return tf.where(tf.reduce_sum(counted) > 0, 1.0 - mean_ratio, tf.zeros_like(mean_ratio))
