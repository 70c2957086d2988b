"""The Error anatomy page and the explorer's marks: AppTest on real run stores (the tiny runs'
anatomy as training wrote it, imported runs given theirs by ``anatomize_run``, old and damaged
runs), and the pure functions of ``dashboard.anatomy`` and ``dashboard.outline`` on hand-made arrays."""

import io
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import IMPORTED_C8, IMPORTED_C19, open_page
from PIL import Image
from test_raster import reference_pooled

import dashboard.pictures.images as pictures
import dashboard.pictures.marks as marks
import dashboard.pictures.outline as outline
import dashboard.views.anatomy_tables as anatomy_tables
import dashboard.views.regions as regions
import training.evaluation.anatomy_report as anatomy_report
import training.evaluation.boundary as boundary
from training.data.cityscapes import read_instance_ids, read_label_ids
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.runs.anatomy import ANATOMY_FILES
from training.runs.reader import get_run
from training.runs.rescore import anatomize_run

PAGE = "app_pages/anatomy.py"


def _anatomy_page(query_params: dict | None = None):
    at = open_page("overview", query_params)
    at.switch_page(PAGE).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _charts(at) -> dict[str, dict]:
    return {chart.key: json.loads(chart.proto.spec) for chart in at.get("plotly_chart")}


TABLE, MISSED = "mIoU (all classes)", "open"  # a column of the table per run, of the missed objects


def _dataframe(at, column: str) -> pd.DataFrame:
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def _shown(at) -> str:
    return "\n".join(str(e.value) for e in [*at.info, *at.caption, *at.warning, *at.markdown, *at.error])


def _close(shown: np.ndarray, expected: np.ndarray) -> bool:
    """A heatmap's values (rounded to 5 decimals for the browser) against the expected ones."""
    return np.allclose(shown, expected, atol=1e-5, rtol=0, equal_nan=True)


def _test_entries(store):
    index = load_or_build_index(store.data_root, write=False, report=lambda message: None)
    return index.split("test")


# ---------------------------------------------------------------------------- the page

def test_the_table_shows_each_run_s_anatomy_json_and_its_mious(dashboard_env):
    store = dashboard_env
    at = _anatomy_page({"runs": ",".join(store.runs)})
    table = _dataframe(at, TABLE)
    assert list(table.index) == store.runs
    for run in store.runs:
        opened = get_run(run, store.artifacts)
        document, metrics, row = opened.anatomy(), opened.metrics, table.loc[run]
        assert row["mIoU (all classes)"] == pytest.approx(metrics["miou"])
        assert row["mIoU (official)"] == pytest.approx(metrics["miou_official"])
        assert row["Boundary IoU (all classes)"] == pytest.approx(document["mean_boundary_iou"])
        assert row["Boundary IoU (official)"] == pytest.approx(document["mean_boundary_iou_official"])
        assert row["iIoU"] == pytest.approx(document["mean_iiou"])
        for name, value in document["iiou"].items():
            assert row[f"iIoU {name}"] == pytest.approx(value)
        assert row["objects"] == document["instances"]["objects"]
        assert row["missed"] == document["instances"]["missed"]
        assert row["boundary width"] == "1 px at 16x32"
    words = set(_shown(at).replace(",", " ").replace(".", " ").split())
    assert not words & {"None", "nan", "NaN"}
    assert "Boundary IoU" in _shown(at) and "1 px at 16x32" in _shown(at)


