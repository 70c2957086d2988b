"""The tables and names of the dashboard's views (dashboard/views/) and the core's confusion
analytics they show, on inputs small enough to check by hand. No Streamlit, no trained run."""

from __future__ import annotations

import base64
import io
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, UnidentifiedImageError

import dashboard.pictures.drawing as drawing
import dashboard.views.hover_cells as hover_cells
import dashboard.views.image_filter as image_filter
import dashboard.views.intervals as intervals
import dashboard.views.leaderboard as leaderboard
import dashboard.views.numbers as numbers
import dashboard.views.per_class as per_class
import dashboard.views.run_names as run_names
import training.evaluation.confusions as confusions
from training.data.labels import IGNORE_INDEX
from training.evaluation.metrics import confusion_matrix

REPO = Path(__file__).resolve().parent.parent
NAN = float("nan")


def _same(values, expected) -> bool:
    """Element-wise equal within 1e-9, NaN matching NaN."""
    return np.allclose(np.asarray(values, dtype=float), np.asarray(expected, dtype=float), atol=1e-9,
                       equal_nan=True)


def test_the_views_need_no_streamlit():
    views = sorted(path.stem for path in (REPO / "dashboard" / "views").glob("*.py") if path.stem != "__init__")
    assert "per_class" in views and len(views) > 10
    code = f"import sys; {'; '.join(f'import dashboard.views.{name}' for name in views)}; " \
           "sys.exit('streamlit' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


# ---------------------------------------------------------------------------- overview

def test_leaderboard_puts_the_best_test_miou_first_and_adds_minutes():
    runs = pd.DataFrame({"run": ["a", "b", "c"], "miou": [0.5, 0.7, 0.6], "train_seconds": [120, 60, 30]})
    board = leaderboard.leaderboard(runs)
    assert list(board["run"]) == ["b", "c", "a"]
    assert list(board["train_minutes"]) == [1.0, 0.5, 2.0]
    assert list(runs.columns) == ["run", "miou", "train_seconds"]  # the cached table is left alone


def test_leaderboard_puts_runs_without_a_test_miou_last():
    runs = pd.DataFrame({"run": ["a", "b", "c"], "miou": [NAN, 0.7, 0.6], "train_seconds": [None, 60, 30]})
    board = leaderboard.leaderboard(runs)
    assert list(board["run"]) == ["b", "c", "a"]
    assert _same(board["train_minutes"], [1.0, 0.5, NAN])


@pytest.mark.parametrize("value, spec, unit, expected", [
    (0.12345, ".3f", "", "0.123"),
    (3, ".1f", "ms/image", "3.0 ms/image"),
    (np.float32(0.5), ".2f", "M", "0.50 M"),
    (None, ".3f", "", "-"),
    (NAN, ".3f", "", "-"),
    ("0.5", ".3f", "", "-"),  # a damaged metrics.json: a string where a number belongs
    (True, ".3f", "", "-"),
])
def test_number_text(value, spec, unit, expected):
    assert numbers.number_text(value, spec, unit) == expected


def test_class_sets_note_only_for_several_class_sets():
    assert run_names.class_sets_note(["categories8", "categories8"]) is None
    assert run_names.class_sets_note([]) is None
    note = run_names.class_sets_note(["categories8", "cityscapes19", "categories8"])
    assert "categories8, cityscapes19" in note and "class set" in note


def test_tradeoff_points_leave_out_runs_without_numbers_and_size_unknown_params_smallest():
    runs = pd.DataFrame({"run": ["a", "b", "c", "d"], "miou": [0.5, NAN, 0.6, 0.7],
                         "inference_ms": [3.0, 2.0, NAN, 1.0], "params": [2000, 10, 10, NAN]})
    points, left_out = leaderboard.tradeoff_points(runs)
    assert list(points["run"]) == ["a", "d"]
    assert list(points["params"]) == [2000, 2000]
    assert left_out == ["b", "c"]
    none_known = runs.assign(params=NAN)
    assert list(leaderboard.tradeoff_points(none_known)[0]["params"]) == [1, 1]


# ---------------------------------------------------------------------------- image explorer

# Image 1 has sky and car, 2 sky only, 3 car only, 4 both.
PRESENCE = pd.DataFrame({"sky": [True, True, False, True], "car": [True, False, True, True]},
                        index=[1, 2, 3, 4])
