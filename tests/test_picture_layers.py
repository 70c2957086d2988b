"""The comparison view's class layers: laid over the photo by the browser, they give the pictures
Python used to blend (``overlay``, ``keep_classes``, ``error_map``, ``keep_errors``)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from dashboard.pictures import drawing, layers
from training.data.labels import IGNORE_INDEX, get_class_set
from training.viz import dimmed_grey, error_map, overlay

C8 = get_class_set("categories8")


@pytest.fixture
def scene():
    rng = np.random.default_rng(4)
    photo = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    truth = rng.integers(0, C8.num_classes, (24, 40)).astype(np.uint8)
    truth[:3] = IGNORE_INDEX
    predicted = truth.copy()
    predicted[10:16, 5:30] = (predicted[10:16, 5:30] + 1) % C8.num_classes
    predicted[20:, :4] = IGNORE_INDEX  # an imported prediction that names no class there
    return photo, truth, predicted


def _rgba(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as opened:
        assert opened.mode == "P"  # one byte a pixel
        return np.asarray(opened.convert("RGBA"))


@pytest.mark.parametrize("opacity", [0.0, 0.35, 0.6, 1.0])
def test_a_class_layer_over_the_photo_is_the_overlay(scene, opacity):
    photo, truth, _ = scene
    blended = layers.composite(photo, layers.class_layer(truth, C8), opacity)
    assert np.abs(blended.astype(int) - overlay(photo, C8.colorize(truth), opacity)).max() <= 1  # rounding


def test_hidden_classes_are_transparent_and_no_class_is_black(scene):
    photo, _, predicted = scene
    shown = (C8.names.index("vehicle"), C8.names.index("flat"))
    layer = _rgba(layers.class_layer(predicted, C8, shown))
    visible = np.isin(predicted, shown)  # no class is none of the chosen classes
    assert np.array_equal(layer[..., 3] == 255, visible) and not layer[~visible, 3].any()
    everything = _rgba(layers.class_layer(predicted, C8))
    assert (everything[..., 3] == 255).all() and not everything[predicted == IGNORE_INDEX, :3].any()  # black
    blended = layers.composite(photo, layers.class_layer(predicted, C8, shown), 1.0)
    assert np.array_equal(blended, drawing.keep_classes(C8.colorize(predicted), photo, predicted, shown))


def test_an_error_layer_over_the_grey_photo_is_the_error_map(scene):
    photo, truth, predicted = scene
    grey = np.repeat(dimmed_grey(photo)[..., None], 3, axis=-1)
    assert np.array_equal(layers.composite(grey, layers.error_layer(truth, predicted, C8), 1.0),
                          error_map(photo, truth, predicted, C8))
    shown = (int(truth[12, 10]),)
    kept = drawing.keep_errors(error_map(photo, truth, predicted, C8), photo, truth, predicted, shown)
    assert np.array_equal(layers.composite(grey, layers.error_layer(truth, predicted, C8, shown), 1.0), kept)


def test_error_indices_by_hand():
    truth = np.array([[0, 1, 2, IGNORE_INDEX]], dtype=np.uint8)
    predicted = np.array([[0, 2, 1, 1]], dtype=np.uint8)
    assert layers.error_indices(truth, predicted).tolist() == [[layers.CLEAR, 1, 2, IGNORE_INDEX]]
    # only the pixels that touch class 2: 1 -> 2 (predicted) and 2 -> 1 (true); the unlabelled one was predicted 1
    assert layers.error_indices(truth, predicted, (2,)).tolist() == [[layers.CLEAR, 1, 2, layers.CLEAR]]
    # class 0 is right where it is; the unlabelled pixel was predicted 1: not about class 0 either
    assert layers.error_indices(truth, predicted, (0,)).tolist() == [[layers.CLEAR] * 4]
    assert layers.error_indices(truth, predicted, (1,)).tolist() == [[layers.CLEAR, 1, 2, IGNORE_INDEX]]


def test_a_full_size_layer_is_small():
    """A 2048x1024 class map, one byte a pixel, compressed: a small fraction of a blended JPEG."""
    truth = np.zeros((1024, 2048), dtype=np.uint8)
    truth[600:] = 1
    truth[200:500, 300:900] = 7
    assert len(layers.class_layer(truth, C8)) < 20_000
