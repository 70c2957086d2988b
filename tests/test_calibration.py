"""Calibration of a run's confidence: ECE and reliability bins on hand-made confidences, mIoU
against coverage, and the confidence maps a trained run stores."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation.calibration import (
    BINS,
    bin_of,
    calibration_counts,
    coverage_curve,
    summarize_calibration,
    to_uint8,
)


def _summary(truth, predicted, confidence, k=3):
    counts, sums = calibration_counts(np.asarray(truth, np.uint8), np.asarray(predicted, np.uint8),
                                      to_uint8(np.asarray(confidence, np.float32)), k)
    return counts, sums, summarize_calibration(counts, sums)


def test_bins_are_equal_width_on_the_stored_levels_and_255_falls_in_the_last():
    assert bin_of(np.array([0, 16, 17, 127, 254, 255])).tolist() == [0, 0, 1, 7, 14, 14]  # 255 / 15 = 17


def test_ece_by_hand():
    """Four pixels at level 230 (p = 230/255, bin 13; three right) and four at 153 (p = 0.6, bin 9;
    two right): ECE = 4/8 |0.75 - 230/255| + 4/8 |0.5 - 0.6|."""
    truth = [[0, 1, 2, 0], [1, 1, 2, 2]]
    predicted = [[0, 1, 2, 1], [1, 0, 0, 2]]
    confidence = [[0.9, 0.9, 0.9, 0.9], [0.6, 0.6, 0.6, 0.6]]  # stored as levels 230 and 153
    counts, sums, summary = _summary(truth, predicted, confidence)
    assert summary["ece"] == pytest.approx(0.5 * abs(0.75 - 230 / 255) + 0.5 * abs(0.5 - 0.6))
    assert summary["count"][13] == 4 and summary["count"][9] == 4 and summary["pixels"] == 8
    assert summary["accuracy"][13] == pytest.approx(0.75) and summary["accuracy"][9] == pytest.approx(0.5)
    assert summary["confidence"][13] == pytest.approx(230 / 255) and summary["confidence"][9] == pytest.approx(0.6)
    assert summary["accuracy"][0] is None and summary["confidence"][0] is None  # empty bins: no NaN in JSON
    assert counts.shape == (BINS, 3, 3) and counts.sum() == 8 and sums.sum() == pytest.approx(4 * 230 / 255 + 2.4)


def test_a_perfectly_calibrated_model_has_ece_0_and_pixels_without_a_class_are_left_out():
    truth = [[0, 0, 255, 255]]
    predicted = [[0, 0, 1, 2]]
    confidence = [[1.0, 1.0, 0.2, 0.3]]
    _, _, summary = _summary(truth, predicted, confidence)
    assert summary["ece"] == 0.0 and summary["pixels"] == 2


def test_coverage_curve_keeps_the_confident_pixels():
    """Two confident right pixels (0.95) and two unsure wrong ones (0.4): above a threshold of
    0.4 only the right ones are kept, half the pixels, mIoU 1."""
    truth = [[0, 1, 0, 1]]
    predicted = [[0, 1, 1, 0]]
    confidence = [[0.95, 0.95, 0.4, 0.4]]
    counts, _, summary = _summary(truth, predicted, confidence, k=2)
    curve = summary["coverage_curve"]
    assert curve["threshold"][0] == 0.0 and curve["coverage"][0] == 1.0
    assert curve["miou"][0] == pytest.approx((1 / 3 + 1 / 3) / 2)  # each class: 1 TP, 1 FP, 1 FN
    above = bin_of(to_uint8(np.array([0.4])))[0] + 1  # the first threshold above the unsure pixels
    assert curve["coverage"][above] == 0.5 and curve["miou"][above] == 1.0 and curve["accuracy"][above] == 1.0
    assert curve["threshold"][-1] == pytest.approx(14 / 15) and curve["coverage"][-1] == 0.5  # 0.95 >= 0.933
    assert coverage_curve(counts) == curve


def test_stored_confidence_is_round_255_p():
    assert to_uint8(np.array([0.0, 0.5, 1 / 255 * 0.49, 1.0, 1.2], np.float32)).tolist() == [0, 128, 0, 255, 255]