# A run's per-image table, rows not in id order: a tie (1 and 4), a NaN (2), an id outside the split (9).
PER_IMAGE = pd.DataFrame({"id": [4, 2, 9, 1, 3], "miou": [0.5, NAN, 0.0, 0.5, 0.2]})


@pytest.mark.parametrize("ids, classes, per_image, expected", [
    ([1, 2, 3, 4], (), None, [1, 2, 3, 4]),
    ([1, 2, 3, 4], ("sky",), None, [1, 2, 4]),
    ([1, 2, 3, 4], ("car",), None, [1, 3, 4]),
    ([1, 2, 3, 4], ("sky", "car"), None, [1, 4]),
    ([4, 3, 2, 1], ("sky",), None, [4, 2, 1]),  # the ids' own order is kept
    ([1, 2, 3, 4], (), PER_IMAGE, [3, 1, 4, 2]),  # worst first, tie by id, NaN last, 9 left out
    ([1, 2, 3, 4], ("sky",), PER_IMAGE, [1, 4, 2]),
    ([1, 5], (), PER_IMAGE, [1]),  # 5 was not evaluated by the run
    ([], ("sky",), PER_IMAGE, []),
])
def test_filter_and_rank_ids(ids, classes, per_image, expected):
    assert image_filter.filter_and_rank_ids(ids, classes, PRESENCE, per_image) == expected


@pytest.mark.parametrize("image_id, candidates, split, classes, order, expected", [
    (2, [1, 2, 3], "test", (), "", "2 of 3 images (test split)"),
    (2, [3, 2], "train", ("sky", "car"), "run1",
     "2 of 2 images (train split with sky, car, worst first for run1)"),
    (5, [], "test", ("human",), "", "no image matches (test split with human)"),
    (5, [1, 2], "all", (), "", "not among the 2 images of the filter (all split)"),
])
def test_position_text(image_id, candidates, split, classes, order, expected):
    assert image_filter.position_text(image_id, candidates, split, classes, order) == expected


@pytest.mark.parametrize("truth, predicted, expected", [
    ([[0, 1, IGNORE_INDEX], [1, 1, 0]], [[0, 0, 1], [1, 0, 0]], 2 / 5),  # the ignored pixel never counts
    ([[0, 1], [1, 0]], [[0, 1], [1, 0]], 0.0),
    ([[IGNORE_INDEX, IGNORE_INDEX]], [[0, 1]], 0.0),  # no ground truth at all
])
def test_wrong_share(truth, predicted, expected):
    confusion = confusion_matrix(np.array(truth, np.uint8), np.array(predicted, np.uint8), 2)
    assert confusions.wrong_share(confusion) == pytest.approx(expected)


# 8 counted pixels (one ignored). Rows of the confusion matrix (true) x columns (predicted):
#   [[2, 1, 0],      IoU_0 = 2 / (3 + 3 - 2) = 1/2
#    [0, 2, 1],      IoU_1 = 2 / (3 + 3 - 2) = 1/2
#    [1, 0, 1]]      IoU_2 = 1 / (2 + 2 - 1) = 1/3;  class 3 occurs nowhere: NaN
TRUTH = np.array([[0, 0, 1], [0, 1, 1], [2, 2, IGNORE_INDEX]], dtype=np.uint8)
PREDICTED = np.array([[0, 1, 1], [0, 1, 2], [2, 0, 1]], dtype=np.uint8)


def test_group_by_class_set_keeps_the_order_of_the_runs():
    classes_of = {"a": "cityscapes19", "b": "categories8", "c": "cityscapes19"}
    groups = run_names.group_by_class_set(["a", "b", "c"], classes_of)
    assert list(groups.items()) == [("cityscapes19", ["a", "c"]), ("categories8", ["b"])]
    assert run_names.group_by_class_set([], classes_of) == {}


def test_prediction_problem():
    fine = np.array([[0, 1], [7, 2]], dtype=np.uint8)
    assert confusions.mask_problem(fine, (2, 2), 8, "predictions/3.png") is None
    assert confusions.mask_problem(fine, (2, 3), 8, "predictions/3.png") == (
        "predictions/3.png has shape (2, 2), the ground truth (2, 3)")
    # an 8-class run's file holding 19-class indices, or a mask of garbage
    outside = np.array([[0, 12], [200, 12]], dtype=np.uint8)
    assert confusions.mask_problem(outside, (2, 2), 8, "predictions/3.png") == (
        "predictions/3.png holds class 12 (3 pixels outside the 8 classes)")
    assert confusions.mask_problem(outside, (2, 2), 19, "p.png") == (
        "p.png holds class 200 (1 pixel outside the 19 classes)")
    ignored = np.full((2, 2), IGNORE_INDEX, dtype=np.uint8)
    assert "holds class 255" in confusions.mask_problem(ignored, (2, 2), 19, "p.png")
    assert confusions.mask_problem(np.zeros((0, 3), np.uint8), (0, 3), 8, "p.png") is None


