"""The Image explorer's view (issue 15): the class toggles (``?show=``) as pure functions and on
the page, the grid of pictures for the number of runs, the opacity in its fragment, the class
filter's minimum share of the image (``?min_share=``), the per-class table's one format, and the
runs' short names."""

import io
import shutil

import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import open_page, point_dashboard_at
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

import dashboard.pictures.drawing as drawing
import dashboard.views.image_filter as image_filter
import dashboard.views.picture_grid as picture_grid
import dashboard.views.shown_classes as shown_classes
from dashboard.views.picture_grid import ERRORS, PHOTO, PREDICTION, TRUTH, Cell
from dashboard.views.run_names import run_labels, short_name, short_names
from training.data.cityscapes import read_image, read_label_ids
from training.data.index import load_or_build_index
from training.data.labels import IGNORE_INDEX, get_class_set
from training.runs.reader import get_run
from training.viz import ERROR_DIM, error_map, overlay

C8 = get_class_set("categories8")
VEHICLE, HUMAN = C8.names.index("vehicle"), C8.names.index("human")


# ---------------------------------------------------------------------------- shown classes, by hand

def test_shown_classes_in_the_url():
    names = ("flat", "human", "vehicle")
    assert shown_classes.parse_shown(None, names) == list(names)  # no parameter: every class
    assert shown_classes.parse_shown("vehicle,human,nonsense", names) == ["human", "vehicle"]  # class order
    assert shown_classes.parse_shown("", names) == []
    assert shown_classes.shown_param(list(names), names) is None
    assert shown_classes.shown_param(["vehicle"], names) == "vehicle"
    assert shown_classes.shown_param([], names) == ""
    assert shown_classes.shown_indices(names, ["vehicle", "flat"]) == (0, 2)
    assert shown_classes.shown_indices(names, list(names)) is None  # the plain pictures


def test_keep_classes_turns_the_other_classes_back_to_the_photo():
    photo = np.full((2, 3, 3), 10, np.uint8)
    picture = np.full((2, 3, 3), 200, np.uint8)
    classes = np.array([[0, 1, 2], [IGNORE_INDEX, 2, 1]], np.uint8)
    kept = drawing.keep_classes(picture, photo, classes, (2,))
    assert kept[..., 0].tolist() == [[10, 10, 200], [10, 200, 10]]
    assert picture[0, 0, 0] == 200  # a copy


def test_keep_errors_keeps_the_misses_and_false_alarms_of_the_shown_classes():
    photo = np.full((1, 5, 3), 100, np.uint8)
    truth = np.array([[1, 1, 0, 0, IGNORE_INDEX]], np.uint8)
    predicted = np.array([[1, 0, 1, 2, 0]], np.uint8)
    picture = error_map(photo, truth, predicted, C8)
    kept = drawing.keep_errors(picture, photo, truth, predicted, (1,))
    grey = round(100 * ERROR_DIM)
    # correct (1, 1): as it was; a miss of 1 (truth 1 -> 0) and a false alarm (truth 0 -> 1): kept;
    # an error between two other classes (0 -> 2) and an ignored pixel predicted 0: drawn as correct pixels
    assert kept[0, :3].tolist() == picture[0, :3].tolist()
    assert kept[0, 3].tolist() == kept[0, 4].tolist() == [grey] * 3
    assert picture[0, 4].tolist() == [0, 0, 0]


@pytest.mark.parametrize("truths, runs, expected", [
    (["c8"], [], [[Cell(PHOTO), Cell(TRUTH, "c8")]]),
    (["c8"], ["a"], [[Cell(PHOTO), Cell(TRUTH, "c8"), Cell(PREDICTION, "a"), Cell(ERRORS, "a")]]),
    (["c8"], ["a", "b"], [[Cell(PHOTO), Cell(PREDICTION, "a"), Cell(PREDICTION, "b")],
                          [Cell(TRUTH, "c8"), Cell(ERRORS, "a"), Cell(ERRORS, "b")]]),
    (["c8"], ["a", "b", "c", "d"], [[Cell(PHOTO), Cell(TRUTH, "c8"), None, None],
                                    [Cell(PREDICTION, r) for r in "abcd"], [Cell(ERRORS, r) for r in "abcd"]]),
    (["c8", "c19"], ["a", "b"], [[Cell(PHOTO), Cell(TRUTH, "c8"), Cell(TRUTH, "c19")],
                                 [Cell(PREDICTION, "a"), Cell(PREDICTION, "b"), None],
                                 [Cell(ERRORS, "a"), Cell(ERRORS, "b"), None]]),
])
def test_the_grid_fills_rows_for_the_number_of_runs(truths, runs, expected):
    grid = picture_grid.picture_grid(truths, runs)
    assert grid == expected
    assert len({len(row) for row in grid}) == 1  # rows line up


