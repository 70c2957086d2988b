"""Atomic writes and the one NaN -> null rule of every JSON and CSV the project writes."""

import json
import math

import numpy as np
import pytest

from training.files import finite_or_none, jsonable, write_json_atomic, write_text_atomic


@pytest.mark.parametrize("value, digits, expected", [
    (0.25, None, 0.25), (np.float32(0.5), None, 0.5), (1 / 3, 6, 0.333333), (7, None, 7.0),
    (float("nan"), None, None), (float("inf"), 3, None), (-math.inf, None, None), (None, None, None),
    (np.float64("nan"), 6, None),
])
def test_finite_or_none(value, digits, expected):
    result = finite_or_none(value, digits)
    assert result == expected and (result is None or type(result) is float)


def test_jsonable_walks_containers_and_numpy_values():
    data = {"iou": {"void": np.float64("nan"), "flat": np.float32(0.75)}, "counts": np.array([[1, 2], [3, 4]]),
            "images": np.int64(3), "ok": np.bool_(True), "list": (1.5, float("inf"), "text")}
    assert jsonable(data) == {"iou": {"void": None, "flat": 0.75}, "counts": [[1, 2], [3, 4]], "images": 3,
                              "ok": True, "list": [1.5, None, "text"]}
    json.dumps(jsonable(data), allow_nan=False)  # would raise on a NaN or a numpy value


def test_write_json_atomic_writes_null_for_nan_and_leaves_no_temporary(tmp_path):
    path = write_json_atomic(tmp_path / "sub" / "metrics.json", {"miou": float("nan"), "n": np.int64(2)})
    assert json.loads(path.read_text()) == {"miou": None, "n": 2}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = write_text_atomic(tmp_path / "table.csv", "old\n")
    with pytest.raises(TypeError):
        write_text_atomic(path, None)  # fails while writing the temporary file
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]
