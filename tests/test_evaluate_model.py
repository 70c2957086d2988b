"""evaluate_model reads ahead and finishes images in threads: same numbers, same order, errors at
their image.

The model is a stand-in with Keras' ``predict_on_batch``: its probabilities are a function of
the pixels it sees, so every number can be recomputed here without TensorFlow.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tests.cityscapes_builder import build_tiny_dataset, label_path
from training.data.cityscapes import DatasetError, read_pair
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.data.resize import resize_image
from training.evaluation.evaluator import Evaluator
from training.evaluation.masks import ordered_map
from training.fit import predict
from training.fit.predict import evaluate_model, upsample_argmax

SIZE = (8, 16)


class ColourModel:
    """Class k scores highest where the red channel is near k * 32: deterministic, image-dependent."""

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        red = batch[..., 0:1] * 255.0
        centres = np.arange(8, dtype=np.float32) * 32.0
        scores = -np.abs(red - centres) / 16.0
        exp = np.exp(scores - scores.max(-1, keepdims=True))
        return (exp / exp.sum(-1, keepdims=True)).astype(np.float32)


@pytest.fixture
def dataset(tmp_path):
    root = build_tiny_dataset(tmp_path / "data", train_per_city=1, val=5, height=24, width=48)
    return root, load_or_build_index(root).split("test")


def test_numbers_and_predictions_equal_a_plain_loop(dataset):
    root, entries = dataset
    class_set = get_class_set("categories8")
    seen = []
    result = evaluate_model(ColourModel(), root, entries, class_set, SIZE, progress=False,
                            on_prediction=lambda image_id, classes: seen.append((image_id, classes)))

    expected = Evaluator(class_set)
    for (image_id, classes), entry in zip(seen, entries):
        image, label_ids = read_pair(root, entry.image, entry.label)
        probabilities = ColourModel().predict_on_batch(resize_image(image, SIZE)[None].astype(np.float32) / 255.0)[0]
        np.testing.assert_array_equal(classes, upsample_argmax(probabilities, label_ids.shape))
        assert image_id == entry.id and classes.shape == label_ids.shape
        expected.add(label_ids, classes)
    assert [image_id for image_id, _ in seen] == [e.id for e in entries]
    assert [row["id"] for row in result["per_image"]] == [e.id for e in entries]
    np.testing.assert_array_equal(result["confusion"], expected.confusion)
    np.testing.assert_array_equal(result["per_image_confusion"].sum(0), expected.confusion)


def test_confidence_maps_and_calibration_equal_a_plain_loop(dataset):
    from training.evaluation.calibration import calibration_counts, summarize_calibration

    root, entries = dataset
    class_set = get_class_set("categories8")
    maps = {}
    result = evaluate_model(ColourModel(), root, entries, class_set, SIZE, progress=False,
                            on_confidence=lambda image_id, confidence: maps.setdefault(image_id, confidence))
    counts, sums = 0, 0
    for entry in entries:
        image, label_ids = read_pair(root, entry.image, entry.label)
        probabilities = ColourModel().predict_on_batch(resize_image(image, SIZE)[None].astype(np.float32) / 255.0)[0]
        classes, confidence = predict.upsample_with_confidence(probabilities, label_ids.shape)
        assert maps[entry.id].dtype == np.uint8 and maps[entry.id].shape == label_ids.shape
        np.testing.assert_array_equal(maps[entry.id], np.rint(confidence * 255).astype(np.uint8))
        image_counts, image_sums = calibration_counts(class_set.lut[label_ids], classes, maps[entry.id], 8)
        counts, sums = counts + image_counts, sums + image_sums
    assert result["calibration"] == summarize_calibration(counts, sums)
    assert 0 < result["calibration"]["ece"] < 1 and result["calibration"]["pixels"] == result["summary"]["pixels"]


def test_a_bad_file_fails_at_its_image_after_the_earlier_ones(dataset):
    root, entries = dataset
    label_path(root, "val", entries[3].stem).write_bytes(b"not a png")
    seen = []
    with pytest.raises(DatasetError, match=entries[3].stem):
        evaluate_model(ColourModel(), root, entries, get_class_set("categories8"), SIZE, progress=False,
                       on_prediction=lambda image_id, classes: seen.append(image_id))
    assert seen == [e.id for e in entries[:3]]


def test_read_ahead_keeps_order_and_stays_bounded(monkeypatch):
    loaded, lock = [], threading.Lock()

    def load(item):
        time.sleep(0.002 * (item % 3))  # uneven work must not reorder
        with lock:
            loaded.append(item)
        return item * 10

    consumed = []
    for value in ordered_map(load, list(range(12)), 1, depth=2):
        time.sleep(0.01)  # a slow consumer: the reader must wait, not run to the end
        with lock:
            assert len(loaded) - len(consumed) <= 3  # the item in hand plus at most two ahead
        consumed.append(value)
    assert consumed == [i * 10 for i in range(12)]
    assert list(ordered_map(load, [], 1)) == [] and list(ordered_map(load, [1], 1, depth=5)) == [10]


def test_read_ahead_raises_at_the_failing_item():
    def load(item):
        if item == 2:
            raise ValueError("item 2 is bad")
        return item

    stream = ordered_map(load, [0, 1, 2, 3], 2, depth=predict.READ_AHEAD)
    assert next(stream) == 0 and next(stream) == 1
    with pytest.raises(ValueError, match="item 2 is bad"):
        next(stream)
