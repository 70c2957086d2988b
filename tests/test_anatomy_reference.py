"""The error anatomy and the calibration table, made fast (issue 24), give every number they gave
before: each is compared with the previous code (``tests/anatomy_reference.py``, kept verbatim) on
generated 2048x1024 street scenes with model-like predictions, in both class sets and both kinds
of prediction, and on small maps of every shape the fast paths treat apart."""

from __future__ import annotations

import json

import anatomy_reference as reference
import cv2
import numpy as np
import pytest

from training.data.labels import get_class_set, label_id
from training.data.synthetic import CITY_STYLES, render_scene
from training.evaluation import boundary
from training.evaluation.anatomy import Anatomy, frame_count
from training.evaluation.boundary import boundary_band, boundary_counts, pixel_histogram
from training.evaluation.calibration import calibration_counts
from training.evaluation.metrics import pair_counts

PARKING, RAIL, CAR, PERSON = label_id("parking"), label_id("rail track"), label_id("car"), label_id("person")


def _model_like(label_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a model trained at 1/8 resolution predicts (smooth borders), with wrong blobs, labels
    the evaluation ignores and a value that is no labelId."""
    height, width = label_ids.shape
    small = label_ids[4::8, 4::8]
    present = np.unique(small)
    scores = [cv2.resize((small == v).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
              for v in present]
    prediction = present[np.argmax(scores, axis=0)].astype(np.uint8)
    for value in (*rng.integers(0, 34, 6), PARKING, RAIL, 255):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(2, width // 12)), int(rng.integers(2, height // 12)))
        cv2.ellipse(prediction, centre, axes, float(rng.uniform(0, 180)), 0, 360, int(value), -1)
    return prediction


@pytest.fixture(scope="module")
def scenes() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Three 2048x1024 scenes: labelIds (one with a parking lot and a rail track drawn in: the two
    modes then cut the ground truth differently), instanceIds, a model-like labelIds prediction."""
    rng = np.random.default_rng(24)
    found = []
    for seed, city in zip((5, 6, 7), CITY_STYLES):
        _, label_ids, instance_ids = render_scene(seed, city, height=1024, width=2048)
        if seed == 6:
            label_ids[900:1000, 100:600] = PARKING
            label_ids[850:900, 1500:2000] = RAIL
        found.append((label_ids, instance_ids, _model_like(label_ids, rng)))
    return found


def _prediction(class_set, kind: str, label_prediction: np.ndarray) -> np.ndarray:
    if kind == "label_ids":
        return label_prediction
    classes = class_set.lut[label_prediction]
    classes[classes == 255] = 0  # a model predicts a class everywhere
    return classes


def _same(a, b) -> bool:
    """Equal, NaN equal to NaN (through JSON, as the run store writes them)."""
    return json.dumps(a, sort_keys=True, default=lambda v: v.tolist()) == json.dumps(b, sort_keys=True,
                                                                                   default=lambda v: v.tolist())


@pytest.mark.parametrize("classes", ["categories8", "cityscapes19"])
@pytest.mark.parametrize("kind", ["label_ids", "classes"])
def test_the_anatomy_at_2048x1024_is_the_one_of_before(scenes, classes, kind):
    class_set = get_class_set(classes)
    fast, before = Anatomy(class_set, kind), Anatomy(class_set, kind)
    for image_id, (label_ids, instance_ids, label_prediction) in enumerate(scenes):
        prediction = _prediction(class_set, kind, label_prediction)
        truth = fast.truth(label_ids, instance_ids)
        old_truth = reference.prepare_truth(class_set, label_ids, instance_ids)
        for name in ("all_classes", "official", "all_band", "official_band", "counted_cells"):
            assert np.array_equal(getattr(truth, name), old_truth[name]), name
        scored = fast.score(image_id, truth, prediction)
        assert np.array_equal(scored.counts, pair_counts(label_ids, prediction))
        fast.add_scored(scored)
        reference.anatomy_add(before, image_id, old_truth, prediction)
    assert fast.images == before.images == 3
    assert np.array_equal(fast.boundary, before.boundary) and fast.boundary[:, 1].sum() > 0
    assert np.array_equal(fast.frame, before.frame) and fast.frame[1].sum() > 0
    assert fast.per_image == before.per_image and fast.widths == before.widths == {"1024x2048": 11}
    assert fast.objects.rows == before.objects.rows and len(fast.objects.rows) > 30
    assert fast.objects.false_positives == before.objects.false_positives
    assert all(np.array_equal(fast.objects.weighted[key], value)  # bit for bit, not approximately
               for key, value in before.objects.weighted.items())
    assert _same(fast.summary(), before.summary())


def test_an_image_without_instances_or_objects_is_the_one_of_before(scenes):
    class_set = get_class_set("cityscapes19")
    label_ids, instance_ids, label_prediction = scenes[0]
    no_objects = np.where(instance_ids > 1000, instance_ids // 1000, instance_ids).astype(np.int32)
    unknown_object = np.where(instance_ids > 1000, 7 * 1000 + 3, instance_ids).astype(np.int32)  # road "objects"
    fast, before = Anatomy(class_set, "label_ids"), Anatomy(class_set, "label_ids")
    for image_id, instances in enumerate((None, no_objects, unknown_object, instance_ids)):
        fast.add(image_id, fast.truth(label_ids, instances), label_prediction)
        reference.anatomy_add(before, image_id, reference.prepare_truth(class_set, label_ids, instances),
                              label_prediction)
    assert fast.per_image == before.per_image and fast.objects.rows == before.objects.rows
    assert fast.objects.images == before.objects.images == 3
    assert _same(fast.summary(), before.summary())


def test_the_calibration_table_at_2048x1024_is_the_one_of_before(scenes):
    rng = np.random.default_rng(3)
    for classes in ("categories8", "cityscapes19"):
        class_set = get_class_set(classes)
        for label_ids, _, label_prediction in scenes:
            truth = class_set.lut[label_ids]
            predicted = _prediction(class_set, "classes", label_prediction)
            smooth = cv2.GaussianBlur(rng.random((128, 256), dtype=np.float32), (0, 0), 4)
            levels = cv2.resize(cv2.normalize(smooth, None, 0, 255, cv2.NORM_MINMAX), (2048, 1024)).astype(np.uint8)
            counts, sums = calibration_counts(truth, predicted, levels, class_set.num_classes)
            old_counts, old_sums = reference.calibration_counts(truth, predicted, levels, class_set.num_classes)
            assert np.array_equal(counts, old_counts) and counts.dtype == old_counts.dtype
            assert np.array_equal(sums, old_sums)  # the same float sums, bit for bit


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (127, 255), (128, 256), (129, 257), (300, 200), (1024, 2048),
                                   (1023, 2047)])
