"""The Image explorer page, with Streamlit's AppTest on the tiny two-run store."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from training.data.cityscapes import read_label_ids
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.runs.reader import get_run

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
PAGE = "app_pages/explorer.py"


def _explorer(query_params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.query_params.update(query_params or {})
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def _per_image(store, run: str) -> pd.DataFrame:
    table = pd.DataFrame(get_run(run, store.artifacts).per_image())
    return table.apply(lambda column: pd.to_numeric(column, errors="coerce") if column.name != "split" else column)


def _widget(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def _caption(at) -> str:
    return next(c.value for c in at.caption if c.value.startswith("Image "))


def _assert_iou_table_matches_csv(at, store, image_id: int, runs: list[str]) -> None:
    shown = at.dataframe[0].value
    names = get_class_set("categories8").names
    for run in runs:
        row = _per_image(store, run).set_index("id").loc[image_id]
        for name in names:
            expected, value = row[f"iou_{name}"], shown.loc[name, run]
            both_absent = math.isnan(expected) and math.isnan(value)
            assert both_absent or value == pytest.approx(expected, abs=1e-6), (run, name)
        assert shown.loc["mIoU", run] == pytest.approx(row["miou"], abs=1e-6)


def test_choosing_ids_changes_the_view_the_url_and_the_iou_table(dashboard_env):
    store = dashboard_env
    test_ids = sorted(int(i) for i in _per_image(store, store.runs[0])["id"])
    at = _explorer()
    # default: the first test image (runs evaluate the test split), every run (at most four)
    assert at.query_params["id"] == str(test_ids[0])
    assert at.query_params["runs"].split(",") == store.runs
    assert _caption(at).startswith(f"Image {test_ids[0]} · test")
    _assert_iou_table_matches_csv(at, store, test_ids[0], store.runs)
    # the side-by-side panels (tests/test_dashboard_compare_view.py); under them the zoom-and-hover
    # figure only on demand (the panels already zoom together and tell every run's class)
    assert [chart.key for chart in at.get("plotly_chart")] == ["explorer_compare_chart"]
    at.toggle(key="explorer_hover_open").set_value(True).run()
    assert [chart.key for chart in at.get("plotly_chart")] == ["explorer_compare_chart", "explorer_hover_chart"]

    at.number_input[0].set_value(test_ids[2]).run()
    assert not at.exception
    assert at.query_params["id"] == str(test_ids[2])
    assert _caption(at).startswith(f"Image {test_ids[2]} · test")
    _assert_iou_table_matches_csv(at, store, test_ids[2], store.runs)

    _widget(at.button, "Next").click().run()
    assert at.number_input[0].value == test_ids[3]
    assert at.query_params["id"] == str(test_ids[3])
    _widget(at.button, "Previous").click().run()
    assert at.query_params["id"] == str(test_ids[2])
    _widget(at.button, "Random").click().run()
    assert int(at.query_params["id"]) in set(test_ids) - {test_ids[2]}
    assert not at.exception


def test_the_url_reproduces_the_view(dashboard_env):
    store = dashboard_env
    image_id = sorted(int(i) for i in _per_image(store, store.runs[1])["id"])[1]
    at = _explorer({"id": str(image_id), "runs": store.runs[1]})
    assert at.number_input[0].value == image_id
    assert _widget(at.multiselect, "Runs").value == [store.runs[1]]
    assert list(at.dataframe[0].value.columns) == ["share of image", store.runs[1]]
    _assert_iou_table_matches_csv(at, store, image_id, [store.runs[1]])
    # hover: the true and the predicted class of every cell (16 x 32 needs no downsampling)
    at.toggle(key="explorer_hover_open").set_value(True).run()
    chart = next(chart for chart in at.get("plotly_chart") if chart.key == "explorer_hover_chart")
    heatmap = next(t for t in json.loads(chart.proto.spec)["data"] if t["type"] == "heatmap")
    assert heatmap["hovertemplate"].startswith("true: %{text}<br>predicted: %{hovertext}")
    entry = load_or_build_index(store.data_root)[image_id]
    names = np.array(get_class_set("categories8").names)
    truth = get_class_set("categories8").lut[read_label_ids(store.data_root / entry.label)]
    assert np.array_equal(np.array(heatmap["text"]), names[truth])
    predicted = get_run(store.runs[1], store.artifacts).prediction(image_id)
    assert np.array_equal(np.array(heatmap["hovertext"]), names[predicted])

    _widget(at.multiselect, "Runs").set_value(store.runs).run()
    assert at.query_params["runs"] == ",".join(store.runs)
    assert at.query_params["id"] == str(image_id)


def test_worst_images_first_follow_per_image_miou(dashboard_env):
    store = dashboard_env
    run = store.runs[1]
    table = _per_image(store, run).sort_values(["miou", "id"], kind="stable")
    expected = [int(i) for i in table["id"]]
    at = _explorer()
    _widget(at.selectbox, "Order").set_value(run).run()
    shown = [at.number_input[0].value]
    for _ in expected[1:]:
        _widget(at.button, "Next").click().run()
        shown.append(at.number_input[0].value)
    assert shown == expected
    assert f"{len(expected)} of {len(expected)} images (test split, worst first for {run})" in _caption(at)
    assert not at.exception


def test_filter_by_split_and_classes_present(dashboard_env):
    store = dashboard_env
    index = load_or_build_index(store.data_root)
    class_set = get_class_set("categories8")
    present = {e.id: set(np.unique(class_set.lut[read_label_ids(store.data_root / e.label)]))
               for e in index.split("test")}
    def matching(*names):
        wanted = {class_set.names.index(name) for name in names}
        return sorted(i for i, classes in present.items() if wanted <= classes)

    at = _explorer({"min_share": "0"})  # any pixel of a class (the tiny street's person is 0.6 % of it)
    classes = _widget(at.multiselect, "Ground truth contains")
    classes.set_value(["human", "vehicle"]).run()
    assert matching("human", "vehicle")  # the tiny street has people and cars
    assert f"of {len(matching('human', 'vehicle'))} images" in _caption(at)
    assert at.number_input[0].value == matching("human", "vehicle")[0]
    assert not matching("object")  # ... but no pole, sign or traffic light
    _widget(at.multiselect, "Ground truth contains").set_value(["object"]).run()
    assert "no image matches" in _caption(at)
    assert _widget(at.button, "Next").disabled

    # the train split: no run evaluated it, so each run says so instead of showing an image
    _widget(at.multiselect, "Ground truth contains").set_value([]).run()
    _widget(at.selectbox, "Split").set_value("train").run()
    train_ids = [e.id for e in index.split("train")]
    assert at.number_input[0].value == train_ids[0]
    notes = [info.value for info in at.info]
    for run in store.runs:
        assert any(note.startswith(f"Run {run} evaluated the test split only") for note in notes)
    assert not at.dataframe
    assert not at.exception


@pytest.mark.parametrize("page", [PAGE, "app_pages/comparison.py"])
def test_an_empty_store_explains_how_to_train(page, tmp_path, monkeypatch, dashboard_env):
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "empty"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(page).run()
    assert not at.exception
    assert any("make demo" in info.value and "python -m training train" in info.value for info in at.info)
    assert not at.number_input and not at.dataframe
