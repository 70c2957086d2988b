"""What a stored error anatomy says (``training.evaluation.anatomy_report``): recall by object size,
the missed objects, the error rate across the frame, on hand-made objects and counts."""

from __future__ import annotations

import numpy as np
import pytest

from training.evaluation.anatomy_report import (
    band_rates,
    check_frame_counts,
    error_rate,
    format_anatomy_report,
    grid_factors,
    missed_objects,
    object_columns,
    overall_error_rate,
    pooled_cells,
    rate_difference,
    recall_by_size,
    size_bins,
)


def _object(image_id, instance, name, pixels, recall):
    return {"id": image_id, "instance": instance, "label": name, "class": name, "pixels": pixels,
            "x0": 0, "y0": 0, "x1": 4, "y1": 2, "recall": recall, "missed": int(recall < 0.5)}


OBJECTS = [_object(1, 26001, "car", 3, 0.0), _object(1, 26002, "car", 2, 1.0), _object(2, 24001, "person", 40, 0.25),
           _object(2, 26003, "car", 1000, 0.9), _object(3, 26004, "car", 1000, 0.2)]


def test_size_bins_double_from_bin_to_bin():
    assert size_bins(np.array([1, 2, 3, 4, 7, 8, 1023, 1024])).tolist() == [0, 1, 1, 2, 2, 3, 9, 10]
    assert size_bins(np.array([0])).tolist() == [0]  # an empty object counts as a pixel


def test_recall_by_size_hand_computed():
    columns = object_columns(OBJECTS)
    rows = recall_by_size(columns["class"], columns["pixels"], columns["recall"], columns["missed"])
    by_key = {(row["class"], row["bin"]): row for row in rows}
    assert list(by_key) == [("car", 1), ("car", 9), ("person", 5)]
    small = by_key[("car", 1)]  # 2 and 3 pixels
    assert (small["low"], small["high"], small["objects"], small["recall"], small["missed"]) == (2, 3, 2, 0.5, 1)
    assert small["centre"] == pytest.approx(np.sqrt(2 * 4))
    large = by_key[("car", 9)]
    assert large["objects"] == 2 and large["recall"] == pytest.approx(0.55) and large["missed"] == 1


def test_missed_objects_largest_first_then_lowest_recall():
    missed = missed_objects(object_columns(OBJECTS))
    assert list(zip(missed["id"].tolist(), missed["instance"].tolist())) == [(3, 26004), (2, 24001), (1, 26001)]
    assert missed["label"].tolist() == ["car", "person", "car"]


def test_object_columns_name_the_line_that_is_not_a_number():
    with pytest.raises(ValueError, match="line 3 holds 'many' in pixels"):
        object_columns([OBJECTS[0], {**OBJECTS[1], "pixels": "many"}])
    with pytest.raises(ValueError, match="lacks the columns recall"):
        object_columns([{k: v for k, v in OBJECTS[0].items() if k != "recall"}])


def test_frame_rates_pooling_and_differences():
    counts = np.zeros((2, 8, 16), dtype=np.int64)
    counts[0] = 10
    counts[1, :4, :] = 5  # the top half is wrong half of the time
    counts[0, 7, 15] = 0  # a cell with nothing counted
    rates = error_rate(counts)
    assert rates[0, 0] == 0.5 and rates[5, 0] == 0 and np.isnan(rates[7, 15])
    assert overall_error_rate(counts) == pytest.approx(4 * 16 * 5 / (8 * 16 * 10 - 10))
    pooled = pooled_cells(counts, 2)
    assert pooled.shape == (2, 4, 8) and pooled[0, 3, 7] == 30 and pooled[1, 0, 0] == 20
    assert grid_factors((128, 256)) == [1, 2, 4, 8, 16] and grid_factors((12, 16)) == [1]
    other = counts.copy()
    other[1] = 0
    assert rate_difference(counts, other)[0, 0] == 0.5
    with pytest.raises(ValueError, match="grids differ"):
        rate_difference(counts, counts[:, :4])
    bands = band_rates(counts)
    assert bands["rows"][:2] == pytest.approx([0.5, 0.5]) and bands["rows"][2:] == [0.0, 0.0]


def test_check_frame_counts_refuses_impossible_counts():
    good = np.array([[[4]], [[1]]])
    assert check_frame_counts(good).dtype == np.int64
    for bad in (np.array([[[1]], [[4]]]), np.zeros((3, 2, 2), dtype=np.int64), np.full((2, 2, 2), 0.5)):
        with pytest.raises(ValueError, match="frame_errors.npy"):
            check_frame_counts(bad)


def test_the_report_lists_sizes_missed_objects_and_the_frame():
    columns = object_columns(OBJECTS)
    by_size = recall_by_size(columns["class"], columns["pixels"], columns["recall"], columns["missed"])
    counts = np.zeros((2, 8, 16), dtype=np.int64)
    counts[0], counts[1, :, :4] = 10, 10
    text = format_anatomy_report(by_size, missed_objects(columns), counts, limit=2)
    assert "car           2-3: 0.50 (1/2)  512-1,023: 0.55 (1/2)" in text
    assert "largest missed objects (2 of 3)" in text and "image 3      car" in text
    assert "left to right (quarters):  100.0%  0.0%  0.0%  0.0%" in text