@pytest.mark.parametrize("metrics, expected", [
    ({"dataset": {"fingerprint": "abc"}}, False),
    ({"dataset": {"fingerprint": "old"}}, True),
    ({"dataset": {"fingerprint": ""}}, False),
    ({"dataset": {}}, False),
    ({"dataset": "abc"}, False),
    ({}, False),  # an older run does not say
])
def test_evaluated_on_another_index(metrics, expected):
    assert run_names.evaluated_on_another_index(metrics, "abc") is expected


def _confusion(predicted, num_classes: int = 4):
    return confusion_matrix(TRUTH, predicted, num_classes)


def test_iou_table_rows_are_classes_then_miou_and_columns_share_then_runs():
    perfect = np.where(TRUTH == IGNORE_INDEX, 0, TRUTH)  # the unlabelled pixel never counts
    names = ("a", "b", "c", "d")
    table = per_class.image_frame(confusions.image_table({"r1": _confusion(PREDICTED), "r2": _confusion(perfect)},
                                                         4), names)
    assert list(table.index) == ["a", "b", "c", "d", "mIoU"] and table.index.name == "class"
    assert list(table.columns) == ["share of image", "r1", "r2"]
    assert _same(table["share of image"], [3 / 8, 3 / 8, 2 / 8, 0, NAN])
    assert _same(table["r1"], [1 / 2, 1 / 2, 1 / 3, NAN, 4 / 9])  # the mean leaves the NaN out
    assert _same(table["r2"], [1, 1, 1, NAN, 1])


def test_iou_table_without_runs_or_ground_truth():
    table = per_class.image_frame(confusions.image_table({}, 2), ("a", "b"))
    assert list(table.columns) == ["share of image"]
    assert _same(table["share of image"], [0, 0, NAN])
    nothing = np.full((2, 2), IGNORE_INDEX, np.uint8)
    counts = confusion_matrix(nothing, np.zeros_like(nothing), 2)
    table = per_class.image_frame(confusions.image_table({"r": counts}, 2), ("a", "b"))
    assert _same(table["share of image"], [0, 0, NAN]) and _same(table["r"], [NAN, NAN, NAN])


@pytest.mark.parametrize("height, width, rows, columns, steps", [
    (16, 32, slice(0, None, 1), slice(0, None, 1), (1, 1)),
    (1024, 2048, slice(4, None, 8), slice(4, None, 8), (8, 8)),
    (129, 257, slice(1, None, 2), slice(1, None, 2), (2, 2)),
    (300, 100, slice(1, None, 3), slice(0, None, 1), (3, 1)),
])
def test_hover_grid(height, width, rows, columns, steps):
    assert hover_cells.hover_grid(height, width) == (rows, columns, *steps)
    cells = np.zeros((height, width))[rows, columns].shape
    assert cells[0] <= hover_cells.HOVER_CELLS[0] and cells[1] <= hover_cells.HOVER_CELLS[1]


def test_hover_grid_with_other_limits():
    assert hover_cells.hover_grid(10, 10, max_cells=(5, 2)) == (slice(1, None, 2), slice(2, None, 5), 2, 5)


def test_class_name_lookup_names_whole_masks():
    lookup = hover_cells.class_name_lookup(("road", "sky"))
    assert lookup.shape == (256,)
    mask = np.array([[0, IGNORE_INDEX], [1, 7]], dtype=np.uint8)
    assert lookup[mask].tolist() == [["road", "ignored"], ["sky", "?"]]


# ---------------------------------------------------------------------------- model comparison

@pytest.mark.parametrize("metrics, expected", [
    ({"class_names": ["a", "b"], "iou": {"b": 0.1, "a": 0.2}}, ["a", "b"]),
    ({"iou": {"x": 0.1, "y": 0.2}}, ["x", "y"]),  # an older run: no class_names
    ({}, []),
])
def test_class_names(metrics, expected):
    assert per_class.class_names(metrics) == expected


