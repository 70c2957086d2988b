"""The error anatomy and the calibration table as they were computed before issue 24 (numpy
``bincount`` of masked pixels, per-pixel scatter for the objects), kept verbatim as the reference
the faster code must equal number for number (``tests/test_anatomy_reference.py``).

Only the per-image counting is copied; the summaries (``Anatomy.summary``, ``summarize_calibration``)
did not change and are shared.
"""

from __future__ import annotations

import numpy as np

from training.data.labels import ID_TO_LABEL, IGNORE_INDEX, LUT_SIZE, ClassSet
from training.evaluation.boundary import DEFAULT_RATIO, boundary_band, boundary_width, mean_boundary_iou
from training.evaluation.instances import (
    AVERAGE_INSTANCE_SIZE,
    INSTANCE_OFFSET,
    IS_OBJECT_LABEL,
    LABEL_CATEGORY,
    MISSED_BELOW,
    InstanceScores,
)
from training.evaluation.metrics import pair_counts
from training.files import finite_or_none

FRAME_GRID = (128, 256)
IGNORE = 255


def boundary_counts(truth, predicted, num_classes, width, truth_band=None, predicted_band=None):
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


def frame_cells(shape, grid=FRAME_GRID):
    (height, width), (rows, columns) = shape, grid
    cell_rows = np.arange(height) * rows // height
    cell_columns = np.arange(width) * columns // width
    return (cell_rows[:, None] * columns + cell_columns[None, :]).astype(np.int32)


def frame_count(flags, grid=FRAME_GRID):
    cells = frame_cells(flags.shape, grid)
    return np.bincount(cells[flags], minlength=grid[0] * grid[1]).reshape(grid)


def _same_regions(class_set, label_ids):
    present = np.flatnonzero(np.bincount(label_ids.ravel(), minlength=LUT_SIZE))
    pairs = set(zip(class_set.lut[present].tolist(), class_set.eval_gt_lut[present].tolist()))
    return len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})


def prepare_truth(class_set: ClassSet, label_ids, instance_ids, ratio=DEFAULT_RATIO, grid=FRAME_GRID) -> dict:
    width = boundary_width(label_ids.shape, ratio)
    all_classes = class_set.lut[label_ids]
    all_band = boundary_band(all_classes, width)
    if np.array_equal(class_set.lut, class_set.eval_gt_lut):
        official, official_band = all_classes, all_band
    else:
        official = class_set.eval_gt_lut[label_ids]
        official_band = all_band if _same_regions(class_set, label_ids) else boundary_band(official, width)
    counted_cells = frame_count(all_classes != IGNORE_INDEX, grid)
    return dict(label_ids=label_ids, instance_ids=instance_ids, all_classes=all_classes, official=official,
                all_band=all_band, official_band=official_band, width=width, counted_cells=counted_cells)


