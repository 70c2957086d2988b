"""Model comparison: per-class IoU across runs, confusion matrices, the images behind a
confusion, training curves, and run A against run B (per class, each difference with its 95%
interval from a paired bootstrap over the images, and the overall verdict).

Every number comes from the run store (metrics.json, confusion.npy, the per-image confusions,
history.csv) through the core (``training.evaluation``: the mIoU variants, the confusion analytics,
the paired bootstrap); the selected runs live in the URL (``?runs=a,b``). Runs of different class
sets are never mixed: the IoU bars and the curves come one chart per class set, and run A is only
compared with a run B of its class set. The sidebar switches both mIoU variants (all classes,
official) between pooled over the dataset and the mean of per-image mIoU (``?miou=per-image``);
per-class IoU are always pooled.

The training curves come one chart per loss type (losses of different types are on different
scales) beside one of every run's mIoU (``dashboard.views.curves``), for the page's runs or for
other trained runs (``?curves=a,b,c``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative

import dashboard.readers.pairs as pairs
import dashboard.readers.report as report_reader
import dashboard.readers.store as store
import dashboard.sections.page as page
import dashboard.state as state
import dashboard.views.curves as curves
import dashboard.views.intervals as intervals
import dashboard.views.per_class as per_class
from dashboard.sections.links import open_in_explorer
from dashboard.views.numbers import number_text, symmetric_limit
from dashboard.views.run_names import (
    group_by_class_set,
    imported_note,
    partial_coverage_note,
    run_labels,
    shared_images_text,
    short_names,
)
from training.data.labels import get_class_set
from training.evaluation.confusions import (
    confused_images,
    largest_confusion,
    metrics_over,
    row_normalised,
    scored_ids,
    shared_ids,
)
from training.evaluation.variants import MIOU, MIOU_OFFICIAL, VARIANTS
from training.runs.layout import IMPORTED

RUNS_KEY, URL_RUNS = "comparison_runs", "_comparison_url_runs"
TRUE_KEY, PREDICTED_KEY, CELL_RUN = "comparison_true", "comparison_predicted", "_comparison_cell_run"
COUNTS, NORMALISED = "counts", "row-normalised"
COLORS = qualitative.Plotly
CURVES_PARAM, CURVES_KEY, URL_CURVES = "curves", "comparison_curve_runs", "_comparison_url_curves"
CHARTS_PER_ROW = 2
LEGEND_PER_ROW = 4  # about as many short run names as a legend below a half-width chart holds a row


# ---------------------------------------------------------------------------- data

def iou_frame(key, runs: list[str], mode: str) -> pd.DataFrame:
    """Per-class IoU from each run's metrics.json (rows: classes; columns: runs), then a row per mIoU
    variant (``training.evaluation.variants``) averaged ``mode``."""
    frame = per_class.iou_frame({run: store.run_metrics(key, run) for run in runs}).drop(index="mIoU")
    for which in VARIANTS:
        frame.loc[which.label(mode)] = [store.run_miou(key, run, which.key, mode) for run in runs]
    return frame


def confused_frame(key, run: str, true_class: int, predicted_class: int) -> pd.DataFrame:
    """The images with the most pixels of ``true_class`` predicted as ``predicted_class``
    (``training.evaluation.confusions.confused_images``): id, pixels, share of image, image mIoU."""
    ids, matrices = store.per_image_confusion(key, run)
    class_set = get_class_set(store.run_classes(key)[run])
    rows = confused_images(ids, matrices, true_class, predicted_class, class_set.num_classes)
    return pd.DataFrame([{"id": row["id"], "pixels": row["pixels"], "share of image": row["share"],
                          "image mIoU": row["miou"]} for row in rows],
                        columns=["id", "pixels", "share of image", "image mIoU"])


# ---------------------------------------------------------------------------- the page

def per_class_ui(key, groups: dict[str, list[str]], table: pd.DataFrame, mode: str) -> None:
    st.subheader("IoU per class")
    order = [run for runs in groups.values() for run in runs]  # a run keeps its colour across charts
    for classes, runs in groups.items():
        if len(groups) > 1:
            st.markdown(f"**{classes}**: {', '.join(runs)}")
        per_class_chart(key, runs, [order.index(run) for run in runs], classes, run_labels(table), mode)
    st.caption(f"From each run's metrics.json (its evaluation split); an empty cell: the class never occurs "
               f"there. {MIOU.label()}: {MIOU.description}; {MIOU_OFFICIAL.label()}: {MIOU_OFFICIAL.description}.")
    for note in (imported_note(table, order), partial_coverage_note(table, order)):
        if note:
            st.caption(note)


def per_class_chart(key, runs: list[str], numbers: list[int], classes: str, labels: dict[str, str],
                    mode: str) -> None:
    frame = iou_frame(key, runs, mode)
    figure = go.Figure()
    for number, run in zip(numbers, runs, strict=True):
        values = frame[run].drop([which.label(mode) for which in VARIANTS])
        figure.add_bar(name=labels.get(run, run), x=list(values.index), y=values.tolist(),
                       marker_color=COLORS[number % len(COLORS)], textposition="outside",
                       text=[f"{v:.2f}" if pd.notna(v) else "" for v in values.values],
                       hovertemplate=f"{run}<br>%{{x}}: %{{y:.3f}}<extra></extra>")
    figure.update_layout(barmode="group", height=380, margin=dict(l=10, r=10, t=10, b=10),
                         yaxis=dict(title="test IoU", range=[0, 1.08]), legend=dict(orientation="h", y=-0.15))
    st.plotly_chart(figure, width="stretch", key=f"comparison_iou_chart_{classes}")
    st.dataframe(frame, width="stretch", placeholder="",
                 column_config={run: st.column_config.NumberColumn(run, format="%.3f") for run in runs})


def _select_cell() -> None:
    """A click on the matrix chooses the cell (true, predicted) of the selectboxes."""
    try:
        point = st.session_state["comparison_confusion_chart"]["selection"]["points"][0]
        st.session_state[TRUE_KEY], st.session_state[PREDICTED_KEY] = point["y"], point["x"]
    except (KeyError, IndexError, TypeError):
        pass  # a click elsewhere, or a cleared selection: keep the selectboxes


def outline_cell(figure: go.Figure, true_class: int, predicted_class: int) -> None:
    """Outline the chosen cell of the matrix (row ``true_class``, column ``predicted_class``): the
    images listed below are that cell's. Category axes place class ``i`` at ``i``."""
    figure.add_shape(type="rect", xref="x", yref="y", x0=predicted_class - 0.5, x1=predicted_class + 0.5,
                     y0=true_class - 0.5, y1=true_class + 0.5, line=dict(color="#d62728", width=3),
                     fillcolor="rgba(0,0,0,0)", layer="above", name="chosen cell")


