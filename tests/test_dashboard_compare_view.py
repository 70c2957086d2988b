"""The Image explorer's side-by-side comparison view: one plotly figure whose panels (photo, ground
truth, each run's prediction or error map) share matched axes, embed the full-size pictures, follow
the opacity and the class toggles, and tell every run's class under the cursor; 5 runs or more fall
back to the small multiples. AppTest on the tiny store, and the plain functions on hand-made cells."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from dashboard_fixtures import image_captions, open_page
from PIL import Image
from streamlit.testing.v1 import AppTest

import dashboard.pictures.drawing as drawing
import dashboard.views.compare_panels as compare
from training.data.cityscapes import read_image, read_label_ids
from training.data.index import load_or_build_index
from training.data.labels import IGNORE_INDEX, get_class_set
from training.runs.reader import get_run
from training.viz import dimmed_grey, error_map

C8 = get_class_set("categories8")
VEHICLE = C8.names.index("vehicle")


# ---------------------------------------------------------------------------- helpers

def _figure(at) -> dict:
    """The side-by-side figure's spec (the chart whose layout names its panels)."""
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if isinstance(spec["layout"].get("meta"), dict) and "panels" in spec["layout"]["meta"]:
            return spec
    raise AssertionError("no side-by-side figure on the page")


def _has_figure(at) -> bool:
    try:
        _figure(at)
    except AssertionError:
        return False
    return True


@pytest.fixture
def served(monkeypatch) -> dict[str, bytes]:
    """What the panels have Streamlit's media endpoint serve, by address (read back by ``_pictures``)."""
    import hashlib

    import dashboard.pictures.compare_figure as compare_figure

    files: dict[str, bytes] = {}

    def media_url(picture: bytes, mime: str, coordinates: str) -> str:
        address = f"/media/{hashlib.sha224(picture).hexdigest()}"
        files[address] = picture
        return address

    monkeypatch.setattr(compare_figure, "media_url", media_url)
    return files


