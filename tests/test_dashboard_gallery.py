"""The Gallery page, with Streamlit's AppTest on the small store of ``test_gallery`` (two imported runs
with known mistakes: ``exact`` predicts the ground truth, ``worse`` gets a known number of columns
wrong in each test image)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from dashboard_fixtures import image_captions, notes, open_page, point_dashboard_at, shown_text
from PIL import Image
from test_gallery import RUN_A, RUN_B, build_store

from training.runs.reader import get_run
from training.runs.tags import TagStore

RUNS = f"{RUN_A},{RUN_B}"


@pytest.fixture(scope="module")
def gallery_store(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("gallery_page"))


@pytest.fixture
def gallery_copy(gallery_store, tmp_path, monkeypatch):
    """A copy of the store for a test to write tags into or damage; the environment pointing at it."""
    artifacts = shutil.copytree(gallery_store.artifacts, tmp_path / "artifacts")
    point_dashboard_at(monkeypatch, artifacts, gallery_store.data_root)
    return gallery_store, artifacts


def _ids(at) -> list[int]:
    """The ids of the thumbnails shown, in order (each caption starts with its id)."""
    return [int(caption.split(" · ")[0]) for caption in image_captions(at)]


def _miou(store, run: str) -> pd.Series:
    return pd.DataFrame(get_run(run, store.artifacts).per_image()).set_index("id")["miou"]


def _ok(at):
    assert not at.exception, "\n".join(e.message for e in at.exception)
    return at


def test_sort_filter_and_a_shared_url(gallery_copy):
    store, _ = gallery_copy
    at = _ok(open_page("gallery", {"runs": RUNS, "mode": "overlay"}))
    assert _ids(at) == store.test_ids  # by the first run's mIoU, all 1.0 here: ties by id
    assert all(caption.endswith("mIoU, exact: 1.000") for caption in image_captions(at))
    worse = _miou(store, RUN_B)
    at.selectbox(key="gallery_sort").select(f"miou:{RUN_B}").run()
    assert _ids(at) == list(worse.sort_values(kind="stable").index)  # the most wrong columns first
    assert _ids(at) != sorted(_ids(at)) and _ids(at) != sorted(_ids(at), reverse=True)
    at.selectbox(key="gallery_order").select("desc").run()
    assert _ids(at) == list(worse.sort_values(ascending=False, kind="stable").index)
    # a range filter on any column narrows
    at.selectbox(key="gallery_filter").select(f"miou:{RUN_B}").run()
    threshold = float(worse.median())
    at.number_input(key="gallery_min").set_value(threshold).run()
    kept = worse[worse >= threshold]
    assert sorted(_ids(at)) == sorted(kept.index) and len(kept) < len(worse)
    assert f"{len(kept)} images of the test split (of {len(worse)})" in notes(at)
    # every thumbnail links to the explorer with its id and the runs
    links = at.get("page_link")
    assert [link.proto.page for link in links] == ["explorer"] * len(kept)
    assert [link.proto.query_string for link in links] == [f"id={i}&runs={RUN_A}%2C{RUN_B}" for i in _ids(at)]
    # the URL holds the view: a new session opened on it shows the same
    params = dict(at.query_params)
    assert params == {"runs": RUNS, "mode": "overlay", "sort": f"miou:{RUN_B}", "order": "desc",
                      "filter": f"miou:{RUN_B}", "min": f"{threshold:g}"}
    shared = _ok(open_page("gallery", params))
    assert _ids(shared) == _ids(at) and image_captions(shared) == image_captions(at)
    assert shared.selectbox(key="gallery_sort").value == f"miou:{RUN_B}"
    assert shared.radio(key="gallery_mode").value == "overlay"
    # filtering by another column drops the bounds, which were the other column's
    shared.selectbox(key="gallery_filter").select("share:flat").run()
    assert "min" not in shared.query_params and sorted(_ids(shared)) == store.test_ids


def test_pages_tags_and_the_table_view(gallery_copy, monkeypatch):
    store, artifacts = gallery_copy
    configs = []  # what the app asks of the browser tab: its icon must be a file, not a font CDN's
    monkeypatch.setattr(st, "set_page_config", lambda **settings: configs.append(settings))
    tagged = [store.index.entries[1], store.index.entries[12]]
    for entry in tagged:
        TagStore(artifacts).add_tag(entry.city, entry.stem, "dark")
    at = _ok(open_page("gallery", {"runs": RUN_A, "split": "all", "size": "12"}))
    all_ids = [entry.id for entry in store.index.entries]
    # sorted by exact's mIoU: the 4 test images it evaluated, then the others (no number) by id
    expected = store.test_ids + [i for i in all_ids if i not in store.test_ids]
    assert _ids(at) == expected[:12] and "Page 1 of 2" in notes(at)
    next(button for button in at.button if button.label == "Next").click().run()
    assert _ids(at) == expected[12:] and at.query_params["page"] == "2"
    assert at.number_input(key="gallery_page").value == 2
    # a tag filter narrows, and starts again at page 1
    assert "dark" in at.multiselect(key="gallery_tags").options
    at.multiselect(key="gallery_tags").select("dark").run()
    assert sorted(_ids(at)) == sorted(entry.id for entry in tagged) and "page" not in at.query_params
    assert at.query_params["tags"] == "dark" and all(caption.endswith(" · dark") for caption in image_captions(at))
    # the table view shows the same rows, each with its link
    at.radio(key="gallery_view").set_value("table").run()
    frame = at.dataframe[0].value
    assert sorted(frame["id"]) == sorted(entry.id for entry in tagged) and not at.image
    assert set(frame["open"]) == {f"explorer?id={entry.id}&runs={RUN_A}" for entry in tagged}
    icon = configs[0]["page_icon"]
    assert not str(icon).startswith(":material/") and Path(icon).is_file()
    with Image.open(icon) as picture:
        assert picture.format == "PNG" and picture.size == (64, 64)


def test_damaged_files_are_said_and_the_rest_is_shown(gallery_copy):
    store, artifacts = gallery_copy
    run_b = artifacts / "runs" / RUN_B
    (run_b / "per_image_anatomy.csv").write_bytes(bytes(range(128, 256)) * 4)
    (run_b / "predictions" / f"{store.test_ids[0]}.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    at = _ok(open_page("gallery", {"runs": RUNS, "mode": "errors", "pictures": RUN_B}))
    shown = notes(at)
    assert f"**{RUN_B}**: no anatomy columns (per_image_anatomy.csv is not a readable CSV" in shown
    assert f"photo only: predictions/{store.test_ids[0]}.png is not a readable PNG" in shown
    assert len(at.image) == len(store.test_ids)  # that one as its photo, the others as error maps
    assert "boundary mIoU, exact" in at.selectbox(key="gallery_sort").options
    assert "boundary mIoU, worse" not in at.selectbox(key="gallery_sort").options
    assert str(artifacts.parent) not in shown_text(at) and str(store.data_root) not in shown_text(at)
    # no per-image numbers for a split the runs did not evaluate: said, and the photos still shown by id
    at = _ok(open_page("gallery", {"runs": RUNS, "split": "train"}))
    assert "No chosen run has per-image numbers for the train split" in notes(at)
    assert _ids(at) == [entry.id for entry in store.index.split("train")]
