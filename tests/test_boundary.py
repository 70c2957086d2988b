"""Boundary IoU: the boundary band against the reference ``mask_to_boundary`` (written here with
OpenCV exactly as published), against the band as it was computed before OpenCV (``reference_band``,
kept here: the numbers must not move), and hand-made cases."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from training.data.synthetic import CITY_STYLES, render_scene
from training.evaluation.boundary import (
    boundary_band,
    boundary_counts,
    boundary_iou,
    boundary_width,
    mean_boundary_iou,
    packed_bands,
)


def reference_mask_to_boundary(mask: np.ndarray, dilation: int) -> np.ndarray:
    """The boundary-iou-api's ``mask_to_boundary`` with the dilation given in pixels."""
    h, w = mask.shape
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), dtype=np.uint8), iterations=dilation)[1:h + 1, 1:w + 1]
    return mask - eroded


def test_the_width_follows_the_reference_rule():
    assert boundary_width((1024, 2048)) == 11  # round(0.005 x 2289.7)
    assert boundary_width((256, 512)) == 3
    assert boundary_width((16, 32)) == 1  # never below one pixel
    assert boundary_width((1024, 2048), 0.02) == 46
    with pytest.raises(ValueError, match="positive"):
        boundary_width((16, 32), 0)


@pytest.mark.parametrize("seed", range(6))
def test_every_class_boundary_equals_the_reference(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(1, 48, 2))
        d = int(rng.integers(1, 7))
        blocky = cv2.resize(rng.integers(0, 4, (max(1, h // 4), max(1, w // 4)), dtype=np.uint8), (w, h),
                            interpolation=cv2.INTER_NEAREST)
        noisy = rng.integers(0, 3, (h, w), dtype=np.uint8)
        for class_map in (blocky, noisy):
            band = boundary_band(class_map, d)
            for c in np.unique(class_map):
                expected = reference_mask_to_boundary((class_map == c).astype(np.uint8), d).astype(bool)
                assert np.array_equal((class_map == c) & band, expected), (h, w, d, c)


def test_a_one_pixel_object_is_all_boundary_and_a_shifted_one_scores_zero():
    truth = np.zeros((20, 20), dtype=np.uint8)
    truth[10, 10] = 1
    predicted = np.zeros_like(truth)
    predicted[10, 11] = 1
    band = boundary_band(truth, 1)
    assert band[10, 10] and band[9:12, 9:12].all() and not band[5, 5]  # the dot and its ring
    intersection, union = boundary_counts(truth, predicted, 2, 1)
    # class 1: G_d = {(10,10)}, P_d = {(10,11)}: no overlap, union 2
    assert intersection[1] == 0 and union[1] == 2
    # class 0: its boundary is the ring around each dot and the image border (d = 1)
    ring_truth = {(y, x) for y in range(9, 12) for x in range(9, 12)} - {(10, 10)}
    ring_predicted = {(y, x) for y in range(9, 12) for x in range(10, 13)} - {(10, 11)}
    border = {(y, x) for y in range(20) for x in range(20) if y in (0, 19) or x in (0, 19)}
    g, p = ring_truth | border, ring_predicted | border
    assert intersection[0] == len(g & p) and union[0] == len(g | p)
    assert boundary_counts(truth, truth, 2, 1)[0][1] == 1  # a perfect dot: 1 of 1


def test_the_image_border_is_boundary_d_pixels_deep():
    """An image of one class still has a boundary: the reference pads with zeros, so everything
    within d of the border is boundary, and a prediction wrong only there scores 0 on it."""
    truth = np.ones((30, 40), dtype=np.uint8)
    band = boundary_band(truth, 3)
    assert band.sum() == 30 * 40 - 24 * 34
    assert not band[3:27, 3:37].any()
    predicted = truth.copy()
    predicted[:3] = 0  # the top three rows, all of them border band
    intersection, union = boundary_counts(truth, predicted, 2, 3)
    # truth's band of class 1: 1200 - 816 = 384 pixels; the prediction's class 1 is rows 3..29,
    # whose band is rows 3..5 (its new top edge) and the other three sides.
    predicted_band = boundary_band(predicted, 3) & (predicted == 1)
    truth_band = band & (truth == 1)
    assert intersection[1] == (truth_band & predicted_band).sum()
    assert union[1] == (truth_band | predicted_band).sum()
    assert 0 < boundary_iou(intersection, union)[1] < 1


def test_ignored_ground_truth_is_not_counted_and_means_skip_empty_classes():
    truth = np.array([[0, 0, 255, 255], [0, 0, 255, 255]], dtype=np.uint8)
    predicted = np.array([[0, 0, 1, 1], [0, 0, 1, 1]], dtype=np.uint8)
    intersection, union = boundary_counts(truth, predicted, 3, 1)
    assert intersection.tolist() == [4, 0, 0] and union.tolist() == [4, 0, 0]  # class 1 only where ignored
    iou = boundary_iou(intersection, union)
    assert iou[0] == 1.0 and np.isnan(iou[1]) and np.isnan(iou[2])
    assert mean_boundary_iou(intersection, union) == 1.0
    assert np.isnan(mean_boundary_iou(np.zeros(2), np.zeros(2)))


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="differ"):
        boundary_counts(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8), 2, 1)
    with pytest.raises(ValueError, match="at least 1"):
        boundary_band(np.zeros((4, 4), np.uint8), 0)


# ---------------------------------------------------------------------------- the band before OpenCV

def _window_any(flags: np.ndarray, axis: int, before: int, after: int, length: int) -> np.ndarray:
    """``out[i] = any(flags[i - before : i + after + 1])`` along ``axis`` (clipped to the array),
    for ``i`` in ``[0, length)``, by doubling (the numpy code ``boundary_band`` used before)."""
    window = before + after + 1
    n = flags.shape[axis]
    tail = max(0, length - 1 + window - before - n)
    pad = [(0, 0)] * flags.ndim
    pad[axis] = (before, tail)
    run = np.pad(flags, pad)

    def part(start: int, stop: int | None) -> tuple:
        index = [slice(None)] * flags.ndim
        index[axis] = slice(start, stop)
        return tuple(index)

    span = 1
    while span * 2 <= window:
        run = run[part(0, -span)] | run[part(span, None)]
        span *= 2
    return run[part(0, length)] | run[part(window - span, window - span + length)]


def reference_band(class_map: np.ndarray, width: int) -> np.ndarray:
    """``boundary_band`` as it was before OpenCV: a box "any" over the maps of horizontal and
    vertical differences (a square window is constant exactly when no two 4-neighbours in it differ)."""
    class_map = np.asarray(class_map)
    height, width_px = class_map.shape
    d = int(width)
    band = np.zeros((height, width_px), dtype=bool)
    if width_px > 1:
        across = class_map[:, 1:] != class_map[:, :-1]  # edge between columns j and j+1
        across = _window_any(across, 1, d, d - 1, width_px)  # edges j in [x-d, x+d-1]
        band |= _window_any(across, 0, d, d, height)
    if height > 1:
        down = class_map[1:, :] != class_map[:-1, :]
        down = _window_any(down, 0, d, d - 1, height)
        band |= _window_any(down, 1, d, d, width_px)
    band[:d] = True
    band[-d:] = True
    band[:, :d] = True
    band[:, -d:] = True
    return band


@pytest.fixture(scope="module")
def full_size_scene() -> np.ndarray:
    """The labelIds of a generated 2048x1024 street scene (thin poles, signs, far objects)."""
    return render_scene(5, next(iter(CITY_STYLES)), height=1024, width=2048)[1]


def test_the_band_is_the_one_of_before_on_a_full_size_scene(full_size_scene):
    predicted = full_size_scene.copy()
    rng = np.random.default_rng(0)
    for _ in range(8):  # wrong ellipses, as a model makes them
        centre = (int(rng.integers(0, 2048)), int(rng.integers(0, 1024)))
        cv2.ellipse(predicted, centre, (int(rng.integers(5, 200)), int(rng.integers(5, 100))), 0, 0, 360,
                    int(rng.integers(0, 34)), -1)
    for class_map in (full_size_scene, predicted):
        for d in (boundary_width(class_map.shape), 1, 2, 46):
            assert np.array_equal(boundary_band(class_map, d), reference_band(class_map, d)), d


def test_the_band_is_the_one_of_before_at_the_demo_size(full_size_scene):
    small = full_size_scene[1::4, 1::4]
    blocky = cv2.resize(np.random.default_rng(1).integers(0, 19, (32, 64), dtype=np.uint8), (512, 256),
                        interpolation=cv2.INTER_NEAREST)
    for class_map in (np.ascontiguousarray(small), blocky):
        for d in (boundary_width(class_map.shape), 1, 5):
            assert np.array_equal(boundary_band(class_map, d), reference_band(class_map, d)), d


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64, np.uint64,
                                   np.float32, np.float64, bool])
