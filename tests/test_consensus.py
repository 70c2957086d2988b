"""Ground truth that looks wrong (``training.evaluation.consensus``): the rule on hand-made masks
(255 in the ground truth and in a prediction), connected regions against ``scipy.ndimage.label``
on random masks and on hand-made ones (a 1-pixel region, a region against the border, two regions
touching only at a corner), the ranking, the scan of a split from PNG files, and every output
(regions, pixel counts, boxes, runs, order, candidates) against the numpy labelling used before
OpenCV's (``reference_regions``, kept here: the numbers must not move)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from training.data.labels import get_class_set
from training.data.synthetic import CITY_STYLES, render_scene
from training.evaluation.consensus import (
    Candidate,
    Region,
    connected_regions,
    consensus_errors,
    image_candidates,
    runs_mask,
    scan_document,
    scan_from_document,
    scan_images,
)
from training.files import jsonable

STRUCTURES = {4: ndimage.generate_binary_structure(2, 1), 8: ndimage.generate_binary_structure(2, 2)}


def _same_partition(mask: np.ndarray, regions: list[Region], connectivity: int) -> None:
    """``regions`` are exactly scipy's components of ``mask``: same count, each region one of them
    pixel for pixel, with its size and bounding box."""
    labels, count = ndimage.label(mask, structure=STRUCTURES[connectivity])
    assert len(regions) == count
    seen = set()
    slices = ndimage.find_objects(labels)
    for region in regions:
        pixels = region.mask(mask.shape)
        found = np.unique(labels[pixels])
        assert len(found) == 1 and found[0] > 0
        label = int(found[0])
        assert label not in seen
        seen.add(label)
        assert np.array_equal(pixels, labels == label)
        assert region.pixels == int(pixels.sum())
        rows, columns = slices[label - 1]
        assert region.box == (columns.start, rows.start, columns.stop, rows.stop)


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("density", [0.02, 0.2, 0.45, 0.6, 0.9, 1.0])
def test_regions_are_scipy_s_components_on_random_masks(connectivity, density):
    rng = np.random.default_rng(int(density * 100) + connectivity)
    for shape in ((1, 1), (1, 9), (9, 1), (2, 2), (17, 23), (64, 40), (33, 130)):
        mask = rng.random(shape) < density
        _same_partition(mask, connected_regions(mask, 1, connectivity), connectivity)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_regions_are_scipy_s_components_on_blobby_masks(connectivity):
    """Smoothed noise: large winding regions with holes, like real agreement masks."""
    rng = np.random.default_rng(connectivity)
    for threshold in (-0.3, 0.0, 0.4):
        noise = ndimage.uniform_filter(rng.standard_normal((120, 200)), size=9)
        mask = noise > threshold * noise.std()
        _same_partition(mask, connected_regions(mask, 1, connectivity), connectivity)


def test_hand_made_regions():
    mask = np.zeros((6, 8), dtype=bool)
    mask[2, 3] = True  # a 1-pixel region
    mask[0, 6:8] = mask[1, 7] = True  # against the top and right borders
    mask[4, 0] = mask[5, 1] = True  # two pixels touching only at a corner
    eight = connected_regions(mask, 1, 8)
    four = connected_regions(mask, 1, 4)
    assert [(r.pixels, r.box) for r in eight] == [(3, (6, 0, 8, 2)), (2, (0, 4, 2, 6)), (1, (3, 2, 4, 3))]
    assert [(r.pixels, r.box) for r in four] == [(3, (6, 0, 8, 2)), (1, (3, 2, 4, 3)), (1, (0, 4, 1, 5)),
                                                 (1, (1, 5, 2, 6))]
    corner = eight[1]
    assert corner.runs.tolist() == [[4, 0, 1], [5, 1, 2]]
    assert np.array_equal(runs_mask(corner.runs, mask.shape), corner.mask(mask.shape))
    for connectivity in (4, 8):
        _same_partition(mask, connected_regions(mask, 1, connectivity), connectivity)


def test_the_whole_picture_an_empty_one_and_the_size_rule():
    full = np.ones((3, 5), dtype=bool)
    (region,) = connected_regions(full)
    assert (region.pixels, region.box) == (15, (0, 0, 5, 3))
    assert connected_regions(np.zeros((4, 4), dtype=bool)) == []
    assert connected_regions(np.zeros((0, 0), dtype=bool)) == []
    mask = np.zeros((5, 9), dtype=bool)
    mask[0, 0] = True
    mask[2:5, 2:4] = True  # 6 pixels
    mask[1:3, 6:9] = True  # 6 pixels too, its first pixel earlier in raster order (row 1)
    sizes = [(r.pixels, r.box) for r in connected_regions(mask, min_pixels=2)]
    assert sizes == [(6, (6, 1, 9, 3)), (6, (2, 2, 4, 5))]  # largest first, ties by their first pixel
    assert connected_regions(mask, min_pixels=7) == []
    with pytest.raises(ValueError, match="connectivity"):
        connected_regions(mask, 1, 6)


def test_the_rule_counts_agreement_against_the_ground_truth_only():
    truth = np.array([[1, 1, 2, 255],
                      [0, 3, 3, 3]], dtype=np.uint8)
    run_a = np.array([[2, 1, 2, 4],
                      [5, 255, 4, 3]], dtype=np.uint8)
    run_b = np.array([[2, 1, 1, 4],
                      [5, 255, 4, 3]], dtype=np.uint8)
    mask, agreed = consensus_errors(truth, [run_a, run_b])
    # (0,0): both 2, truth 1; (0,2) the runs differ; (0,3) truth 255; (1,0) both 5, truth 0;
    # (1,1) both "no class" (255); (1,2) both 4, truth 3; (1,3) right.
    assert mask.tolist() == [[True, False, False, False], [True, False, True, False]]
    assert agreed[mask].tolist() == [2, 5, 4]
    mask, _ = consensus_errors(truth, [run_a, run_b], num_classes=5)  # class 5 is not one of the set
    assert mask.tolist() == [[True, False, False, False], [False, False, True, False]]
    single, _ = consensus_errors(truth, [run_b])  # one run: its own errors, "no class" left out
    assert single.tolist() == [[True, False, True, False], [True, False, True, False]]
    with pytest.raises(ValueError, match="shape"):
        consensus_errors(truth, [run_a, run_b[:, :3]])


def test_candidates_name_the_dominant_classes_with_their_shares():
    truth = np.zeros((6, 10), dtype=np.uint8)  # road (0) everywhere ...
    truth[1:5, 1:4] = 1  # ... a 12-pixel patch of class 1
    truth[1, 1] = 255  # one pixel without ground truth: never a candidate
    runs = np.zeros((6, 10), dtype=np.uint8)
    runs[1:5, 1:5] = 7  # the runs say 7 on 16 pixels: 11 of them truth 1, 4 truth 0, 1 unlabelled
    runs[0, 9] = 3  # a 1-pixel disagreement elsewhere
    found = image_candidates(truth, [runs, runs.copy()], min_pixels=2, num_classes=8)
    assert len(found) == 1
    candidate = found[0]
    assert isinstance(candidate, Candidate)
    assert (candidate.region.pixels, candidate.region.box) == (15, (1, 1, 5, 5))
    assert (candidate.truth_class, candidate.agreed_class) == (1, 7)
    assert candidate.truth_share == pytest.approx(11 / 15) and candidate.agreed_share == 1.0
    everything = image_candidates(truth, [runs, runs], min_pixels=1, num_classes=8)
    assert [(c.region.pixels, c.truth_class, c.agreed_class) for c in everything] == [(15, 1, 7), (1, 0, 3)]


def _write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.astype(np.uint8)).save(path)


class Unreadable(Exception):
    """What a run's reader raises for a damaged prediction (the store's ArtifactError)."""


def test_a_scan_ranks_every_image_s_regions_by_size_and_names_what_it_left_out(tmp_path):
    """Images of labelIds (categories8: road 7 -> flat 1, building 11 -> construction 2; the runs
    say nature, 4, on a building), two runs of class indices."""
    class_set = get_class_set("categories8")
    truths, first, second = {}, {}, {}
    for image_id, (top, height) in enumerate(((0, 3), (2, 5), (1, 1))):
        label_ids = np.full((8, 12), 7, dtype=np.uint8)
        label_ids[top:top + height, 0:4] = 11
        label_ids[7, 11] = 0  # void: a class of categories8, predicted right
        truths[image_id] = label_ids
        predicted = class_set.lut[label_ids].copy()
        predicted[top:top + height, 0:4] = 4
        first[image_id], second[image_id] = predicted, predicted.copy()
        _write(tmp_path / f"gt/{image_id}.png", label_ids)
    second[1][2, 0] = 2  # the second run agrees with the ground truth on one pixel of image 1
    first[3], second[3] = np.zeros((8, 12), np.uint8), np.zeros((4, 6), np.uint8)  # another size
    _write(tmp_path / "gt/3.png", truths[0])

    def read_second(image_id: int) -> np.ndarray:
        if image_id == 4:
            raise Unreadable("run b: predictions/4.png is not a readable PNG")
        return second[image_id]

    images = [(image_id, tmp_path / f"gt/{image_id}.png") for image_id in range(5)]
    images.append((9, tmp_path / "gt/missing.png"))  # a label file that is not there
    _write(tmp_path / "gt/4.png", truths[0])
    seen = []
    scan = scan_images(images, [first.get, read_second], class_set, min_pixels=2, workers=2,
                       skip_errors=(Unreadable,), progress=lambda done, total: seen.append((done, total)))
    assert [(row["id"], row["pixels"], (row["x0"], row["y0"], row["x1"], row["y1"])) for row in scan.rows] == [
        (1, 19, (0, 2, 4, 7)), (0, 12, (0, 0, 4, 3)), (2, 4, (0, 1, 4, 2))]
    top = scan.rows[0]
    assert (top["ground_truth"], top["truth_share"], top["runs_say"], top["agreed_share"]) == (
        "construction", 1.0, "nature", 1.0)
    assert runs_mask(top["runs"], (8, 12)).sum() == 19 and not runs_mask(top["runs"], (8, 12))[2, 0]
    assert scan.images == 3
    assert [image_id for image_id, _ in scan.skipped] == [3, 4, 9]
    reasons = dict(scan.skipped)
    assert "6x4" in reasons[3] and "12x8" in reasons[3]
    assert "predictions/4.png" in reasons[4] and "missing.png" in reasons[9]
    assert seen == [(n, 6) for n in range(1, 7)]
    assert scan_images(images[:3], [first.get, read_second], class_set, min_pixels=20).rows == []

    # kept as JSON (training.runs.derived) and read back: the same scan
    back = scan_from_document(json.loads(json.dumps(jsonable(scan_document(scan)))))
    assert (back.images, back.skipped) == (scan.images, scan.skipped)
    assert [{**row, "runs": row["runs"].tolist()} for row in back.rows] == [
        {**row, "runs": np.asarray(row["runs"]).tolist()} for row in scan.rows]
    assert runs_mask(back.rows[0]["runs"], (8, 12)).sum() == 19
    for damaged in ({}, {"rows": [{"id": 1}], "images": 1, "skipped": []}, {"rows": [], "images": "x", "skipped": []}):
        with pytest.raises(ValueError, match="not a scan"):
            scan_from_document(damaged)


# ---------------------------------------------------------------------------- the labelling before OpenCV

def _reference_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    height, width = mask.shape
    stride = width + 2
    padded = np.zeros((height, stride), dtype=bool)
    padded[:, 1:-1] = mask
    flat = padded.ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    first, after = changes[0::2], changes[1::2]
    return first // stride, first % stride - 1, after % stride - 1


def _reference_touching(rows, starts, ends, width, connectivity):
    stride = width + 2
    reach = 1 if connectivity == 8 else 0
    start_keys, end_keys = rows * stride + starts, rows * stride + ends
    above = (rows - 1) * stride
    first = np.searchsorted(end_keys, above + starts - reach, side="right")
    last = np.searchsorted(start_keys, above + ends + reach - 1, side="right")
    counts = np.maximum(last - first, 0)
    below = np.repeat(np.arange(len(rows)), counts)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(first, counts) + offsets, below


def _reference_components(count, a, b):
    parent = np.arange(count)
    while True:
        root_a, root_b = parent[a], parent[b]
        apart = root_a != root_b
        if not apart.any():
            return parent
        low, high = np.minimum(root_a[apart], root_b[apart]), np.maximum(root_a[apart], root_b[apart])
        np.minimum.at(parent, high, low)
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


def reference_regions(mask: np.ndarray, min_pixels: int, connectivity: int):
    """``(regions, position, rows, starts, ends, component)`` as ``connected_regions`` computed them
    before OpenCV: the mask's runs joined by a vectorised union-find (runs in consecutive rows touch
    when their column ranges overlap, widened by a pixel for 8-connectivity)."""
    mask = np.asarray(mask, dtype=bool)
    rows, starts, ends = _reference_runs(mask)
    above, below = _reference_touching(rows, starts, ends, mask.shape[1], connectivity)
    roots = _reference_components(len(rows), above, below)
    ordered_roots, component = np.unique(roots, return_inverse=True)
    component, count = component.reshape(-1), len(ordered_roots)
    pixels = np.bincount(component, weights=ends - starts, minlength=count).astype(np.int64)
    kept = np.flatnonzero(pixels >= max(1, int(min_pixels)))
    kept = kept[np.argsort(-pixels[kept], kind="stable")]
    position = np.full(count, -1, dtype=np.int64)
    position[kept] = np.arange(len(kept))
    if not len(kept):
        return [], position, rows, starts, ends, component
    x0, y0 = np.full(count, np.iinfo(np.int64).max), np.full(count, np.iinfo(np.int64).max)
    x1, y1 = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64)
    np.minimum.at(x0, component, starts)
    np.maximum.at(x1, component, ends)
    np.maximum.at(y1, component, rows + 1)
    np.minimum.at(y0, component, rows)
    order = np.argsort(position[component], kind="stable")
    order = order[position[component[order]] >= 0]
    runs = np.stack([rows[order], starts[order], ends[order]], axis=1).astype(np.int32)
    bounds = np.cumsum(np.bincount(position[component[order]], minlength=len(kept)))
    regions = [Region(int(pixels[c]), (int(x0[c]), int(y0[c]), int(x1[c]), int(y1[c])), part)
               for c, part in zip(kept, np.split(runs, bounds[:-1]))]
    return regions, position, rows, starts, ends, component


def reference_candidates(truth_classes, predictions, min_pixels, num_classes=None, connectivity=8):
    """``image_candidates`` as it was before OpenCV (its regions from ``reference_regions``)."""
    mask, agreed = consensus_errors(truth_classes, predictions, num_classes)
    regions, position, rows, starts, ends, component = reference_regions(mask, min_pixels, connectivity)
    if not regions:
        return []
    region_of_run = position[component]
    kept = region_of_run >= 0
    lengths = (ends - starts)[kept]
    firsts = rows[kept] * mask.shape[1] + starts[kept]
    flat = np.repeat(firsts - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
    region_of_pixel = np.repeat(region_of_run[kept], lengths)

    def dominant(values):
        counts = np.bincount(region_of_pixel * 256 + values, minlength=len(regions) * 256).reshape(len(regions), 256)
        top = counts.argmax(axis=1)
        return top, counts[np.arange(len(regions)), top] / counts.sum(axis=1)

    truth_top, truth_share = dominant(truth_classes.ravel()[flat].astype(np.int64))
    said_top, said_share = dominant(agreed.ravel()[flat].astype(np.int64))
    return [Candidate(region, int(truth_top[n]), float(truth_share[n]), int(said_top[n]), float(said_share[n]))
            for n, region in enumerate(regions)]


def _same_regions(found: list[Region], expected: list[Region]) -> None:
    """The same regions in the same order, with the same pixel counts, boxes and runs."""
    assert [(r.pixels, r.box) for r in found] == [(r.pixels, r.box) for r in expected]
    for mine, theirs in zip(found, expected):
        assert mine.runs.dtype == theirs.runs.dtype and np.array_equal(mine.runs, theirs.runs)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_regions_are_the_ones_of_before_on_random_masks(connectivity):
    rng = np.random.default_rng(100 + connectivity)
    for density in (0.02, 0.2, 0.45, 0.6, 0.9, 1.0):
        for shape in ((1, 1), (1, 9), (9, 1), (2, 2), (17, 23), (64, 40), (33, 130), (256, 512)):
            mask = rng.random(shape) < density
            for min_pixels in (1, 3, 40):
                expected = reference_regions(mask, min_pixels, connectivity)[0]
                _same_regions(connected_regions(mask, min_pixels, connectivity), expected)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_regions_are_the_ones_of_before_on_blobby_masks(connectivity):
    """Smoothed noise at full size: large winding regions, holes, many ties of size among the
    small ones (their order is the raster order of their first pixel)."""
    rng = np.random.default_rng(7 + connectivity)
    noise = cv2.GaussianBlur(rng.standard_normal((1024, 2048)).astype(np.float32), (0, 0), 6)
    for threshold in (-0.5, 0.0, 0.8):
        mask = noise > threshold * noise.std()
        for min_pixels in (1, 2000):
            _same_regions(connected_regions(mask, min_pixels, connectivity),
                          reference_regions(mask, min_pixels, connectivity)[0])


@pytest.fixture(scope="module")
def street_scene() -> tuple[np.ndarray, list[np.ndarray]]:
    """A generated 2048x1024 street scene's classes (cityscapes19) and three runs' predictions:
    wrong ellipses shared by all runs, and three of each run's own."""
    class_set = get_class_set("cityscapes19")
    label_ids = render_scene(9, next(iter(CITY_STYLES)), height=1024, width=2048)[1]
    truth = class_set.lut[label_ids]
    rng = np.random.default_rng(3)

    def ellipses(classes: np.ndarray, count: int) -> np.ndarray:
        out = classes.copy()
        for _ in range(count):
            centre = (int(rng.integers(0, 2048)), int(rng.integers(0, 1024)))
            axes = (int(rng.integers(3, 170)), int(rng.integers(3, 85)))
            cv2.ellipse(out, centre, axes, float(rng.uniform(0, 180)), 0, 360, int(rng.integers(0, 19)), -1)
        return out

    shared = ellipses(np.where(truth == 255, 0, truth).astype(np.uint8), 12)
    return truth, [ellipses(shared, 3) for _ in range(3)]


@pytest.mark.parametrize("connectivity", [4, 8])
def test_candidates_are_the_ones_of_before_on_a_street_scene(street_scene, connectivity):
    truth, predictions = street_scene
    for min_pixels in (1, 50, 2000):
        found = image_candidates(truth, predictions, min_pixels, 19, connectivity)
        expected = reference_candidates(truth, predictions, min_pixels, 19, connectivity)
        assert len(found) == len(expected) > 0
        _same_regions([c.region for c in found], [c.region for c in expected])
        assert [(c.truth_class, c.truth_share, c.agreed_class, c.agreed_share) for c in found] == [
            (c.truth_class, c.truth_share, c.agreed_class, c.agreed_share) for c in expected]


def test_more_regions_than_16_bit_labels_hold_are_the_ones_of_before():
    """About 100,000 regions: past OpenCV's 16-bit labels, so its 32-bit ones are used."""
    mask = np.random.default_rng(11).random((1024, 2048)) < 0.3
    found = connected_regions(mask, 1, 8)
    assert len(found) > 65535
    _same_regions(found, reference_regions(mask, 1, 8)[0])
