"""A damaged run store never crashes a page: every page of the dashboard on copies of the tiny
two-run store, each damaged in one way (the way a disk that filled up, a store copied by hand or a
person editing files damages it).

On every page: no exception, the reason shown (the Overview's "damaged runs" box, the other
pages' sidebar), the whole runs still shown, and no absolute path anywhere on the page.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field

import numpy as np
import pytest
from dashboard_fixtures import fake_api, image_captions, notes, open_page, shown_text
from PIL import Image

import dashboard.readers.store as store
from training.data.index import load_or_build_index

PAGES = ("overview", "explorer", "comparison", "deployed", "anatomy", "labels", "gallery", "tags", "drive")


@dataclass
class Damage:
    """What a case expects: the runs left out with (a part of) their reason, a note every page
    must show, notes only some pages show (the explorer's at ``image_id``)."""

    damaged: dict[str, str] = field(default_factory=dict)
    note: str = ""
    page_notes: dict[str, str] = field(default_factory=dict)
    image_id: int | None = None


def _run(store, number: int):
    return store.artifacts / "runs" / store.runs[number]


def _first_test_id(store) -> int:
    index = load_or_build_index(store.data_root, write=False, report=lambda message: None)
    return index.split("test")[0].id


def truncated_metrics_of_the_deployed_run(store) -> Damage:
    path = _run(store, 0) / "metrics.json"
    path.write_text(path.read_text()[:40])
    return Damage({store.runs[0]: "metrics.json is not valid JSON"}, note="deployed run")


def metrics_holding_a_list(store) -> Damage:
    (_run(store, 1) / "metrics.json").write_text("[]")
    return Damage({store.runs[1]: "metrics.json holds a list, not an object"})


def deployed_json_naming_a_number(store) -> Damage:
    (store.artifacts / "deployed.json").write_text(json.dumps({"run": 5}))
    return Damage(note="deployed.json is damaged")


def deployed_json_naming_a_missing_run(store) -> Damage:
    (store.artifacts / "deployed.json").write_text(json.dumps({"run": "gone"}))
    return Damage(note="'gone'")


def metrics_of_garbage_values(store) -> Damage:
    """A readable metrics.json whose numbers are not numbers: the run is named with the first."""
    path = _run(store, 1) / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics.update(image_size=5, miou="high", params=None, inference_ms="fast", val_miou=[1],
                   iou={**metrics["iou"], "flat": "good"}, train_seconds={})
    path.write_text(json.dumps(metrics))
    return Damage({store.runs[1]: "metrics.json: miou is 'high', not a number"})


def history_cut_inside_its_last_row(store) -> Damage:
    path = _run(store, 1) / "history.csv"
    text = path.read_text()
    path.write_text(text[: text.rstrip("\n").rfind(",") + 1])
    return Damage({store.runs[1]: "history.csv: line"})


def metrics_and_config_not_utf8(store) -> Damage:
    for name in ("metrics.json", "config.yaml"):
        path = _run(store, 1) / name
        path.write_bytes(b"\xff\xfe" + path.read_bytes())
    return Damage({store.runs[1]: "metrics.json is not UTF-8 text"})


def confusion_that_is_an_npz(store) -> Damage:
    with open(_run(store, 1) / "confusion.npy", "wb") as stream:
        np.savez(stream, confusion=np.eye(8, dtype=np.int64))
    return Damage({store.runs[1]: "confusion.npy holds a numpy archive (.npz), not an array"})


def latency_and_anatomy_damaged(store) -> Damage:
    """latency.json with a number for its size, anatomy.json not UTF-8: the run is whole (its
    latency falls back to the training's figure and says why; the anatomy page names the file)."""
    path = _run(store, 1) / "latency.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "input_size": 5}))
    path = _run(store, 1) / "anatomy.json"
    path.write_bytes(path.read_bytes() + b"\xff")
    return Damage()


def garbage_confusion(store) -> Damage:
    (_run(store, 1) / "confusion.npy").write_bytes(b"garbage, not an array")
    return Damage({store.runs[1]: "confusion.npy is not a numpy array file"})


def undecodable_history(store) -> Damage:
    (_run(store, 1) / "history.csv").write_bytes(bytes(range(128, 256)) * 8)
    return Damage({store.runs[1]: "history.csv is not UTF-8 text"})


def history_of_garbage_values(store) -> Damage:
    (_run(store, 1) / "history.csv").write_text("epoch,loss,miou,val_loss,val_miou\nx,y,z,,\n")
    # readable: the run is whole, its curves are simply missing
    return Damage(page_notes={"comparison": f"No training history: {store.runs[1]}"})


def a_run_folder_with_only_metrics(store) -> Damage:
    lonely = store.artifacts / "runs" / "lonely"
    lonely.mkdir()
    shutil.copy(_run(store, 1) / "metrics.json", lonely / "metrics.json")
    return Damage({"lonely": "missing config.yaml"})


def garbage_prediction_png(store) -> Damage:
    image_id = _first_test_id(store)
    (_run(store, 1) / "predictions" / f"{image_id}.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    return Damage(page_notes={"explorer": f"Run {store.runs[1]}: predictions/{image_id}.png is not a readable PNG"},
                  image_id=image_id)


def prediction_outside_the_class_set(store) -> Damage:
    image_id = _first_test_id(store)
    path = _run(store, 1) / "predictions" / f"{image_id}.png"
    with Image.open(path) as image:
        shape = np.asarray(image).shape
    Image.fromarray(np.full(shape, 200, dtype=np.uint8), mode="L").save(path)
    return Damage(page_notes={"explorer": f"Run {store.runs[1]}: predictions/{image_id}.png holds class 200"},
                  image_id=image_id)


CASES = [truncated_metrics_of_the_deployed_run, metrics_holding_a_list, deployed_json_naming_a_number,
         deployed_json_naming_a_missing_run, metrics_of_garbage_values, garbage_confusion, undecodable_history,
         history_of_garbage_values, a_run_folder_with_only_metrics, garbage_prediction_png,
         prediction_outside_the_class_set, history_cut_inside_its_last_row, metrics_and_config_not_utf8,
         confusion_that_is_an_npz, latency_and_anatomy_damaged]


@pytest.mark.parametrize("damage", CASES, ids=lambda case: case.__name__)
def test_a_damaged_store_never_crashes_a_page(damage, dashboard_store_copy, monkeypatch):
    store = dashboard_store_copy
    expected = damage(store)
    whole = [run for run in store.runs if run not in expected.damaged]
    for page in PAGES:
        with fake_api() as api:
            monkeypatch.setenv("SEGMENTATION_API_URL", api)
            query = {"id": str(expected.image_id)} if expected.image_id is not None and page == "explorer" else {}
            at = open_page(page, query)
        where = f"{damage.__name__}, {page} page"
        assert not at.exception, f"{where}: " + "\n".join(e.message for e in at.exception)
        text = shown_text(at)
        for secret in (str(store.artifacts.parent), str(store.data_root)):
            assert secret not in text, f"{where}: an absolute path is shown"
        shown = notes(at)
        for run, reason in expected.damaged.items():
            assert any(run in line and reason in line for line in shown.splitlines()), (
                f"{where}: no reason for {run} ({reason!r}) in:\n{shown}")
        for note in (expected.note, expected.page_notes.get(page)):
            assert not note or note in shown, f"{where}: {note!r} not in:\n{shown}"
        if page == "overview":
            assert sorted(at.dataframe[0].value["run"]) == sorted(whole), where
            if expected.damaged:
                assert any("damaged" in w.value.lower() for w in at.warning), f"{where}: no damaged-runs box"
        elif page == "explorer":
            captions = image_captions(at)
            assert "photo" in captions and "ground truth" in captions, where
            if "explorer" in expected.page_notes:  # that run's prediction is left out, the other's shown
                assert f"{store.runs[0]}: prediction" in captions and f"{store.runs[1]}: prediction" not in captions
            else:
                for run in whole:
                    assert f"{run}: prediction" in captions, f"{where}: {run} not shown ({captions})"
        elif page == "comparison":
            bars = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
            assert [bar["name"] for bar in bars] == whole, where
        elif page == "deployed":  # the API's pictures and the dataset's photo
            assert len(at.image) == 3, f"{where}: {image_captions(at)}"


def test_a_store_of_damaged_runs_only_says_so_on_every_page(dashboard_store_copy, monkeypatch):
    store = dashboard_store_copy
    for number in range(len(store.runs)):
        (_run(store, number) / "metrics.json").write_text("[]")
    for page in PAGES:
        with fake_api() as api:
            monkeypatch.setenv("SEGMENTATION_API_URL", api)
            at = open_page(page)
        assert not at.exception, f"{page}: " + "\n".join(e.message for e in at.exception)
        shown = notes(at)
        for run in store.runs:
            assert f"**{run}**" in shown and "metrics.json holds a list" in shown, (page, shown)
        if page not in ("deployed", "tags"):  # tags belong to images: that page needs no run
            assert "No run of the store can be shown" in shown, (page, shown)
            assert not at.dataframe and not at.image


def test_messages_name_the_folders_instead_of_spelling_them_out(tmp_path, monkeypatch):

    artifacts, data = tmp_path / "artifacts", tmp_path / "data"
    monkeypatch.setenv("ARTIFACTS_DIR", str(artifacts))
    monkeypatch.setenv("CITYSCAPES_DATASET", str(data))
    message = f"no run named 'x' in {artifacts}; {data}/gtFine/a.png: unreadable; {tmp_path}/elsewhere"
    assert store.readable(message) == (f"no run named 'x' in the run store; the dataset folder/gtFine/a.png: "
                                       f"unreadable; {tmp_path}/elsewhere")
    other = tmp_path / "other_root"
    assert store.readable(f"{other}/x.png", data_root=other) == "the dataset folder/x.png"
