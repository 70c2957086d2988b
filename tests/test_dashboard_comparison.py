"""The Model comparison page, with Streamlit's AppTest on the tiny two-run store."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from training.runs.reader import get_run

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
PAGE = "app_pages/comparison.py"


def _comparison() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def _widget(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def _same(value, expected) -> bool:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return value is None or math.isnan(value)
    return value == pytest.approx(expected, abs=1e-9)


def test_per_class_bars_and_table_show_metrics_json(dashboard_env):
    store = dashboard_env
    at = _comparison()
    assert at.query_params["runs"].split(",") == store.runs
    table = at.dataframe[0].value
    bars = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert [bar["name"] for bar in bars] == store.runs
    for run, bar in zip(store.runs, bars):
        metrics = get_run(run, store.artifacts).metrics
        assert bar["x"] == metrics["class_names"]
        for name, value in zip(bar["x"], bar["y"]):
            assert _same(value, metrics["iou"][name]), (run, name)
            assert _same(table.loc[name, run], metrics["iou"][name])
        assert table.loc["mIoU (all classes)", run] == pytest.approx(metrics["miou"])

    # one run only: the URL follows
    _widget(at.multiselect, "Runs").set_value([store.runs[1]]).run()
    assert at.query_params["runs"] == store.runs[1]
    assert list(at.dataframe[0].value.columns) == [store.runs[1]]
    assert not at.exception


def test_confusion_matrix_counts_and_row_normalised(dashboard_env):
    store = dashboard_env
    run = store.runs[0]
    matrix = get_run(run, store.artifacts).confusion()
    at = _comparison()
    _widget(at.selectbox, "Run").set_value(run).run()
    heatmap = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert heatmap["layout"]["xaxis"]["title"]["text"] == "predicted"
    assert heatmap["layout"]["yaxis"]["title"]["text"] == "true"
    names = get_run(run, store.artifacts).metrics["confusion_names"]
    assert heatmap["data"][0]["x"] == names and heatmap["data"][0]["y"] == names
    numbers = at.dataframe[1].value
    assert np.array_equal(numbers.to_numpy(), matrix)

    _widget(at.radio, "Values").set_value("row-normalised").run()
    normalised = at.dataframe[1].value.to_numpy()
    rows = matrix.sum(axis=1)
    assert np.allclose(normalised[rows > 0].sum(axis=1), 1.0)
    assert np.allclose(normalised, matrix / np.maximum(rows[:, None], 1))


def _a_confused_cell(matrices: np.ndarray) -> tuple[int, int]:
    """The off-diagonal cell that most images share (so the list has several rows)."""
    images = (matrices > 0).sum(axis=0).astype(float)
    np.fill_diagonal(images, -1)
    return tuple(int(v) for v in np.unravel_index(np.argmax(images), images.shape))


def test_a_cell_lists_the_images_with_the_most_such_pixels_and_opens_them(dashboard_env):
    store = dashboard_env
    run = store.runs[1]
    tiny = get_run(run, store.artifacts)
    matrices = tiny.per_image_confusion()
    ids = np.array([int(row["id"]) for row in tiny.per_image()])
    names = tiny.metrics["confusion_names"]
    a, b = _a_confused_cell(matrices)
    counts = matrices[:, a, b]
    order = np.argsort(-counts, kind="stable")
    expected = [int(ids[i]) for i in order if counts[i] > 0][:10]
    assert expected

    at = _comparison()
    _widget(at.selectbox, "Run").set_value(run).run()
    _widget(at.selectbox, "True class (A)").set_value(names[a]).run()
    _widget(at.selectbox, "Predicted as (B)").set_value(names[b]).run()
    listed = at.dataframe[2].value
    assert list(listed["id"]) == expected
    assert list(listed["pixels"]) == sorted(listed["pixels"], reverse=True)
    per_image = {int(row["id"]): row for row in tiny.per_image()}
    for _, row in listed.iterrows():
        position = int(np.flatnonzero(ids == row["id"])[0])
        assert row["pixels"] == counts[position]
        assert row["share of image"] == pytest.approx(counts[position] / matrices[position].sum())
        assert row["image mIoU"] == pytest.approx(float(per_image[int(row["id"])]["miou"]), abs=1e-6)

    chosen = expected[-1]
    _widget(at.selectbox, "Image").set_value(chosen).run()
    _widget(at.button, "Open in the explorer").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Image explorer"]
    assert at.query_params["id"] == str(chosen)
    assert at.query_params["runs"].split(",") == store.runs  # every compared run
    assert at.number_input[0].value == chosen


def _curve_charts(at: AppTest) -> dict[str, dict]:
    """The training-curve charts (the titled ones), by title, in page order."""
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    return {chart["layout"]["title"]["text"]: chart for chart in charts if "title" in chart["layout"]}


def _lines(chart: dict) -> dict[tuple[str, str], list]:
    """(run, history column) -> the line's values; the run and column as the hover names them."""
    return {tuple(trace["hovertemplate"].split(",")[0].split("<br>")): trace["y"] for trace in chart["data"]}


