"""Pictures at display size (dashboard/pictures/drawing.py): shrinking by the documented rules, the
display-size pictures equal to the full-size ones downscaled, numbers still counted at full
size, and the cache bounded in bytes. Then the explorer itself, shrinking the tiny store's
16x32 images by 4: what it shows follows the same rules."""

from __future__ import annotations

import base64
import io
import json
import threading

import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import open_page
from PIL import Image

import dashboard.pictures.drawing as drawing
import dashboard.views.hover_cells as hover_cells
import training.evaluation.confusions as confusions
from training.data.cityscapes import read_image, read_label_ids
from training.data.index import load_or_build_index
from training.data.labels import IGNORE_INDEX, get_class_set
from training.evaluation.metrics import confusion_matrix
from training.memory import ByteLRU, size_in_bytes
from training.runs.reader import get_run
from training.viz import error_map, overlay

C8 = get_class_set("categories8")


def _scene(height: int = 24, width: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo, labelIds, predicted classes) of random blocks, some labelIds ignored in categories8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]  # smooth, with a little noise: JPEG keeps it close
    photo = np.stack([x * 200 // width, y * 200 // height, (x + y) * 100 // (width + height)], axis=-1)
    photo = (photo + rng.integers(0, 40, (height, width, 3))).astype(np.uint8)
    label_ids = rng.choice(np.array([0, 7, 8, 11, 21, 23, 24, 26], np.uint8), (height, width))
    predicted = C8.lut[label_ids].copy()
    predicted[predicted == IGNORE_INDEX] = 1
    wrong = rng.random((height, width)) < 0.3
    predicted[wrong] = rng.integers(0, C8.num_classes, wrong.sum(), dtype=np.uint8)
    return photo, label_ids, predicted


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


# ---------------------------------------------------------------------------- shrinking

@pytest.mark.parametrize("width, max_width, factor", [(32, 512, 1), (512, 512, 1), (513, 512, 2), (2048, 512, 4),
                                                      (2048, 1024, 2), (2000, 512, 4), (2049, 512, 5)])
def test_display_factor_is_the_smallest_that_fits(width, max_width, factor):
    assert drawing.display_factor(width, max_width) == factor


def test_a_class_map_is_shrunk_by_nearest_the_centre_pixel_of_each_block():
    classes = np.arange(8 * 12, dtype=np.uint8).reshape(8, 12)
    shrunk = drawing.shrink_classes(classes, 4)
    assert shrunk.shape == (2, 3)
    assert shrunk.tolist() == [[classes[2, 2], classes[2, 6], classes[2, 10]],
                               [classes[6, 2], classes[6, 6], classes[6, 10]]]
    assert shrunk.base is None  # a copy: the full-size array is not kept alive
    assert drawing.shrink_classes(classes, 1) is classes
    # the pixels Pillow's NEAREST resize picks for an integer factor
    rng = np.random.default_rng(1)
    for factor in (2, 3, 4):
        big = rng.integers(0, 19, (6 * factor, 10 * factor), dtype=np.uint8)
        nearest = np.asarray(Image.fromarray(big).resize((10, 6), Image.Resampling.NEAREST))
        assert np.array_equal(drawing.shrink_classes(big, factor), nearest), factor


def test_partial_blocks_at_the_edges_are_dropped_by_both_shrinks():
    photo, label_ids, _ = _scene(height=23, width=39)
    assert drawing.shrink_classes(label_ids, 4).shape == (5, 9)
    assert drawing.shrink_photo(photo, 4).shape == (5, 9, 3)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_a_photo_is_shrunk_by_area(factor):
    rng = np.random.default_rng(factor)
    photo = rng.integers(0, 256, (6 * factor + 1, 11 * factor - 1, 3), dtype=np.uint8)  # partial blocks
    blocks = photo[:6 * factor, :10 * factor].reshape(6, factor, 10, factor, 3).astype(np.int64)
    mean = (blocks.sum(axis=(1, 3)) + factor * factor // 2) // (factor * factor)
    shrunk = drawing.shrink_photo(photo, factor).astype(np.int64)
    assert shrunk.shape == mean.shape
    assert np.abs(shrunk - mean).max() <= 1  # Pillow's fixed-point rounding (exact for powers of two)
    if factor in (2, 4):
        assert np.array_equal(shrunk, mean)


def test_the_shrinks_give_what_they_gave_before_opencv():
    """``training.raster.shrink`` behind both: the values of the code it replaced."""
    rng = np.random.default_rng(7)
    photo = rng.integers(0, 256, (1024, 2048, 3), dtype=np.uint8)
    classes = rng.integers(0, 19, (1023, 2047), dtype=np.uint8)
    colours = C8.palette()[classes % C8.num_classes]
    for factor in (2, 3, 4):
        height, width = photo.shape[0] // factor * factor, photo.shape[1] // factor * factor
        before = np.asarray(Image.fromarray(photo).reduce(factor, box=(0, 0, width, height)))
        assert np.array_equal(drawing.shrink_photo(photo, factor), before), factor
        for values in (classes, colours):
            height, width = values.shape[0] // factor * factor, values.shape[1] // factor * factor
            before = np.ascontiguousarray(values[factor // 2:height:factor, factor // 2:width:factor])
            assert np.array_equal(drawing.shrink_classes(values, factor), before), factor


# ---------------------------------------------------------------------------- views and pictures

def test_the_photo_view_holds_display_size_maps_and_the_hover_grid_at_full_size():
    photo, label_ids, _ = _scene(height=600, width=1200)
    view = drawing.photo_view(photo, label_ids, 512)
    assert view.factor == 3 and view.shape == (600, 1200)
    assert view.photo.shape == (200, 400, 3) and view.label_ids.shape == (200, 400)
    assert np.array_equal(view.truth(C8), drawing.shrink_classes(C8.lut[label_ids], 3))
    rows, columns, _, _ = hover_cells.hover_grid(600, 1200)
    assert np.array_equal(view.hover_truth(C8), C8.lut[label_ids][rows, columns])
    assert np.abs(_decode(view.jpeg).astype(int) - view.photo).mean() < 8  # JPEG, quality 90


def test_the_prediction_view_is_scored_at_full_size():
    photo, label_ids, predicted = _scene(height=48, width=80)
    view = drawing.prediction_view(predicted, label_ids.shape, C8, 20, "predictions/3.png", label_ids=label_ids)
    assert view.problem is None
    truth = C8.lut[label_ids]
    assert np.array_equal(view.confusion, confusion_matrix(truth, predicted, C8.num_classes))
    assert np.array_equal(view.classes, drawing.shrink_classes(predicted, 4))
    rows, columns, _, _ = hover_cells.hover_grid(48, 80)
    assert np.array_equal(view.hover, predicted[rows, columns])
    counted = truth != IGNORE_INDEX
    assert confusions.wrong_share(view.confusion) == pytest.approx(np.mean((predicted != truth)[counted]))


def test_the_prediction_view_takes_the_counts_the_run_stored():
    _, label_ids, predicted = _scene(height=48, width=80)
    stored = np.arange(64).reshape(8, 8)  # the run's evaluation counted them: nothing is counted again
    view = drawing.prediction_view(predicted, label_ids.shape, C8, 20, "p.png", stored)
    assert np.array_equal(view.confusion, stored)
    assert np.array_equal(view.classes, drawing.shrink_classes(predicted, 4))


def test_a_prediction_that_cannot_be_shown_says_why():
    _, label_ids, predicted = _scene()
    narrow = drawing.prediction_view(predicted[:, :-1], label_ids.shape, C8, 512, "p.png", label_ids=label_ids)
    assert narrow.problem == "p.png has shape (24, 39), the ground truth (24, 40)"
    predicted[0, :3] = 12
    view = drawing.prediction_view(predicted, label_ids.shape, C8, 512, "p.png", label_ids=label_ids)
    assert view.problem == "p.png holds class 12 (3 pixels outside the 8 classes)"
    assert view.classes is None and view.confusion is None


@pytest.mark.parametrize("opacity", [0.0, 0.6, 1.0])
def test_display_size_overlays_show_the_nearest_downscaled_classes(opacity):
    photo, label_ids, predicted = _scene(height=64, width=128)
    view = drawing.photo_view(photo, label_ids, 32)
    shown = drawing.prediction_view(predicted, label_ids.shape, C8, 32, "p.png", label_ids=label_ids)
    small_photo, small = drawing.shrink_photo(photo, 4), drawing.shrink_classes
    # the colours are the full-size picture's colours, nearest-downscaled; the photo under them is averaged
    assert np.array_equal(drawing.prediction_overlay(view, shown, C8, opacity),
                          overlay(small_photo, small(C8.colorize(predicted), 4), opacity))
    assert np.array_equal(drawing.truth_overlay(view, C8, opacity),
                          overlay(small_photo, small(C8.colorize(C8.lut[label_ids]), 4), opacity))
    if opacity == 1.0:  # nothing but class colours: exactly the full-size overlay, nearest-downscaled
        assert np.array_equal(drawing.prediction_overlay(view, shown, C8, opacity),
                              small(overlay(photo, C8.colorize(predicted), opacity), 4))


def test_display_size_error_maps_equal_the_full_size_one_downscaled_where_they_show_classes():
    """The rule: an error map's wrong pixels (colour of the true class) and ignored pixels (black)
    are exactly those of the full-size error map, nearest-downscaled; its correct pixels are the
    area-downscaled photo, dimmed. The PNG holds exactly that."""
    photo, label_ids, predicted = _scene(height=96, width=160, seed=3)
    view = drawing.photo_view(photo, label_ids, 40)
    shown = drawing.prediction_view(predicted, label_ids.shape, C8, 40, "p.png", label_ids=label_ids)
    picture = drawing.errors(view, shown, C8)
    assert np.array_equal(_decode(drawing.encode_png(picture)), picture)
    truth, small = C8.lut[label_ids], drawing.shrink_classes
    assert np.array_equal(picture, error_map(drawing.shrink_photo(photo, 4), small(truth, 4), small(predicted, 4), C8))
    full = small(error_map(photo, truth, predicted, C8), 4)
    classes_shown = (small(truth, 4) != small(predicted, 4)) | (small(truth, 4) == IGNORE_INDEX)
    assert classes_shown.any() and (~classes_shown).any()
    assert np.array_equal(picture[classes_shown], full[classes_shown])


def test_the_zoom_view_at_full_size_and_class_pictures():
    photo, label_ids, predicted = _scene()
    full = _decode(drawing.full_size_picture(photo, label_ids, predicted, C8, "error map", 0.6))
    assert full.shape == photo.shape
    colours = C8.colorize(C8.lut[label_ids])
    assert np.array_equal(_decode(drawing.class_picture(colours, 10)), drawing.shrink_classes(colours, 4))


# ---------------------------------------------------------------------------- the cache

def test_a_byte_bounded_cache_evicts_the_least_recently_used_and_never_exceeds_its_budget():
    cache = ByteLRU(1000)
    for name in "abc":
        cache.put(name, b"", nbytes=300)
    assert cache.nbytes == 900 and len(cache) == 3
    assert cache.get("a") == b""  # "a" is now the most recently used: "b" goes first
    cache.put("d", b"", nbytes=300)
    assert "b" not in cache and {"a", "c", "d"} == {key for key in "abcd" if key in cache}
    assert cache.nbytes == 900 and cache.evictions == 1
    cache.put("e", b"", nbytes=700)  # the two least recently used go ("c", then "a"), and no more
    assert [key for key in "abcde" if key in cache] == ["d", "e"]
    assert cache.nbytes == 1000 and cache.evictions == 3
    cache.put("huge", b"", nbytes=1001)  # larger than the whole budget: not kept, nothing evicted
    assert "huge" not in cache and cache.nbytes == 1000 and len(cache) == 2
    cache.put("e", b"", nbytes=100)  # replacing an entry counts its new size only
    assert cache.nbytes == 400


def test_the_cache_measures_values_and_keeps_none():
    cache = ByteLRU(10_000)
    view = drawing.PredictionView(None, np.zeros((10, 10), np.uint8), np.zeros((4, 4), np.uint8),
                                  np.zeros((8, 8), np.int64))
    assert size_in_bytes(view) >= 100 + 16 + 512
    calls = []
    for _ in range(2):
        assert cache.get_or_compute("absent", lambda: calls.append(1)) is None  # None is a value
    assert calls == [1]
    assert cache.get("missing", "default") == "default"


def test_the_cache_stays_within_its_budget_under_threads():
    cache = ByteLRU(50_000)
    sizes = []

    def worker(seed: int):
        rng = np.random.default_rng(seed)
        for _ in range(500):
            key = int(rng.integers(0, 200))
            cache.get_or_compute(key, lambda: bytes(int(rng.integers(0, 4000))))
            sizes.append(cache.nbytes)

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(sizes) <= 50_000 and cache.evictions > 0
    assert cache.nbytes == sum(size_in_bytes(cache.get(key)) for key in range(200) if key in cache)


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.delenv(drawing.DISPLAY_WIDTH_ENV, raising=False)
    monkeypatch.delenv(drawing.CACHE_MB_ENV, raising=False)
    assert drawing.display_width() == 512 and drawing.cache_bytes() == 128 * 2**20
    monkeypatch.setenv(drawing.DISPLAY_WIDTH_ENV, "1024")
    monkeypatch.setenv(drawing.CACHE_MB_ENV, "16")
    assert drawing.display_width() == 1024 and drawing.cache_bytes() == 16 * 2**20
    monkeypatch.setenv(drawing.CACHE_MB_ENV, "lots")  # not a positive number: the default
    assert drawing.cache_bytes() == 128 * 2**20


# ---------------------------------------------------------------------------- the explorer, shrinking by 4

def _figure(at) -> dict:
    return json.loads(at.get("plotly_chart")[0].proto.spec)


def _picture_of(figure: dict) -> tuple[dict, np.ndarray]:
    trace = next(t for t in figure["data"] if t["type"] == "image")
    return trace, _decode(base64.b64decode(trace["source"].split(",", 1)[1]))


def test_the_explorer_shows_the_downscaled_classes_and_counts_at_full_size(dashboard_env, monkeypatch):
    monkeypatch.setenv(drawing.DISPLAY_WIDTH_ENV, "8")  # the tiny store's 16x32 images shown at 4x8
    store = dashboard_env
    run = store.runs[1]
    table = pd.DataFrame(get_run(run, store.artifacts).per_image()).set_index("id")
    image_id = int(table.index[0])
    entry = load_or_build_index(store.data_root, write=False, report=lambda message: None)[image_id]
    photo = read_image(store.data_root / entry.image)
    truth = C8.lut[read_label_ids(store.data_root / entry.label)]
    predicted = get_run(run, store.artifacts).prediction(image_id)

    at = open_page("explorer", {"id": str(image_id), "runs": run, "layout": "grid"})
    assert not at.exception, [e.message for e in at.exception]
    assert any("Shown at 8x4 (the image is 32x16)" in c.value for c in at.caption)
    # the per-class IoU counts every full-size pixel: it is the run's own per_image.csv
    shown = at.dataframe[0].value
    assert shown.loc["mIoU", run] == pytest.approx(float(table.loc[image_id, "miou"]), abs=1e-6)
    assert any(f"{run}: errors ({np.mean((predicted != truth)[truth != IGNORE_INDEX]):.1%} of pixels wrong)"
               in caption for image in at.image for caption in image.captions)

    at.radio(key="explorer_hover_view").set_value("error map").run()
    trace, picture = _picture_of(_figure(at))
    assert (trace["x0"], trace["dx"]) == (1.5, 4)  # a picture pixel covers 4x4 of the image's: axes stay full size
    small = drawing.shrink_classes
    assert np.array_equal(picture, error_map(drawing.shrink_photo(photo, 4), small(truth, 4), small(predicted, 4), C8))
    heatmap = next(t for t in _figure(at)["data"] if t["type"] == "heatmap")
    names = hover_cells.class_name_lookup(C8.names)
    assert np.array_equal(np.array(heatmap["text"]), names[truth])  # the hover names full-size pixels
    assert np.array_equal(np.array(heatmap["hovertext"]), names[predicted])

    # full resolution only on demand, in the zoom view
    at.toggle(key="explorer_zoom_full").set_value(True).run()
    assert not at.exception
    trace, picture = _picture_of(_figure(at))
    assert trace.get("dx", 1) == 1 and picture.shape == (16, 32, 3)
    full = error_map(photo, truth, predicted, C8)
    assert np.abs(picture.astype(int) - full).mean() < 10  # JPEG of the full-size error map
