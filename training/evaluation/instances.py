"""Object-level scores from ``gtFine_instanceIds``: the official iIoU, and one row per object.

Pixel IoU lets a large car outweigh a hundred distant pedestrians. The official instance-level
score (``iIoU`` of ``cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling`` with
``evalInstLevelScore``) weights every object's true positive and false negative pixels by
``average size of its class / its size``, so each object counts about equally; false positives
(no object to weight by) come unweighted from the confusion counts. This module reproduces it:

* instances are the ids ``> 1000`` of the instanceIds PNG (``labelId x 1000 + k``), of labels
  with instances that are not ignored in evaluation (person, rider, car, truck, bus, train,
  motorcycle, bicycle), weighted by the official ``avgClassSize`` (read from the official module);
* per class (a ``cityscapes19`` run): an object's pixels predicted as its own label are true
  positives; false positives are pixels of other evaluated labels predicted as the label;
* per category (human, vehicle; every run): the same with "predicted as any label of the
  category", and false positives from labels of other categories;
* a row per object (``instances.csv``): pixels, bounding box, recall (share of its pixels
  predicted as its class of the run's set) and ``missed`` (recall below 0.5).

``tests/test_instances.py`` compares the numbers with the official code on the same files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling import args as _official_settings

from training.data.labels import CATEGORY_NAMES, ID_TO_LABEL, LUT_SIZE, NUM_LABEL_IDS, ClassSet, label_id
from training.evaluation.boundary import pixel_histogram, scratch
from training.evaluation.metrics import mean_iou
from training.files import finite_or_none

AVERAGE_INSTANCE_SIZE: dict[str, float] = dict(_official_settings.avgClassSize)
INSTANCE_OFFSET = 1000  # instanceIds = labelId * 1000 + k; ids of at most 1000 are not objects
MISSED_BELOW = 0.5
NONE = 255
INSTANCE_COLUMNS = ("id", "instance", "label", "class", "pixels", "x0", "y0", "x1", "y1", "recall", "missed")

OBJECT_LABELS = tuple(label.id for label in ID_TO_LABEL.values() if label.hasInstances and not label.ignoreInEval)
EVALUATED_LABELS = tuple(label.id for label in ID_TO_LABEL.values() if not label.ignoreInEval)
CATEGORY_INDEX = {name: index for index, name in enumerate(CATEGORY_NAMES)}
OBJECT_CATEGORIES = tuple(sorted({ID_TO_LABEL[i].category for i in OBJECT_LABELS}, key=CATEGORY_INDEX.get))


def _table(pairs) -> np.ndarray:
    table = np.full(LUT_SIZE, NONE, dtype=np.uint8)
    for key, value in pairs:
        table[key] = value
    return table


LABEL_CATEGORY = _table((i, CATEGORY_INDEX[label.category]) for i, label in ID_TO_LABEL.items())
IS_OBJECT_LABEL = np.isin(np.arange(LUT_SIZE), OBJECT_LABELS)
IS_EVALUATED_LABEL = np.isin(np.arange(LUT_SIZE), EVALUATED_LABELS)


@dataclass(frozen=True)
class Group:
    """What one iIoU is computed for: a label (class level) or a category.

    ``hits[v]``: a prediction value ``v`` counts as this group; ``false_rows[l]``: ground truth of
    labelId ``l`` predicted as the group is a false positive.
    """

    name: str
    level: str  # "class" or "category"
    hits: np.ndarray
    false_rows: np.ndarray


def _run_ends(flat: np.ndarray, ids: np.ndarray, width: int) -> np.ndarray:
    """Positions in ``flat`` (sorted flat indices of object pixels, ``ids`` theirs) of the first and
    last pixel of every horizontal run of one id. An object's extreme pixel in any direction is one
    of them (its left-most pixel starts a run, its right-most ends one, its first and last in row
    order start and end one), so its box is the box of those: a few per cent of its pixels."""
    count = len(flat)
    starts = np.empty(count, dtype=bool)
    starts[0] = True
    np.not_equal(np.diff(flat), 1, out=starts[1:])  # a gap before the pixel
    starts[1:] |= ids[1:] != ids[:-1]  # another object before it
    rows = np.searchsorted(flat, np.arange(width, flat[-1] + 1, width))  # first object pixel of each row
    starts[rows[rows < count]] = True  # a run never goes on past the end of its row
    first = np.flatnonzero(starts)
    return np.concatenate([first, first[1:] - 1, [count - 1]])


@dataclass
class ImageObjects:
    """One image's instance-level numbers (``InstanceScores.score``), to be added in order."""

    image_id: int
    false_positives: list[tuple[tuple[str, str], int]]  # per group
    weighted: list[tuple[tuple[str, str], tuple[float, float]]]  # per object: group, (tp, fn) weighted
    rows: list[dict]