def test_missed_objects_come_largest_first_with_a_link_to_the_explorer(dashboard_env):
    store = dashboard_env
    at = _anatomy_page({"runs": ",".join(store.runs)})
    missed = _dataframe(at, MISSED)
    expected = [(run, row) for run in store.runs for row in get_run(run, store.artifacts).instances() if row["missed"]]
    assert len(missed) == len(expected) > 0
    assert list(missed["pixels"]) == sorted(missed["pixels"], reverse=True)  # largest first
    assert sorted(zip(missed["run"], missed["id"], missed["instance"])) == sorted(
        (run, row["id"], row["instance"]) for run, row in expected)
    for row in missed.to_dict("records"):
        assert row["open"] == f"explorer?id={row['id']}&runs={row['run']}&outline=instance:{row['instance']}"
    # the recall chart: a point per (run, class, size bin), with the count of objects on hover
    recall = _charts(at)["anatomy_recall"]
    points = sum(len(trace["x"]) for trace in recall["data"])
    frames = {run: anatomy_tables.instances_frame(get_run(run, store.artifacts).instances()) for run in store.runs}
    assert points == len(anatomy_tables.recall_frame(frames))
    assert sum(row[2] for trace in recall["data"] for row in trace["customdata"]) == sum(map(len, frames.values()))

    # one click opens the explorer on that image with the object outlined
    first = missed.iloc[0]
    at.button(key="anatomy_open_missed").click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Image explorer"]
    assert at.query_params["id"] == str(first["id"]) and at.query_params["runs"] == first["run"]
    assert at.query_params["outline"] == f"instance:{first['instance']}"
    assert f"car {first['instance']} ({first['pixels']} pixels)" in _shown(at)


def test_boundaries_plot_iou_against_boundary_iou_per_class(dashboard_env):
    store = dashboard_env
    at = _anatomy_page({"runs": ",".join(store.runs)})
    figure = _charts(at)["anatomy_boundaries"]
    traces = {trace["name"]: trace for trace in figure["data"]}
    assert traces["Boundary IoU = IoU"]["x"] == [0, 1]
    for run in store.runs:
        opened = get_run(run, store.artifacts)
        iou, boundary = opened.metrics["iou"], opened.anatomy()["boundary_iou"]
        both = [name for name in boundary if iou[name] is not None and boundary[name] is not None]
        assert traces[run]["customdata"] == both  # every class in the hover
        assert traces[run]["x"] == pytest.approx([iou[name] for name in both])
        assert traces[run]["y"] == pytest.approx([boundary[name] for name in both])
        assert "%{customdata}" in traces[run]["hovertemplate"]
    # issue 25: the names piled up; only the classes furthest under the diagonal are written
    named = [(text, position) for run in store.runs
             for text, position in zip(traces[run]["text"], traces[run]["textposition"]) if text]
    assert 0 < len(named) <= anatomy_tables.LABELLED_CLASSES
    at.radio(key="anatomy_boundary_mode").set_value("official").run()
    traces = {trace["name"]: trace for trace in _charts(at)["anatomy_boundaries"]["data"]}
    official = get_run(store.runs[0], store.artifacts).anatomy()["boundary_iou_official"]
    assert "void" not in traces[store.runs[0]]["customdata"] and official["void"] is None


def test_the_boundary_chart_names_the_worst_edges_in_turns_and_the_rest_in_the_hover():
    """Twelve classes in a cluster: eight named (the largest IoU - Boundary IoU), neighbours by IoU
    named above, below, right and left in turn."""
    iou = [0.50 + 0.01 * i for i in range(12)]
    points = pd.DataFrame({"run": "a", "class": [f"c{i}" for i in range(12)], "IoU": iou,
                           "Boundary IoU": [v - 0.01 * (i % 6) for i, v in enumerate(iou)]})
    shown = anatomy_tables.boundary_labels(points)
    named = shown[shown["label"] != ""]
    assert set(named["class"]) == {"c5", "c11", "c4", "c10", "c3", "c9", "c2", "c8"}
    assert list(named.sort_values("IoU")["position"]) == [*anatomy_tables.LABEL_POSITIONS] * 2
    assert list(shown["class"]) == list(points["class"])  # every point kept, in its order


def test_the_per_run_table_columns_fit_their_headers_and_cells(dashboard_env):
    """Issue 25: "objects" showed as "obje..."."""
    from dashboard.views.numbers import text_width

    at = _anatomy_page({"runs": ",".join(dashboard_env.runs)})
    frame = next(element for element in at.dataframe if TABLE in element.value.columns)
    config = json.loads(frame.proto.columns)
    table = frame.value
    for column in table.columns:
        assert config[column]["width"] >= text_width(column), column
    assert config["objects"]["width"] >= text_width("objects")
    assert config["_index"]["pinned"] is True
    assert config["_index"]["width"] >= text_width(max(table.index, key=len))