def test_three_runs_take_two_rows_of_four():
    grid = picture_grid.picture_grid(["c8"], ["a", "b", "c"])
    assert [len(row) for row in grid] == [4, 4] and grid[1][0] == Cell(TRUTH, "c8")


# ---------------------------------------------------------------------------- short names, the filter's words

def test_short_names_drop_what_every_run_shares():
    runs = ["simple_scratch_cce_v1_128x256", "unet_scratch_cce-dice_v1_128x256", "smlinknet_resnet18_dice_v1_128x256"]
    assert short_names(runs) == {runs[0]: "simple_scratch_cce", runs[1]: "unet_scratch_cce-dice",
                                 runs[2]: "smlinknet_resnet18_dice"}
    assert short_name("tiny_unet", ["tiny_simple", "tiny_unet"]) == "unet"
    assert short_names(["only_one_run"]) == {"only_one_run": "only_one_run"}
    assert short_names(["a_b", "a_b_c"]) == {"a_b": "b", "a_b_c": "b_c"}  # never empty, never alike
    assert short_names(["v1_a_128", "v1_a_b_128"]) == {"v1_a_128": "a", "v1_a_b_128": "a_b"}
    table = pd.DataFrame({"run": ["tiny_simple", "tiny_cut"], "source": ["trained", "imported"],
                          "coverage": ["", "3 of 4"], "classes": ["categories8"] * 2})
    assert run_labels(table, short=True) == {"tiny_simple": "simple", "tiny_cut": "cut (imported, 3 of 4 images)"}
    assert run_labels(table)["tiny_simple"] == "tiny_simple"  # the default stays the full name


def test_the_class_filter_by_share_of_the_image():
    shares = pd.DataFrame({"human": [0.0, 0.004, 0.02, 0.03], "object": [0.05, 0.05, 0.0, 0.012]},
                          index=[1, 2, 3, 4])
    assert image_filter.filter_and_rank_ids([1, 2, 3, 4], ("human",), shares) == [2, 3, 4]  # any pixel
    assert image_filter.filter_and_rank_ids([1, 2, 3, 4], ("human",), shares, min_share=0.01) == [3, 4]
    assert image_filter.filter_and_rank_ids([1, 2, 3, 4], ("human", "object"), shares, min_share=0.01) == [4]
    assert (image_filter.filter_summary(1, 4, "test", ("human", "object"), 0.01)
            == "1 of 4 test images have human >= 1% and object >= 1%")
    assert image_filter.filter_summary(3, 4, "all", ("human",)) == "3 of 4 images have human"


# ---------------------------------------------------------------------------- the page

@pytest.fixture
def media(monkeypatch):
    """The bytes of every picture the page sends, by the id in its URL."""
    sent = {}
    keep = MemoryMediaFileStorage.load_and_get_id

    def recording(self, path_or_data, mimetype, kind, filename=None):
        file_id = keep(self, path_or_data, mimetype, kind, filename)
        sent[file_id] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", recording)
    return sent


