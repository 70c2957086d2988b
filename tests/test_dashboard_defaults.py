"""The runs every page starts on (issue 25: they started on the alphabetically first run): the
deployed run, else the best on official test mIoU; run B the best other run of its class set
(``views.run_names.default_runs``, one rule for every page)."""

from __future__ import annotations

import pandas as pd
from dashboard_fixtures import open_page

from dashboard.views.intervals import default_reference, pick_pair
from dashboard.views.run_names import default_pair, default_runs
from training.runs.deployment import deploy


def _table(rows):
    return pd.DataFrame(rows, columns=["run", "miou_official", "classes"])


TABLE = _table([("gridnet", 0.40, "c8"), ("linknet", 0.55, "c8"), ("unet", 0.62, "c8"), ("city", 0.70, "c19"),
                ("imported_old", float("nan"), "c8")])


def test_the_deployed_run_first_then_the_best_of_its_class_set():
    assert default_runs(TABLE, "linknet") == ["linknet", "unet", "gridnet", "imported_old", "city"]
    assert default_pair(TABLE, "linknet") == ("linknet", "unet")
    assert default_reference(TABLE, "linknet") == "linknet"


def test_without_a_deployed_run_the_best_on_official_test_miou():
    for deployed in (None, "gone"):  # none, or one that is no whole run of the table
        assert default_runs(TABLE, deployed) == ["city", "unet", "linknet", "gridnet", "imported_old"]
        assert default_pair(TABLE, deployed) == ("city", "unet")  # no other cityscapes19 run: the best other
    c8 = TABLE[TABLE["classes"] == "c8"]
    assert default_runs(c8, None)[:2] == ["unet", "linknet"] and default_pair(c8, None) == ("unet", "linknet")
    assert default_runs(_table([("only", float("nan"), "c8")]), None) == ["only"]
    assert default_pair(_table([("only", float("nan"), "c8")]), None) == ("only", "only")
    assert default_runs(TABLE.iloc[0:0], None) == []
    # the comparison's pair of the default selection is the same pair
    order = default_runs(TABLE, "linknet")
    assert pick_pair(order[:4], list(TABLE["run"]), dict(zip(TABLE["run"], TABLE["classes"]))) == ("linknet", "unet")


def test_every_page_starts_on_the_deployed_run(dashboard_store_copy):
    """tiny_unet deployed (the store's second run, alphabetically and by age): the confusion run, run
    A, the Gallery's sort and pictures, the Overview's reference start on it, run B is tiny_simple."""
    store = dashboard_store_copy
    simple, unet = store.runs
    deploy(unet, store.artifacts)
    at = open_page("comparison")
    assert not at.exception
    assert at.multiselect(key="comparison_runs").value == [unet, simple]
    assert at.selectbox(key="comparison_confusion_run").value == unet
    assert (at.selectbox(key="comparison_run_a").value, at.selectbox(key="comparison_run_b").value) == (unet, simple)
    gallery = open_page("gallery", {"mode": "errors"})
    assert not gallery.exception
    assert gallery.selectbox(key="gallery_sort").value == f"miou:{unet}"
    assert gallery.selectbox(key="gallery_picture_run").value == unet
    overview = open_page("overview")
    assert overview.selectbox(key="overview_reference").value == unet
    # nothing deployed: the best on official test mIoU
    (store.artifacts / "deployed.json").unlink()
    from training.runs.reader import get_run

    best = max(store.runs, key=lambda run: get_run(run, store.artifacts).metrics["miou_official"])
    again = open_page("comparison")
    assert again.selectbox(key="comparison_run_a").value == best
    assert again.selectbox(key="comparison_confusion_run").value == best
