"""A class's share of an image, defined once.

**The share of class c in an image is its pixels over the image's counted pixels**: the pixels
whose ground truth names a class of the set. Pixels the class set ignores (``cityscapes19``:
labels outside the 19 classes, 255 after the lookup) are in neither, so the shares of an image's
classes add up to 1 whenever it has a counted pixel (0 everywhere when it has none). For
``categories8`` every label has a category, so the counted pixels are all of them.

The pixels of each class come from the ground truth's labelIds (``truth_pixels``: one histogram of
the 256 values folded through the class set, no full-size class map) or from the rows of a
run's per-image confusion matrices (``truth_pixels_of``: rows = ground truth), which give the same
counts: the explorer's class filter, its "share of image" column and the gallery's share columns
all come from ``class_shares`` of one of them. The same function gives the share of each class in a
predicted mask (every pixel of a prediction is counted).
"""

from __future__ import annotations

import numpy as np

from training.data.labels import LUT_SIZE, ClassSet


def truth_pixels(label_ids: np.ndarray, class_set: ClassSet) -> np.ndarray:
    """``(K,)`` int64: the ground truth's pixels of each class of ``class_set`` in an image of
    labelIds (the pixels the set ignores are left out)."""
    histogram = np.bincount(np.asarray(label_ids).ravel(), minlength=LUT_SIZE)[:LUT_SIZE]
    folded = np.bincount(class_set.lut, weights=histogram, minlength=LUT_SIZE)
    return np.rint(folded[:class_set.num_classes]).astype(np.int64)


def truth_pixels_of(confusions: np.ndarray, num_classes: int) -> np.ndarray:
    """``(..., K)`` int64: each class's ground-truth pixels from confusion matrices ``(..., E, E)``
    (rows = ground truth; a sink row beyond the K classes is nobody's ground truth)."""
    return np.asarray(confusions)[..., :num_classes, :].sum(axis=-1).astype(np.int64)


def class_shares(pixels: np.ndarray) -> np.ndarray:
    """``(..., K)`` float64: each class's pixels over the counted pixels of its image (the last
    axis); 0 for an image without counted pixels."""
    pixels = np.asarray(pixels, dtype=np.float64)
    return pixels / np.maximum(pixels.sum(axis=-1, keepdims=True), 1.0)
