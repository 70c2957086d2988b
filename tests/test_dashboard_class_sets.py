"""Runs of different class sets side by side (a categories8 run and a cityscapes19 run on the same
tiny dataset): every page shows and scores each run in its own class set, and never mixes the two
in one chart or table without saying so."""

from __future__ import annotations

import json
import math
import re
import shutil

import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import fake_api, image_captions, notes, open_page, point_dashboard_at

from training.data.cityscapes import read_label_ids
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.runs.deployment import deploy
from training.runs.reader import get_run


@pytest.fixture
def mixed(class_sets_store, monkeypatch):
    point_dashboard_at(monkeypatch, class_sets_store.artifacts, class_sets_store.data_root)
    return class_sets_store


def _test_ids(store) -> list[int]:
    index = load_or_build_index(store.data_root, write=False, report=lambda message: None)
    return [entry.id for entry in index.split("test")]


def _truth(store, image_id: int, classes: str) -> np.ndarray:
    entry = load_or_build_index(store.data_root, write=False, report=lambda message: None)[image_id]
    return get_class_set(classes).lut[read_label_ids(store.data_root / entry.label)]


def _per_image(store, run: str) -> pd.DataFrame:
    table = pd.DataFrame(get_run(run, store.artifacts).per_image())
    return table.apply(lambda c: pd.to_numeric(c, errors="coerce") if c.name != "split" else c).set_index("id")


def _assert_matches_per_image_csv(frame: pd.DataFrame, store, run: str, image_id: int, classes: str) -> None:
    names = get_class_set(classes).names
    assert list(frame.index) == [*names, "mIoU"], (run, list(frame.index))
    row = _per_image(store, run).loc[image_id]
    for name in names:
        expected, value = row[f"iou_{name}"], frame.loc[name, run]
        assert (math.isnan(expected) and math.isnan(value)) or value == pytest.approx(expected, abs=1e-6), (run, name)
    assert frame.loc["mIoU", run] == pytest.approx(row["miou"], abs=1e-6)


def test_overview_lists_each_run_with_its_class_set(mixed):
    at = open_page("overview")
    assert not at.exception
    board = at.dataframe[0].value
    assert dict(zip(board["run"], board["classes"])) == dict(zip(mixed.runs, mixed.classes))
    assert "class set" in notes(at)  # the scores of two class sets are not comparable: said so