def test_the_frame_heatmaps_and_a_minus_b(dashboard_env):
    store = dashboard_env
    a, b = store.runs
    at = _anatomy_page({"runs": f"{a},{b}"})
    counts = {run: get_run(run, store.artifacts).frame_errors() for run in (a, b)}

    def rate(values):
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(values[0] > 0, values[1] / np.maximum(values[0], 1), np.nan)

    def z(figure):
        return np.array([[np.nan if v is None else v for v in row] for row in figure["data"][0]["z"]], dtype=float)

    charts = _charts(at)
    for run in (a, b):
        assert _close(z(charts[f"anatomy_frame_{run}"]), rate(counts[run]))
    assert np.isnan(z(charts[f"anatomy_frame_{a}"])).any()  # 16x32 images fill 1 cell in 8x8: blank cells
    difference = charts["anatomy_frame_difference"]
    assert _close(z(difference), rate(counts[a]) - rate(counts[b]))
    assert difference["data"][0]["zmid"] == 0 and difference["data"][0]["colorscale"]
    at.selectbox(key="anatomy_frame_a").set_value(b).run()
    at.selectbox(key="anatomy_frame_b").set_value(a).run()
    assert _close(z(_charts(at)["anatomy_frame_difference"]), rate(counts[b]) - rate(counts[a]))

    at.select_slider(key="anatomy_grid").set_value(8).run()  # cells of 8x8: 16x32
    pooled = counts[a].reshape(2, 16, 8, 32, 8).sum(axis=(2, 4))
    assert _close(z(_charts(at)[f"anatomy_frame_{a}"]), rate(pooled))
    assert not at.exception


def test_a_run_without_anatomy_says_how_to_add_it_and_a_damaged_file_says_which(dashboard_store_copy):
    store = dashboard_store_copy
    old, damaged = store.runs
    for name in ANATOMY_FILES:
        (store.artifacts / "runs" / old / name).unlink()
    (store.artifacts / "runs" / damaged / "instances.csv").write_bytes(b"\xff\xfe\x00 not a csv \xff")
    (store.artifacts / "runs" / damaged / "frame_errors.npy").write_bytes(b"not numpy")
    at = _anatomy_page({"runs": f"{old},{damaged}"})
    assert (f"{old}: no error anatomy: this run was evaluated before it existed; re-evaluate to see this: "
            f"`python -m training anatomy {old}`") in [info.value for info in at.info]
    warnings = [w.value for w in at.warning]
    assert any(w.startswith(f"{damaged}: its objects cannot be shown: instances.csv is not UTF-8 text")
               for w in warnings), warnings
    assert any(w.startswith(f"{damaged}: where its errors are cannot be shown: frame_errors.npy") for w in warnings)
    assert list(_dataframe(at, TABLE).index) == [damaged]  # anatomy.json is whole
    assert "anatomy_boundaries" in _charts(at) and str(store.artifacts) not in _shown(at)

    anatomize_run(get_run(old, store.artifacts), progress=False)  # the command the note names
    at = _anatomy_page({"runs": f"{old},{damaged}"})
    assert list(_dataframe(at, TABLE).index) == [old, damaged]
    assert not any("no error anatomy" in info.value for info in at.info)


@pytest.mark.parametrize("content, message", [
    ('{"boundary_iou": {"flat": 0.5', "anatomy.json is not valid JSON"),
    ("[1, 2]", "anatomy.json holds a list, not an object"),
    ('{"mean_iiou": 0.5}', "anatomy.json holds no per-class boundary_iou"),
    ('{"boundary_iou": {"flat": "high"}, "mean_boundary_iou": [1], "iiou": {"human": "x"}, "instances": 3}', None),
])
def test_a_damaged_anatomy_json_is_a_note_for_its_run(content, message, dashboard_store_copy):
    store = dashboard_store_copy
    damaged, whole = store.runs
    (store.artifacts / "runs" / damaged / "anatomy.json").write_text(content)
    at = _anatomy_page({"runs": f"{damaged},{whole}"})
    table = _dataframe(at, TABLE)
    if message:
        assert f"{damaged}: its error anatomy cannot be shown: {message}" in " ".join(w.value for w in at.warning)
        assert list(table.index) == [whole]
    else:  # numbers of the wrong type: empty cells, never an exception
        assert list(table.index) == [damaged, whole]
        assert table.loc[damaged, ["Boundary IoU (all classes)", "iIoU", "iIoU human", "objects"]].isna().all()
    at = _explorer({"id": str(_test_entries(store)[0].id), "runs": f"{damaged},{whole}"})
    at.toggle(key="explorer_boundary_band").set_value(True).run()  # the band's width: the default ratio
    assert not at.exception and "within 1 px of a contour" in _shown(at)