def confusion_ui(key, runs: list[str], table: pd.DataFrame) -> tuple[str, int, int, list[str]]:
    """One run's confusion matrix; returns (run, true class, predicted class, names)."""
    st.subheader("Confusion")
    left, right = st.columns([3, 2])
    labels = run_labels(table)
    run = left.selectbox("Run", runs, key="comparison_confusion_run", format_func=lambda name: labels.get(name, name))
    mode = right.radio("Values", (COUNTS, NORMALISED), horizontal=True, key="comparison_confusion_mode")
    matrix = store.confusion(key, run)
    names = per_class.confusion_names(store.run_metrics(key, run), matrix.shape[0])
    if st.session_state.get(CELL_RUN) != run or st.session_state.get(TRUE_KEY) not in names:
        a, b = largest_confusion(matrix)  # a new run: start at its largest confusion
        st.session_state[TRUE_KEY], st.session_state[PREDICTED_KEY] = names[a], names[b]
        st.session_state[CELL_RUN] = run
    shown = row_normalised(matrix) if mode == NORMALISED else matrix
    text = [[f"{v:.2f}" if mode == NORMALISED else f"{int(v):,}" for v in row] for row in shown]
    figure = go.Figure(go.Heatmap(
        z=shown, x=names, y=names, text=text, texttemplate="%{text}", colorscale="Blues", showscale=False,
        hoverinfo="skip"))
    # Heatmap cells cannot be selected in plotly.js: an invisible marker on every cell carries the
    # hover label and makes a click choose the cell (true A, predicted B) below.
    cells_y, cells_x = np.meshgrid(np.arange(len(names)), np.arange(len(names)), indexing="ij")
    figure.add_scatter(
        x=[names[i] for i in cells_x.ravel()], y=[names[i] for i in cells_y.ravel()], mode="markers",
        marker=dict(symbol="square", size=28, opacity=0.01, color="black"), showlegend=False,
        text=[value for row in text for value in row],
        hovertemplate="true: %{y}<br>predicted: %{x}<br>%{text}<extra>click: list the images</extra>")
    outline_cell(figure, names.index(st.session_state[TRUE_KEY]), names.index(st.session_state[PREDICTED_KEY]))
    figure.update_layout(height=140 + 38 * len(names), margin=dict(l=10, r=10, t=10, b=10),
                         xaxis=dict(title="predicted", side="bottom"),
                         yaxis=dict(title="true", autorange="reversed"))
    st.plotly_chart(figure, width="stretch", key="comparison_confusion_chart", on_select=_select_cell,
                    selection_mode="points")
    row = table.set_index("run").loc[run]
    if row["coverage"]:
        st.caption(f"{run}: the pixels of the {row['coverage']} {row['split']} images its import covers.")
    with st.expander("The matrix as numbers"):
        st.dataframe(pd.DataFrame(shown, index=pd.Index(names, name="true \\ predicted"), columns=names),
                     width="stretch")
    pick_true, pick_predicted = st.columns(2)
    true_name = pick_true.selectbox("True class (A)", names, key=TRUE_KEY)
    predicted_name = pick_predicted.selectbox("Predicted as (B)", names, key=PREDICTED_KEY)
    return run, names.index(true_name), names.index(predicted_name), names


