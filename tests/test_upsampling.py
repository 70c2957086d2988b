"""``upsample_argmax`` (OpenCV, plane by plane, in bands above WHOLE_PLANE_PIXELS) against the
reference it replaces: ``keras.ops.image.resize(..., interpolation="bilinear")`` then argmax.

Both are float32 bilinear with half-pixel centres; they sum in another order, so the two argmaxes
may differ only where two classes are within a rounding error of each other. The tolerance, as
stated in ``upsample_argmax``'s docstring: at most 1e-5 of the pixels, whatever the path.
"""

import numpy as np
import pytest

from training.fit import predict
from training.fit.predict import upsample_argmax

TOLERANCE = 1e-5

# (source h, w) -> (output H, W): integer and non-integer factors, one axis down, a single row
SHAPES = [((128, 256), (1024, 2048)), ((16, 32), (37, 70)), ((96, 160), (1000, 1333)), ((7, 11), (100, 3)),
          ((64, 128), (64, 128)), ((32, 48), (16, 24)), ((1, 5), (9, 17)), ((24, 40), (257, 513))]


def _probabilities(shape: tuple[int, int], classes: int, seed: int) -> np.ndarray:
    """Softmax of smooth random logits, as a network's output looks (no exact ties)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 2.0, (*shape, classes)).astype(np.float32)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def _reference(probabilities: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import keras

    resized = keras.ops.image.resize(probabilities[None], size, interpolation="bilinear", antialias=False)
    return np.argmax(keras.ops.convert_to_numpy(resized)[0], axis=-1).astype(np.uint8)


def _disagreement(ours: np.ndarray, reference: np.ndarray) -> float:
    assert ours.shape == reference.shape and ours.dtype == np.uint8
    return float(np.mean(ours != reference))


@pytest.mark.parametrize("classes", [8, 19])
@pytest.mark.parametrize("source, size", SHAPES)
def test_whole_planes_agree_with_keras_bilinear(source, size, classes):
    probabilities = _probabilities(source, classes, seed=source[0] * 7 + classes)
    assert size[0] * size[1] <= predict.WHOLE_PLANE_PIXELS
    ours = upsample_argmax(probabilities, size)
    assert _disagreement(ours, _reference(probabilities, size)) <= TOLERANCE


@pytest.mark.parametrize("band_rows", [1, 7, 256])
@pytest.mark.parametrize("classes", [8, 19])
@pytest.mark.parametrize("source, size", SHAPES)
def test_bands_agree_with_keras_bilinear(monkeypatch, source, size, classes, band_rows):
    """The banded path, forced at every size (bands of 1 row, a band size that does not divide
    the height, and the default)."""
    monkeypatch.setattr(predict, "WHOLE_PLANE_PIXELS", 0)
    probabilities = _probabilities(source, classes, seed=source[1] * 5 + classes)
    ours = upsample_argmax(probabilities, size, band_rows=band_rows)
    assert _disagreement(ours, _reference(probabilities, size)) <= TOLERANCE


def test_bands_and_whole_planes_give_the_same_classes(monkeypatch):
    probabilities = _probabilities((96, 160), 19, seed=3)
    whole = upsample_argmax(probabilities, (1000, 1333))
    monkeypatch.setattr(predict, "WHOLE_PLANE_PIXELS", 0)
    banded = upsample_argmax(probabilities, (1000, 1333), band_rows=100)
    assert _disagreement(banded, whole) <= TOLERANCE


def test_ties_go_to_the_first_class_as_argmax_does():
    probabilities = np.full((4, 6, 8), 0.125, np.float32)
    probabilities[2:, :, 5] = 0.5
    probabilities[2:, :, 6] = 0.5  # a tie of 5 and 6: argmax takes 5
    classes = upsample_argmax(probabilities, (8, 12))
    np.testing.assert_array_equal(classes[:3], 0)
    np.testing.assert_array_equal(classes[5:], 5)


def test_one_class():
    assert upsample_argmax(np.ones((3, 4, 1), np.float32), (10, 10)).max() == 0


def test_an_output_above_the_whole_plane_limit_is_made_in_bands_by_default():
    size = (2100, 2100)
    assert size[0] * size[1] > predict.WHOLE_PLANE_PIXELS
    probabilities = _probabilities((128, 256), 8, seed=11)
    classes = upsample_argmax(probabilities, size)
    assert _disagreement(classes, _reference(probabilities, size)) <= TOLERANCE


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 1), (1, 5), (3, 3)])
def test_running_argmax_on_tiny_masks(shape):
    """OpenCV reads a 1x1 array as a scalar in some calls: a 1x1 upload once came back as class 255."""
    from training.fit.predict import _running_argmax

    rng = np.random.default_rng(sum(shape))
    for classes in (2, 8, 19):
        planes = [rng.random(shape, dtype=np.float32) for _ in range(classes)]
        expected = np.stack(planes, -1).argmax(-1)
        classes_found, top = _running_argmax([plane.copy() for plane in planes])
        np.testing.assert_array_equal(classes_found, expected)
        np.testing.assert_array_equal(top, np.stack(planes, -1).max(-1))


@pytest.mark.parametrize("size", [(40, 60), (2100, 2100)])
def test_the_confidence_is_the_top_resized_probability(size):
    """Whole and in bands: the confidence equals the largest of the bilinearly resized planes
    (Keras' resize as reference), and is a probability."""
    probabilities = _probabilities((16, 32), 8, seed=3)
    classes, confidence = predict.upsample_with_confidence(probabilities, size, band_rows=300)
    import keras

    resized = keras.ops.image.resize(probabilities[None], size, interpolation="bilinear", antialias=False)
    reference = keras.ops.convert_to_numpy(resized)[0]
    np.testing.assert_allclose(confidence, reference.max(-1), atol=1e-5)
    assert confidence.dtype == np.float32 and confidence.max() <= 1.0 + 1e-6
    assert (classes == upsample_argmax(probabilities, size, band_rows=300)).all()
