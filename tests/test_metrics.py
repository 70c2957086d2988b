import subprocess
import sys

import numpy as np
import pytest

from training.evaluation.metrics import (
    confusion_matrix,
    iou_per_class,
    mean_iou,
    pair_counts,
    pixel_accuracy,
    remap_counts,
)


def test_worked_example_of_the_report():
    # IoU_motorcycle = 71 / (71 + 36 + 85) = 0.37: 71 TP, 36 FP, 85 FN
    cm = np.array([[71, 85], [36, 500]])
    assert iou_per_class(cm)[0] == pytest.approx(71 / (71 + 36 + 85))
    assert round(float(iou_per_class(cm)[0]), 2) == 0.37


GT_3X3 = np.array([[0, 0, 1], [0, 1, 1], [2, 2, 2]])
PRED_3X3 = np.array([[0, 1, 1], [0, 1, 2], [2, 2, 0]])


def test_confusion_matrix_rows_are_ground_truth():
    cm = confusion_matrix(GT_3X3, PRED_3X3, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 2, 1], [1, 0, 2]]
    assert cm.dtype == np.int64


@pytest.mark.parametrize("gt, pred, expected", [
    (GT_3X3, PRED_3X3, [2 / 4, 2 / 4, 2 / 4]),  # tp / (row + col - tp) = 2 / (3 + 3 - 2)
    (np.array([0, 0, 0, 1]), np.array([0, 0, 1, 1]), [2 / 3, 1 / 2, np.nan]),
    (GT_3X3, GT_3X3, [1.0, 1.0, 1.0]),
    (np.zeros((3, 3), int), np.ones((3, 3), int), [0.0, 0.0, np.nan]),
])
def test_iou_per_class_hand_computed(gt, pred, expected):
    np.testing.assert_allclose(iou_per_class(confusion_matrix(gt, pred, 3)), expected)


def test_absent_class_is_nan_and_left_out_of_the_mean():
    cm = confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), 3)
    iou = iou_per_class(cm)
    assert np.isnan(iou[2])
    assert mean_iou(iou) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert np.isnan(mean_iou(np.array([np.nan, np.nan])))
    assert mean_iou(iou, classes=[1]) == pytest.approx(0.5)


def test_ignore_index_pixels_are_not_counted():
    gt = np.array([[0, 255], [1, 255]])
    pred = np.array([[0, 1], [1, 0]])
    cm = confusion_matrix(gt, pred, 2)
    assert cm.sum() == 2 and cm.tolist() == [[1, 0], [0, 1]]
    assert pixel_accuracy(cm) == 1.0


def test_pixel_accuracy():
    cm = confusion_matrix(GT_3X3, PRED_3X3, 3)
    assert pixel_accuracy(cm) == pytest.approx(6 / 9)
    assert np.isnan(pixel_accuracy(np.zeros((2, 2))))


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(np.zeros((2, 2), int), np.zeros((2, 3), int), 2)
    with pytest.raises(ValueError, match="prediction holds a class index outside"):
        confusion_matrix(np.zeros(3, int), np.array([0, 1, 7]), 2)
    with pytest.raises(ValueError, match="ground truth holds"):
        confusion_matrix(np.array([0, 9]), np.array([0, 1]), 2)


def test_accumulating_over_images_equals_one_big_image():
    rng = np.random.default_rng(1)
    gts = [rng.integers(0, 4, (5, 7)) for _ in range(3)]
    preds = [rng.integers(0, 4, (5, 7)) for _ in range(3)]
    summed = sum(confusion_matrix(g, p, 4) for g, p in zip(gts, preds))
    np.testing.assert_array_equal(summed, confusion_matrix(np.stack(gts), np.stack(preds), 4))


def test_pair_counts_then_remap_equals_mapping_every_pixel():
    rng = np.random.default_rng(2)
    gt = rng.integers(0, 34, (40, 60), dtype=np.uint8)
    pred = rng.integers(0, 34, (40, 60), dtype=np.uint8)
    lut = rng.integers(0, 5, 256).astype(np.uint8)
    lut[[0, 3]] = 255
    direct = confusion_matrix(lut[gt], lut[pred] % 255 % 5, 5)
    counts = pair_counts(gt, pred)
    via_table = remap_counts(counts, lut, lut % 255 % 5, 5)
    np.testing.assert_array_equal(direct, via_table)


def test_metrics_module_never_imports_tensorflow():
    code = ("import sys, training.evaluation.metrics, training.evaluation.evaluator, training.data.index,"
            " training.data.labels;"
            "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_paired_outcomes_on_hand_made_masks():
    from training.evaluation.metrics import (
        BOTH_RIGHT,
        BOTH_WRONG,
        ONLY_A_RIGHT,
        ONLY_B_RIGHT,
        outcome_counts,
        paired_outcomes,
    )
    from training.viz import OUTCOME_COLORS, outcome_picture

    truth = np.array([[0, 1, 2, 3, 255]], np.uint8)
    a = np.array([[0, 1, 0, 0, 1]], np.uint8)
    b = np.array([[0, 0, 2, 1, 1]], np.uint8)
    outcomes = paired_outcomes(truth, a, b)
    assert outcomes.tolist() == [[BOTH_RIGHT, ONLY_A_RIGHT, ONLY_B_RIGHT, BOTH_WRONG, 255]]
    assert outcome_counts(outcomes) == {"both right": 1, "A right, B wrong": 1, "B right, A wrong": 1,
                                        "both wrong": 1}
    photo = np.full((1, 5, 3), 100, np.uint8)
    picture = outcome_picture(photo, outcomes)
    assert picture[0, 0].tolist() == [30, 30, 30]  # both right: the photo dimmed
    assert [picture[0, i].tolist() for i in (1, 2, 3)] == OUTCOME_COLORS[1:].tolist()
    assert picture[0, 4].tolist() == [0, 0, 0]  # no ground truth
    with pytest.raises(ValueError, match="shapes differ"):
        paired_outcomes(truth, a[:, :4], b)