def confused_images_ui(key, run: str, runs: list[str], a: int, b: int, names: list[str]) -> None:
    """The images with the most pixels of the cell (true ``a``, predicted ``b``) by ``run``; one opens
    in the explorer with every compared run (``runs``), painting only the two classes."""
    st.markdown(f"**Images with the most _{names[a]}_ pixels predicted as _{names[b]}_** by {run}")
    frame = confused_frame(key, run, a, b)
    if frame.empty:
        st.caption("No image has such pixels.")
        return
    st.dataframe(frame, hide_index=True, width="stretch", placeholder="", column_config={
        "share of image": st.column_config.NumberColumn("share of image", format="percent"),
        "image mIoU": st.column_config.NumberColumn("image mIoU", format="%.3f")})
    choice, go_button = st.columns([3, 1], vertical_alignment="bottom")
    pixels = frame.set_index("id")["pixels"]
    image_id = choice.selectbox("Image", list(frame["id"]), key="comparison_open_id",
                                format_func=lambda i: f"{i} ({int(pixels.loc[i]):,} pixels)")
    if go_button.button("Open in the explorer", width="stretch",
                        help=f"This image with every compared run, only {names[a]} and {names[b]} painted."):
        open_in_explorer(int(image_id), runs, shown=[names[a], names[b]])


def curve_runs_ui(trained: list[str], runs: list[str]) -> list[str]:
    """The runs whose curves are plotted (any trained run, not only the page's four), synchronised
    with ``?curves=``; without it, the page's runs. Like ``state.runs_ui``: only a change of the
    URL, or of the page's runs while ``?curves=`` is absent, overrides the user's choice."""
    default = [run for run in runs if run in trained]
    raw = st.query_params.get(CURVES_PARAM)
    url_runs = default if raw is None else [run for run in raw.split(",") if run in trained]
    if (CURVES_KEY not in st.session_state or url_runs != st.session_state.get(URL_CURVES)
            or not set(st.session_state[CURVES_KEY]) <= set(trained)):  # a run left the store
        st.session_state[CURVES_KEY] = url_runs
    chosen = st.multiselect("Runs to plot", trained, key=CURVES_KEY, placeholder="choose runs",
                            help="Any run trained here; by default the runs chosen for the page. "
                                 "The URL remembers them.")
    if chosen == default:
        if CURVES_PARAM in st.query_params:
            del st.query_params[CURVES_PARAM]
    elif st.query_params.get(CURVES_PARAM) != ",".join(chosen):
        st.query_params[CURVES_PARAM] = ",".join(chosen)
    st.session_state[URL_CURVES] = list(chosen)
    return list(chosen)