@pytest.mark.parametrize("metrics, size, expected", [
    ({"confusion_names": ["a", "b", "sink"], "class_names": ["a", "b"]}, 3, ["a", "b", "sink"]),
    ({"class_names": ["a", "b"]}, 3, ["a", "b", "class 2"]),
    ({"class_names": ["a", "b"]}, 1, ["a"]),
    ({}, 2, ["class 0", "class 1"]),
])
def test_confusion_names(metrics, size, expected):
    assert per_class.confusion_names(metrics, size) == expected


def test_iou_frame_joins_the_class_sets_of_the_runs():
    frame = per_class.iou_frame({
        "r1": {"class_names": ["a", "b"], "iou": {"a": 0.5, "b": None}, "miou": 0.5},
        "r2": {"class_names": ["a", "c"], "iou": {"a": 0.25, "c": 0.75}, "miou": 0.5},
    })
    assert list(frame.index) == ["a", "b", "c", "mIoU"] and frame.index.name == "class"
    assert list(frame.columns) == ["r1", "r2"]
    assert _same(frame["r1"], [0.5, NAN, NAN, 0.5])
    assert _same(frame["r2"], [0.25, NAN, 0.75, 0.5])


def test_iou_frame_of_a_damaged_metrics_json_has_nan_where_numbers_are_not_numbers():
    damaged = {"class_names": ["sky", "car"], "iou": {"sky": "good", "car": 0.5}, "miou": [1]}
    frame = per_class.iou_frame({"a": damaged, "b": {"iou": ["not", "a", "mapping"], "miou": 0.25}})
    assert list(frame.index) == ["sky", "car", "mIoU"]
    assert _same(frame["a"], [NAN, 0.5, NAN]) and _same(frame["b"], [NAN, NAN, 0.25])


@pytest.mark.parametrize("value, expected", [(1, 1.0), (0.5, 0.5), (np.int64(3), 3.0), (None, NAN), ("0.5", NAN),
                                             ([1], NAN), ({}, NAN), (True, NAN)])
def test_as_number(value, expected):
    assert _same(numbers.as_number(value), expected)


def test_iou_frame_of_no_runs():
    frame = per_class.iou_frame({})
    assert list(frame.index) == ["mIoU"] and frame.empty


@pytest.mark.parametrize("matrix, expected", [
    ([[9, 1, 0], [2, 8, 5], [0, 5, 7]], (1, 2)),  # the diagonal never counts; a tie: the first cell
    ([[1, 0], [4, 9]], (1, 0)),
    ([[5, 0], [0, 5]], (0, 1)),  # nothing confused: still a cell off the diagonal
])
def test_largest_confusion(matrix, expected):
    assert confusions.largest_confusion(np.array(matrix)) == expected


@pytest.mark.parametrize("matrix, expected", [
    ([[1, 3], [4, 0]], [[0.25, 0.75], [1.0, 0.0]]),
    ([[2, 2], [0, 0]], [[0.5, 0.5], [0.0, 0.0]]),  # a class that never occurs: a row of zeros
])
def test_row_normalised(matrix, expected):
    assert _same(confusions.row_normalised(np.array(matrix)), expected)


# Three images, 2 classes: pixels of class 0 predicted as 1 are 3, 6 and 3.
IDS = np.array([10, 11, 12])
MATRICES = np.array([[[5, 3], [1, 1]],
                     [[0, 6], [0, 0]],
                     [[2, 3], [0, 5]]])


def test_confused_images_most_pixels_first_ties_in_id_order():
    rows = confusions.confused_images(IDS, MATRICES, 0, 1, 2)
    assert [row["id"] for row in rows] == [11, 10, 12]
    assert [row["pixels"] for row in rows] == [6, 3, 3]
    assert _same([row["share"] for row in rows], [6 / 6, 3 / 10, 3 / 10])
    # each image's own mIoU: 11 gets both classes wrong; 10: 5/9 and 1/5; 12: 2/5 and 5/8
    assert _same([row["miou"] for row in rows], [0, (5 / 9 + 1 / 5) / 2, (2 / 5 + 5 / 8) / 2])


def test_confused_images_leaves_out_images_without_such_pixels_and_keeps_the_limit():
    assert [row["id"] for row in confusions.confused_images(IDS, MATRICES, 1, 0, 2)] == [10]
    assert [row["id"] for row in confusions.confused_images(IDS, MATRICES, 0, 1, 2, limit=2)] == [11, 10]
    assert confusions.confused_images(IDS, np.zeros_like(MATRICES), 0, 1, 2) == []


