"""Is B really better than A, in the dashboard: the leaderboard's intervals against a reference run,
the A-vs-B chart's per-class intervals and verdict, the pooled / per-image mIoU switch (in the
URL), and A against B pixel by pixel in the explorer (the outcome map's counts, the images where B
got worse). AppTest on real run stores, numbers checked against the core's functions run here;
the pure functions of ``dashboard.views.intervals`` on small tables."""

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
from dashboard_fixtures import open_page
from streamlit.proto.Metric_pb2 import Metric as MetricProto

import dashboard.views.intervals as intervals
import training.evaluation.variants as variants
from training.data.cityscapes import read_label_ids
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.evaluation.metrics import OUTCOME_NAMES, iou_per_class, outcome_counts, paired_outcomes
from training.evaluation.significance import block, compare_runs, verdict
from training.runs.reader import get_run

COPY = "tiny_simple_copy"


def _widget(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def _charts(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def _per_image_official_mean(store, run: str) -> float:
    """The mean of each image's official mIoU, from per_image_official_confusion.npy, class by class."""
    opened = get_run(run, store.artifacts)
    class_set = get_class_set(opened.metrics["classes"])
    values = [np.nanmean(iou[list(class_set.scored)]) for iou in
              (iou_per_class(matrix) for matrix in np.load(opened.path / "per_image_official_confusion.npy"))
              if not np.isnan(iou[list(class_set.scored)]).all()]
    return float(np.mean(values))


def _per_image_mean(store, run: str) -> float:
    values = [row["miou"] for row in get_run(run, store.artifacts).per_image() if isinstance(row["miou"], float)]
    return float(np.mean(values))


def _interval(block: dict) -> str:
    return f"[{block['ci95_low']:+.3f}, {block['ci95_high']:+.3f}]"


def _with_a_copy(store) -> None:
    """The first run copied, folder and all, under another name: an identical run."""
    shutil.copytree(store.artifacts / "runs" / store.runs[0], store.artifacts / "runs" / COPY)


# ---------------------------------------------------------------------------- the leaderboard

def test_the_leaderboard_gives_each_run_an_interval_against_the_reference(dashboard_store_copy):
    store = dashboard_store_copy
    _with_a_copy(store)
    simple, unet = store.runs
    runs = {name: get_run(name, store.artifacts) for name in (simple, unet, COPY)}
    at = open_page("overview")
    assert not at.exception
    assert _widget(at.selectbox, "Reference run (A) of the intervals").value == simple  # the deployed run
    board = at.dataframe[0].value.set_index("run")
    assert board.loc[simple, "significance"] == "reference"
    # an identical copy: B - A is 0 in every resample, so the interval is [0, 0] and holds 0
    assert board.loc[COPY, "vs_reference"] == 0.0
    assert board.loc[COPY, "interval"] == "[+0.000, +0.000]"
    assert board.loc[COPY, "significance"] == "not significant"
    # another run: the numbers of compare_runs (1000 resamples, seed 0) run here
    expected = block(compare_runs(runs[simple], runs[unet], resamples=1000, seed=0))
    assert board.loc[unet, "vs_reference"] == pytest.approx(expected["difference"])
    assert board.loc[unet, "interval"] == _interval(expected)
    assert board.loc[unet, "significance"] == {"B better than A": "B better", "B worse than A": "B worse"}.get(
        verdict(expected), "not significant")

    _widget(at.selectbox, "Reference run (A) of the intervals").set_value(unet).run()
    assert not at.exception
    board = at.dataframe[0].value.set_index("run")
    assert board.loc[unet, "significance"] == "reference"
    against = block(compare_runs(runs[unet], runs[simple], resamples=1000, seed=0))
    assert board.loc[simple, "vs_reference"] == pytest.approx(against["difference"])
    assert board.loc[simple, "interval"] == _interval(against)
    assert board.loc[COPY, "interval"] == _interval(against)  # the copy is the same run


def test_a_run_of_another_split_is_not_compared(dashboard_store_copy):
    store = dashboard_store_copy
    _with_a_copy(store)
    metrics_path = store.artifacts / "runs" / COPY / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics["split"] = "validation"
    metrics_path.write_text(json.dumps(metrics))
    at = open_page("overview")
    assert not at.exception
    board = at.dataframe[0].value.set_index("run")
    assert math.isnan(board.loc[COPY, "vs_reference"]) and pd.isna(board.loc[COPY, "interval"])
    assert any(f"(another class set or split): {COPY}" in c.value for c in at.caption)

    # run A against run B: the per-class numbers still, but no interval, and the reason
    at = open_page("comparison")
    _widget(at.selectbox, "Run B").set_value(COPY).run()
    assert not at.exception
    assert any(i.value.startswith("No interval for these two runs: ") and "different splits" in i.value
               for i in at.info)
    assert "95% interval" not in at.dataframe[-1].value.columns
    assert "error_x" not in _charts(at)[-1]["data"][0]


# ---------------------------------------------------------------------------- run A against run B

def test_the_a_vs_b_chart_has_per_class_intervals_and_the_verdict(dashboard_store_copy):
    store = dashboard_store_copy
    _with_a_copy(store)
    simple, unet = store.runs
    expected = compare_runs(get_run(simple, store.artifacts), get_run(unet, store.artifacts), resamples=1000, seed=0)
    at = open_page("comparison")
    _widget(at.selectbox, "Run B").set_value(unet).run()
    assert not at.exception and _widget(at.selectbox, "Run A").value == simple
    bars = _charts(at)[-1]["data"][0]  # the A vs B chart, last on the page
    rows = {row["name"]: row for row in expected["miou"]["per_class"]}
    for name, delta, plus, minus, text in zip(bars["y"], bars["x"], bars["error_x"]["array"],
                                              bars["error_x"]["arrayminus"], bars["text"]):
        row = rows[name]
        if row["ci95_low"] is None or delta is None:
            assert plus == minus == 0, name
            continue
        assert delta == pytest.approx(row["difference"], abs=1e-9), name
        assert plus == pytest.approx(row["ci95_high"] - delta) and minus == pytest.approx(delta - row["ci95_low"])
        holds_zero = row["ci95_low"] <= 0 <= row["ci95_high"]
        assert text.endswith(", not significant") == holds_zero, (name, text)
    assert any(text.endswith(", not significant") for text in bars["text"])  # void: never predicted by either
    # the value labels are annotations beyond each error bar, not the bars' own text under them
    layout = _charts(at)[-1]["layout"]
    assert bars["textposition"] == "none"
    assert {label["y"]: label["text"] for label in layout["annotations"]} == {
        name: text for name, text in zip(bars["y"], bars["text"], strict=True) if text}
    change = next(m for m in at.metric if m.label.endswith("of B (against A)"))
    significant = block(expected)["significant"]  # grey where the interval holds 0, never a red "-0.004"
    assert (change.proto.color == MetricProto.GRAY) == (not significant)
    frame = at.dataframe[-1].value
    for name, row in rows.items():
        if row["ci95_low"] is not None:
            assert frame.loc[name, "95% interval"] == _interval(row)
    assert frame.loc["mIoU (all classes)", "95% interval"] == _interval(block(expected))
    line = next(m.value for m in at.markdown if m.value.startswith("**Overall, mIoU (all classes)**"))
    assert f"95% interval {_interval(block(expected))}: **{verdict(block(expected))}**" in line
    assert f"1000 resamples of the {expected['images']} images both runs evaluated" in line
    official = block(expected, "miou_official")
    line = next(m.value for m in at.markdown if m.value.startswith("**Overall, mIoU (official)**"))
    assert f"95% interval {_interval(official)}: **{verdict(official)}**" in line
    assert frame.loc["mIoU (official)", "95% interval"] == _interval(official)

    # an identical copy: not significant, every resample a tie
    _widget(at.selectbox, "Run B").set_value(COPY).run()
    line = next(m.value for m in at.markdown if m.value.startswith("**Overall"))
    assert "**not significant (the interval holds 0)**; A and B tie in every resample" in line
    assert next(m for m in at.metric if m.label.endswith("of B (against A)")).proto.color == MetricProto.GRAY
    assert set(at.dataframe[-1].value["significance"].dropna()) <= {"not significant", "undefined"}


# ---------------------------------------------------------------------------- pooled or per image

def test_the_miou_switch_shows_the_per_image_mean_and_lives_in_the_url(known_outputs_env):
    store = known_outputs_env
    simple, imported = store.runs[0], store.imported  # the imported run's images differ: a few columns wrong, or many
    runs = [*store.runs, imported]
    means = {run: _per_image_mean(store, run) for run in runs}
    pooled = {run: get_run(run, store.artifacts).metrics["miou"] for run in runs}
    assert abs(means[imported] - pooled[imported]) > 0.01  # the switch shows other numbers
    at = open_page("overview")
    assert "miou" not in at.query_params
    assert at.dataframe[0].value.set_index("run")["miou"].to_dict() == pytest.approx(pooled)
    _widget(at.radio, "mIoU").set_value(variants.PER_IMAGE).run()
    assert not at.exception
    assert at.query_params["miou"] == variants.PER_IMAGE
    assert at.dataframe[0].value.set_index("run")["miou"].to_dict() == pytest.approx(means, abs=1e-6)
    official = {run: _per_image_official_mean(store, run) for run in runs}
    assert at.dataframe[0].value.set_index("run")["miou_official"].to_dict() == pytest.approx(official, abs=1e-12)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Test mean per-image mIoU (all classes)"] == f"{means[simple]:.3f}"  # the deployed run's
    assert shown["Test mean per-image mIoU (official)"] == f"{official[simple]:.3f}"
    assert intervals.MIOU_EXPLANATION in [c.value for c in at.caption]

    # the URL reproduces it: a shared link opens in the per-image mode
    at = open_page("overview", {"miou": variants.PER_IMAGE})
    assert _widget(at.radio, "mIoU").value == variants.PER_IMAGE
    assert at.dataframe[0].value.set_index("run")["miou"].to_dict() == pytest.approx(means, abs=1e-6)
    _widget(at.radio, "mIoU").set_value(variants.POOLED).run()
    assert "miou" not in at.query_params
    assert at.dataframe[0].value.set_index("run")["miou"].to_dict() == pytest.approx(pooled)

    # the comparison page: the IoU table's last row, and run A against run B with the per-image interval
    at = open_page("comparison", {"miou": variants.PER_IMAGE, "runs": f"{simple},{imported}"})
    assert not at.exception
    table = at.dataframe[0].value
    assert "mIoU (all classes)" not in table.index
    assert table.loc["mean per-image mIoU (all classes)"].to_dict() == pytest.approx(
        {run: means[run] for run in (simple, imported)}, abs=1e-6)
    assert _widget(at.selectbox, "Run A").value == simple and _widget(at.selectbox, "Run B").value == imported
    frame = at.dataframe[-1].value
    row = frame.loc["mean per-image mIoU (all classes)"]
    assert (row["A"], row["B"], row["B - A"]) == pytest.approx(
        (means[simple], means[imported], means[imported] - means[simple]), abs=1e-6)
    expected = block(compare_runs(get_run(simple, store.artifacts), get_run(imported, store.artifacts)),
                     averaging="per-image")
    assert row["95% interval"] == _interval(expected)
    assert _widget(at.metric, "mean per-image mIoU (all classes) of B (against A)").value == f"{means[imported]:.3f}"
    assert any(m.value.startswith("**Overall, mean per-image mIoU (all classes)**") for m in at.markdown)
    assert at.query_params["miou"] == variants.PER_IMAGE


# ---------------------------------------------------------------------------- A against B, pixel by pixel

def _outcomes(store, run_a: str, run_b: str) -> dict[int, dict[str, int]]:
    """Each test image's outcome counts, from the files, with the core's functions."""
    lut = get_class_set("categories8").lut
    a, b = get_run(run_a, store.artifacts), get_run(run_b, store.artifacts)
    index = load_or_build_index(store.data_root, write=False, report=lambda m: None)
    return {entry.id: outcome_counts(paired_outcomes(lut[read_label_ids(store.data_root / entry.label)],
                                                     a.prediction(entry.id), b.prediction(entry.id)))
            for entry in index.split("test")}


def test_the_pixel_map_counts_and_where_b_got_worse(known_outputs_env):
    store = known_outputs_env
    simple, unet = store.runs
    expected = _outcomes(store, simple, unet)
    worse = OUTCOME_NAMES[1]
    ranking = sorted(expected, key=lambda image_id: (-expected[image_id][worse], image_id))
    ids = sorted(expected)
    assert ranking[0] != ids[0] and ranking != ids[::-1]  # neither the id order nor its reverse
    first = ids[0]
    at = open_page("explorer", {"id": str(first), "runs": f"{simple},{unet}"})
    at.toggle(key="explorer_pairs").set_value(True).run()
    assert not at.exception
    assert _widget(at.selectbox, "Run A").value == simple and _widget(at.selectbox, "Run B").value == unet
    assert f"image {first}: {simple} (A) against {unet} (B)" in [c for i in at.image for c in i.captions]
    assert {m.label: m.value for m in at.metric if m.label in OUTCOME_NAMES} == {
        name: f"{count:,}" for name, count in expected[first].items()}
    listed = next(frame.value for frame in at.dataframe if worse in frame.value.columns)
    assert list(listed["id"]) == ranking
    assert list(listed[worse]) == [expected[image_id][worse] for image_id in ranking]
    assert listed["share of image"].iloc[0] == pytest.approx(
        expected[ranking[0]][worse] / sum(expected[ranking[0]].values()))

    # one click opens the image where B got worse the most
    _widget(at.button, f"Open {ranking[0]}").click().run()
    assert not at.exception
    assert at.number_input[0].value == ranking[0] and at.query_params["id"] == str(ranking[0])
    assert {m.label: m.value for m in at.metric if m.label in OUTCOME_NAMES} == {
        name: f"{count:,}" for name, count in expected[ranking[0]].items()}

    # the other way round: B (the ground truth itself) never gets worse than A
    _widget(at.selectbox, "Run A").set_value(unet).run()
    _widget(at.selectbox, "Run B").set_value(simple).run()
    assert not at.exception
    assert any("On no pixel" in c.value for c in at.caption)
    assert not any(worse in frame.value.columns for frame in at.dataframe)


# ---------------------------------------------------------------------------- the pure functions

def test_worse_for_b_ranks_by_a_right_b_wrong_ties_by_id():
    frame = pd.DataFrame({"id": [5, 3, 9, 7], "both right": [10, 10, 10, 10], "A right, B wrong": [4, 4, 0, 6],
                          "B right, A wrong": [1, 2, 3, 4], "both wrong": [5, 4, 7, 0]})
    ranked = intervals.worse_for_b(frame, limit=2)
    assert list(ranked["id"]) == [7, 3]
    assert ranked["share of image"].tolist() == pytest.approx([6 / 20, 4 / 20])
    assert list(intervals.worse_for_b(frame)["id"]) == [7, 3, 5]  # image 9: B worse on no pixel


def test_the_intervals_shown_equal_a_slow_loop_over_the_stored_files(dashboard_env):
    """The A-vs-B intervals the page shows, against a bootstrap written here one resample at a time
    from the runs' per-image confusion files (``metrics.iou_per_class``, the draws the core documents),
    for both pooled variants: not against ``compare_runs`` itself."""
    store = dashboard_env
    simple, unet = store.runs
    at = open_page("comparison")
    _widget(at.selectbox, "Run B").set_value(unet).run()
    assert not at.exception and _widget(at.selectbox, "Run A").value == simple
    frame = at.dataframe[-1].value
    runs = [get_run(run, store.artifacts) for run in (simple, unet)]
    class_set = get_class_set(runs[0].metrics["classes"])
    for label, filename, classes in (("mIoU (all classes)", "per_image_confusion.npy", range(class_set.num_classes)),
                                     ("mIoU (official)", "per_image_official_confusion.npy", class_set.scored)):
        stacks = []
        for run in runs:  # rows in per_image.csv order; both runs scored the same images, taken by id
            order = np.argsort([row["id"] for row in run.per_image()], kind="stable")
            stacks.append(np.load(run.path / filename)[order])
        draws = np.random.default_rng(0).integers(0, len(stacks[0]), size=(1000, len(stacks[0])))
        differences = []
        for draw in draws:
            miou_a, miou_b = (np.nanmean(iou_per_class(stack[draw].sum(axis=0))[list(classes)]) for stack in stacks)
            differences.append(miou_b - miou_a)
        low, high = np.percentile(differences, [2.5, 97.5])
        assert frame.loc[label, "95% interval"] == f"[{low:+.3f}, {high:+.3f}]", label


def test_intervals_texts_and_error_bars():
    block = {"ci95_low": -0.0123, "ci95_high": 0.0345, "significant": False, "difference": 0.01}
    assert intervals.interval_text(block) == "[-0.012, +0.035]"
    assert intervals.significance_text(block) == "not significant"
    assert intervals.significance_text({**block, "ci95_low": 0.002, "significant": True}) == "B better"
    assert intervals.significance_text({**block, "ci95_high": -0.002, "significant": True}) == "B worse"
    assert intervals.interval_text({"ci95_low": None, "ci95_high": None}) == ""
    bars = intervals.error_bars(pd.Series({"road": 0.01, "sky": float("nan"), "car": -0.02}),
                             {"road": block, "car": {"ci95_low": -0.05, "ci95_high": 0.0}})
    assert bars["array"] == pytest.approx([0.0245, 0.0, 0.02])
    assert bars["arrayminus"] == pytest.approx([0.0223, 0.0, 0.03])
    table = pd.DataFrame({"run": ["b", "a", "c"], "miou_official": [0.5, float("nan"), 0.7], "classes": ["x", "x", "y"],
                          "split": ["test", "test", "test"]})
    assert intervals.default_reference(table, None) == "c" and intervals.default_reference(table, "a") == "a"
    assert intervals.comparable_runs(table, "b", 5) == (["a"], [])


def test_the_a_b_bars_labels_sit_beyond_their_error_bars():
    """Issue 25: each bar's value was written at the bar's end, under its error bar."""
    differences = pd.Series({"road": 0.01, "sky": float("nan"), "car": -0.02, "wall": 0.0})
    found = {"road": {"ci95_low": -0.0123, "ci95_high": 0.0345, "significant": False},
             "car": {"ci95_low": -0.05, "ci95_high": -0.01, "significant": True}}
    labels = {label["y"]: label for label in intervals.difference_labels(differences, found)}
    assert set(labels) == {"road", "car", "wall"}  # no bar, no label
    assert labels["road"]["x"] == pytest.approx(0.0345) and labels["road"]["xanchor"] == "left"
    assert labels["road"]["text"] == "+0.010, not significant"
    assert labels["car"]["x"] == pytest.approx(-0.05) and labels["car"]["xanchor"] == "right"
    assert labels["car"]["text"] == "-0.020"
    assert labels["wall"]["x"] == 0.0 and labels["wall"]["text"] == "+0.000"  # no interval: at its end
    assert all(label["showarrow"] is False for label in labels.values())


@pytest.mark.parametrize(("low", "high", "significant", "color"), [
    (-0.012, 0.004, False, "off"), (0.002, 0.03, True, "normal"), (-0.03, -0.002, True, "normal"),
    (None, None, False, "off")])
def test_a_delta_is_coloured_only_when_significant(low, high, significant, color):
    """Issue 25: a "-0.004" was red while "not significant"."""
    result = {"miou": {"ci95_low": low, "ci95_high": high, "significant": significant, "difference": -0.004,
                       "per_image": {"ci95_low": low, "ci95_high": high, "significant": significant}}}
    assert intervals.delta_color(result, "pooled") == color
    assert intervals.delta_color(result, "per-image") == color
    assert intervals.delta_color(None, "pooled") == "off" and intervals.delta_color({"miou": {}}, "pooled") == "off"
