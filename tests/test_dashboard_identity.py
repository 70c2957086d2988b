"""The dashboard follows changes on disk while it runs: a run replaced under the same name, and a
rebuilt dataset index that gives an id to another file. One AppTest session, across the change:
the second script run must show the new run's numbers and predictions, and the new image."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from dashboard_fixtures import image_captions, notes, open_page, point_dashboard_at

from training.cli import main as training_cli
from training.data.cityscapes import read_label_ids
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.runs.reader import get_run
from training.runs.writer import RunWriter

NAMES = np.array([*get_class_set("categories8").names, *["?"] * 247, "ignored"], dtype=object)


def _hover(at) -> dict:
    if not any(chart.key == "explorer_hover_chart" for chart in at.get("plotly_chart")):
        at.toggle(key="explorer_hover_open").set_value(True).run()  # on demand under the side-by-side view
    chart = next(chart for chart in at.get("plotly_chart") if chart.key == "explorer_hover_chart")  # the zoom view's
    return next(t for t in json.loads(chart.proto.spec)["data"] if t["type"] == "heatmap")


def _republish(artifacts, name: str, image_id: int) -> tuple[dict, np.ndarray]:
    """The run ``name`` removed, and another published under the same name by ``RunWriter`` (a
    new uid, other numbers, another prediction for ``image_id``): what re-training a run of the
    same name after deleting the old one does."""
    old = get_run(name, artifacts)
    writer = RunWriter(name, artifacts)
    for path in old.path.rglob("*"):
        if path.is_file():
            target = writer.path(str(path.relative_to(old.path)))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    metrics = {key: value for key, value in old.metrics.items() if key != "uid"}
    metrics.update(miou=round(1 - metrics["miou"] / 2, 6),
                   iou={key: (None if value is None else 1 - value) for key, value in metrics["iou"].items()})
    writer.write_json("metrics.json", metrics)
    predicted = ((old.prediction(image_id).astype(int) + 1) % 8).astype(np.uint8)  # every pixel another class
    writer.write_prediction(image_id, predicted, get_class_set("categories8").palette())
    shutil.rmtree(old.path)
    assert writer.commit() == old.path
    assert get_run(name, artifacts).uid != old.uid
    return metrics, predicted


def test_a_run_replaced_under_the_same_name_shows_its_new_numbers_and_predictions(dashboard_store_copy):
    store = dashboard_store_copy
    name = store.runs[1]
    image_id = int(get_run(name, store.artifacts).per_image()[0]["id"])
    before = get_run(name, store.artifacts).metrics

    overview = open_page("overview")
    board = overview.dataframe[0].value.set_index("run")
    assert board.loc[name, "miou"] == pytest.approx(before["miou"])
    explorer = open_page("explorer", {"id": str(image_id), "runs": name})
    explorer.toggle(key="explorer_hover_open").set_value(True).run()  # the zoom view, on demand side by side
    next(s for s in explorer.selectbox if s.label == "Run under the cursor").set_value(name).run()
    comparison = open_page("comparison", {"runs": name})
    assert comparison.dataframe[0].value.loc["mIoU (all classes)", name] == pytest.approx(before["miou"])

    metrics, predicted = _republish(store.artifacts, name, image_id)

    overview.run()
    assert not overview.exception
    assert overview.dataframe[0].value.set_index("run").loc[name, "miou"] == pytest.approx(metrics["miou"])
    comparison.run()
    assert not comparison.exception
    table = comparison.dataframe[0].value
    assert table.loc["mIoU (all classes)", name] == pytest.approx(metrics["miou"])
    for class_name, value in metrics["iou"].items():
        assert (value is None and np.isnan(table.loc[class_name, name])) or table.loc[class_name, name] == (
            pytest.approx(value))
    explorer.run()
    assert not explorer.exception
    assert np.array_equal(np.array(_hover(explorer)["hovertext"]), NAMES[predicted])


def _copy_with_its_dataset(store, box):
    """The store and its dataset copied to ``box``; the runs' configs name the copy."""
    artifacts = shutil.copytree(store.artifacts, box / "artifacts")
    data_root = shutil.copytree(store.data_root, box / "cityscapes")
    for config in (artifacts / "runs").glob("*/config.yaml"):
        config.write_text(config.read_text().replace(str(store.data_root), str(data_root)))
    return artifacts, data_root


def test_a_rebuilt_index_shows_the_new_image_of_an_id(dashboard_store, tmp_path, monkeypatch):
    artifacts, data_root = _copy_with_its_dataset(dashboard_store, tmp_path)
    point_dashboard_at(monkeypatch, artifacts, data_root)
    old = load_or_build_index(data_root, write=False, report=lambda message: None)
    first, image_id = [entry.id for entry in old.split("test")][:2]

    at = open_page("explorer", {"id": str(image_id), "runs": dashboard_store.runs[0]})
    assert not at.exception
    assert any(c.value.startswith(f"Image {image_id} · test · {old[image_id].city} · {old[image_id].stem} ")
               for c in at.caption)

    # the first test image goes away; `data index --rebuild` renumbers: the id names the next file
    (data_root / old[first].image).unlink()
    (data_root / old[first].label).unlink()
    assert training_cli(["data", "index", "--rebuild", "--data-root", str(data_root)]) == 0
    new = load_or_build_index(data_root, write=False, report=lambda message: None)
    assert new[image_id].stem != old[image_id].stem

    at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert any(c.value.startswith(f"Image {image_id} · test · {new[image_id].city} · {new[image_id].stem} ")
               for c in at.caption), [c.value for c in at.caption]
    truth = get_class_set("categories8").lut[read_label_ids(data_root / new[image_id].label)]
    assert np.array_equal(np.array(_hover(at)["text"]), NAMES[truth])
    assert "photo" in image_captions(at)
    # the run's predictions were made on the old numbering: said so, next to them
    assert f"{dashboard_store.runs[0]} was evaluated on another index" in notes(at)
