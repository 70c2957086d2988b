"""The Check labels page on run stores with known predictions: ``known_outputs_store``'s
``tiny_unet`` and ``imported_worse`` make the same mistakes (the leftmost ``wrong[id]`` columns of
each test image, every pixel of which has ground truth), so each test image has exactly one
region where they agree against the ground truth, and ``tiny_simple`` predicts the ground truth;
``imported_store`` has a run of part of the split and runs of two class sets. Plus the close-up
pictures' pure functions on hand-made arrays."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from dashboard_fixtures import IMPORTED_C8, IMPORTED_C19, open_page, point_dashboard_at, shown_text
from PIL import Image

import dashboard.pictures.close_ups as close_ups
import dashboard.pictures.outline as outline
import dashboard.readers.label_scan as label_scan
import dashboard.views.candidates as candidates
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.runs.reader import get_run

PAGE = "app_pages/labels_check.py"
TABLE = "labels_table"
HEIGHT, WIDTH = 16, 32  # the tiny dataset's frames


def _page(query_params: dict | None = None):
    at = open_page("overview", query_params)
    at.switch_page(PAGE).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _shown(at) -> str:
    return "\n".join(str(e.value) for e in [*at.info, *at.caption, *at.warning, *at.markdown, *at.error])


def _unscanned_copy(artifacts, to):
    """A copy of a run store without the scans other tests kept in it (``training.runs.derived``)."""
    return shutil.copytree(artifacts, to, ignore=shutil.ignore_patterns(".cache"))


def _table(at):
    return next(frame.value for frame in at.dataframe if "open" in frame.value.columns)


def test_regions_where_two_runs_agree_against_the_ground_truth_are_listed_largest_first(known_outputs_env):
    store = known_outputs_env
    runs = [store.runs[1], store.imported]  # the same mistakes
    at = _page({"runs": ",".join(runs), "min_pixels": "1"})
    table = _table(at)
    expected = sorted(store.wrong.items(), key=lambda item: -item[1])  # (image id, wrong columns), widest first
    assert list(table["id"]) == [image_id for image_id, _ in expected]
    assert list(table["rank"]) == [1, 2, 3, 4]
    assert list(table["pixels"]) == [HEIGHT * columns for _, columns in expected]
    assert list(table["box"]) == [f"0,0,{columns},{HEIGHT}" for _, columns in expected]
    for row in table.to_dict("records"):
        assert row["open"] == f"explorer?id={row['id']}&runs={','.join(runs)}&outline={row['box'].join(['box:', ''])}"
        assert 0 < row["truth_share"] <= 1 and row["agreed_share"] > 0
    assert "4 candidate regions** in 4 of the 4 images scanned" in _shown(at)
    assert "Candidates, not verdicts" in _shown(at) and "never candidates" in _shown(at)
    assert "at least 1 pixel," in _shown(at)
    # the close-up of the first: photo, ground truth, where the runs agree, each outlined
    captions = [caption for image in at.image for caption in image.captions]
    assert captions[0] == "photo" and captions[1].startswith("ground truth (") and "they differ" in captions[2]
    assert str(store.artifacts) not in shown_text(at) and str(store.data_root) not in shown_text(at)

    # one click opens the explorer on that image with the region's box outlined
    first_id, columns = expected[0]
    at.button(key="labels_open").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Image explorer"]
    assert at.query_params["id"] == str(first_id) and at.query_params["runs"] == ",".join(runs)
    assert at.query_params["outline"] == f"box:0,0,{columns},{HEIGHT}"


def test_the_size_rule_and_the_url_keep_the_minimum(known_outputs_env):
    store = known_outputs_env
    runs = [store.runs[1], store.imported]
    at = _page({"runs": ",".join(runs), "min_pixels": str(HEIGHT * 5)})
    assert list(_table(at)["pixels"]) == [HEIGHT * 9, HEIGHT * 5]  # 32 and 16 pixels are too small
    at.number_input(key="labels_min_pixels").set_value(HEIGHT * 6).run()
    assert not at.exception
    assert at.query_params["min_pixels"] == str(HEIGHT * 6)
    assert list(_table(at)["pixels"]) == [HEIGHT * 9]
    at.number_input(key="labels_min_pixels").set_value(HEIGHT * 10).run()
    assert not at.dataframe and "No region where every chosen run agrees" in _shown(at)


def test_the_list_comes_in_pages_and_the_close_up_follows_the_page(known_outputs_env, monkeypatch):
    monkeypatch.setattr(candidates, "PER_PAGE", 3)
    store = known_outputs_env
    at = _page({"runs": f"{store.runs[1]},{store.imported}", "min_pixels": "1"})
    assert list(_table(at)["rank"]) == [1, 2, 3] and "Rows 1 to 3 of 4" in _shown(at)
    at.selectbox(key="labels_choice").set_value(2).run()
    assert at.image[0].proto.imgs and "#3 · image" in str(at.selectbox(key="labels_choice").format_func(2))
    at.number_input(key="labels_page").set_value(2).run()
    assert not at.exception
    smallest = min(store.wrong, key=store.wrong.get)
    assert list(_table(at)["rank"]) == [4] and list(_table(at)["id"]) == [smallest]
    assert "Rows 4 to 4 of 4" in _shown(at) and at.selectbox(key="labels_choice").value == 0
    at.button(key="labels_open").click().run()
    assert at.query_params["id"] == str(smallest) and at.query_params["outline"] == f"box:0,0,1,{HEIGHT}"


def test_runs_that_agree_with_the_ground_truth_list_nothing(known_outputs_env):
    store = known_outputs_env
    at = _page({"runs": f"{store.runs[0]},{store.runs[1]}", "min_pixels": "1"})
    assert "0 candidate regions** in 0 of the 4 images scanned" in _shown(at)
    assert "No region where every chosen run agrees" in _shown(at)


def test_fewer_than_two_runs_or_two_class_sets_say_what_to_choose(imported_env):
    store = imported_env
    at = _page({"runs": store.trained[0]})
    assert "Choose two or more runs of one class set" in _shown(at)
    assert "categories8 (" in _shown(at) and not at.dataframe
    at = _page({"runs": ""})
    assert "Choose two or more runs of one class set" in _shown(at)
    at = _page({"runs": f"{IMPORTED_C8},{IMPORTED_C19}"})
    assert "predict different class sets" in _shown(at)
    assert f"{IMPORTED_C8}: categories8" in _shown(at) and f"{IMPORTED_C19}: cityscapes19" in _shown(at)
    assert not at.dataframe


def test_without_runs_in_the_url_the_largest_class_set_is_chosen(imported_env):
    at = _page({"min_pixels": "1"})
    chosen = at.query_params["runs"].split(",")
    assert IMPORTED_C19 not in chosen and len(chosen) == 3
    assert "predict different class sets" not in _shown(at)


def test_a_run_of_part_of_the_split_scans_the_images_both_have(known_outputs_store, tmp_path, monkeypatch):
    """An import covering 3 of the 4 test images, with the same mistakes as the trained run: exactly
    the regions of those 3 images are listed (the fourth image is not scanned)."""
    from training.runs.imported import import_predictions

    store = known_outputs_store
    artifacts = _unscanned_copy(store.artifacts, tmp_path / "artifacts")
    label_of_class = np.array([int(np.flatnonzero(get_class_set("categories8").lut == c)[0]) for c in range(8)],
                              dtype=np.uint8)
    index = load_or_build_index(store.data_root, write=False, report=lambda message: None)
    imported = get_run(store.imported, artifacts)
    covered = sorted(store.wrong)[1:]  # the first test image left out
    folder = tmp_path / "partial"
    folder.mkdir()
    for image_id in covered:
        Image.fromarray(label_of_class[imported.prediction(image_id)]).save(folder / f"{index[image_id].stem}.png")
    import_predictions(folder, "partial", store.data_root, format="labelIds", artifacts=artifacts, workers=1,
                       progress=False)
    point_dashboard_at(monkeypatch, artifacts, store.data_root)
    at = _page({"runs": f"{store.runs[1]},partial", "min_pixels": "1"})
    assert f"Only the {len(covered)} images every chosen run predicted are scanned" in _shown(at)
    assert f"{len(covered)} candidate regions** in {len(covered)} of the {len(covered)} images scanned" in _shown(at)
    table = _table(at)
    expected = sorted(covered, key=lambda image_id: -store.wrong[image_id])  # widest first
    assert list(table["id"]) == expected
    assert list(table["pixels"]) == [HEIGHT * store.wrong[image_id] for image_id in expected]


def test_a_prediction_that_cannot_be_read_leaves_its_image_out_and_says_so(known_outputs_store, tmp_path,
                                                                             monkeypatch):
    artifacts = _unscanned_copy(known_outputs_store.artifacts, tmp_path / "artifacts")
    damaged = min(known_outputs_store.wrong)
    (artifacts / "runs" / known_outputs_store.imported / "predictions" / f"{damaged}.png").write_bytes(b"not a png")
    point_dashboard_at(monkeypatch, artifacts, known_outputs_store.data_root)
    at = _page({"runs": f"{known_outputs_store.runs[1]},{known_outputs_store.imported}", "min_pixels": "1"})
    assert f"Image {damaged} left out: run {known_outputs_store.imported}: predictions/{damaged}.png" in _shown(at)
    assert damaged not in set(_table(at)["id"]) and len(_table(at)) == 3
    assert "in 3 of the 3 images scanned" in _shown(at)


def test_a_scan_is_cached_by_the_runs_uids_and_the_size(known_outputs_store, tmp_path, monkeypatch):
    artifacts = _unscanned_copy(known_outputs_store.artifacts, tmp_path / "artifacts")
    point_dashboard_at(monkeypatch, artifacts, known_outputs_store.data_root)
    scans = []
    real = label_scan.scan_images
    monkeypatch.setattr(label_scan, "scan_images", lambda *a, **k: scans.append(1) or real(*a, **k))
    runs = f"{known_outputs_store.runs[1]},{known_outputs_store.imported}"
    at = _page({"runs": runs, "min_pixels": "1"})
    at.run()
    assert len(scans) == 1
    at.number_input(key="labels_min_pixels").set_value(50).run()
    at.number_input(key="labels_min_pixels").set_value(1).run()
    assert len(scans) == 2 and len(_table(at)) == 4
    metrics = artifacts / "runs" / known_outputs_store.imported / "metrics.json"  # replaced under its name
    metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "uid": "another-run"}))
    _page({"runs": runs, "min_pixels": "1"})
    assert len(scans) == 3


# A restarted dashboard: a new process opens the page, counting the scans it makes.
RESTARTED = """
import json, sys
import dashboard.readers.label_scan as label_scan
from streamlit.testing.v1 import AppTest
scans, real = [], label_scan.scan_images
label_scan.scan_images = lambda *a, **k: scans.append(1) or real(*a, **k)
at = AppTest.from_file(sys.argv[1], default_timeout=120)
at.query_params.update({"runs": sys.argv[2], "min_pixels": "1"})
at.run()
at.switch_page("app_pages/labels_check.py").run()
assert not at.exception, [e.message for e in at.exception]
table = next(frame.value for frame in at.dataframe if "open" in frame.value.columns)
print(json.dumps({"scans": len(scans), "ids": [int(i) for i in table["id"]],
                  "pixels": [int(p) for p in table["pixels"]]}))
