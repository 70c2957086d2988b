"""The mIoU variants (``training.evaluation.variants``): all classes or official, pooled or per
image, hand-computed on tiny label maps, and equal to what an evaluation publishes."""

from __future__ import annotations

import numpy as np
import pytest

from training.data.labels import get_class_set, label_id
from training.evaluation.evaluator import Evaluator
from training.evaluation.variants import (
    MIOU,
    MIOU_OFFICIAL,
    PER_IMAGE,
    POOLED,
    image_miou,
    miou,
    pooled_miou,
    variant,
)

C8 = get_class_set("categories8")
ROAD, PARKING, SKY, UNLABELED = label_id("road"), label_id("parking"), label_id("sky"), label_id("unlabeled")
FLAT, SKY_CLASS, VOID = C8.names.index("flat"), C8.names.index("sky"), C8.names.index("void")


def _image(truth_rows, predicted_rows):
    return np.array(truth_rows, dtype=np.uint8), np.array(predicted_rows, dtype=np.uint8)


# Image 1: a road pixel predicted sky, a parking pixel (flat in the training table, ignored by the
# official evaluation) predicted flat, an unlabeled pixel (void) predicted void, a sky pixel right.
IMAGE_1 = _image([[ROAD, ROAD, PARKING, UNLABELED, SKY]], [[FLAT, SKY_CLASS, FLAT, VOID, SKY_CLASS]])
# Image 2: every pixel right, road and sky.
IMAGE_2 = _image([[ROAD, SKY, SKY]], [[FLAT, SKY_CLASS, SKY_CLASS]])


def _evaluated():
    evaluator = Evaluator(C8)
    for truth, predicted in (IMAGE_1, IMAGE_2):
        evaluator.add(truth, predicted)
    return evaluator


def test_hand_computed_values_of_the_four_variants():
    evaluator = _evaluated()
    stacks = evaluator.per_image_confusions()
    # All classes, pooled: void 1/1; flat: 4 truth (road, road, parking, road), 3 right, 0 extra -> 3/4;
    # sky: 3 truth, 3 right + 1 false alarm -> 3/4. Mean (1 + 0.75 + 0.75) / 3.
    assert miou(stacks.all_classes, C8, MIOU, POOLED) == pytest.approx((1 + 0.75 + 0.75) / 3)
    # Official, pooled: parking and unlabeled are not counted; flat 2/3 right (road, road of image 1 and
    # road of image 2: 2 right of 3), sky 3 right + 1 false alarm -> 3/4; void is not scored.
    assert miou(stacks.official, C8, MIOU_OFFICIAL, POOLED) == pytest.approx((2 / 3 + 3 / 4) / 2)
    # Per image, all classes: image 1: void 1, flat 2/3, sky 1/2 -> 13/18; image 2: 1.
    assert list(image_miou(stacks.all_classes, C8, MIOU)) == pytest.approx([(1 + 2 / 3 + 1 / 2) / 3, 1.0])
    assert miou(stacks.all_classes, C8, MIOU, PER_IMAGE) == pytest.approx(((1 + 2 / 3 + 1 / 2) / 3 + 1) / 2)
    # Per image, official: image 1: flat 1/2, sky 1/2; image 2: 1.
    assert miou(stacks.official, C8, MIOU_OFFICIAL, PER_IMAGE) == pytest.approx((0.5 + 1) / 2)


def test_the_pooled_variants_are_what_the_evaluation_publishes():
    summary = _evaluated().summary()
    stacks = _evaluated().per_image_confusions()
    assert pooled_miou(stacks.all_classes, C8, MIOU) == pytest.approx(summary["miou"], abs=1e-12)
    assert pooled_miou(stacks.official, C8, MIOU_OFFICIAL) == pytest.approx(summary["miou_official"], abs=1e-12)


def test_per_image_stacks_sum_to_the_published_matrices():
    evaluator = _evaluated()
    stacks = evaluator.per_image_confusions()
    assert stacks.all_classes.shape == stacks.official.shape == (2, 8, 8)
    assert (stacks.all_classes.sum(axis=0) == evaluator.confusion).all()
    assert (stacks.official.sum(axis=0) == evaluator.official_confusion).all()


def test_an_image_without_a_present_class_has_no_miou():
    empty = np.zeros((1, 8, 8), dtype=np.int64)
    assert np.isnan(image_miou(empty, C8, MIOU)[0])
    assert np.isnan(miou(empty, C8, MIOU_OFFICIAL, PER_IMAGE))


def test_labels_name_both_choices():
    assert MIOU.label() == "mIoU (all classes)" and MIOU_OFFICIAL.label() == "mIoU (official)"
    assert MIOU_OFFICIAL.label(PER_IMAGE) == "mean per-image mIoU (official)"
    assert variant("miou_official") is MIOU_OFFICIAL
    with pytest.raises(ValueError, match="unknown mIoU variant"):
        variant("miou_best")
    with pytest.raises(ValueError, match="unknown averaging"):
        MIOU.label("median")


def test_cityscapes19_official_rules_count_what_all_classes_count():
    c19 = get_class_set("cityscapes19")
    assert c19.official_is_all_classes and not C8.official_is_all_classes
    assert MIOU_OFFICIAL.scored(c19) == MIOU.scored(c19) == tuple(range(19))
    assert MIOU_OFFICIAL.scored(C8) == tuple(range(1, 8))