@pytest.fixture
def imported_anatomy(imported_store, tmp_path, monkeypatch):
    """``imported_store`` copied, its imported runs given their anatomy by ``anatomize_run``."""
    from dashboard_fixtures import point_dashboard_at

    artifacts = shutil.copytree(imported_store.artifacts, tmp_path / "artifacts")
    for run in imported_store.imported:
        anatomize_run(get_run(run, artifacts), replace=True, progress=False)
    point_dashboard_at(monkeypatch, artifacts, imported_store.data_root)
    return SimpleNamespace(artifacts=artifacts, data_root=imported_store.data_root, covered=imported_store.covered)


def test_imported_runs_of_both_class_sets_and_partial_coverage(imported_anatomy):
    store = imported_anatomy
    at = _anatomy_page({"runs": f"{IMPORTED_C8},{IMPORTED_C19}"})
    table = _dataframe(at, TABLE)
    assert table.loc[IMPORTED_C8, "images"] == len(store.covered[IMPORTED_C8])
    assert table.loc[IMPORTED_C19, "images"] == len(store.covered[IMPORTED_C19])
    assert table.loc[IMPORTED_C19, "iIoU car"] == pytest.approx(get_run(IMPORTED_C19, store.artifacts)
                                                                .anatomy()["iiou"]["car"])
    assert np.isnan(table.loc[IMPORTED_C8, "iIoU car"])  # categories8 has no class car: an empty cell
    assert "Scored on part of the split" in _shown(at)
    missed = _dataframe(at, MISSED)
    # imported_c19 predicts every car pixel as "no class": each car missed; imported_c8 keeps most of each car
    assert set(missed["run"]) == {IMPORTED_C19} and set(missed["label"]) == {"car"}
    assert sorted(missed["id"]) == sorted(store.covered[IMPORTED_C19])
    recall = _charts(at)["anatomy_recall"]
    assert {annotation["text"] for annotation in recall["layout"]["annotations"]} == {"human", "vehicle", "person",
                                                                                      "car"}


# ---------------------------------------------------------------------------- the explorer's marks

