"""The pages' "Download a report" buttons (explorer, comparison), with Streamlit's AppTest on the
tiny two-run store: the button is there, nothing is built until it is clicked (the file is made
by a callable Streamlit runs on the click), and the file holds the page's runs and images."""

from __future__ import annotations

import re

import pytest
from dashboard_fixtures import open_page
from streamlit.runtime.media_file_manager import MediaFileManager

from training.runs.reader import get_run

LABEL = "Download a report"


@pytest.fixture
def deferred(monkeypatch):
    """The callables the page's download buttons would run on a click: {file name: callable}."""
    found = {}
    keep = MediaFileManager.add_deferred

    def recording(self, data_callable, mimetype, coordinates, file_name=None, **kwargs):
        found[file_name] = (data_callable, mimetype)
        return keep(self, data_callable, mimetype, coordinates, file_name, **kwargs)

    monkeypatch.setattr(MediaFileManager, "add_deferred", recording)
    return found


@pytest.fixture
def built(monkeypatch):
    """How many reports were built (none until a button's callable runs)."""
    import dashboard.readers.report as reader

    calls = []
    keep = reader.build_report

    def counting(*args, **kwargs):
        calls.append(args)
        return keep(*args, **kwargs)

    monkeypatch.setattr(reader, "build_report", counting)
    return calls


def _button(at):
    buttons = [b for b in at.get("download_button") if b.proto.label == LABEL]
    assert len(buttons) == 1
    return buttons[0]


def _sections(page: str) -> list[int]:
    return [int(i) for i in re.findall(r'<section class="image" id="image-(\d+)"', page)]


def test_the_explorer_offers_a_report_of_its_runs_on_the_image_shown(dashboard_env, deferred, built):
    store = dashboard_env
    image_id = int(get_run(store.runs[0], store.artifacts).per_image()[1]["id"])
    at = open_page("explorer", {"id": str(image_id), "runs": ",".join(store.runs)})
    assert not at.exception
    assert _button(at).proto.deferred_file_id and built == []  # drawn, not built
    make, mimetype = deferred[f"report_{store.runs[0]}_image{image_id}.html"]
    page = make().decode()
    assert mimetype == "text/html" and len(built) == 1
    assert _sections(page) == [image_id] and all(f"<h3>{run}</h3>" in page for run in store.runs)
    assert make().decode() == page and len(built) == 1  # a second click: the cached file


def test_the_comparison_offers_a_report_of_its_runs_on_the_images_it_lists(dashboard_env, deferred, built):
    store = dashboard_env
    at = open_page("comparison")
    assert not at.exception
    _button(at)
    listed = [int(str(option).split()[0]) for option in at.selectbox(key="comparison_open_id").options]
    make, _ = deferred[f"report_{store.runs[0]}.html" if len(listed) != 1 else
                       f"report_{store.runs[0]}_image{listed[0]}.html"]
    page = make().decode()
    if listed:
        assert _sections(page) == listed
    else:  # nothing confused: the first run's worst
        assert "does worst on" in page
    assert "Against the reference" in page and all(f"<h3>{run}</h3>" in page for run in store.runs)


def test_a_report_that_cannot_be_made_is_a_page_that_says_why(dashboard_store_copy, deferred):
    store = dashboard_store_copy
    at = open_page("explorer", {"runs": ",".join(store.runs)})
    assert not at.exception
    (store.artifacts / "runs" / store.runs[1] / "per_image.csv").write_text("broken")  # after the page was drawn
    [(make, _)] = deferred.values()
    page = make().decode()
    assert "The report could not be made" in page and store.runs[1] in page
    assert str(store.artifacts) not in page  # the store's words, no absolute path