"""


def test_a_scan_is_kept_in_the_store_for_the_next_dashboard(known_outputs_store, tmp_path):
    import os
    import subprocess
    import sys

    from dashboard_fixtures import APP

    artifacts = _unscanned_copy(known_outputs_store.artifacts, tmp_path / "artifacts")
    env = {**os.environ, "ARTIFACTS_DIR": str(artifacts), "CITYSCAPES_DATASET": str(known_outputs_store.data_root),
           "SEGMENTATION_API_URL": "http://127.0.0.1:9"}
    runs = f"{known_outputs_store.runs[1]},{known_outputs_store.imported}"

    def restarted() -> dict:
        done = subprocess.run([sys.executable, "-c", RESTARTED, APP, runs], env=env, capture_output=True, text=True,
                              timeout=300, cwd=str(Path(APP).parent.parent))
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    first = restarted()
    assert first["scans"] == 1 and len(first["ids"]) == 4
    [kept] = (artifacts / ".cache" / label_scan.DERIVED_KIND).glob("*.json")
    again = restarted()
    assert again == {**first, "scans": 0}  # read from the store, the same candidates
    kept.write_text('{"version": 1, "result": ')  # damaged (a disk that filled up): scanned again, replaced
    assert restarted() == first
    assert json.loads(kept.read_text())["result"]["images"] == 4


# ---------------------------------------------------------------------------- pure functions

def test_default_size_and_common_ids():
    assert candidates.default_min_pixels(1024, 2048) == 2100
    assert candidates.default_min_pixels(256, 512) == 130
    assert candidates.default_min_pixels(16, 32) == 1

    class Index:
        def __contains__(self, image_id):
            return image_id < 10

    assert candidates.common_ids({"a": [3, 1, 2, 12, float("nan")], "b": [2, 3, 12, 4]}, Index()) == [2, 3]
    assert candidates.common_ids({}, Index()) == []


def test_close_ups_outline_the_region_in_its_surroundings():
    assert close_ups.close_up_window((10, 20, 16, 23), (100, 200)) == (2, 12, 24, 31)
    assert close_ups.close_up_window((0, 0, 60, 30), (40, 70)) == (0, 0, 70, 40)  # clipped
    region = np.zeros((6, 8), dtype=bool)
    region[2:4, 3:5] = True
    picture = np.full((6, 8, 3), 40, dtype=np.uint8)
    enlarged = close_ups.fit(picture, region, photo=False, width=32)  # x4, whole pixels
    assert enlarged.shape == (24, 32, 3)
    big_region = region.repeat(4, axis=0).repeat(4, axis=1)
    ring = outline.outline_pixels(big_region)
    assert (enlarged[ring] == outline.OUTLINE_COLOR).all() and (enlarged[~ring] == 40).all()
    wide = np.full((10, 100, 3), 7, dtype=np.uint8)
    speck = np.zeros((10, 100), dtype=bool)
    speck[5, 51] = True  # one pixel stays visible when the picture is shrunk
    shrunk = close_ups.fit(wide, speck, photo=True, width=25)
    assert shrunk.shape == (2, 25, 3) and (shrunk == outline.OUTLINE_COLOR).any()
    photo = np.array([[[200, 100, 10], [200, 100, 10]]], np.uint8)
    colors = close_ups.agreement_colors([np.array([[1, 2]], np.uint8), np.array([[1, 3]], np.uint8)],
                                               _class_set(), photo)
    assert colors[0, 0].tolist() == _class_set().colors[1].tolist()
    assert colors[0, 1].tolist() == [60, 30, 3]  # the photo at 30 %


def _class_set():
    from training.data.labels import get_class_set

    return get_class_set("categories8")
