"""Confidence in the dashboard: the explorer's confidence view and threshold, the hover's
confidence, the Calibration page (reliability diagrams, mIoU against coverage), and the notes of
runs that have no confidence (evaluated before maps were stored, or imported). AppTest on real
run stores; the pure functions of ``dashboard.confidence`` on arrays."""

import json
import shutil

import numpy as np
import pytest
from dashboard_fixtures import CALIBRATION_PAGE, IMPORTED_C8, open_page

import dashboard.pictures.confidence_maps as confidence_maps
import dashboard.pictures.drawing as drawing
import dashboard.views.calibration_tables as calibration_tables
import dashboard.views.colours as colours
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.evaluation.calibration import calibration_counts, summarize_calibration
from training.runs.reader import get_run
from training.viz import overlay


def _test_ids(store) -> list[int]:
    index = load_or_build_index(store.data_root, write=False, report=lambda message: None)
    return [entry.id for entry in index.split("test")]


def _charts(at) -> list[dict]:
    """The zoom-and-hover figures (not the side-by-side panels above them)."""
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart") if chart.key != "explorer_compare_chart"]


def _metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def _captions(at) -> list[str]:
    return [caption for image in at.image for caption in image.captions]


def _shown(at) -> str:
    return "\n".join(str(e.value) for e in [*at.info, *at.caption, *at.warning, *at.markdown])


# ---------------------------------------------------------------------------- the explorer

def test_the_confidence_view_and_its_threshold_count_the_run_s_own_map(known_outputs_env):
    store = known_outputs_env
    run = store.runs[1]  # its confidence rises from left to right: a threshold keeps part of the image
    image_id = _test_ids(store)[1]
    values = get_run(run, store.artifacts).confidence(image_id)
    at = open_page("explorer", {"id": str(image_id), "runs": run})
    assert not at.exception
    assert f"{run}: confidence" in _captions(at) and f"{run}: prediction, grey under 0.50" in _captions(at)
    shares = {}
    for threshold in (0.5, 0.8, 0.0, 0.37):
        at.slider(key="explorer_confidence_threshold").set_value(threshold).run()
        assert not at.exception
        expected = float(np.mean(values >= threshold))
        shares[threshold] = expected
        assert _metric(at, "Pixels kept") == f"{expected:.1%}", threshold
        assert f"{expected:.1%} of this image's pixels have a confidence of at least {threshold:.2f}" in _shown(at)
        assert f"{run}: prediction, grey under {threshold:.2f}" in _captions(at)
    assert len(set(shares.values())) == len(shares)  # every threshold keeps another share
    assert shares[0.0] == 1.0


def test_the_hover_tells_the_confidence_in_the_confidence_view(known_outputs_env):
    store = known_outputs_env
    run = store.runs[1]
    image_id = _test_ids(store)[0]
    at = open_page("explorer", {"id": str(image_id), "runs": run})
    at.toggle(key="explorer_hover_open").set_value(True).run()  # on demand under the side-by-side view
    at.radio(key="explorer_hover_view").set_value("confidence").run()
    assert not at.exception
    figure = _charts(at)[0]
    assert figure["layout"]["title"]["text"] == f"image {image_id}: confidence ({run})"
    heatmap = next(trace for trace in figure["data"] if trace["type"] == "heatmap")
    opened = get_run(run, store.artifacts)
    names = np.array(get_class_set("categories8").names)
    expected = np.char.add(names[opened.prediction(image_id)].astype(str),
                           np.char.mod("<br>confidence %.2f", opened.confidence(image_id).astype(np.float64)))
    assert np.array_equal(np.array(heatmap["hovertext"]), expected)  # 16 x 32: every pixel is a cell


