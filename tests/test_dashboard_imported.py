"""Imported runs (another tool's predictions, ``python -m training import-predictions``) beside
trained ones, on every page, with Streamlit's AppTest on real files (``imported_store``).

The store holds the two trained runs of ``dashboard_store`` and two imported runs whose
prediction PNGs were written from the ground truth with known mistakes
(``dashboard_fixtures.add_imported_runs``): ``imported_c8`` covers 3 of the 4 test images (the
two leftmost columns of each car predicted as road), ``imported_c19`` 2 of 4 (every car pixel
predicted as 255, "no class"). The expected numbers come from the runs' own files and from those
mistakes, never from the dashboard's code.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import (
    CAR_LABEL_ID,
    IMPORTED_C8,
    IMPORTED_C8_MS,
    IMPORTED_C19,
    image_captions,
    notes,
    open_page,
    point_dashboard_at,
)

from training.data.cityscapes import read_label_ids
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.evaluation.metrics import iou_per_class, mean_iou
from training.runs.reader import get_run

# What must never reach a page: Python's words for missing values, and a traceback.
NEVER_SHOWN = re.compile(r"\bNone\b|\bnan\b|\bNaN\b|Traceback")


# ---------------------------------------------------------------------------- helpers

def _test_ids(store) -> list[int]:
    index = load_or_build_index(store.data_root, write=False, report=lambda message: None)
    return [entry.id for entry in index.split("test")]


def _label_ids(store, image_id: int) -> np.ndarray:
    entry = load_or_build_index(store.data_root, write=False, report=lambda message: None)[image_id]
    return read_label_ids(store.data_root / entry.label)


def _per_image(store, run: str) -> pd.DataFrame:
    table = pd.DataFrame(get_run(run, store.artifacts).per_image())
    return table.apply(lambda c: pd.to_numeric(c, errors="coerce") if c.name != "split" else c).set_index("id")


def _widget(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def _charts(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _array(value) -> np.ndarray:
    """A chart's array as plotly sends it: a list, or a typed array ({dtype, bdata, shape})."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return array.reshape([int(n) for n in str(shape).split(",")]) if shape else array
    return np.array(value)


def _hover(at) -> dict:
    return next(t for chart in _charts(at) for t in chart["data"] if t["type"] == "heatmap" and "text" in t)


def _same(value, expected) -> bool:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return value is None or math.isnan(value)
    return value == pytest.approx(expected, abs=1e-9)


def _shown_words(at) -> list[str]:
    """What a person reads on the page: texts, metrics, widgets (as formatted), image captions,
    the text cells of tables, and the names, texts and hover data of charts."""
    words = [str(e.value) for kind in ("markdown", "caption", "info", "warning", "error", "success", "title",
                                       "subheader", "header") for e in getattr(at, kind)]
    words += [f"{m.label} {m.value}" for m in at.metric] + image_captions(at)
    for widget in [*at.selectbox, *at.multiselect, *at.radio]:
        words += [widget.label, *map(str, widget.options)]
    for frame in at.dataframe:  # missing values are the placeholder's (checked apart); text is read as shown
        words += [str(v) for column in frame.value.columns if not pd.api.types.is_numeric_dtype(frame.value[column])
                  for v in frame.value[column].dropna()]
    for chart in _charts(at):
        for trace in chart["data"]:
            words += [str(trace.get(field, "")) for field in ("name", "text", "hovertext", "customdata")]
        words.append(json.dumps(chart["layout"].get("xaxis", {}).get("title", "")))
    return words


def _assert_clean(at) -> None:
    """No exception, no "None"/"nan"/traceback shown, and every table that has a missing value
    shows it as an empty cell (``placeholder``), not as "None"."""
    assert not at.exception, [e.message for e in at.exception]
    found = [word for word in _shown_words(at) if NEVER_SHOWN.search(word)]
    assert not found, found[:5]
    for frame in at.dataframe:
        if frame.value.isna().to_numpy().any():
            assert frame.proto.HasField("placeholder") and frame.proto.placeholder == "", list(frame.value.columns)


# ---------------------------------------------------------------------------- overview