def _decoded(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as opened:
        return np.asarray(opened.convert("RGB"))


def _picture(at, media: dict, caption_end: str) -> np.ndarray:
    image = next(image for image in at.image for caption in image.captions if caption.endswith(caption_end))
    url = image.proto.imgs[0].url
    return _decoded(next(data for file_id, data in media.items() if file_id in url))


def test_class_toggles_opacity_and_the_table(dashboard_env, media):
    store = dashboard_env
    run = store.runs[0]
    image_id = int(pd.DataFrame(get_run(run, store.artifacts).per_image())["id"].iloc[0])
    entry = load_or_build_index(store.data_root, write=False, report=lambda message: None)[image_id]
    photo = read_image(store.data_root / entry.image)
    truth = C8.lut[read_label_ids(store.data_root / entry.label)]
    predicted = get_run(run, store.artifacts).prediction(image_id)

    at = open_page("explorer", {"id": str(image_id), "runs": run, "layout": "grid"})  # the small multiples
    assert not at.exception
    captions = [caption for image in at.image for caption in image.captions]
    assert captions[:4] == ["photo", "ground truth", f"{run}: prediction", f"{run}: errors "
                            f"({np.mean((predicted != truth)[truth != IGNORE_INDEX]):.1%} of pixels wrong)"]
    errors = _picture(at, media, "of pixels wrong)")
    assert np.array_equal(errors, error_map(photo, truth, predicted, C8))  # every class
    truth_before = _picture(at, media, "ground truth").astype(int)
    # the table: the share of the image in one format, 0-100, no "None" for a missing IoU
    table = at.dataframe[0]
    assert table.value.loc["human", "share of image"] == pytest.approx(100 * np.mean(truth == HUMAN), abs=1e-4)
    assert '"format":"%.1f%%"' in table.proto.columns.replace(" ", "") and table.proto.placeholder == ""
    # short names in the selectors and the table's header (the full name in its help)
    assert at.multiselect(key="explorer_runs").options == ["simple", "unet"]
    assert '"label":"simple","help":"tiny_simple"' in table.proto.columns.replace(" ", "")

    pills = at.button_group(key="explorer_show")
    assert pills.value == list(C8.names)
    pills.set_value(["vehicle"]).run()
    assert not at.exception
    assert at.query_params["show"] == "vehicle"
    errors = _picture(at, media, "of pixels wrong)")
    assert np.array_equal(errors, drawing.keep_errors(error_map(photo, truth, predicted, C8), photo, truth,
                                                         predicted, (VEHICLE,)))
    # no other class's colour is left where neither the truth nor the prediction is a vehicle
    elsewhere = (truth != VEHICLE) & (predicted != VEHICLE)
    assert elsewhere.any() and (errors[elsewhere] == errors[elsewhere][:, :1]).all()  # grey only
    shown_truth = _picture(at, media, "ground truth").astype(int)
    others = truth != VEHICLE
    assert np.abs(shown_truth[others] - photo[others]).mean() < np.abs(truth_before[others] - photo[others]).mean()
    expected = drawing.keep_classes(overlay(photo, C8.colorize(truth), 0.6), photo, truth, (VEHICLE,))
    assert np.array_equal(shown_truth, _decoded(drawing.encode_jpeg(expected)))  # the photo but on vehicles

    at.slider(key="explorer_opacity").set_value(1.0).run()  # the pictures' fragment
    assert not at.exception
    opaque = _picture(at, media, "ground truth").astype(int)
    vehicle = truth == VEHICLE
    assert np.abs(opaque[vehicle] - C8.palette()[VEHICLE]).mean() < np.abs(shown_truth[vehicle]
                                                                            - C8.palette()[VEHICLE]).mean()
    assert at.query_params["show"] == "vehicle"

    linked = open_page("explorer", {"id": str(image_id), "runs": run, "show": "human,vehicle"})
    assert linked.button_group(key="explorer_show").value == ["human", "vehicle"]


def test_the_class_filter_needs_a_share_of_the_image(dashboard_store, tmp_path, monkeypatch):
    """One test image's person is made larger (8 of 512 pixels, 1.6 %); the others' cover 0.6 %.
    (A copy of the store and of the dataset, the runs' configs pointed at the copy.)"""
    root = shutil.copytree(dashboard_store.data_root, tmp_path / "cityscapes")
    artifacts = shutil.copytree(dashboard_store.artifacts, tmp_path / "artifacts")
    for config in artifacts.glob("runs/*/config.yaml"):
        config.write_text(config.read_text().replace(str(dashboard_store.data_root), str(root)))
    entries = load_or_build_index(root, write=False, report=lambda message: None).split("test")
    label_file = root / entries[2].label
    label_ids = read_label_ids(label_file)
    label_ids[0:2, 0:4] = 24  # person
    Image.fromarray(label_ids).save(label_file)
    point_dashboard_at(monkeypatch, artifacts, root)

    at = open_page("explorer")
    at.multiselect(key="explorer_classes").set_value(["human"]).run()
    assert "1 of 4 test images have human >= 1%" in [c.value for c in at.sidebar.caption]
    assert at.number_input(key="explorer_id").value == entries[2].id
    assert "min_share" not in at.query_params  # the default
    at.number_input(key="explorer_min_share").set_value(0.5).run()
    assert not at.exception
    assert at.query_params["min_share"] == "0.5"
    assert "4 of 4 test images have human >= 0.5%" in [c.value for c in at.sidebar.caption]

    linked = open_page("explorer", {"min_share": "2"})
    assert linked.number_input(key="explorer_min_share").value == 2.0