def curves_ui(key, runs: list[str], table: pd.DataFrame) -> None:
    """The training curves: the mIoU of every plotted run on one chart (per class set), the losses
    one chart per loss type (``dashboard.curves``); each legend one short name per run (run names
    are long: ``09_smunet_efficientnetb3-imagenet_dice_v1_128x256``)."""
    st.subheader("Training curves")
    imported = set(table.loc[table["source"] == IMPORTED, "run"])
    trained = [run for run in table["run"] if run not in imported]
    never_trained = [run for run in runs if run in imported]  # imported: its history.csv is empty by design
    plotted = curve_runs_ui(trained, runs) if trained else []
    without = [run for run in dict.fromkeys([*runs, *plotted])
               if run not in imported and store.run_history(key, run).empty]
    shown = [run for run in plotted if run not in without]
    rows = table.set_index("run")
    loss_of = {run: name if isinstance(name, str) else "" for run, name in rows["loss_name"].items()}
    charts = curves.curve_charts(shown, loss_of, store.run_classes(key))
    names = short_names(list(table["run"]))  # the whole table's: as every page names them
    for first in range(0, len(charts), CHARTS_PER_ROW):
        for column, chart in zip(st.columns(CHARTS_PER_ROW), charts[first:first + CHARTS_PER_ROW]):
            with column:
                curves_chart(key, chart, [shown.index(run) for run in chart.runs], names)
    st.caption("Solid: training; dashed: validation. One loss chart per loss type (their scales differ)."
               + (f" No training history: {', '.join(without)}." if without else "")
               + (f" Imported, never trained here (no curves): {', '.join(never_trained)}." if never_trained else ""))