def _explorer(query_params):
    at = open_page("explorer", query_params)
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_the_explorer_outlines_an_object_and_a_box_and_drops_them_on_another_image(dashboard_env):
    store = dashboard_env
    run = store.runs[0]
    first, second = (entry.id for entry in _test_entries(store)[:2])
    at = _explorer({"id": str(first), "runs": run, "outline": "instance:26000"})
    assert "Outlined in white on the ground truth, predictions and error maps: car 26000 (15 pixels)." in _shown(at)
    at.button(key="explorer_clear_outline").click().run()
    assert "outline" not in at.query_params and "Outlined" not in _shown(at)

    at = _explorer({"id": str(first), "runs": run, "outline": "box:3,2,9,6"})
    assert "the box x 3-8, y 2-5" in _shown(at)
    at.button(key="explorer_clear_outline")  # the way to clear it is there
    next(button for button in at.button if button.label == "Next").click().run()
    assert at.query_params["id"] == str(second)
    assert "outline" not in at.query_params and "Outlined" not in _shown(at)  # the box was the other image's

    at = _explorer({"id": str(first), "runs": run, "outline": "instance:33000"})
    assert f"Nothing outlined: image {first} has no object with instance id 33000." in _shown(at)
    at = _explorer({"id": str(first), "runs": run, "outline": "circle:1"})
    assert "Nothing outlined: outline='circle:1' is not instance:<id> or box:x0,y0,x1,y1" in _shown(at)


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_outlined_pictures_differ_from_the_plain_ones_exactly_on_the_outline(known_outputs_store):
    store = known_outputs_store
    run = store.runs[1]
    entry = _test_entries(store)[0]
    image = pictures.ImageRef(str(store.data_root), "test", entry.id, entry.image, entry.label, 512)
    ref = pictures.RunRef(str(store.artifacts), run, get_run(run, store.artifacts).uid, "categories8", True)
    instances = read_instance_ids(store.data_root / entry.label)
    for wanted, region in ((regions.Outline(regions.INSTANCE, 26000), instances == 26000),
                           (regions.Outline(regions.BOX, box=(3, 2, 9, 6)), outline.box_mask(instances.shape,
                                                                                              (3, 2, 9, 6)))):
        wanted_marks = marks.Marks(wanted)
        plain = _decode(pictures.error_picture(image, ref))
        drawn = _decode(marks.error_picture(image, ref, wanted_marks))
        changed = (plain != drawn).any(axis=-1)
        ring = outline.outline_pixels(region)
        assert changed.any() and not (changed & ~ring).any()  # nothing changed off the outline
        assert (drawn[ring] == outline.OUTLINE_COLOR).all()

    truth = get_class_set("categories8").lut[read_label_ids(store.data_root / entry.label)]
    band, _ = boundary.error_band(truth, get_run(run, store.artifacts).prediction(entry.id), 1)
    banded = _decode(marks.error_picture(image, ref, marks.Marks(band=True)))
    assert np.array_equal(banded, outline.dim_outside(_decode(pictures.error_picture(image, ref)), band))
    assert not np.array_equal(banded, _decode(pictures.error_picture(image, ref)))


def _band_by_hand(class_map: np.ndarray, d: int) -> np.ndarray:
    """mask_to_boundary of every class, pixel by pixel: the (2d+1)^2 window is not constant, or
    it reaches past the image's border."""
    height, width = class_map.shape
    band = np.zeros(class_map.shape, dtype=bool)
    for y in range(height):
        for x in range(width):
            if y < d or x < d or y >= height - d or x >= width - d:
                band[y, x] = True
            else:
                band[y, x] = len(np.unique(class_map[y - d:y + d + 1, x - d:x + d + 1])) > 1
    return band


def test_the_boundary_band_view_counts_the_wrong_pixels_in_the_band(known_outputs_env):
    store = known_outputs_env
    run = store.runs[1]
    entry = _test_entries(store)[2]
    at = _explorer({"id": str(entry.id), "runs": run})
    assert "Boundary band" not in _shown(at)
    at.toggle(key="explorer_boundary_band").set_value(True).run()
    assert not at.exception
    truth = get_class_set("categories8").lut[read_label_ids(store.data_root / entry.label)]
    predicted = get_run(run, store.artifacts).prediction(entry.id)
    wrong = (truth != predicted) & (truth != 255)
    band = _band_by_hand(truth, 1) | _band_by_hand(predicted, 1)  # d = 1 at 16x32
    in_band = int((wrong & band).sum())
    assert 0 < in_band < int(wrong.sum())  # this image has wrong pixels on both sides of the band
    expected = f"{run}: {in_band:,} of its {int(wrong.sum()):,} wrong pixels ({in_band / wrong.sum():.1%})"
    assert expected in _shown(at) and "within 1 px of a contour" in _shown(at)


# ---------------------------------------------------------------------------- pure functions

def test_outline_pixels_ring_a_region_and_mark_its_edge_on_the_border():
    region = np.zeros((7, 9), dtype=bool)
    region[3, 4] = True
    ring = outline.outline_pixels(region, thickness=1)
    expected = np.zeros_like(region)
    expected[2:5, 3:6] = True
    expected[3, 4] = False
    assert np.array_equal(ring, expected)
    assert outline.outline_pixels(region, thickness=2).sum() == 25 - 1

    corner = outline.box_mask((5, 6), (0, 0, 3, 2))  # x 0-2, y 0-1: against the top and left edges
    drawn = outline.draw_outline(np.zeros((5, 6, 3), dtype=np.uint8), corner, thickness=1)
    white = (drawn == 255).all(axis=-1)
    expected = np.zeros((5, 6), dtype=bool)
    expected[:3, :4] = True  # the ring below and right of the box, and the box's pixels on the picture's edge
    expected[1, 1:3] = False  # box pixels off the picture's edge keep their colour
    assert np.array_equal(white, expected)