class InstanceScores:
    """Streaming instance-level evaluation of one class set.

    Example::

        scores = InstanceScores(get_class_set("cityscapes19"))
        for image_id, instance_ids, predicted, counts in images:
            scores.add(image_id, instance_ids, predicted, counts)
        scores.summary()["mean_iiou"], scores.rows   # the official iIoU, one row per object
    """

    def __init__(self, class_set: ClassSet, prediction_kind: str = "classes"):
        self.class_set = class_set
        # value -> labelId it stands for, and value -> category index, for every prediction value.
        if prediction_kind == "label_ids":
            self.value_label = _table((i, i) for i in range(NUM_LABEL_IDS))
            self.value_category = LABEL_CATEGORY.copy()
        elif class_set.name == "cityscapes19":
            self.value_label = _table((k, label_id(name)) for k, name in enumerate(class_set.names))
            self.value_category = LABEL_CATEGORY[self.value_label]
        else:  # categories8: a class is a category and names no single label
            self.value_label = np.full(LUT_SIZE, NONE, dtype=np.uint8)
            self.value_category = _table((k, k) for k in range(class_set.num_classes))
        self.level = "class" if class_set.name == "cityscapes19" else "category"
        self.class_groups = [self._label_group(i) for i in OBJECT_LABELS] if self.level == "class" else []
        self.category_groups = [self._category_group(name) for name in OBJECT_CATEGORIES]
        groups = self.class_groups + self.category_groups
        self.weighted = {(g.level, g.name): np.zeros(2) for g in groups}  # tp, fn weighted
        self.false_positives = {(g.level, g.name): 0 for g in groups}
        self.rows: list[dict] = []
        self.images = 0

    def _label_group(self, label: int) -> Group:
        rows = IS_EVALUATED_LABEL.copy()
        rows[label] = False
        return Group(ID_TO_LABEL[label].name, "class", self.value_label == label, rows)

    def _category_group(self, name: str) -> Group:
        category = CATEGORY_INDEX[name]
        rows = IS_EVALUATED_LABEL & (LABEL_CATEGORY != category)
        return Group(name, "category", self.value_category == category, rows)

    def add(self, image_id: int, instance_ids: np.ndarray, prediction: np.ndarray, counts: np.ndarray) -> None:
        """Add one image.

        Args:
            instance_ids: ``(H, W)`` integer ``gtFine_instanceIds``.
            prediction: ``(H, W)`` uint8 prediction values (class indices or labelIds).
            counts: the image's ``(256, 256)`` (ground-truth labelId, prediction value) counts
                (``training.evaluation.metrics.pair_counts``), for the false positives.
        """
        self.add_scored(self.score(image_id, instance_ids, prediction, counts))

    def score(self, image_id: int, instance_ids: np.ndarray, prediction: np.ndarray,
              counts: np.ndarray) -> ImageObjects:
        """One image's objects and counts (``add``'s arguments), not yet added: safe to run in
        several threads at once. Per object, its pixels, its hits and its box come from tables over
        the object's few pixel values and rows, never from per-pixel scatter."""
        if instance_ids.shape != prediction.shape:
            raise ValueError(f"instanceIds {instance_ids.shape} and prediction {prediction.shape} differ in shape")
        false_positives = [((group.level, group.name), int(counts[group.false_rows][:, group.hits].sum()))
                           for group in self.class_groups + self.category_groups]
        scored = ImageObjects(image_id, false_positives, [], [])
        flat = np.flatnonzero(np.greater(instance_ids, INSTANCE_OFFSET,
                                         out=scratch("objects", instance_ids.shape, bool)))
        if not flat.size:
            return scored
        ids = instance_ids.ravel()[flat]
        pixels = np.bincount(ids)
        size = pixels.size
        found = np.flatnonzero(pixels)
        labels = found // INSTANCE_OFFSET
        valid = (labels < LUT_SIZE) & IS_OBJECT_LABEL[np.minimum(labels, LUT_SIZE - 1)]
        if not valid.all():  # ids of labels without objects: their pixels are left out
            keep = np.zeros(size, dtype=bool)
            keep[found[valid]] = True
            kept = keep[ids]
            flat, ids, found, labels = flat[kept], ids[kept], found[valid], labels[valid]
            if not found.size:
                return scored
        objects = len(found)
        # An object's row in the tables below (uint8 while they fit: OpenCV counts the pairs).
        slot = np.zeros(size, dtype=np.uint8 if objects <= 255 else np.int64)
        slot[found] = np.arange(objects)
        slot = slot[ids]
        height, width = instance_ids.shape
        # Pixels per (object, prediction value): an object's hits are the values its label or
        # category takes, read off the table.
        values = prediction.ravel()[flat]
        if slot.dtype == np.uint8 and values.dtype == np.uint8:
            by_value = pixel_histogram([slot[None], values[None]], [objects, LUT_SIZE]).astype(np.int64)
        else:
            by_value = np.bincount(slot.astype(np.int64) * LUT_SIZE + values,
                                   minlength=objects * LUT_SIZE).reshape(objects, LUT_SIZE)
        pixels = by_value.sum(axis=1)
        own_label = self.value_label[None, :] == labels[:, None]
        own_category = self.value_category[None, :] == LABEL_CATEGORY[labels][:, None]
        label_hits = (by_value * own_label).sum(axis=1).astype(np.float64)
        category_hits = (by_value * own_category).sum(axis=1).astype(np.float64)
        # Boxes: the first and last row and column each object touches, found among its runs' ends.
        ends = _run_ends(flat, ids, width)
        ys, xs = np.divmod(flat[ends], width)
        slot = slot[ends].astype(np.int64)
        rows = np.bincount(slot * height + ys, minlength=objects * height).reshape(objects, height) > 0
        columns = np.bincount(slot * width + xs, minlength=objects * width).reshape(objects, width) > 0
        y0, y1 = rows.argmax(axis=1), height - 1 - rows[:, ::-1].argmax(axis=1)
        x0, x1 = columns.argmax(axis=1), width - 1 - columns[:, ::-1].argmax(axis=1)
        for j, instance in enumerate(found.tolist()):
            label = ID_TO_LABEL[instance // INSTANCE_OFFSET]
            size = int(pixels[j])
            weight = AVERAGE_INSTANCE_SIZE[label.name] / size
            if self.level == "class":
                scored.weighted.append((("class", label.name),
                                        (label_hits[j] * weight, (size - label_hits[j]) * weight)))
            scored.weighted.append((("category", label.category),
                                    (category_hits[j] * weight, (size - category_hits[j]) * weight)))
            recall = (label_hits[j] if self.level == "class" else category_hits[j]) / size
            scored.rows.append({
                "id": image_id, "instance": instance, "label": label.name,
                "class": label.name if self.level == "class" else label.category, "pixels": size,
                "x0": int(x0[j]), "y0": int(y0[j]), "x1": int(x1[j]) + 1, "y1": int(y1[j]) + 1,
                "recall": round(float(recall), 6), "missed": int(recall < MISSED_BELOW)})
        return scored

    def add_scored(self, scored: ImageObjects) -> None:
        """Add an image ``score`` made (the weighted sums in the order of its objects)."""
        for key, false_positives in scored.false_positives:
            self.false_positives[key] += false_positives
        for key, weighted in scored.weighted:
            self.weighted[key] += weighted
        self.rows.extend(scored.rows)
        self.images += 1

    def _scores(self, groups: list[Group]) -> dict[str, float]:
        scores = {}
        for group in groups:
            tp, fn = self.weighted[(group.level, group.name)]
            denominator = tp + fn + self.false_positives[(group.level, group.name)]
            scores[group.name] = tp / denominator if denominator > 0 else float("nan")
        return scores

    def summary(self) -> dict:
        """``iiou`` per class of the run's set that has objects (for ``categories8`` the
        categories human and vehicle), ``mean_iiou`` over those with a score; for ``cityscapes19``
        also ``iiou_categories`` and ``mean_iiou_categories``; object and missed counts."""
        own = self._scores(self.class_groups if self.level == "class" else self.category_groups)
        result = {
            "iiou": {name: finite_or_none(v) for name, v in own.items()},
            "mean_iiou": finite_or_none(mean_iou(np.array(list(own.values())))),
        }
        if self.level == "class":
            categories = self._scores(self.category_groups)
            result["iiou_categories"] = {name: finite_or_none(v) for name, v in categories.items()}
            result["mean_iiou_categories"] = finite_or_none(mean_iou(np.array(list(categories.values()))))
        result["instances"] = {"objects": len(self.rows), "missed": sum(r["missed"] for r in self.rows),
                               "missed_below_recall": MISSED_BELOW}
        return result