def test_runs_without_confidence_say_why(dashboard_store_copy):
    """A run evaluated before confidence maps were stored: no confidence folder, no calibration."""
    store = dashboard_store_copy
    old, current = store.runs[1], store.runs[0]
    folder = store.artifacts / "runs" / old
    shutil.rmtree(folder / "confidence")
    metrics = json.loads((folder / "metrics.json").read_text())
    del metrics["calibration"]
    (folder / "metrics.json").write_text(json.dumps(metrics))

    image_id = _test_ids(store)[0]
    at = open_page("explorer", {"id": str(image_id), "runs": old})
    assert not at.exception
    assert f"{old}: {calibration_tables.NO_MAPS_NOTE}." in [i.value for i in at.info]
    assert not any(m.label == "Pixels kept" for m in at.metric)
    at.toggle(key="explorer_hover_open").set_value(True).run()
    at.radio(key="explorer_hover_view").set_value("confidence").run()  # the zoom falls back to the prediction
    assert not at.exception
    assert f"{old}: {calibration_tables.NO_MAPS_NOTE}; the picture shows its prediction." in _shown(at)
    assert _charts(at)[0]["layout"]["title"]["text"] == f"image {image_id}: prediction ({old})"

    at = open_page("explorer", {"id": str(image_id), "runs": f"{old},{current}"})
    at.selectbox(key="explorer_confidence_run").set_value(current).run()
    assert not at.exception and any(m.label == "Pixels kept" for m in at.metric)

    at = open_page("overview", {"runs": f"{old},{current}"})
    at.switch_page(CALIBRATION_PAGE).run()
    assert not at.exception
    assert f"{old}: {calibration_tables.NO_CALIBRATION_NOTE}." in [i.value for i in at.info]
    titles = [chart["layout"]["title"]["text"] for chart in _charts(at)]
    assert titles[0].startswith(f"{current}: ECE ") and not any(title.startswith(f"{old}:") for title in titles)
    assert [trace["name"] for trace in _charts(at)[-1]["data"]] == [current]  # the coverage curve


def test_imported_runs_carry_no_confidence(imported_env):
    store = imported_env
    image_id = store.covered[IMPORTED_C8][0]
    at = open_page("explorer", {"id": str(image_id), "runs": IMPORTED_C8})
    assert not at.exception
    assert f"{IMPORTED_C8}: {calibration_tables.IMPORTED_NOTE}." in [i.value for i in at.info]
    at = open_page("overview", {"runs": IMPORTED_C8})
    at.switch_page(CALIBRATION_PAGE).run()
    assert not at.exception
    assert f"{IMPORTED_C8}: {calibration_tables.IMPORTED_CALIBRATION_NOTE}." in [i.value for i in at.info]
    assert not at.get("plotly_chart")


# ---------------------------------------------------------------------------- the Calibration page

def test_the_calibration_page_draws_each_run_s_metrics_json_block(known_outputs_env):
    store = known_outputs_env
    at = open_page("overview", {"runs": ",".join(store.runs)})
    at.switch_page(CALIBRATION_PAGE).run()
    assert not at.exception
    charts = _charts(at)
    assert len(charts) == len(store.runs) + 1  # a reliability diagram per run, one coverage chart
    coverage = charts[-1]
    for run, chart in zip(store.runs, charts):
        block = get_run(run, store.artifacts).metrics["calibration"]
        assert chart["layout"]["title"]["text"] == f"{run}: ECE {block['ece']:.3f}"
        bars = chart["data"][0]
        filled = [b for b in range(block["bins"]) if block["count"][b] > 0]
        edges = block["edges"]
        assert bars["x"] == pytest.approx([(edges[b] + edges[b + 1]) / 2 for b in filled])
        assert bars["y"] == pytest.approx([block["accuracy"][b] for b in filled])
        assert [row[2] for row in bars["customdata"]] == [block["count"][b] for b in filled]  # pixels, on hover
        assert [row[3] for row in bars["customdata"]] == pytest.approx([block["confidence"][b] for b in filled])
        assert chart["data"][1]["x"] == [0, 1] and chart["data"][1]["y"] == [0, 1]  # the diagonal

        curve = block["coverage_curve"]
        kept = [b for b in range(block["bins"]) if curve["coverage"][b] and curve["miou"][b] is not None]
        line = next(trace for trace in coverage["data"] if trace["name"] == run)
        assert line["x"] == pytest.approx([curve["coverage"][b] for b in kept])
        assert line["y"] == pytest.approx([curve["miou"][b] for b in kept])
        assert line["customdata"] == pytest.approx([curve["threshold"][b] for b in kept])  # hover: the threshold
    # the run whose confidence rises across the image fills every bin: the diagram is more than one bar
    assert len(charts[1]["data"][0]["x"]) == 15