def _decoded(source: str, served: dict[str, bytes]) -> np.ndarray:
    data = served[source] if source.startswith("/media/") else base64.b64decode(source.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as opened:
        return np.asarray(opened.convert("RGBA"))


def _pictures(spec: dict, served: dict[str, bytes]) -> dict[str, np.ndarray]:
    """Each panel's picture as the browser draws it (its layers stacked at their opacities), by title."""
    titles = dict(zip((trace.get("xaxis", "x") for trace in _hover_traces(spec)), spec["layout"]["meta"]["panels"],
                      strict=True))
    shown: dict[str, np.ndarray] = {}
    for layer in spec["layout"]["images"]:
        title = titles[layer["xref"]]
        rgba = _decoded(layer["source"], served)
        if title not in shown:
            shown[title] = rgba[..., :3]
        else:
            weight = rgba[..., 3:].astype(np.float32) / 255 * layer["opacity"]
            shown[title] = np.round(shown[title] * (1 - weight) + rgba[..., :3] * weight).astype(np.uint8)
    return shown


def _hover_traces(spec: dict) -> list[dict]:
    return [trace for trace in spec["data"] if trace["type"] == "heatmap"]


def _image(store, run: str, number: int = 0):
    """(image id, photo, ground truth in categories8, the run's prediction) of a test image the run evaluated."""
    image_id = int(get_run(run, store.artifacts).per_image()[number]["id"])
    entry = load_or_build_index(store.data_root, write=False, report=lambda message: None)[image_id]
    photo = read_image(store.data_root / entry.image)
    truth = C8.lut[read_label_ids(store.data_root / entry.label)]
    return image_id, photo, truth, get_run(run, store.artifacts).prediction(image_id)


# ---------------------------------------------------------------------------- the page

def test_two_runs_are_panels_of_one_figure_on_matched_axes(dashboard_env, served):
    store = dashboard_env
    image_id, photo, truth, _ = _image(store, store.runs[0])
    at = open_page("explorer", {"id": str(image_id), "runs": ",".join(store.runs)})
    assert not at.exception
    spec = _figure(at)
    titles = ["photo", "ground truth", *(f"{run}: prediction" for run in store.runs)]
    assert spec["layout"]["meta"]["panels"] == titles
    assert image_captions(at)[-len(titles):] == titles  # found where the small multiples' captions are
    grid = [caption for image in at.image for caption in image.captions]
    assert not set(titles) & set(grid)  # the small multiples are not drawn as well
    hover = _hover_traces(spec)
    assert len(hover) == 2 + len(store.runs) and not [trace for trace in spec["data"] if trace["type"] == "image"]
    layout = spec["layout"]
    axes = [(trace.get("xaxis", "x"), trace.get("yaxis", "y")) for trace in hover]
    assert len(set(axes)) == len(hover)  # a panel each
    # the photo, then each panel's class layer over it
    placed = [(image["xref"], image["yref"]) for image in layout["images"]]
    assert placed == [axes[0]] + [axis for axis in axes[1:] for _ in "ab"]
    for x, y in axes[1:]:
        assert layout[x.replace("x", "xaxis")]["matches"] == "x"
        assert layout[y.replace("y", "yaxis")]["matches"] == "y"
    height, width = truth.shape
    assert layout["xaxis"]["range"] == [-0.5, width - 0.5] and layout["yaxis"]["range"] == [height - 0.5, -0.5]
    assert layout["yaxis"]["scaleanchor"] == "x"  # square pixels
    assert at.radio(key="explorer_layout").value == compare.SIDE_BY_SIDE
    assert "layout" not in at.query_params  # the default is left out of the URL
    assert np.array_equal(_pictures(spec, served)["photo"].shape, photo.shape)


def test_the_panels_are_the_stored_predictions_at_full_resolution(dashboard_env, monkeypatch, served):
    store = dashboard_env
    monkeypatch.setenv("DASHBOARD_DISPLAY_WIDTH", "16")  # the 16x32 frames are shown at 8x16 elsewhere
    image_id, photo, truth, _ = _image(store, store.runs[0], 1)
    at = open_page("explorer", {"id": str(image_id), "runs": ",".join(store.runs)})
    at.slider(key="explorer_opacity").set_value(1.0).run()  # class colours only: PNG, exact
    assert not at.exception
    assert at.toggle(key="explorer_compare_full").value  # on by default
    shown = _pictures(_figure(at), served)
    assert np.array_equal(shown["ground truth"], C8.colorize(truth))
    predicted = {run: get_run(run, store.artifacts).prediction(image_id) for run in store.runs}
    for run in store.runs:
        assert shown[f"{run}: prediction"].shape == photo.shape  # the image's own size
        assert np.array_equal(shown[f"{run}: prediction"], C8.palette()[predicted[run]])

    at.radio(key="explorer_compare_kind").set_value(compare.ERROR_MAP).run()
    assert not at.exception
    spec = _figure(at)
    maps = {title.split(":")[0]: picture for title, picture in _pictures(spec, served).items() if "errors" in title}
    assert sorted(maps) == sorted(store.runs)
    grey = drawing.decode_image(drawing.encode_jpeg(np.repeat(dimmed_grey(photo)[..., None], 3, axis=-1)))
    for run in store.runs:
        expected = error_map(photo, truth, predicted[run], C8)
        coloured = (truth != predicted[run]) | (truth == IGNORE_INDEX)  # exact; the rest is the grey photo (JPEG)
        assert np.array_equal(maps[run], np.where(coloured[..., None], expected, grey))
        assert np.abs(maps[run].astype(int) - expected).max() <= 8  # a JPEG of the grey
        wrong = np.mean((predicted[run] != truth)[truth != IGNORE_INDEX])
        assert f"{run}: errors ({wrong:.1%} of pixels wrong)" in image_captions(at)

    # the cursor, in every panel: the true class and every run's class (16 x 32: every pixel a cell)
    names = np.array(C8.names + ("?",) * (256 - len(C8.names)), dtype=object)
    names[IGNORE_INDEX] = "ignored"
    for trace in _hover_traces(spec):
        cells = np.array(trace["customdata"])
        assert cells.shape == (*truth.shape, 1 + len(store.runs))
        assert np.array_equal(cells[..., 0], names[truth])
        for number, run in enumerate(store.runs):
            assert np.array_equal(cells[..., 1 + number], names[predicted[run]])
        assert trace["hovertemplate"].startswith("true: %{customdata[0]}<br>simple: %{customdata[1]}<br>"
                                                 "unet: %{customdata[2]}")

    at.toggle(key="explorer_compare_full").set_value(False).run()  # the display-size pictures
    assert not at.exception
    assert all(picture.shape == (8, 16, 3) for picture in _pictures(_figure(at), served).values())
    image = _figure(at)["layout"]["images"][0]
    assert (image["x"], image["sizex"], image["sizey"]) == (-0.5, 32, 16)  # still on the image's own pixels


def test_the_photo_is_served_once_and_each_panel_lays_its_classes_over_it(dashboard_env):
    """Streamlit's media endpoint serves the photo (its grey under error maps) to every panel; each
    panel's own layer is a small PNG; the chart's pictures are drawn pixel for pixel."""
    store = dashboard_env
    image_id, _, _, _ = _image(store, store.runs[0])
    at = open_page("explorer", {"id": str(image_id), "runs": ",".join(store.runs)})
    images = _figure(at)["layout"]["images"]
    bases = [image["source"] for image in images if not image["source"].startswith("data:")]
    assert len(bases) == 2 + len(store.runs) and len(set(bases)) == 1  # one photo, in every panel
    assert bases[0].startswith("/mock/media/") and bases[0].endswith(".jpg")
    layers = [image for image in images if image["source"].startswith("data:")]
    assert len(layers) == 1 + len(store.runs) and all(layer["source"].startswith("data:image/png") for layer in layers)
    assert {layer["opacity"] for layer in layers} == {at.slider(key="explorer_opacity").value}
    assert any(".st-key-explorer_compare_chart image {image-rendering: pixelated;}" in block.value
               for block in at.markdown)

    at.radio(key="explorer_compare_kind").set_value(compare.ERROR_MAP).run()
    images = _figure(at)["layout"]["images"]
    grounds = [image["source"] for image in images if not image["source"].startswith("data:")]
    assert grounds[:2] == bases[:2]  # the photo and the ground truth's panel: the photo
    assert len(set(grounds[2:])) == 1 and grounds[2] != bases[0]  # the grey photo, one file for the runs' panels
    assert [image["opacity"] for image in images if image["source"].startswith("data:")][1:] == [1.0] * len(
        store.runs)  # an error map's colours, opaque (the ground truth stays at the overlay's opacity)


def test_a_new_image_is_decoded_once_for_the_display_views_and_the_full_size_panels(dashboard_env, monkeypatch):
    """The photo and labels (and each prediction) are read once for the small views and the full-size
    panels together, and again for neither an opacity change nor the zoom view's full resolution."""
    import dashboard.pictures.images as images

    store = dashboard_env
    monkeypatch.setenv("DASHBOARD_DISPLAY_WIDTH", "16")  # display size differs from full size
    images._cache.clear()
    images._full_size_cache.clear()
    pairs, predictions = [], []
    real_pair, real_open = images.read_pair, images.store.open_run
    monkeypatch.setattr(images, "read_pair", lambda *args: pairs.append(args) or real_pair(*args))

    class Counted:
        def __init__(self, opened):
            self._opened = opened

        def __getattr__(self, name):
            return getattr(self._opened, name)

        def prediction(self, image_id):
            predictions.append(image_id)
            return self._opened.prediction(image_id)

    monkeypatch.setattr(images.store, "open_run", lambda *args: Counted(real_open(*args)))
    image_id, _, _, _ = _image(store, store.runs[0], 2)
    at = open_page("explorer", {"id": str(image_id), "runs": ",".join(store.runs)})
    assert not at.exception and at.toggle(key="explorer_compare_full").value
    assert len(pairs) == 1 and predictions == [image_id] * len(store.runs)
    at.slider(key="explorer_opacity").set_value(0.8).run()
    at.toggle(key="explorer_hover_open").set_value(True).run()  # the zoom view, on demand side by side
    at.toggle(key="explorer_zoom_full").set_value(True).run()
    assert not at.exception
    assert len(pairs) == 1 and predictions == [image_id] * len(store.runs)


def test_opacity_and_class_toggles_change_every_prediction_panel(dashboard_env, served):
    store = dashboard_env
    image_id, photo, truth, _ = _image(store, store.runs[0])
    at = open_page("explorer", {"id": str(image_id), "runs": ",".join(store.runs)})
    before = _pictures(_figure(at), served)
    titles = [f"{run}: prediction" for run in store.runs]

    at.slider(key="explorer_opacity").set_value(1.0).run()
    assert not at.exception
    opaque = _pictures(_figure(at), served)
    for title in [*titles, "ground truth"]:
        assert not np.array_equal(opaque[title], before[title]), title
    assert np.array_equal(opaque["photo"], before["photo"])

    at.button_group(key="explorer_show").set_value(["vehicle"]).run()
    assert not at.exception and at.query_params["show"] == "vehicle"
    vehicles = _pictures(_figure(at), served)
    for run, title in zip(store.runs, titles, strict=True):
        predicted = get_run(run, store.artifacts).prediction(image_id)
        sent = drawing.decode_image(drawing.encode_jpeg(photo))  # the photo, a JPEG
        expected = drawing.keep_classes(C8.palette()[predicted], sent, predicted, (VEHICLE,))  # the photo but vehicles
        assert not np.array_equal(expected, opaque[title])
        assert np.array_equal(vehicles[title], expected), title


def test_the_grid_stays_a_choice_in_the_url(dashboard_env):
    store = dashboard_env
    image_id, _, _, _ = _image(store, store.runs[0])
    at = open_page("explorer", {"id": str(image_id), "runs": ",".join(store.runs)})
    at.radio(key="explorer_layout").set_value(compare.SMALL_MULTIPLES).run()
    assert not at.exception
    assert at.query_params["layout"] == "grid" and not _has_figure(at)
    captions = [caption for image in at.image for caption in image.captions]
    assert captions[:2] == ["photo", f"{store.runs[0]}: prediction"]

    linked = open_page("explorer", {"id": str(image_id), "runs": store.runs[0], "layout": "grid"})
    assert linked.radio(key="explorer_layout").value == compare.SMALL_MULTIPLES and linked.image
    linked.radio(key="explorer_layout").set_value(compare.SIDE_BY_SIDE).run()
    assert "layout" not in linked.query_params and _has_figure(linked)


def _layout_script(runs: int) -> None:
    import streamlit as st

    import dashboard.sections.compare_view as compare_section

    st.text(compare_section.layout_ui(runs))


def test_five_runs_fall_back_to_the_small_multiples():
    """The page's run selector takes 4 runs today (``state.MAX_RUNS``): the section itself is asked."""
    at = AppTest.from_function(_layout_script, args=(5,), default_timeout=30).run()
    assert not at.exception
    assert at.text[0].value == compare.SMALL_MULTIPLES and not at.radio
    assert "5 runs: small multiples" in at.caption[0].value
    at = AppTest.from_function(_layout_script, args=(4,), default_timeout=30).run()
    assert at.text[0].value == compare.SIDE_BY_SIDE and at.radio(key="explorer_layout").value == compare.SIDE_BY_SIDE


# ---------------------------------------------------------------------------- plain functions

@pytest.mark.parametrize(("param", "runs", "expected"), [
    (None, 1, compare.SIDE_BY_SIDE), (None, 4, compare.SIDE_BY_SIDE), ("grid", 2, compare.SMALL_MULTIPLES),
    (None, 5, compare.SMALL_MULTIPLES), ("anything", 0, compare.SIDE_BY_SIDE)])
def test_the_layout_for_the_number_of_runs(param, runs, expected):
    assert compare.chosen_layout(param, runs) == expected
    assert compare.layout_param(expected) == (None if expected == compare.SIDE_BY_SIDE else "grid")


def test_the_hover_cells_stay_within_the_budget_and_take_the_middle_cell():
    assert compare.hover_stride((16, 32), 4) == 1
    assert compare.hover_stride((128, 256), 6) == 4  # 32 x 64 cells a panel, 6 panels within 12 288
    assert compare.hover_stride((128, 256), 3) == 3  # 43 x 86
    assert compare.hover_stride((128, 256), 3, budget=10**6) == 1
    cells = np.arange(36).reshape(6, 6)
    assert np.array_equal(compare.coarse_cells(cells, 3), [[7, 10], [25, 28]])
    assert compare.coarse_cells(cells, 1) is cells


def test_the_hover_names_every_line_once_in_the_template():
    lookup = np.array(["road", "car", "<b>"], dtype=object)
    names, template = compare.hover_cells([("true", np.array([[0, 1]]), lookup),
                                           ("run <a>", np.array([[1, 2]]), lookup)])
    assert names.tolist() == [[["road", "car"], ["car", "<b>"]]]
    assert template == "true: %{customdata[0]}<br>run &lt;a&gt;: %{customdata[1]}"


def test_runs_of_two_class_sets_get_a_ground_truth_each(class_sets_store, monkeypatch):
    from dashboard_fixtures import point_dashboard_at

    store = class_sets_store
    point_dashboard_at(monkeypatch, store.artifacts, store.data_root)
    image_id = int(get_run(store.runs[0], store.artifacts).per_image()[0]["id"])
    at = open_page("explorer", {"id": str(image_id), "runs": ",".join(store.runs)})
    assert not at.exception, [e.message for e in at.exception]
    spec = _figure(at)
    assert spec["layout"]["meta"]["panels"] == ["photo", "ground truth (categories8)", "ground truth (cityscapes19)",
                                                *(f"{run}: prediction" for run in store.runs)]
    hover = _hover_traces(spec)[0]
    assert hover["hovertemplate"].startswith("true (categories8): %{customdata[0]}<br>"
                                             "true (cityscapes19): %{customdata[1]}<br>")
    assert np.array(hover["customdata"]).shape[-1] == 2 + len(store.runs)