def test_the_leaderboard_tags_imported_runs_with_their_coverage(imported_env):
    store = imported_env
    at = open_page("overview")
    _assert_clean(at)
    board = at.dataframe[0].value.set_index("run")
    assert sorted(board.index) == sorted(store.trained + store.imported)
    for run in store.trained:
        assert board.loc[run, "source"] == "trained" and board.loc[run, "images"] == "all"
    c8 = board.loc[IMPORTED_C8]
    assert c8["source"] == "imported" and c8["images"] == "3 of 4" and c8["model"] == "othernet"
    assert board.loc[IMPORTED_C19, "images"] == "2 of 4"
    assert c8["miou"] == pytest.approx(get_run(IMPORTED_C8, store.artifacts).metrics["miou"])
    assert c8["inference_ms"] == pytest.approx(IMPORTED_C8_MS)
    # the training columns of an imported run are empty, not "-" (a trained run without a backbone)
    assert [c8[column] for column in ("backbone", "loss_name", "augmentation", "size")] == ["", "", "", ""]
    assert all(math.isnan(c8[column]) for column in ("params", "train_minutes", "val_miou"))
    assert board.loc[store.trained[0], "backbone"] == "-"
    shown = notes(at)
    assert f"{IMPORTED_C8} (3 of 4 test images), {IMPORTED_C19} (2 of 4 test images)" in shown
    assert f"Inference time of {IMPORTED_C8}: as given at import, not measured here" in shown

    # the trade-off chart plots the imported run at its given time, its unknown numbers as "-"
    scatter = [t for t in _charts(at)[0]["data"] if IMPORTED_C8 in (t.get("hovertext") or [])]
    assert scatter, "the imported run with an inference time is not plotted"
    point = scatter[0]["hovertext"].index(IMPORTED_C8)
    assert _array(scatter[0]["x"])[point] == pytest.approx(IMPORTED_C8_MS)
    assert "-" in scatter[0]["customdata"][point] and "3 of 4" in scatter[0]["customdata"][point]


def test_deploying_an_imported_run_is_never_offered(imported_store, tmp_path, monkeypatch):
    """A store of imported runs only: nothing can be deployed, and the page says why instead of
    suggesting ``deploy --best`` (which would find no model)."""
    artifacts = tmp_path / "artifacts"
    for run in imported_store.imported:
        shutil.copytree(imported_store.artifacts / "runs" / run, artifacts / "runs" / run)
    point_dashboard_at(monkeypatch, artifacts, imported_store.data_root)
    at = open_page("overview")
    _assert_clean(at)
    warning = " ".join(w.value for w in at.warning)
    assert "none of these can be: imported runs hold another tool's predictions, not a model" in warning
    assert "deploy --best" not in warning and "python -m training train" in warning
    for page in ("overview", "explorer", "comparison", "deployed"):
        opened = open_page(page, {"runs": ",".join(imported_store.imported)})
        assert not opened.exception, (page, [e.message for e in opened.exception])
        assert not [b.label for b in opened.button if "deploy" in b.label.lower()], page


# ---------------------------------------------------------------------------- explorer

def test_the_explorer_shows_an_imported_prediction_and_the_images_it_lacks(imported_env):
    store = imported_env
    covered, test_ids = store.covered[IMPORTED_C8], _test_ids(store)
    image_id = covered[0]
    at = open_page("explorer", {"id": str(image_id), "runs": f"{store.trained[0]},{IMPORTED_C8}", "layout": "grid"})
    _assert_clean(at)
    assert "imported_c8 (imported, 3 of 4 images)" in _widget(at.multiselect, "Runs").options
    captions = image_captions(at)
    assert f"{IMPORTED_C8}: prediction (imported)" in captions and f"{store.trained[0]}: prediction" in captions
    assert any(c.startswith(f"{IMPORTED_C8}: errors (") for c in captions)
    # this image's IoU: the run's per_image.csv, and the known mistake (2 of 5 car columns as road)
    table = next(f.value for f in at.dataframe if IMPORTED_C8 in f.value.columns)
    row = _per_image(store, IMPORTED_C8).loc[image_id]
    for name in get_class_set("categories8").names:
        assert _same(table.loc[name, IMPORTED_C8], row[f"iou_{name}"]), name
    assert table.loc["vehicle", IMPORTED_C8] == pytest.approx(3 / 5)
    assert table.loc["mIoU", IMPORTED_C8] == pytest.approx(row["miou"])
    # the hover names the imported prediction: road (flat) over the car's two leftmost columns
    _widget(at.selectbox, "Run under the cursor").set_value(IMPORTED_C8).run()
    hovertext = np.array(_hover(at)["hovertext"])
    label_ids = _label_ids(store, image_id)
    car_columns = np.flatnonzero((label_ids == CAR_LABEL_ID).any(axis=0))
    car = label_ids == CAR_LABEL_ID
    assert set(hovertext[:, car_columns[:2]][car[:, car_columns[:2]]]) == {"flat"}
    assert set(hovertext[:, car_columns[2:]][car[:, car_columns[2:]]]) == {"vehicle"}

    # an image of the split the import does not cover: a note in its column, the other run shown
    uncovered = next(i for i in test_ids if i not in covered)
    at.number_input[0].set_value(uncovered).run()
    _assert_clean(at)
    assert (f"Run {IMPORTED_C8}: image {uncovered} is not in this import: it covers 3 of 4 test images."
            in [info.value for info in at.info])
    assert f"{store.trained[0]}: prediction" in image_captions(at)
    assert f"{IMPORTED_C8}: prediction (imported)" not in image_captions(at)

    # worst first for the imported run: only the images it covers
    _widget(at.selectbox, "Order").set_value(IMPORTED_C8).run()
    _assert_clean(at)
    assert f"of {len(covered)} images (test split, worst first for {IMPORTED_C8})" in notes(at)