# ---------------------------------------------------------------------------- the pure functions

def test_kept_share_and_the_greyed_overlay_follow_run_confidence_s_values():
    rng = np.random.default_rng(0)
    levels = rng.integers(0, 256, (24, 40), dtype=np.uint8)
    values = levels.astype(np.float32) / 255.0  # what Run.confidence returns
    assert np.array_equal(calibration_tables.to_levels(values), levels)
    view = confidence_maps.view_of(values, (24, 40), 20, "confidence/1.png")
    assert view.levels.shape == (12, 20)  # factor 2, nearest: the pixel at offset 1 of each block
    assert np.array_equal(view.levels, levels[1::2, 1::2])
    for threshold in (0.0, 0.25, 0.5, 128 / 255, 0.999, 1.0):
        assert view.kept_share(threshold) == pytest.approx(float(np.mean(values >= threshold)), abs=1e-12)
    assert confidence_maps.view_of(values, (24, 41), 20, "confidence/1.png").problem == (
        "confidence/1.png has shape (24, 40), the ground truth (24, 41)")

    class_set = get_class_set("categories8")
    photo = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    classes = rng.integers(0, class_set.num_classes, (24, 40)).astype(np.uint8)
    shown = drawing.confident_overlay(photo, classes, levels, class_set, 0.6, 0.5)
    below = values < 0.5
    assert np.array_equal(shown[~below], overlay(photo, class_set.colorize(classes), 0.6)[~below])
    grey = shown[below]
    assert np.all(grey[:, 0] == grey[:, 1]) and np.all(grey[:, 1] == grey[:, 2])
    assert np.array_equal(grey[:, 0], photo[below].astype(np.float32).mean(axis=-1).round().astype(np.uint8))


def test_the_colormap_runs_from_dark_violet_to_yellow():
    assert colours.COLORMAP.shape == (256, 3) and colours.COLORMAP.dtype == np.uint8
    assert colours.COLORMAP[0].tolist() == [68, 1, 84] and colours.COLORMAP[-1].tolist() == [253, 231, 37]
    brightness = colours.COLORMAP.astype(float) @ [0.299, 0.587, 0.114]
    assert np.all(np.diff(brightness[::8]) > 0)  # brighter as confidence rises (rounding aside, step by step)
    assert drawing.heatmap(np.array([[0, 255]], dtype=np.uint8)).tolist() == [[[68, 1, 84], [253, 231, 37]]]


def test_reliability_and_coverage_frames_read_a_calibration_block():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, (32, 32)).astype(np.uint8)
    predicted = np.where(rng.random((32, 32)) < 0.7, truth, (truth + 1) % 3).astype(np.uint8)
    values = rng.integers(128, 256, (32, 32)).astype(np.uint8)  # the lower half of the bins stays empty
    block = json.loads(json.dumps(summarize_calibration(*calibration_counts(truth, predicted, values, 3))))
    assert calibration_tables.calibration_of(block) is None  # a metrics.json, not a block
    assert calibration_tables.calibration_of({"calibration": block}) is block
    bins = calibration_tables.reliability_frame(block)
    filled = [b for b in range(15) if block["count"][b]]
    assert 0 < len(filled) < 15
    assert bins["pixels"].tolist() == [block["count"][b] for b in filled]
    assert bins["accuracy"].tolist() == pytest.approx([block["accuracy"][b] for b in filled])
    assert bins["centre"].tolist() == pytest.approx([(block["edges"][b] + block["edges"][b + 1]) / 2 for b in filled])
    curve = calibration_tables.coverage_frame(block)
    assert curve["threshold"].tolist() == pytest.approx(block["coverage_curve"]["threshold"][:len(curve)])
    assert curve["coverage"].iloc[0] == 1.0 and curve["coverage"].is_monotonic_decreasing
    damaged = {"calibration": {**block, "accuracy": block["accuracy"][:-1]}}
    assert calibration_tables.calibration_of(damaged) is None