def test_the_frame_grid_counts_are_the_ones_of_before(shape):
    rng = np.random.default_rng(shape[0] * 7 + shape[1])
    flags = rng.random(shape) < 0.3
    for grid in ((128, 256), (4, 4), (3, 5)):
        assert np.array_equal(frame_count(flags, grid), reference.frame_count(flags, grid)), grid
    view = flags[::-1, ::2]  # any strides
    assert np.array_equal(frame_count(view), reference.frame_count(np.ascontiguousarray(view)))


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64])
def test_boundary_counts_are_the_ones_of_before_on_small_maps(dtype):
    rng = np.random.default_rng(np.dtype(dtype).num)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        k, d = int(rng.integers(1, 6)), int(rng.integers(1, 5))
        truth = rng.choice([*range(k + 2), 255], (h, w)).astype(dtype)
        predicted = rng.choice([*range(k + 3), 255], (h, w)).astype(dtype)
        for arguments in ((truth, predicted, k, d),
                          (truth, predicted, k, d, boundary_band(truth, d), boundary_band(predicted, d))):
            fast, before = boundary_counts(*arguments), reference.boundary_counts(*arguments)
            assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in zip(fast, before)), (h, w, k, d)


def test_the_histogram_is_exact_in_bands_of_rows(monkeypatch):
    """Bins are float32 in OpenCV: past 2^24 pixels the image is counted in bands (forced small here)."""
    rng = np.random.default_rng(0)
    first, second = (rng.integers(0, 6, (37, 53), dtype=np.uint8) for _ in range(2))
    expected = pair_counts(first, second)[:8, :8]
    mask = (rng.random((37, 53)) < 0.5).astype(np.uint8)
    for exact_pixels in (1 << 24, 100, 53, 1):
        monkeypatch.setattr(boundary, "EXACT_PIXELS", exact_pixels)
        assert np.array_equal(pixel_histogram([first, second], [8, 8]), expected)
        assert np.array_equal(pixel_histogram([first, second], [8, 8], mask),
                              pair_counts(first * mask, second * mask)[:8, :8] - np.pad(
                                  [[(mask == 0).sum()]], ((0, 7), (0, 7))))
        assert np.array_equal(pixel_histogram([first], [4]), np.bincount(first.ravel(), minlength=8)[:4])


@pytest.mark.parametrize("seed", range(4))
def test_objects_on_small_maps_are_the_ones_of_before(seed):
    """Objects touching every border, wrapping from one row's end to the next row's start, split
    in pieces, one pixel wide, of labels without instances (left out), next to each other."""
    rng = np.random.default_rng(seed)
    for classes in ("cityscapes19", "categories8"):
        class_set = get_class_set(classes)
        fast, before = Anatomy(class_set).objects, Anatomy(class_set).objects
        for image_id in range(25):
            h, w = (int(v) for v in rng.integers(1, 30, 2))
            ids = rng.choice([7, 8, 21, 26], (h, w)).astype(np.int32)  # labelIds: no objects
            for _ in range(int(rng.integers(0, 8))):
                label = int(rng.choice([CAR, PERSON, 24, 33, 7]))  # 7 (road) has no instances
                y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
                tall, wide = int(rng.integers(1, 6)), int(rng.integers(1, 9))
                ids[y:y + tall, x:x + wide] = label * 1000 + int(rng.integers(0, 3))
            if w > 1 and h > 1:
                ids[0, -1] = ids[1, 0] = CAR * 1000 + 9  # one object, two pixels a row apart at either border
            prediction = rng.choice([0, 5, 11, 13, 24, 26, 255], (h, w)).astype(np.uint8)
            label_ids = np.where(ids > 1000, ids // 1000, ids).astype(np.uint8)
            counts = pair_counts(label_ids, prediction)
            for instance_ids in (ids, ids.astype(np.uint16)):
                scored = fast.score(image_id, instance_ids, prediction, counts)
                fast.add_scored(scored)
                reference.instances_add(before, image_id, ids, prediction, counts)
        assert fast.rows == before.rows and len(fast.rows) > 50
        assert fast.false_positives == before.false_positives
        assert all(np.array_equal(fast.weighted[key], value) for key, value in before.weighted.items())