def curves_chart(key, chart: curves.CurveChart, numbers: list[int], names: dict[str, str]) -> None:
    """One chart: each run's ``chart.metric`` (solid) and its validation twin (dashed), in the run's
    colour; one legend entry per run, below the chart (a click hides both lines)."""
    figure = go.Figure()
    for number, run in zip(numbers, chart.runs, strict=True):
        history = store.run_history(key, run)
        color = COLORS[number % len(COLORS)]
        columns = [(column, dash) for column, dash in ((chart.metric, "solid"), (f"val_{chart.metric}", "dash"))
                   if column in history]
        for position, (column, dash) in enumerate(columns):
            figure.add_scatter(x=history["epoch"].tolist(), y=history[column].tolist(), mode="lines+markers",
                               name=names.get(run, run), legendgroup=run, showlegend=position == 0,
                               line=dict(color=color, dash=dash),
                               hovertemplate=f"{run}<br>{column}, epoch %{{x}}: %{{y:.4f}}<extra></extra>")
    legend_rows = -(-len(chart.runs) // LEGEND_PER_ROW)  # the legend below grows; the plot keeps its height
    figure.update_layout(title=dict(text=chart.title), height=360 + 22 * legend_rows,
                         margin=dict(l=10, r=10, t=40, b=10),
                         xaxis=dict(title="epoch"), yaxis=dict(title=chart.metric),
                         legend=dict(orientation="h", yanchor="top", y=-0.22, x=0))
    st.plotly_chart(figure, width="stretch", key=f"comparison_curves_{chart.key}")


def difference_ui(key, available: list[str], runs: list[str], classes_of: dict[str, str],
                  table: pd.DataFrame, mode: str) -> None:
    st.subheader("Run A against run B")
    if len(available) < 2:
        st.caption("One run only: train or import another to compare.")
        return
    defaults = intervals.pick_pair(runs, available, classes_of)
    left, right = st.columns(2)
    labels = run_labels(table)
    several = len(set(classes_of.values())) > 1
    named = run_labels(table, with_classes=several, short=True)  # the selectors'

    def label(run: str) -> str:
        return named.get(run, run)

    run_a = left.selectbox("Run A", available, index=available.index(defaults[0]), key="comparison_run_a",
                           format_func=label)
    run_b = right.selectbox("Run B", available, index=available.index(defaults[1]), key="comparison_run_b",
                            format_func=label)
    if run_a == run_b:
        st.caption("Choose two different runs.")
        return
    if classes_of[run_a] != classes_of[run_b]:
        st.info(f"{run_a} predicts the class set {classes_of[run_a]}, {run_b} the class set "
                f"{classes_of[run_b]}: their classes and mIoU cannot be compared. Choose two runs of one "
                "class set.")
        return
    pair = metrics_of_pair(key, run_a, run_b, table)
    if pair is None:
        return
    (metrics_a, metrics_b), shared = pair
    result = pairs.comparison(key, run_a, run_b)
    if "error" in result:
        st.info(f"No interval for these two runs: {result['error']}.")
        result = None
    frame = difference_frame(key, run_a, run_b, metrics_a, metrics_b, shared, mode)
    rows = [which.label(mode) for which in VARIANTS]
    delta = frame.drop(rows)["B - A"]
    found = intervals.per_class_intervals(result) if result else {}
    words = {name: intervals.significance_text(row) for name, row in found.items()}
    ends = [row[end] for row in found.values() for end in ("ci95_low", "ci95_high") if row[end] is not None]
    figure = go.Figure(go.Bar(
        x=delta.tolist(), y=list(delta.index), orientation="h",
        marker_color=["#2ca02c" if v >= 0 else "#d62728" for v in delta.fillna(0).values],
        text=[(f"{v:+.3f}" + (", not significant" if words.get(name) == "not significant" else ""))
              if pd.notna(v) else "" for name, v in delta.items()],
        textposition="none" if found else "outside",
        error_x=intervals.error_bars(delta, found) if found else None,
        customdata=[intervals.interval_text(found.get(name, {})) or "-" for name in delta.index],
        hovertemplate="%{y}: B - A %{x:+.3f}<br>95% interval %{customdata}<extra></extra>"))
    limit = symmetric_limit(np.array([*delta.values, *ends], dtype=float))
    figure.update_layout(height=80 + 34 * len(delta), margin=dict(l=10, r=10, t=10, b=10),
                         xaxis=dict(title=f"IoU of B ({labels.get(run_b, run_b)}) - IoU of A "
                                          f"({labels.get(run_a, run_a)})", range=[-limit, limit],
                                    zeroline=True, zerolinewidth=2),
                         yaxis=dict(autorange="reversed"),
                         annotations=intervals.difference_labels(delta, found) if found else [])
    st.plotly_chart(figure, width="stretch", key="comparison_difference")
    if result:
        for which in VARIANTS:
            if intervals.summary(result, mode, which.key):
                st.markdown(intervals.verdict_line(result, mode, which.key))
            else:
                st.caption(f"No interval for the {which.label(mode)}: {result[which.key]['missing']}.")
        st.caption("Error bars: the 95% interval of each class's IoU difference (pooled over the images, all "
                   "classes), from the same resamples; not significant where it holds 0.")
    change = number_text(frame.loc[MIOU.label(mode), "B - A"], "+.3f")
    st.metric(f"{MIOU.label(mode)} of B (against A)", number_text(frame.loc[MIOU.label(mode), "B"]),
              None if change == "-" else change, delta_color=intervals.delta_color(result, mode))
    if result:
        frame = intervals.difference_columns(frame, result, mode, MIOU.label(mode))
        official = intervals.summary(result, mode, MIOU_OFFICIAL.key)
        if official:
            frame.loc[MIOU_OFFICIAL.label(mode), ["95% interval", "significance"]] = [
                intervals.interval_text(official), intervals.significance_text(official)]
    st.dataframe(frame, width="stretch", placeholder="", column_config={
        name: st.column_config.NumberColumn(name, format="%+.3f" if name == "B - A" else "%.3f")
        for name in ("A", "B", "B - A")})


def difference_frame(key, run_a: str, run_b: str, metrics_a: dict, metrics_b: dict, shared: list[int] | None,
                     mode: str) -> pd.DataFrame:
    """Per-class IoU of A and B and B - A, then a row per mIoU variant averaged ``mode``, over the images
    both scored (``shared``; None: the same images, all they evaluated)."""
    frame = per_class.difference_frame(metrics_a, metrics_b).drop(index="mIoU")
    ids = None if shared is None else tuple(shared)
    for which in VARIANTS:
        a = store.run_miou(key, run_a, which.key, mode, ids)
        b = store.run_miou(key, run_b, which.key, mode, ids)
        frame.loc[which.label(mode)] = [a, b, b - a]
    return frame


def metrics_of_pair(key, run_a: str, run_b: str, table: pd.DataFrame) -> tuple[tuple[dict, dict], list | None] | None:
    """The per-class IoU of A and of B to compare, and the images they are over: their metrics.json
    when they scored the same images (None: all of them); else both over the images both have
    (``training.evaluation.confusions.metrics_over``, said on the page); None when they share none."""
    metrics_a, metrics_b = store.run_metrics(key, run_a), store.run_metrics(key, run_b)
    if set(store.per_image(key, run_a)["id"]) == set(store.per_image(key, run_b)["id"]):
        return (metrics_a, metrics_b), None  # the usual case: the per-image matrices are not even read
    ids_a, matrices_a = store.per_image_confusion(key, run_a)
    ids_b, matrices_b = store.per_image_confusion(key, run_b)
    shared = shared_ids(ids_a, ids_b)
    split = table.set_index("run").loc[run_a, "split"]
    if not shared:
        st.info(f"{run_a} and {run_b} scored no image in common: their numbers cannot be compared.")
        return None
    st.info(shared_images_text(run_a, len(scored_ids(ids_a)), run_b, len(scored_ids(ids_b)), len(shared), split))
    class_set = get_class_set(store.run_classes(key)[run_a])
    return (metrics_over(ids_a, matrices_a, shared, class_set), metrics_over(ids_b, matrices_b, shared, class_set)), \
        shared


def report_ui(key, runs: list[str], ids: list[int]) -> None:
    """A report to send (one HTML file, offline): the runs (the first is the reference) on the images
    listed above (none: the first run's worst), made only when clicked."""
    chosen = ids or None
    st.download_button(
        "Download a report", data=lambda: report_reader.report_file(key, runs, chosen),
        file_name=report_reader.file_name(runs, chosen), mime=report_reader.MIME, on_click="ignore",
        key="comparison_report", help="One HTML file that opens offline in any browser: these runs' leaderboard, "
        "each against the first with its 95% intervals, IoU per class, confusion matrices, and the images listed "
        "above (else the first run's worst) with every run's prediction, tags and notes.")


def main() -> None:
    started = page.start("Model comparison", runs_key=RUNS_KEY, url_key=URL_RUNS)
    key, table, runs = started.key, started.table, started.runs
    mode = state.miou_mode_ui(st.sidebar)
    classes_of = store.run_classes(key)
    groups = group_by_class_set(runs, classes_of)
    if len(groups) > 1:
        st.info("These runs predict different class sets, which are never mixed in one chart or table: "
                + "; ".join(f"{classes}: {', '.join(members)}" for classes, members in groups.items()) + ".")
    per_class_ui(key, groups, table, mode)
    run, a, b, names = confusion_ui(key, runs, table)
    confused_images_ui(key, run, runs, a, b, names)
    report_ui(key, runs, [int(i) for i in confused_frame(key, run, a, b)["id"]])
    curves_ui(key, runs, table)
    difference_ui(key, started.available, runs, classes_of, table, mode)


main()