def test_the_explorer_shows_no_class_pixels_black_and_counts_them_wrong(imported_env):
    store = imported_env
    image_id = store.covered[IMPORTED_C19][0]
    at = open_page("explorer", {"id": str(image_id), "runs": IMPORTED_C19, "layout": "grid"})
    _assert_clean(at)
    assert f"{IMPORTED_C19}: prediction (imported)" in image_captions(at)
    assert f"Black in the prediction of {IMPORTED_C19}" in notes(at)
    predicted = get_run(IMPORTED_C19, store.artifacts).prediction(image_id)
    label_ids = _label_ids(store, image_id)
    car = label_ids == CAR_LABEL_ID
    assert (predicted[car] == 255).all()  # the premise: the import kept the "no class" pixels
    # every car pixel predicted as no class: car IoU 0 (dropping those pixels would leave it empty)
    table = at.dataframe[0].value
    row = _per_image(store, IMPORTED_C19).loc[image_id]
    assert table.loc["car", IMPORTED_C19] == 0.0 and row["iou_car"] == 0.0
    for name in get_class_set("cityscapes19").names:
        assert _same(table.loc[name, IMPORTED_C19], row[f"iou_{name}"]), name
    assert table.loc["mIoU", IMPORTED_C19] == pytest.approx(row["miou"])
    counted = get_class_set("cityscapes19").lut[label_ids] != 255
    wrong = f"{IMPORTED_C19}: errors ({car.sum() / counted.sum():.1%} of pixels wrong)"
    assert wrong in image_captions(at)
    hovertext = np.array(_hover(at)["hovertext"])
    assert set(hovertext[car]) == {"no class"}
    # the zoom picture of the prediction itself, and at full size
    _widget(at.radio, "Zoom and hover picture").set_value("prediction").run()
    _assert_clean(at)
    _widget(at.radio, "Zoom and hover picture").set_value("error map").run()
    _assert_clean(at)


# ---------------------------------------------------------------------------- comparison

def _over(store, run: str, ids: list[int]) -> tuple[np.ndarray, float]:
    """A run's per-class IoU and mIoU over ``ids`` from its own per-image files."""
    opened = get_run(run, store.artifacts)
    rows = [number for number, row in enumerate(opened.per_image()) if row["id"] in ids]
    k = len(opened.metrics["class_names"])
    iou = iou_per_class(opened.per_image_confusion()[rows].sum(axis=0))[:k]
    return iou, mean_iou(iou)