def test_regions_shrink_so_that_small_objects_stay_visible():
    mask = np.zeros((8, 12), dtype=bool)
    mask[5, 7] = True  # one pixel: in the display block (5 // 4, 7 // 4) = (1, 1)
    small = outline.shrink_region(mask, 4)
    assert small.shape == (2, 3) and np.argwhere(small).tolist() == [[1, 1]]
    mask = np.zeros((9, 13), dtype=bool)
    mask[8, 12] = True  # in the partial blocks past the display's edge: dropped, as the photo drops them
    assert outline.shrink_region(mask, 4).shape == (2, 3) and not outline.shrink_region(mask, 4).any()
    mask[7, 11] = True  # in the last full block
    assert np.argwhere(outline.shrink_region(mask, 4)).tolist() == [[1, 2]]


def _shrink_region_before(mask: np.ndarray, factor: int) -> np.ndarray:
    """``outline.shrink_region`` before the one rule of ``training.raster.shrink``: a pixel of a
    partial block joined the last display row or column."""
    height, width = max(1, mask.shape[0] // factor), max(1, mask.shape[1] // factor)
    small = np.zeros((height, width), dtype=bool)
    rows, columns = np.nonzero(mask)
    small[np.minimum(rows // factor, height - 1), np.minimum(columns // factor, width - 1)] = True
    return small


def test_regions_shrink_as_before_except_in_the_strip_the_photo_drops_too():
    rng = np.random.default_rng(0)
    for factor in (2, 3, 4, 5):
        for shape in ((8 * factor, 12 * factor), (8 * factor + factor - 1, 12 * factor + 1)):
            for density in (0.001, 0.02, 0.3):
                mask = rng.random(shape) < density
                inside = mask.copy()
                inside[8 * factor:] = False  # nothing in the strip of partial blocks
                inside[:, 12 * factor:] = False
                assert np.array_equal(outline.shrink_region(inside, factor), _shrink_region_before(inside, factor))
                # With pixels in the strip: they are left out, so only the last row or column can
                # lose a pixel, and nothing else changes.
                new, old = outline.shrink_region(mask, factor), _shrink_region_before(mask, factor)
                assert new.shape == old.shape and not (new & ~old).any() and not (old & ~new)[:-1, :-1].any()
                assert np.array_equal(new, _shrink_region_before(inside, factor))


def test_outline_params_round_trip_and_bad_ones_say_why():
    assert regions.parse_outline("instance:26001") == regions.Outline(regions.INSTANCE, 26001)
    assert regions.parse_outline("box:1,2,30,40").box == (1, 2, 30, 40)
    for wanted in (regions.Outline(regions.INSTANCE, 24003), regions.Outline(regions.BOX, box=(0, 0, 5, 5))):
        assert regions.parse_outline(wanted.param) == wanted
    for bad in ("instance:", "instance:-1", "box:1,2,3", "box:5,5,5,9", "polygon:1", "instance:1e3"):
        with pytest.raises(ValueError):
            regions.parse_outline(bad)


def test_the_band_and_its_counts_on_hand_made_maps():
    truth = np.zeros((6, 8), dtype=np.uint8)
    truth[:, 4:] = 1
    truth[0, 0] = 255  # no ground truth: never wrong, never counted
    predicted = np.zeros_like(truth)
    predicted[:, 3:] = 1  # column 3 wrong: on the contour
    predicted[2, 1] = 1  # a wrong pixel away from any contour of the truth, but with its own contour
    band, counts = boundary.error_band(truth, predicted, 1)
    assert np.array_equal(band, _band_by_hand(truth, 1) | _band_by_hand(predicted, 1))
    assert counts.wrong == 7 and counts.in_band == 7 and counts.width == 1
    band, counts = boundary.error_band(truth, np.where(truth == 255, 0, truth), 1)
    assert counts.wrong == 0 and np.isnan(counts.share)
    dimmed = outline.dim_outside(np.full((2, 2, 3), 200, np.uint8), np.array([[True, False], [False, True]]))
    assert dimmed[0, 0].tolist() == [200] * 3 and dimmed[0, 1].tolist() == [50] * 3


def test_recall_by_size_and_missed_objects():
    frame = anatomy_tables.instances_frame([
        {"id": 1, "instance": 26000, "label": "car", "class": "vehicle", "pixels": 5, "x0": 0, "y0": 0, "x1": 5,
         "y1": 1, "recall": 0.2, "missed": 1},
        {"id": 1, "instance": 26001, "label": "car", "class": "vehicle", "pixels": 7, "x0": 0, "y0": 1, "x1": 7,
         "y1": 2, "recall": 0.8, "missed": 0},
        {"id": 2, "instance": 24000, "label": "person", "class": "human", "pixels": 300, "x0": 3, "y0": 4,
         "x1": 13, "y1": 34, "recall": 0.4, "missed": 1}])
    bins = anatomy_tables.recall_frame({"a": frame}).set_index(["class", "bin"])
    assert bins.loc[("vehicle", 2), "objects"] == 2 and bins.loc[("vehicle", 2), "recall"] == pytest.approx(0.5)
    assert (bins.loc[("vehicle", 2), "low"], bins.loc[("vehicle", 2), "high"]) == (4, 7)
    assert bins.loc[("human", 8), "missed"] == 1
    missed = anatomy_tables.missed_frame({"a": frame, "b": frame.assign(recall=frame["recall"] / 2)})
    assert list(zip(missed["run"], missed["pixels"])) == [("b", 300), ("a", 300), ("b", 5), ("a", 5)]
    assert missed.loc[0, "box"] == "x 3-12, y 4-33"
    with pytest.raises(anatomy_tables.AnatomyProblem, match="lacks the columns"):
        anatomy_tables.instances_frame([{"id": 1}])


def test_frame_rates_pool_cells_and_leave_empty_ones_blank():
    counts = np.zeros((2, 4, 4), dtype=np.int64)
    counts[0, :2, :2] = 10
    counts[1, 0, 0] = 4
    rate = anatomy_report.error_rate(counts)
    assert rate[0, 0] == pytest.approx(0.4) and rate[0, 1] == 0 and np.isnan(rate[3, 3])
    assert anatomy_report.error_rate(anatomy_report.pooled_cells(counts, 2)).tolist()[0][0] == pytest.approx(0.1)
    assert np.isnan(anatomy_report.error_rate(anatomy_report.pooled_cells(counts, 2))[1, 1])
    other = counts.copy()
    other[1, 0, 0] = 1
    assert anatomy_report.rate_difference(counts, other)[0, 0] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="frame_errors.npy"):
        anatomy_report.check_frame_counts(np.stack([counts[1], counts[0]]))  # more wrong than counted
    assert anatomy_report.grid_factors((128, 256)) == [1, 2, 4, 8, 16]
    assert anatomy_report.grid_factors((100, 200)) == [1, 2, 4]  # 8 leaves a partial block of cells: not offered
    assert anatomy_report.grid_factors((96, 256)) == [1, 2, 4, 8]  # 16 would leave fewer than 8 rows


def test_frame_counts_pool_as_before_at_every_factor_offered():
    rng = np.random.default_rng(5)
    for grid in ((128, 256), (100, 200), (8, 8)):
        counted = rng.integers(0, 4000, grid)
        counts = np.stack([counted, rng.integers(0, counted + 1)]).astype(np.int64)
        for factor in anatomy_report.grid_factors(grid, smallest=1):
            pooled = anatomy_report.pooled_cells(counts, factor)
            assert pooled.dtype == np.int64 and np.array_equal(pooled, reference_pooled(counts, factor)), (grid, factor)
            assert pooled.sum() == counts.sum()  # no cell left out
