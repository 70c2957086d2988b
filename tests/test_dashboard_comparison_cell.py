"""The Model comparison's confusion cell (issue 25, defect 6): the chosen cell is outlined in the
matrix, and "Open in the explorer" keeps every compared run and shows the two confused classes."""

import json

import numpy as np
from dashboard_fixtures import open_page

from dashboard.sections.links import explorer_url
from training.runs.reader import get_run


def _widget(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def _confused_cell(run) -> tuple[int, int]:
    """An off-diagonal cell that some image has pixels in (so the list of images is not empty)."""
    images = (run.per_image_confusion() > 0).sum(axis=0).astype(float)
    np.fill_diagonal(images, -1)
    return tuple(int(v) for v in np.unravel_index(np.argmax(images), images.shape))


def _outlines(at) -> list[dict]:
    """The rectangles drawn on the confusion matrix (the chart with the heatmap)."""
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if spec["data"] and spec["data"][0]["type"] == "heatmap":
            return [shape for shape in spec["layout"].get("shapes", []) if shape["type"] == "rect"]
    raise AssertionError("no confusion matrix")


def test_the_chosen_cell_is_outlined_and_the_link_keeps_the_runs_and_the_classes(dashboard_env):
    store = dashboard_env
    run = store.runs[1]
    tiny = get_run(run, store.artifacts)
    names = tiny.metrics["confusion_names"]
    a, b = _confused_cell(tiny)

    at = open_page("comparison")
    _widget(at.selectbox, "Run").set_value(run).run()
    _widget(at.selectbox, "True class (A)").set_value(names[a]).run()
    _widget(at.selectbox, "Predicted as (B)").set_value(names[b]).run()
    assert not at.exception
    (outline,) = _outlines(at)  # one cell outlined: column b (predicted), row a (true)
    assert (outline["x0"], outline["x1"]) == (b - 0.5, b + 0.5)
    assert (outline["y0"], outline["y1"]) == (a - 0.5, a + 0.5)

    image_id = _widget(at.selectbox, "Image").value
    _widget(at.button, "Open in the explorer").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Image explorer"]
    assert at.query_params["id"] == str(image_id)
    assert at.query_params["runs"].split(",") == store.runs  # every compared run, not only the matrix's
    assert set(at.query_params["show"].split(",")) == {names[a], names[b]}
    assert set(at.button_group(key="explorer_show").value) == {names[a], names[b]}


def test_an_explorer_link_can_name_the_classes_to_show():
    url = explorer_url(12, ["a", "b"], shown=["human", "vehicle"])
    assert url == "explorer?id=12&runs=a,b&show=human,vehicle"
    assert explorer_url(12, ["a"]) == "explorer?id=12&runs=a"
