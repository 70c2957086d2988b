"""What a run's confusion matrices say beyond its mIoU: which classes it mixes up, the images behind a
confusion, an image's own per-class table, and its numbers over any subset of its images.

Everything works on the matrices an evaluation stores (rows = ground truth, columns = prediction;
a sink row and column beyond the K classes, such as an imported run's "no class", count as misses
and have no IoU of their own): ``confusion.npy`` and the per-image ``per_image_confusion.npy``.
An evaluation's matrix is the sum of its images', so numbers over a subset are exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from training.data.labels import IGNORE_INDEX, ClassSet
from training.evaluation.metrics import iou_per_class, mean_iou, pair_counts, pixel_accuracy, remap_counts
from training.evaluation.shares import class_shares, truth_pixels_of
from training.evaluation.variants import class_iou, mean_over_present
from training.files import finite_or_none

TOP_IMAGES = 10
_IDENTITY = np.arange(256, dtype=np.int64)


def image_confusion(label_ids: np.ndarray, predicted: np.ndarray, class_set: ClassSet) -> np.ndarray:
    """One image's all-classes confusion matrix from its labelIds and a prediction in class indices,
    as a run's evaluation counts it: ``(K, K)``, or ``(K + 1, K + 1)`` when the prediction names no
    class somewhere (255, only in imported runs: a sink column, so those pixels are misses of their
    true class)."""
    k = class_set.num_classes
    no_class = predicted.size and int(predicted.max()) >= k
    columns = np.where(_IDENTITY == IGNORE_INDEX, k, _IDENTITY) if no_class else _IDENTITY
    return remap_counts(pair_counts(label_ids, predicted), class_set.lut, columns, k + 1 if no_class else k,
                        IGNORE_INDEX)


def mask_problem(predicted: np.ndarray, truth_shape: tuple[int, ...], num_classes: int, filename: str,
                 no_class_allowed: bool = False) -> str | None:
    """Why a stored class-index mask (``filename`` names it) cannot be scored against a ground truth
    of ``truth_shape``, or None: another size, or values outside the ``num_classes`` classes
    (``no_class_allowed``: 255 means "no class", as an imported run's masks may say; a run trained
    here never does)."""
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


def wrong_share(confusion: np.ndarray) -> float:
    """The share of the counted pixels (those with ground truth) predicted wrong; 0 when none is
    counted."""
    accuracy = pixel_accuracy(confusion)
    return 0.0 if np.isnan(accuracy) else 1.0 - accuracy


def row_normalised(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum: the share of a true class's pixels predicted as each class (a
    row without pixels stays 0)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    return matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1.0)


def largest_confusions(matrix: np.ndarray, limit: int | None = None) -> list[tuple[int, int, int]]:
    """(true, predicted, pixels) of the cells off the diagonal, most pixels first (ties in row-major
    order), empty cells left out."""
    counts = np.asarray(matrix).astype(np.int64).copy()
    np.fill_diagonal(counts, 0)
    order = np.argsort(-counts.ravel(), kind="stable")
    order = order[counts.ravel()[order] > 0][:limit]
    rows, columns = np.unravel_index(order, counts.shape)
    return [(int(r), int(c), int(counts[r, c])) for r, c in zip(rows, columns)]


def largest_confusion(matrix: np.ndarray) -> tuple[int, int]:
    """(true, predicted) of the largest count off the diagonal (the first such cell on ties; (0, 1)
    when nothing is confused)."""
    found = largest_confusions(matrix, 1)
    return found[0][:2] if found else (0, min(1, len(matrix) - 1))


def confused_images(ids: np.ndarray, matrices: np.ndarray, true_class: int, predicted_class: int,
                    num_classes: int, limit: int = TOP_IMAGES) -> list[dict]:
    """The (at most ``limit``) images with the most pixels of ``true_class`` predicted as
    ``predicted_class``, most first (ties in ``ids`` order), from their ``(N, E, E)`` matrices (rows in
    ``ids`` order; the first ``num_classes`` are classes): ``id``, ``pixels``, ``share`` (of the
    image's counted pixels), ``miou`` (the image's mIoU, all classes; None where it has none)."""
    matrices = np.asarray(matrices)
    counts = matrices[:, true_class, predicted_class]
    order = np.argsort(-counts, kind="stable")[:limit]
    order = order[counts[order] > 0]
    counted = matrices[order].sum(axis=(1, 2))
    mious = mean_over_present(class_iou(matrices[order], tuple(range(num_classes))))
    return [{"id": int(ids[i]), "pixels": int(counts[i]), "share": float(counts[i] / max(total, 1)),
             "miou": finite_or_none(value)} for i, total, value in zip(order, counted, mious)]


def image_table(confusions: Mapping[str, np.ndarray], num_classes: int) -> dict:
    """One image's numbers per class for several runs of one class set, from each run's ``(E, E)``
    matrix of it (the first ``num_classes`` rows and columns are classes): ``shares`` (each class's
    share of the ground truth, the same for every run: the first matrix's rows), ``iou`` (run ->
    ``(K,)`` IoU, NaN where a class is neither in the truth nor predicted) and ``miou`` (run -> the
    image's mIoU, all classes)."""
    k = num_classes
    first = next(iter(confusions.values()), np.zeros((k, k), dtype=np.int64))
    iou = {run: iou_per_class(matrix)[:k] for run, matrix in confusions.items()}
    return {"shares": class_shares(truth_pixels_of(first, k)), "iou": iou,
            "miou": {run: mean_iou(values) for run, values in iou.items()}}


def scored_ids(ids: Sequence[int]) -> set[int]:
    """The image ids a run scored (a row of per_image.csv without an id is -1)."""
    return {int(i) for i in ids if int(i) >= 0}


def shared_ids(ids_a: Sequence[int], ids_b: Sequence[int]) -> list[int]:
    """The image ids both runs scored, in A's order."""
    other = scored_ids(ids_b)
    return [int(i) for i in ids_a if int(i) >= 0 and int(i) in other]


def metrics_over(ids: Sequence[int], matrices: np.ndarray, keep: Sequence[int], class_set: ClassSet) -> dict:
    """A run's per-class IoU and mIoU (all classes, pooled) over the images ``keep`` only, from its
    ``(N, E, E)`` per-image matrices (rows in ``ids`` order), as metrics.json holds them:
    ``class_names``, ``miou``, ``iou`` (name -> IoU, None where absent)."""
    wanted = {int(i) for i in keep}
    rows = [number for number, image_id in enumerate(ids) if int(image_id) in wanted]
    matrices = np.asarray(matrices)
    total = matrices[rows].sum(axis=0) if rows else np.zeros(matrices.shape[1:], dtype=np.int64)
    iou = iou_per_class(total)[:class_set.num_classes]
    return {"class_names": list(class_set.names), "miou": finite_or_none(mean_iou(iou)),
            "iou": {name: finite_or_none(value) for name, value in zip(class_set.names, iou)}}


def format_confusions(matrix: np.ndarray, names: Sequence[str], limit: int = 5,
                      images: Mapping[tuple[int, int], list[dict]] | None = None) -> str:
    """The report of ``python -m training confusions``: the ``limit`` largest confusions (pixels and
    the share of the true class's pixels), each with the images behind it when given."""
    matrix = np.asarray(matrix)
    shares = row_normalised(matrix)
    found = largest_confusions(matrix, limit)
    if not found:
        return "no pixel predicted as another class"
    width = max(len(str(name)) for name in names) + 2
    lines = [f"{'true':<{width}}{'predicted as':<{width}}{'pixels':>12}{'of the true class':>19}"]
    for true_class, predicted_class, pixels in found:
        lines.append(f"{names[true_class]:<{width}}{names[predicted_class]:<{width}}{pixels:>12,}"
                     f"{shares[true_class, predicted_class]:>19.1%}")
        for row in (images or {}).get((true_class, predicted_class), []):
            image_miou_text = "n/a" if row["miou"] is None else f"{row['miou']:.3f}"
            lines.append(f"{'':<4}image {row['id']:<8}{row['pixels']:>10,} pixels ({row['share']:.1%} of the image), "
                         f"image mIoU {image_miou_text}")
    return "\n".join(lines)
