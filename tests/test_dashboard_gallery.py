"""The Gallery page, with Streamlit's AppTest on the small store of ``test_gallery`` (two imported runs
with known mistakes: ``exact`` predicts the ground truth, ``worse`` gets a known number of columns
wrong in each test image)."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from dashboard_fixtures import image_captions, notes, open_page, point_dashboard_at, shown_text
from markdown_it import MarkdownIt
from PIL import Image
from test_gallery import RUN_A, RUN_B, build_store

from dashboard.views.text import plain
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
    assert f"**{RUN_B}**: no anatomy columns (per_image_anatomy.csv is not " in shown
    assert f"photo only: predictions/{store.test_ids[0]}.png is not a readable PNG" in shown
    assert len(at.image) == len(store.test_ids)  # that one as its photo, the others as error maps
    assert "boundary mIoU, exact" in at.selectbox(key="gallery_sort").options
    assert "boundary mIoU, worse" not in at.selectbox(key="gallery_sort").options
    assert str(artifacts.parent) not in shown_text(at) and str(store.data_root) not in shown_text(at)
    # no per-image numbers for a split the runs did not evaluate: said, and the photos still shown by id
    at = _ok(open_page("gallery", {"runs": RUNS, "split": "train"}))
    assert "No chosen run has per-image numbers for the train split" in notes(at)
    assert _ids(at) == [entry.id for entry in store.index.split("train")]


# Tags a browser must show as typed: an image fetched from elsewhere, a link, HTML, Streamlit's
# colour directive, LaTeX, an emoji shortcode, an icon, autolinks, a table, a heading.
HOSTILE = ["![x](http://evil.example/p.png)", "[click me](http://evil.example)", "<img src=x onerror=alert(1)>",
           ":red[alarm] **bold** _it_ ~~gone~~", "$x^2$ and $$y$$", ":smile: :material/home: :+1:",
           "www.evil.example and mail@evil.example", "http://evil.example/", "| a | b |", "# heading",
           "1. listed", "- item", "`code` \\ back\\slash &amp; &lt;", "<http://evil.example>"]
SHORTCODE = re.compile(r":[\w+-]+:|:[a-z]+\[|:material/|www\.|https?:|\w@")  # never unescaped in the source


def _shows_as_text(source: str, texts: list[str]) -> None:
    """``source`` (Markdown) renders to one paragraph of plain text holding each of ``texts``."""
    rendered = MarkdownIt("commonmark").render(source)  # raw HTML passes in this preset: it must be escaped
    assert re.fullmatch(r"<p>[^<>]*</p>\n", rendered), rendered
    shown = html.unescape(rendered[3:-5])
    assert all(text in shown for text in texts), (shown, texts)
    assert not SHORTCODE.search(source), source


@pytest.mark.parametrize("text", HOSTILE)
def test_plain_text_is_markdown_that_shows_exactly_it(text):
    _shows_as_text(plain(text), [text])


def test_plain_keeps_names_readable_and_hides_nothing():
    assert plain("tiny_simple-2 x") == "tiny_simple-2 x"  # "_" and "-" inside a word start nothing
    assert plain("_a_ b-") == "\\_a\\_ b\\-" and plain(42) == "42"
    assert plain("two\nlines\r\nhere") == "two lines here"
    assert plain("\u202etxt.exe\u200b\x00") == "\ufffdtxt\\.exe\ufffd\ufffd"  # a reversal or a hidden one: shown


def test_captions_show_tags_as_typed_never_as_markdown(gallery_copy):
    store, artifacts = gallery_copy
    first, second = (store.index[image_id] for image_id in store.test_ids[:2])
    tags = TagStore(artifacts)
    tags.add_tag(first.city, first.stem, HOSTILE[0])
    tags.add_tag(first.city, first.stem, HOSTILE[1])
    tags.add_tag(second.city, second.stem, ":red[alarm] $x^2$ :smile:")
    at = _ok(open_page("gallery", {"runs": RUN_A}))
    captions = dict(zip(_ids(at), image_captions(at)))
    _shows_as_text(captions[first.id], [f"{HOSTILE[0]}, {HOSTILE[1].lower()}"])
    _shows_as_text(captions[second.id], [":red[alarm] $x^2$ :smile:"])
    assert captions[first.id].startswith(f"{first.id} · {first.city} · mIoU, exact: 1.000 · ")


def test_the_pictures_follow_the_sorts_run_and_every_caption_says_whose(gallery_copy):
    """Issue 25: sorted by worse's mIoU, the error maps were exact's, and no caption said whose."""
    store, _ = gallery_copy
    at = _ok(open_page("gallery", {"runs": RUNS, "mode": "errors"}))
    assert at.selectbox(key="gallery_picture_run").value == RUN_A  # sorted by the first run's mIoU
    assert all(f" · errors of {RUN_A} · mIoU, {RUN_A}: " in caption for caption in image_captions(at))
    at.selectbox(key="gallery_sort").select(f"miou:{RUN_B}").run()
    assert at.selectbox(key="gallery_picture_run").value == RUN_B  # the errors the numbers count
    assert all(f" · errors of {RUN_B} · mIoU, {RUN_B}: " in caption for caption in image_captions(at))
    assert "pictures" not in at.query_params  # not chosen: the sort says it, and a link with it too
    at.radio(key="gallery_mode").set_value("overlay").run()
    assert all(f" · prediction of {RUN_B} · " in caption for caption in image_captions(at))
    # a run chosen by the user stays, whatever the sort
    at.selectbox(key="gallery_picture_run").select(RUN_A).run()
    at.selectbox(key="gallery_sort").select(f"pixel_accuracy:{RUN_B}").run()
    assert at.selectbox(key="gallery_picture_run").value == RUN_A and at.query_params["pictures"] == RUN_A
    assert all(f" · prediction of {RUN_A} · pixel accuracy, {RUN_B}: " in c for c in image_captions(at))
    at.radio(key="gallery_mode").set_value("photo").run()
    assert not any(" of " in caption.split(" · ")[2] for caption in image_captions(at))  # photos: no one's
