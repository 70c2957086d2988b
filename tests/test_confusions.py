"""Confusion analytics of the core (``training.evaluation.confusions``) and the class shares
(``training.evaluation.shares``), on hand-made matrices and label maps; and ``python -m training
confusions RUN`` on a real run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.data.labels import get_class_set, label_id
from training.evaluation.confusions import (
    confused_images,
    format_confusions,
    image_table,
    largest_confusion,
    largest_confusions,
    metrics_over,
    row_normalised,
    shared_ids,
    wrong_share,
)
from training.evaluation.shares import class_shares, truth_pixels, truth_pixels_of

REPO = Path(__file__).resolve().parent.parent
C8, C19 = get_class_set("categories8"), get_class_set("cityscapes19")


def test_wrong_share_and_row_normalised():
    matrix = np.array([[6, 2], [0, 2]])
    assert wrong_share(matrix) == pytest.approx(0.2)
    assert wrong_share(np.zeros((2, 2))) == 0.0
    assert row_normalised(np.array([[6, 2], [0, 0]])).tolist() == [[0.75, 0.25], [0.0, 0.0]]


def test_largest_confusions_most_pixels_first_ties_in_row_order():
    matrix = np.array([[9, 3, 5], [5, 9, 0], [1, 0, 9]])
    assert largest_confusions(matrix) == [(0, 2, 5), (1, 0, 5), (0, 1, 3), (2, 0, 1)]
    assert largest_confusions(matrix, 2) == [(0, 2, 5), (1, 0, 5)]
    assert largest_confusion(matrix) == (0, 2)
    assert largest_confusion(np.diag([4, 4])) == (0, 1)  # nothing confused


def test_confused_images_rank_by_the_cell_with_the_image_share_and_miou():
    # Image 10: 3 of its 10 counted pixels of class 1 predicted 2; image 11: 4 of 20; image 12: none.
    matrices = np.zeros((3, 8, 8), dtype=np.int64)
    matrices[0, 1, 1], matrices[0, 1, 2], matrices[0, 2, 2] = 5, 3, 2
    matrices[1, 1, 1], matrices[1, 1, 2], matrices[1, 2, 2] = 16, 4, 0
    matrices[2, 1, 1] = 9
    rows = confused_images(np.array([10, 11, 12]), matrices, 1, 2, 8)
    assert [(row["id"], row["pixels"]) for row in rows] == [(11, 4), (10, 3)]
    assert rows[0]["share"] == pytest.approx(4 / 20) and rows[1]["share"] == pytest.approx(3 / 10)
    # Image 11: flat IoU 16/20, sky 0/4 -> 0.4; image 10: flat 5/8, sky 2/5.
    assert rows[0]["miou"] == pytest.approx((16 / 20 + 0) / 2) and rows[1]["miou"] == pytest.approx((5 / 8 + 2 / 5) / 2)


def test_image_table_shares_are_of_the_counted_ground_truth():
    a = np.zeros((20, 20), dtype=np.int64)  # cityscapes19: 19 classes and the sink
    a[0, 0], a[0, 1], a[13, 13], a[13, 19] = 6, 2, 1, 1  # road 8 pixels, car 2 (1 predicted "no class")
    b = np.zeros((20, 20), dtype=np.int64)
    b[0, 0], b[13, 13] = 8, 2
    table = image_table({"a": a, "b": b}, 19)
    assert table["shares"][0] == pytest.approx(0.8) and table["shares"][13] == pytest.approx(0.2)
    assert table["shares"].sum() == pytest.approx(1.0)
    assert table["iou"]["a"][0] == pytest.approx(6 / 8) and table["iou"]["a"][13] == pytest.approx(1 / 2)
    assert np.isnan(table["iou"]["b"][5]) and table["miou"]["b"] == 1.0


def test_metrics_over_a_subset_are_those_of_the_summed_matrices():
    matrices = np.zeros((3, 8, 8), dtype=np.int64)
    matrices[0, 1, 1], matrices[1, 1, 2], matrices[2, 1, 1] = 4, 4, 100
    over = metrics_over([7, 8, 9], matrices, [7, 8], C8)
    assert over["iou"]["flat"] == pytest.approx(0.5) and over["iou"]["construction"] == 0.0
    assert over["iou"]["void"] is None and over["miou"] == pytest.approx(0.25)
    assert shared_ids([7, 8, -1, 9], [9, 7, -1]) == [7, 9]


def test_class_shares_from_labels_equal_those_from_the_confusion_rows():
    """The explorer's filter (label files) and its column (confusion rows) use one definition: on a
    cityscapes19 image with ignored pixels both give the same shares, over the counted pixels."""
    road, car, parking, unlabeled = (label_id(n) for n in ("road", "car", "parking", "unlabeled"))
    label_ids = np.array([[road, road, road, car], [parking, unlabeled, road, car]], dtype=np.uint8)
    pixels = truth_pixels(label_ids, C19)
    assert pixels.sum() == 6 and pixels[C19.names.index("road")] == 4 and pixels[C19.names.index("car")] == 2
    from training.evaluation.evaluator import Evaluator
    confusion = Evaluator(C19).add(label_ids, C19.lut[label_ids].clip(0, 18).astype(np.uint8)).all_classes
    from_rows = class_shares(truth_pixels_of(confusion, C19.num_classes))
    assert class_shares(pixels) == pytest.approx(from_rows)
    assert from_rows[C19.names.index("road")] == pytest.approx(4 / 6)  # not 4 / 8: ignored pixels are not counted
    assert class_shares(np.zeros(19)).sum() == 0


def test_format_confusions_lists_the_images_behind_each():
    matrix = np.array([[9, 3], [1, 9]])
    text = format_confusions(matrix, ["void", "flat"], 2, {(0, 1): [{"id": 4, "pixels": 3, "share": 0.25,
                                                                        "miou": 0.5}]})
    lines = text.splitlines()
    assert lines[1].split() == ["void", "flat", "3", "25.0%"]
    assert "image 4" in lines[2] and "25.0% of the image" in lines[2]
    assert lines[3].split() == ["flat", "void", "1", "10.0%"]


def test_the_confusions_command_on_a_trained_run(api_store):
    done = subprocess.run([sys.executable, "-m", "training", "confusions", api_store.run, "--artifacts",
                           str(api_store.artifacts), "--top", "2", "--images", "1"], capture_output=True, text=True,
                          cwd=REPO, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith(f"run {api_store.run}: categories8, test split")
    assert "predicted as" in done.stdout and "image mIoU" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "training", "confusions", api_store.run, "--artifacts",
                          str(api_store.artifacts), "--top", "0"], capture_output=True, text=True, cwd=REPO,
                         timeout=120)
    assert bad.returncode == 2 and "--top must be at least 1" in bad.stderr


def test_image_confusion_counts_no_class_as_a_miss_in_a_sink():
    from training.evaluation.confusions import image_confusion

    road, car, unlabeled = label_id("road"), label_id("car"), label_id("unlabeled")
    label_ids = np.array([[road, road, car, unlabeled]], dtype=np.uint8)
    predicted = np.array([[0, 255, 13, 0]], dtype=np.uint8)  # cityscapes19: road, no class, car, road
    matrix = image_confusion(label_ids, predicted, C19)
    assert matrix.shape == (20, 20) and matrix[0, 0] == 1 and matrix[0, 19] == 1 and matrix[13, 13] == 1
    assert matrix.sum() == 3  # the unlabeled pixel is not counted
    assert image_confusion(label_ids, np.array([[0, 0, 13, 0]], dtype=np.uint8), C19).shape == (19, 19)


def test_mask_problem_names_the_file_and_what_is_wrong():
    from training.evaluation.confusions import mask_problem

    mask = np.zeros((2, 3), dtype=np.uint8)
    assert mask_problem(mask, (2, 3), 8, "predictions/4.png") is None
    assert mask_problem(mask, (3, 2), 8, "predictions/4.png") == "predictions/4.png has shape (2, 3), the ground " \
                                                                  "truth (3, 2)"
    mask[0, :2] = 9
    assert mask_problem(mask, (2, 3), 8, "p.png") == "p.png holds class 9 (2 pixels outside the 8 classes)"
    mask[0, :2] = 255
    assert mask_problem(mask, (2, 3), 8, "p.png", no_class_allowed=True) is None
    assert "holds class 255" in mask_problem(mask, (2, 3), 8, "p.png")


def test_rank_b_worse_most_pixels_a_right_b_wrong_first():
    from training.evaluation.metrics import OUTCOME_NAMES, rank_b_worse

    counts = np.array([[90, 5, 0, 5], [50, 0, 10, 0], [80, 5, 5, 10], [10, 30, 0, 0]])
    rows = rank_b_worse([7, 3, 4, 9], counts)
    assert [row["id"] for row in rows] == [9, 4, 7]  # image 3: B never worse; 4 and 7 tie at 5, by id
    assert rows[0]["share"] == pytest.approx(30 / 40) and rows[0][OUTCOME_NAMES[1]] == 30
    assert rank_b_worse([7, 3, 4, 9], counts, limit=1)[0]["id"] == 9


def test_kept_share_counts_the_levels_at_or_above_the_threshold():
    from training.evaluation.calibration import kept_share, level_histogram

    levels = np.array([[0, 128, 128, 255]], dtype=np.uint8)
    histogram = level_histogram(levels)
    assert kept_share(histogram, 0.0) == 1.0 and kept_share(histogram, 128 / 255) == 0.75
    assert kept_share(histogram, 0.51) == 0.25 and kept_share(np.zeros(256, dtype=np.int64), 0.5) == 0.0