def instances_add(scores: InstanceScores, image_id, instance_ids, prediction, counts) -> None:
    """``InstanceScores.add`` as it was (on the reference's own accumulators of ``scores``)."""
    for group in scores.class_groups + scores.category_groups:
        scores.false_positives[(group.level, group.name)] += int(counts[group.false_rows][:, group.hits].sum())
    flat = np.flatnonzero(instance_ids > INSTANCE_OFFSET)
    ids = instance_ids.ravel()[flat].astype(np.int64)
    labels = ids // INSTANCE_OFFSET
    keep = IS_OBJECT_LABEL[np.minimum(labels, LUT_SIZE - 1)] & (labels < LUT_SIZE)
    if not keep.all():
        flat, ids, labels = flat[keep], ids[keep], labels[keep]
    scores.images += 1
    if not ids.size:
        return
    ys, xs = np.divmod(flat, instance_ids.shape[1])
    values = prediction.ravel()[flat]
    own_label = scores.value_label[values] == labels
    own_category = scores.value_category[values] == LABEL_CATEGORY[labels]
    size = int(ids.max()) + 1
    pixels = np.bincount(ids, minlength=size)
    found = np.flatnonzero(pixels)
    pixels = pixels[found]
    label_hits = np.bincount(ids, weights=own_label, minlength=size)[found]
    category_hits = np.bincount(ids, weights=own_category, minlength=size)[found]
    boxes = np.empty((4, size), dtype=np.int64)
    boxes[0], boxes[1] = xs.max() + 1, ys.max() + 1
    boxes[2:] = -1
    np.minimum.at(boxes[0], ids, xs)
    np.minimum.at(boxes[1], ids, ys)
    np.maximum.at(boxes[2], ids, xs)
    np.maximum.at(boxes[3], ids, ys)
    boxes = boxes[:, found]
    for j, instance in enumerate(found.tolist()):
        label = ID_TO_LABEL[instance // INSTANCE_OFFSET]
        size = int(pixels[j])
        weight = AVERAGE_INSTANCE_SIZE[label.name] / size
        if scores.level == "class":
            scores.weighted[("class", label.name)] += (label_hits[j] * weight, (size - label_hits[j]) * weight)
        scores.weighted[("category", label.category)] += (category_hits[j] * weight,
                                                          (size - category_hits[j]) * weight)
        recall = (label_hits[j] if scores.level == "class" else category_hits[j]) / size
        scores.rows.append({
            "id": image_id, "instance": instance, "label": label.name,
            "class": label.name if scores.level == "class" else label.category, "pixels": size,
            "x0": int(boxes[0, j]), "y0": int(boxes[1, j]), "x1": int(boxes[2, j]) + 1, "y1": int(boxes[3, j]) + 1,
            "recall": round(float(recall), 6), "missed": int(recall < MISSED_BELOW)})


def anatomy_add(anatomy, image_id, truth: dict, prediction, counts=None) -> None:
    """``Anatomy.add`` as it was, on an ``Anatomy``'s accumulators (its new code is not called)."""
    k = anatomy.class_set.num_classes
    if anatomy.prediction_kind == "label_ids":
        cs = anatomy.class_set
        predicted_all, predicted_official = cs.lut[prediction], cs.eval_pred_lut[prediction]
    else:
        predicted_all = predicted_official = prediction
    predicted_band = boundary_band(predicted_all, truth["width"])
    official_band = (predicted_band if predicted_official is predicted_all
                     else boundary_band(predicted_official, truth["width"]))
    image_all = boundary_counts(truth["all_classes"], predicted_all, k, truth["width"], truth["all_band"],
                                predicted_band)
    image_official = boundary_counts(truth["official"], predicted_official, k, truth["width"],
                                     truth["official_band"], official_band)
    anatomy.boundary[0] += image_all
    anatomy.boundary[1] += image_official
    anatomy.widths[f"{prediction.shape[0]}x{prediction.shape[1]}"] = truth["width"]
    wrong = predicted_all != truth["all_classes"]
    wrong &= truth["all_classes"] != IGNORE_INDEX
    anatomy.frame[0] += truth["counted_cells"]
    anatomy.frame[1] += frame_count(wrong, anatomy.grid)
    objects_before = len(anatomy.objects.rows)
    if truth["instance_ids"] is not None:
        if counts is None:
            counts = pair_counts(truth["label_ids"], prediction)
        instances_add(anatomy.objects, image_id, truth["instance_ids"], prediction, counts)
    new_rows = anatomy.objects.rows[objects_before:]
    has_objects = truth["instance_ids"] is not None
    anatomy.per_image.append({
        "id": image_id, "boundary_miou": finite_or_none(mean_boundary_iou(*image_all), 6),
        "objects": len(new_rows) if has_objects else None,
        "missed": sum(r["missed"] for r in new_rows) if has_objects else None})
    anatomy.images += 1


def bin_of(levels, bins=15):
    return np.minimum(np.asarray(levels, dtype=np.int64) * bins // 255, bins - 1)


def calibration_counts(truth, predicted, levels, num_classes, bins=15):
    cells_per_bin = num_classes * num_classes
    size = bins * cells_per_bin
    bin_cells = (bin_of(np.arange(256), bins) * cells_per_bin).astype(np.uint16)
    truth_cells = (np.arange(256) * num_classes).astype(np.uint16)
    truth_cells[IGNORE] = size
    cells = bin_cells[levels]
    cells += truth_cells[truth]
    cells += predicted
    counts = np.bincount(cells.ravel(), minlength=size + 1)[:size]
    kept_levels = np.bincount((levels.astype(np.uint16) + (truth == IGNORE) * np.uint16(256)).ravel(),
                              minlength=512)[:256]
    sums = np.bincount(bin_of(np.arange(256), bins), weights=kept_levels * np.arange(256) / 255.0,
                       minlength=bins)
    return counts.reshape(bins, num_classes, num_classes), sums