def test_explorer_shows_and_scores_each_run_in_its_own_class_set(mixed):
    c8, c19 = mixed.runs
    image_id = _test_ids(mixed)[1]
    at = open_page("explorer", {"id": str(image_id), "runs": f"{c8},{c19}", "layout": "grid"})
    assert not at.exception, [e.message for e in at.exception]
    captions = image_captions(at)
    for caption in ("photo", "ground truth (categories8)", "ground truth (cityscapes19)",
                    f"{c8}: prediction", f"{c19}: prediction"):
        assert caption in captions, captions
    # a legend per class set, with its own names
    legends = [m.value for m in at.markdown if "background:rgb" in m.value]
    assert len(legends) == 2
    assert "vehicle" in legends[0] and "traffic light" in legends[1]
    # this image's IoU: a table per class set, scored against the ground truth in that class set
    tables = {tuple(frame.value.columns): frame.value for frame in at.dataframe}
    _assert_matches_per_image_csv(tables[("share of image", c8)], mixed, c8, image_id, "categories8")
    _assert_matches_per_image_csv(tables[("share of image", c19)], mixed, c19, image_id, "cityscapes19")
    # the hover figure names classes in the chosen run's class set
    next(s for s in at.selectbox if s.label == "Run under the cursor").set_value(c19).run()
    assert not at.exception
    heatmap = next(t for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"] if t["type"] == "heatmap")
    names = np.array([*get_class_set("cityscapes19").names, *["?"] * 236, "ignored"], dtype=object)
    assert np.array_equal(np.array(heatmap["text"]), names[_truth(mixed, image_id, "cityscapes19")])
    predicted = get_run(c19, mixed.artifacts).prediction(image_id)
    assert np.array_equal(np.array(heatmap["hovertext"]), names[predicted])


def test_explorer_filters_by_the_classes_of_a_chosen_class_set(mixed):
    at = open_page("explorer", {"runs": mixed.runs[1]})
    assert not at.exception
    next(s for s in at.selectbox if s.label == "Class set").set_value("cityscapes19").run()
    contains = next(m for m in at.multiselect if m.label == "Ground truth contains")
    assert "car" in contains.options and "vehicle" not in contains.options
    contains.set_value(["car"]).run()
    assert not at.exception
    with_car = [i for i in _test_ids(mixed)
                if get_class_set("cityscapes19").names.index("car") in _truth(mixed, i, "cityscapes19")]
    assert any(f"of {len(with_car)} images (test split with car)" in c.value for c in at.caption)


def test_the_filter_and_the_share_column_agree_on_an_image_with_ignored_pixels(mixed):
    """One definition of a class's share (its pixels over the counted ones): the filter's threshold
    keeps an image exactly when the table's "share of image" says the class covers enough of it."""
    c19 = mixed.runs[1]
    class_set = get_class_set("cityscapes19")
    ids = _test_ids(mixed)
    truths = {i: _truth(mixed, i, "cityscapes19") for i in ids}
    image_id = next(i for i in ids if (truths[i] == 255).any() and (truths[i] == class_set.names.index("car")).any())
    truth = truths[image_id]
    share = float((truth == class_set.names.index("car")).sum() / (truth != 255).sum())  # over the counted pixels
    assert share != pytest.approx(float((truth == class_set.names.index("car")).mean()))  # the premise: it matters
    at = open_page("explorer", {"id": str(image_id), "runs": c19})
    table = next(frame.value for frame in at.dataframe if "share of image" in frame.value.columns)
    assert table.loc["car", "share of image"] == pytest.approx(100 * share)  # shown in percent
    next(s for s in at.selectbox if s.label == "Class set").set_value("cityscapes19").run()
    next(m for m in at.multiselect if m.label == "Ground truth contains").set_value(["car"]).run()
    for percent, kept in ((100 * share - 0.05, True), (100 * share + 0.05, False)):
        at.number_input(key="explorer_min_share").set_value(round(percent, 2)).run()
        assert not at.exception
        at.number_input(key="explorer_id").set_value(image_id).run()
        position = next(c.value for c in at.caption if c.value.startswith(f"Image {image_id} "))
        assert bool(re.search(r"— \d+ of \d+ images", position)) == kept, (percent, position)


def test_explorer_with_the_cityscapes19_run_deployed(mixed, tmp_path, monkeypatch):
    """The page's ground truth follows the deployed run; the other run still gets its own."""
    artifacts = shutil.copytree(mixed.artifacts, tmp_path / "artifacts")
    deploy(mixed.runs[1], artifacts)
    monkeypatch.setenv("ARTIFACTS_DIR", str(artifacts))
    image_id = _test_ids(mixed)[0]
    at = open_page("explorer", {"id": str(image_id), "runs": mixed.runs[0]})
    assert not at.exception, [e.message for e in at.exception]
    assert "ground truth" in image_captions(at) and f"{mixed.runs[0]}: prediction" in image_captions(at)
    _assert_matches_per_image_csv(at.dataframe[0].value, mixed, mixed.runs[0], image_id, "categories8")


def test_comparison_groups_runs_by_class_set(mixed):
    c8, c19 = mixed.runs
    at = open_page("comparison", {"runs": f"{c8},{c19}"})
    assert not at.exception, [e.message for e in at.exception]
    charts = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    # no chart holds runs of both class sets
    for chart in charts:
        names = " ".join(str(trace.get("name", "")) for trace in chart["data"])
        assert not (c8 in names and c19 in names), names
    iou_charts = [chart for chart in charts if chart["data"] and chart["data"][0].get("type") == "bar"
                  and chart["data"][0].get("orientation") != "h"]
    assert len(iou_charts) == 2
    for chart, run, classes in zip(iou_charts, mixed.runs, mixed.classes):
        assert [bar["name"] for bar in chart["data"]] == [run]
        assert chart["data"][0]["x"] == list(get_class_set(classes).names)
    iou_tables = [frame.value for frame in at.dataframe if list(frame.value.columns) in ([c8], [c19])]
    assert [list(frame.columns) for frame in iou_tables] == [[c8], [c19]]
    for frame, run in zip(iou_tables, mixed.runs):
        metrics = get_run(run, mixed.artifacts).metrics
        assert list(frame.index) == [*metrics["class_names"], "mIoU (all classes)", "mIoU (official)"]
        assert frame.loc["mIoU (all classes)", run] == pytest.approx(metrics["miou"])
        assert frame.loc["mIoU (official)", run] == pytest.approx(metrics["miou_official"])
    shown = notes(at)
    assert "categories8" in shown and "cityscapes19" in shown

    # the confusion matrix of the cityscapes19 run: its 19 classes (and the sink of ignored labels)
    next(s for s in at.selectbox if s.label == "Run").set_value(c19).run()
    assert not at.exception
    heatmap = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                   if json.loads(c.proto.spec)["data"][0]["type"] == "heatmap")
    assert heatmap["data"][0]["x"] == get_run(c19, mixed.artifacts).metrics["confusion_names"]

    # run A against run B: never across class sets
    next(s for s in at.selectbox if s.label == "Run A").set_value(c8).run()
    next(s for s in at.selectbox if s.label == "Run B").set_value(c19).run()
    assert not at.exception
    assert any("class set" in c.value for c in [*at.caption, *at.info, *at.warning])
    assert not any(m.label == "mIoU (all classes) of B (against A)" for m in at.metric)


def test_deployed_page_with_runs_of_two_class_sets(mixed, monkeypatch):
    with fake_api(run=mixed.runs[0]) as api:
        monkeypatch.setenv("SEGMENTATION_API_URL", api)
        at = open_page("deployed")
    assert not at.exception
    assert len(at.image) == 3