def test_training_curves_and_run_a_against_run_b(dashboard_env):
    store = dashboard_env
    first, second = store.runs  # tiny_simple: cross-entropy; tiny_unet: cross-entropy + Dice
    histories = {run: get_run(run, store.artifacts).history() for run in store.runs}
    at = _comparison()
    charts = _curve_charts(at)
    # the mIoU of both runs on one chart; each loss type on its own chart
    assert list(charts) == ["mIoU", "cce loss (cross-entropy)", "cce_dice loss (cross-entropy + Dice)"]
    wanted = {"mIoU": [(run, column) for run in store.runs for column in ("miou", "val_miou")],
              "cce loss (cross-entropy)": [(first, "loss"), (first, "val_loss")],
              "cce_dice loss (cross-entropy + Dice)": [(second, "loss"), (second, "val_loss")]}
    for title, chart in charts.items():
        lines = _lines(chart)
        assert list(lines) == wanted[title], title
        for (run, column), values in lines.items():
            assert values == pytest.approx([row[column] for row in histories[run]]), (title, run, column)
        # a compact legend: below the chart, one short name per run
        assert chart["layout"]["legend"]["orientation"] == "h" and chart["layout"]["legend"]["y"] < 0
        legend = [trace["name"] for trace in chart["data"] if trace.get("showlegend", True)]
        assert legend == [{"tiny_simple": "simple", "tiny_unet": "unet"}[run] for run, _ in lines][::2]

    assert _widget(at.selectbox, "Run A").value == first and _widget(at.selectbox, "Run B").value == second
    difference = at.dataframe[-1].value
    metrics_a = get_run(first, store.artifacts).metrics
    metrics_b = get_run(second, store.artifacts).metrics
    bars = json.loads(at.get("plotly_chart")[-1].proto.spec)["data"][0]
    for name, delta in zip(bars["y"], bars["x"]):
        a, b = metrics_a["iou"][name], metrics_b["iou"][name]
        expected = None if a is None or b is None else b - a
        assert _same(delta, expected), name
        assert _same(difference.loc[name, "B - A"], expected)
    assert difference.loc["mIoU (all classes)", "B - A"] == pytest.approx(metrics_b["miou"] - metrics_a["miou"])

    _widget(at.selectbox, "Run B").set_value(first).run()
    assert any("two different runs" in c.value for c in at.caption)
    assert not at.exception

    # the runs to plot: one run only (the URL follows), then the page's runs again (the URL forgets)
    _widget(at.multiselect, "Runs to plot").set_value([second]).run()
    assert not at.exception and at.query_params["curves"] == second
    charts = _curve_charts(at)
    assert list(charts) == ["mIoU", "cce_dice loss (cross-entropy + Dice)"]
    assert set(_lines(charts["mIoU"])) == {(second, "miou"), (second, "val_miou")}
    assert [trace["name"] for trace in charts["mIoU"]["data"]] == ["unet", "unet"]  # named as on every page
    _widget(at.multiselect, "Runs to plot").set_value(list(store.runs)).run()
    assert "curves" not in at.query_params and len(_curve_charts(at)) == 3