@pytest.mark.parametrize("runs, expected", [
    (["a", "b"], ("a", "c")),  # b is of another class set: the next of a's, c
    (["b"], ("b", "d")),
    (["d", "a"], ("d", "b")),
    (["c"], ("c", "a")),
])
def test_pick_pair_prefers_a_run_of_the_same_class_set(runs, expected):
    classes_of = {"a": "categories8", "b": "cityscapes19", "c": "categories8", "d": "cityscapes19"}
    assert intervals.pick_pair(runs, ["a", "b", "c", "d"], classes_of) == expected


def test_pick_pair_without_a_run_of_the_same_class_set():
    classes_of = {"a": "categories8", "b": "cityscapes19"}
    assert intervals.pick_pair(["a"], ["a", "b"], classes_of) == ("a", "b")
    assert intervals.pick_pair(["a"], ["a"], classes_of) == ("a", "a")


def test_difference_frame_is_b_minus_a():
    frame = per_class.difference_frame(
        {"class_names": ["a", "b"], "iou": {"a": 0.5, "b": 0.2}, "miou": 0.35},
        {"class_names": ["a", "b"], "iou": {"a": 0.75, "b": None}, "miou": 0.75})
    assert list(frame.columns) == ["A", "B", "B - A"]
    assert list(frame.index) == ["a", "b", "mIoU"]
    assert _same(frame["A"], [0.5, 0.2, 0.35])
    assert _same(frame["B"], [0.75, NAN, 0.75])
    assert _same(frame["B - A"], [0.25, NAN, 0.4])


@pytest.mark.parametrize("values, expected", [
    ([0.1, -0.2], 0.25),
    ([0.01], 0.05),
    ([NAN, -0.4], 0.5),
    ([NAN, NAN], 0.05),
    ([], 0.05),
])
def test_symmetric_limit(values, expected):
    assert numbers.symmetric_limit(np.array(values, dtype=float)) == pytest.approx(expected)


# ---------------------------------------------------------------------------- deployed model

def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


RGB = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]],
                [[0, 0, 0], [255, 255, 255], [10, 20, 30]]], dtype=np.uint8)


def test_decode_png_of_rgb_and_palette_images():
    assert np.array_equal(drawing.decode_png(base64.b64encode(_png(Image.fromarray(RGB))).decode()), RGB)
    palette = Image.new("P", (2, 2))
    palette.putdata([0, 1, 1, 0])
    palette.putpalette([128, 64, 0, 0, 0, 255] + [0] * 762)
    decoded = drawing.decode_png(base64.b64encode(_png(palette)).decode())
    assert decoded.shape == (2, 2, 3)
    assert decoded[0, 0].tolist() == [128, 64, 0] and decoded[0, 1].tolist() == [0, 0, 255]


def test_decode_image_refuses_what_is_not_an_image():
    assert np.array_equal(drawing.decode_image(_png(Image.fromarray(RGB))), RGB)
    with pytest.raises(UnidentifiedImageError):
        drawing.decode_image(b"not an image")


def test_iou_in_class_order():
    frame = per_class.iou_in_class_order(["b", "a", "c"], {"a": 0.5, "b": 0.25})
    assert list(frame["class"]) == ["b", "a", "c"]
    assert frame["IoU"].iloc[0] == 0.25 and frame["IoU"].iloc[1] == 0.5 and math.isnan(frame["IoU"].iloc[2])


@pytest.mark.parametrize("class_pixels, expected", [
    ({"road": 30, "sky": 10, "car": 60}, [("car", 0.6), ("road", 0.3), ("sky", 0.1)]),
    ({"a": 1, "b": 2, "c": 1}, [("b", 0.5), ("a", 0.25), ("c", 0.25)]),  # ties keep the API's order
    ({"a": 0}, [("a", 0.0)]),
    ({}, []),
])
def test_pixel_shares(class_pixels, expected):
    shares = per_class.pixel_share_frame(class_pixels)
    assert list(shares.columns) == ["class", "share"]
    assert list(shares["class"]) == [name for name, _ in expected]
    assert list(shares["share"]) == pytest.approx([share for _, share in expected])


def test_pixel_shares_keep_the_api_order_on_ties_among_many_classes():
    # more classes than a quicksort sorts by insertion: only a stable sort keeps the order
    class_pixels = {f"class {i:02d}": i % 3 for i in range(60)}
    shares = per_class.pixel_share_frame(class_pixels)
    expected = [name for count in (2, 1, 0) for name, pixels in class_pixels.items() if pixels == count]
    assert list(shares["class"]) == expected