def test_comparison_with_an_imported_run(imported_env):
    store = imported_env
    trained = store.trained[0]
    at = open_page("comparison", {"runs": f"{trained},{IMPORTED_C8}"})
    _assert_clean(at)
    bars = _charts(at)[0]["data"]
    assert [bar["name"] for bar in bars] == [trained, "imported_c8 (imported, 3 of 4 images)"]
    metrics = get_run(IMPORTED_C8, store.artifacts).metrics
    assert all(_same(y, metrics["iou"][x]) for x, y in zip(bars[1]["x"], _array(bars[1]["y"])))
    assert at.dataframe[0].value.loc["mIoU (all classes)", IMPORTED_C8] == pytest.approx(metrics["miou"])
    shown = notes(at)
    assert f"Scored on part of the split: {IMPORTED_C8} on 3 of 4 test images." in shown
    # training curves: the trained run's; the imported one skipped with a note
    assert f"Imported, never trained here (no curves): {IMPORTED_C8}." in shown
    traces = [t["name"] for chart in _charts(at) for t in chart["data"] if t.get("mode") == "lines+markers"]
    assert traces and not [name for name in traces if IMPORTED_C8 in name]

    # its confusion matrix, and the images behind a cell
    _widget(at.selectbox, "Run").set_value(IMPORTED_C8).run()
    _assert_clean(at)
    heatmap = next(t for chart in _charts(at) for t in chart["data"] if t["type"] == "heatmap")
    assert np.array_equal(_array(heatmap["z"]), get_run(IMPORTED_C8, store.artifacts).confusion())
    assert f"{IMPORTED_C8}: the pixels of the 3 of 4 test images its import covers." in notes(at)
    _widget(at.selectbox, "True class (A)").set_value("vehicle").run()
    _widget(at.selectbox, "Predicted as (B)").set_value("flat").run()
    _assert_clean(at)
    listed = next(f.value for f in at.dataframe if "pixels" in f.value.columns)
    assert sorted(listed["id"]) == sorted(store.covered[IMPORTED_C8])

    # run A against run B: on the 3 images both have, said so
    _widget(at.selectbox, "Run A").set_value(trained).run()
    _widget(at.selectbox, "Run B").set_value(IMPORTED_C8).run()
    _assert_clean(at)
    assert (f"{trained} scored 4 test images, {IMPORTED_C8} 3: compared on the 3 images both have"
            in " ".join(i.value for i in at.info))
    shared = store.covered[IMPORTED_C8]
    (iou_a, miou_a), (iou_b, miou_b) = _over(store, trained, shared), _over(store, IMPORTED_C8, shared)
    difference = at.dataframe[-1].value
    for number, name in enumerate(get_class_set("categories8").names):
        assert _same(difference.loc[name, "A"], iou_a[number]) and _same(difference.loc[name, "B"], iou_b[number])
    assert difference.loc["mIoU (all classes)", "B - A"] == pytest.approx(miou_b - miou_a)
    assert difference.loc["mIoU (all classes)", "B"] != pytest.approx(get_run(trained, store.artifacts).metrics["miou"])
    assert _widget(at.metric, "mIoU (all classes) of B (against A)").value == f"{miou_b:.3f}"
    axis = json.dumps(_charts(at)[-1]["layout"]["xaxis"]["title"])
    assert "imported_c8 (imported, 3 of 4 images)" in axis

    # the imported cityscapes19 run against a categories8 run: never compared
    _widget(at.selectbox, "Run B").set_value(IMPORTED_C19).run()
    _assert_clean(at)
    assert any("class set" in i.value for i in at.info)


def test_two_trained_runs_are_still_compared_on_their_metrics_json(imported_env):
    """Runs that scored the same images: A against B is their metrics.json, with no note."""
    store = imported_env
    at = open_page("comparison", {"runs": ",".join(store.trained)})
    _assert_clean(at)
    assert not [i.value for i in at.info if "both have" in i.value]
    metrics = [get_run(run, store.artifacts).metrics for run in store.trained]
    difference = at.dataframe[-1].value
    assert difference.loc["mIoU (all classes)", "B - A"] == pytest.approx(metrics[1]["miou"] - metrics[0]["miou"])


@pytest.mark.parametrize("page, query", [
    ("overview", {}),
    ("explorer", {"runs": f"{IMPORTED_C8},{IMPORTED_C19},tiny_unet"}),
    ("comparison", {"runs": f"{IMPORTED_C19},{IMPORTED_C8},tiny_simple"}),
    ("deployed", {}),
])
def test_no_page_shows_none_nan_or_a_traceback(imported_env, page, query):
    at = open_page(page, query)
    _assert_clean(at)
    _assert_shown(at, page, imported_env)  # a page that stopped early would pass the check above vacuously
    if page == "explorer":  # every test image, covered by none, one or both imports
        for image_id in _test_ids(imported_env):
            at.number_input[0].set_value(image_id).run()
            _assert_clean(at)
            _assert_shown(at, page, imported_env)
            assert at.number_input[0].value == image_id


def _assert_shown(at, page: str, store) -> None:
    """What each page must show on the imported store, so that checking what it shows means something."""
    if page == "overview":
        board = at.dataframe[0].value
        assert sorted(board["run"]) == sorted(store.trained + store.imported)
        assert board["miou"].notna().all() and len(at.get("plotly_chart")) == 1
    elif page == "explorer":
        captions = image_captions(at)
        assert "photo" in captions and any(caption.startswith("ground truth") for caption in captions)
        runs = [IMPORTED_C8, IMPORTED_C19, "tiny_unet"]
        # each run: its prediction and error map, or a note naming it (an image its import does not cover)
        shown = captions + [message.value for message in [*at.info, *at.warning]]
        assert all(any(run in text for text in shown) for run in runs), shown
        assert any("share of image" in frame.value.columns for frame in at.dataframe)
    elif page == "comparison":
        frames = [frame.value for frame in at.dataframe]
        assert any(IMPORTED_C19 in frame.columns for frame in frames) and any(IMPORTED_C8 in frame.columns
                                                                               for frame in frames)
        assert len(at.get("plotly_chart")) >= 3  # IoU per class (two class sets), the confusion, A against B
    else:  # deployed: no API in these tests, so the page says it is unreachable, with its URL
        assert any("The segmentation API is unreachable" in error.value for error in at.error)