def test_the_band_is_the_one_of_before_on_small_maps_of_any_type(dtype):
    rng = np.random.default_rng(np.dtype(dtype).num)
    for _ in range(60):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        d = int(rng.integers(1, 9))
        values = rng.integers(0, 2 if dtype is bool else 4, (max(1, h // 3), max(1, w // 3)))
        blocky = cv2.resize(values.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(dtype)
        noisy = rng.integers(0, 2 if dtype is bool else 3, (h, w)).astype(dtype)
        if np.issubdtype(np.dtype(dtype), np.integer) and np.dtype(dtype).itemsize == 8:
            noisy = noisy + np.array(2**60, dtype=dtype)  # 2^60, 2^60 + 1, ...: one value once cast to float64
        for class_map in (blocky, noisy):
            assert np.array_equal(boundary_band(class_map, d), reference_band(class_map, d)), (h, w, d)


def test_a_strided_view_gives_the_band_of_its_copy(full_size_scene):
    view = full_size_scene[::3, ::2]
    assert np.array_equal(boundary_band(view, 4), reference_band(np.ascontiguousarray(view), 4))
    transposed = full_size_scene[:300, :200].T
    assert np.array_equal(boundary_band(transposed, 3), reference_band(np.ascontiguousarray(transposed), 3))


def test_packed_bands_hold_each_map_s_band_in_its_own_bit(full_size_scene):
    rng = np.random.default_rng(3)
    predicted = full_size_scene.copy()
    for _ in range(6):
        cv2.circle(predicted, (int(rng.integers(0, 2048)), int(rng.integers(0, 1024))), int(rng.integers(3, 90)),
                   int(rng.integers(0, 34)), -1)
    maps = [full_size_scene, predicted, (full_size_scene > 20).view(np.uint8)]
    d = boundary_width(full_size_scene.shape)
    out = np.full(full_size_scene.shape, 0xFF, dtype=np.uint8)
    bits = packed_bands(maps, d, first_bit=2, reuse=True, out=out)
    assert bits is out
    expected = sum(reference_band(m, d).astype(np.uint8) << (2 + i) for i, m in enumerate(maps))
    assert np.array_equal(bits, expected)
    assert (bits & 0b11).sum() == 0 and (bits >> 5).sum() == 0  # no other bit set
    # Small maps, some no wider than the border: every pixel is in every band.
    for h, w, width in ((5, 9, 2), (4, 30, 2), (30, 3, 1), (1, 1, 1)):
        pair = [rng.integers(0, 3, (h, w)).astype(np.uint8) for _ in range(2)]
        assert np.array_equal(packed_bands(pair, width),
                              reference_band(pair[0], width) + 2 * reference_band(pair[1], width).astype(np.uint8))
    with pytest.raises(ValueError, match="byte"):
        packed_bands(maps, d, first_bit=6)
    with pytest.raises(ValueError, match="uint8"):
        packed_bands([full_size_scene.astype(np.int32)], d)
