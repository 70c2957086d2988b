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
        if instance_ids.shape != prediction.shape:
            raise ValueError(f"instanceIds {instance_ids.shape} and prediction {prediction.shape} differ in shape")
        for group in self.class_groups + self.category_groups:
            self.false_positives[(group.level, group.name)] += int(counts[group.false_rows][:, group.hits].sum())
        flat = np.flatnonzero(instance_ids > INSTANCE_OFFSET)
        ids = instance_ids.ravel()[flat].astype(np.int64)
        labels = ids // INSTANCE_OFFSET
        keep = IS_OBJECT_LABEL[np.minimum(labels, LUT_SIZE - 1)] & (labels < LUT_SIZE)
        if not keep.all():
            flat, ids, labels = flat[keep], ids[keep], labels[keep]
        self.images += 1
        if not ids.size:
            return
        ys, xs = np.divmod(flat, instance_ids.shape[1])
        values = prediction.ravel()[flat]
        own_label = self.value_label[values] == labels
        own_category = self.value_category[values] == LABEL_CATEGORY[labels]
        size = int(ids.max()) + 1  # ids < 34000: tables indexed by the id itself, no sorting
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
            if self.level == "class":
                self.weighted[("class", label.name)] += (label_hits[j] * weight, (size - label_hits[j]) * weight)
            self.weighted[("category", label.category)] += (category_hits[j] * weight,
                                                            (size - category_hits[j]) * weight)
            recall = (label_hits[j] if self.level == "class" else category_hits[j]) / size
            self.rows.append({
                "id": image_id, "instance": instance, "label": label.name,
                "class": label.name if self.level == "class" else label.category, "pixels": size,
                "x0": int(boxes[0, j]), "y0": int(boxes[1, j]), "x1": int(boxes[2, j]) + 1, "y1": int(boxes[3, j]) + 1,
                "recall": round(float(recall), 6), "missed": int(recall < MISSED_BELOW)})

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
