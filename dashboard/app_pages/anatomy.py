"""Error anatomy: what pixel mIoU hides. For each selected run: Boundary IoU and the official
iIoU next to mIoU; the objects of the ground truth, where small ones are lost (recall against
size) and the missed ones largest first, each a click from the explorer with the object
outlined; IoU against Boundary IoU per class (edge error against region error); and where in the
frame the errors are (a heatmap of the error rate per run, and run A minus run B).

Everything comes from the files the run's evaluation wrote (``dashboard.readers.anatomy`` reads
them) and the core's reading of them (``training.evaluation.anatomy_report``: recall by size, the
missed objects, error rates across the frame): runs evaluated before the anatomy existed have none
and say how to add them; a damaged file is a note for its run. The runs live in the URL
(``?runs=a,b``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative
from plotly.subplots import make_subplots

import dashboard.readers.anatomy as anatomy_store
import dashboard.readers.store as store
import dashboard.sections.page as page
import dashboard.views.anatomy_tables as anatomy
from dashboard.sections.links import explorer_url, open_in_explorer
from dashboard.views.numbers import as_number, column_width, symmetric_limit
from dashboard.views.regions import INSTANCE, Outline
from dashboard.views.run_names import full_names_text, imported_note, partial_coverage_note, run_labels
from training.evaluation.anatomy_report import (
    error_rate,
    grid_factors,
    overall_error_rate,
    pooled_cells,
    rate_difference,
)
from training.evaluation.variants import ALL_CLASSES, MIOU, MIOU_OFFICIAL, OFFICIAL

RUNS_KEY, URL_RUNS = "anatomy_runs", "_anatomy_url_runs"
COLORS = qualitative.Plotly
FACETS_PER_ROW, HEATMAPS_PER_ROW = 4, 2
BOUNDARY_EXPLANATION = (
    "Boundary IoU (Cheng et al., CVPR 2021) scores only the pixels within d pixels of a contour of each class, in "
    "the ground truth and in the prediction (d = {ratio} of the image diagonal; {widths}); IoU scores every "
    "pixel. A class far under the diagonal finds its regions but gets their edges wrong; on the diagonal, its "
    "errors are whole regions.")


# ---------------------------------------------------------------------------- the table per run

def table_ui(key, runs: list[str], documents: dict[str, dict], table: pd.DataFrame) -> None:
    st.subheader("Per run")
    if not documents:
        st.caption("No selected run has an error anatomy.")
        return
    rows = [anatomy.summary_row(run, store.run_metrics(key, run), documents[run]) for run in documents]
    frame = anatomy.summary_table(rows)
    frame.insert(1, "boundary width", [anatomy.width_text(documents[run]) for run in frame.index])
    # Every column as wide as its header and its cells ("objects" was cut to "obje...").
    def width(column: str, texts=()) -> int:
        return column_width(column, texts, low=60)

    config = {column: st.column_config.NumberColumn(column, format="%.3f", width=width(column))
              for column in frame.columns if column in anatomy.SCORE_COLUMNS or column.startswith("iIoU")}
    config.update({column: st.column_config.NumberColumn(column, format="%d", width=width(column))
                   for column in ("images", "objects", "missed") if column in frame.columns})
    config["missed share"] = st.column_config.NumberColumn("missed share", format="percent",
                                                           width=width("missed share"))
    config.update({column: st.column_config.TextColumn(column, width=width(column, frame[column].astype(str)))
                   for column in ("classes", "boundary width") if column in frame.columns})
    config["_index"] = st.column_config.TextColumn("run", width=width("run", frame.index), pinned=True)
    st.dataframe(frame, column_config=config, width="stretch", placeholder="", key="anatomy_table")
    notes = [note for run in documents for note in anatomy.unavailable_notes(run, documents[run])]
    st.caption("mIoU from metrics.json; Boundary IoU in both variants of the IoU (all classes: every labelled "
               "pixel; official: the official evaluation's classes and rules); iIoU: the official instance-level IoU "
               "(each object weighted by the inverse of its size, so small objects count as much as large ones); "
               "objects of the ground truth and those missed (less than half of their pixels predicted as their "
               "class). An empty cell: the run's class set has no such class." + "".join(f" {note}" for note in notes))
    for note in (imported_note(table, runs), partial_coverage_note(table, runs)):
        if note:
            st.caption(note)


# ---------------------------------------------------------------------------- objects

def recall_figure(bins: pd.DataFrame, classes: list[str], colors: dict[str, str]) -> go.Figure:
    """One facet per class: mean recall per size bin (log scale), a line per run."""
    columns = min(FACETS_PER_ROW, len(classes))
    rows = -(-len(classes) // columns)
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=classes, shared_yaxes=True,
                           horizontal_spacing=0.04, vertical_spacing=0.18)
    in_legend = set()
    for number, name in enumerate(classes):
        row, column = number // columns + 1, number % columns + 1
        for run, color in colors.items():
            points = bins[(bins["run"] == run) & (bins["class"] == name)]
            if points.empty:
                continue
            figure.add_scatter(
                x=points["centre"].tolist(), y=points["recall"].tolist(), mode="lines+markers", name=run,
                legendgroup=run, showlegend=run not in in_legend,
                line=dict(color=color), customdata=points[["low", "high", "objects", "missed"]].to_numpy().tolist(),
                hovertemplate=(f"{run}<br>{name}: %{{customdata[0]:,}} to %{{customdata[1]:,}} pixels<br>"
                               "%{customdata[2]} objects, %{customdata[3]} missed<br>mean recall %{y:.3f}"
                               "<extra></extra>"), row=row, col=column)
            in_legend.add(run)
    figure.update_xaxes(type="log", title_text="object size (pixels)")
    figure.update_yaxes(range=[-0.02, 1.02])
    figure.update_yaxes(title_text="mean recall", col=1)
    figure.update_layout(height=160 + 260 * rows, margin=dict(l=10, r=10, t=40, b=10),
                         legend=dict(orientation="h", yanchor="top", y=-80 / (120 + 260 * rows)))
    return figure


def objects_ui(key, documents: dict[str, dict], colors: dict[str, str]) -> None:
    st.subheader("Objects")
    instances = {}
    for run in documents:
        read = anatomy_store.instances(key, run)
        if read.problem:
            st.warning(f"{run}: its objects cannot be shown: {read.problem}.")
        else:
            instances[run] = read.value
    if not instances:
        st.caption("No selected run has readable objects.")
        return
    if not any(len(frame) for frame in instances.values()):
        st.caption("No object in the evaluated images"
                   + (" (the dataset has no gtFine_instanceIds)." if all(d.get("instances_note") for d in
                                                                         documents.values()) else "."))
        return
    bins = anatomy.recall_frame(instances)
    classes = anatomy.class_order(instances, {run: anatomy.object_classes(documents[run]) for run in instances})
    st.plotly_chart(recall_figure(bins, classes, {run: colors[run] for run in instances}), width="stretch",
                    key="anatomy_recall")
    st.caption("Recall of an object: the share of its pixels predicted as its class. Objects are binned by size "
               "(pixels, doubling from bin to bin); each point is a bin's mean recall (hover: how many objects "
               "and how many were missed). Where the lines drop to the left, small objects are lost.")
    missed_ui(anatomy.missed_frame(instances))


def missed_ui(missed: pd.DataFrame) -> None:
    st.markdown("**Missed objects, largest first**")
    if missed.empty:
        st.caption("No selected run missed an object (recall under 0.5).")
        return
    shown = missed.head(anatomy.MISSED_SHOWN).copy()
    shown["open"] = [explorer_url(row["id"], [row["run"]], Outline(INSTANCE, int(row["instance"])))
                     for row in shown.to_dict("records")]
    st.dataframe(shown[["run", "id", "label", "instance", "pixels", "recall", "box", "open"]], hide_index=True,
                 width="stretch", placeholder="", key="anatomy_missed", column_config={
                     "id": st.column_config.NumberColumn("image id", format="%d"),
                     "instance": st.column_config.NumberColumn("instance", format="%d"),
                     "pixels": st.column_config.NumberColumn("pixels", format="%d"),
                     "recall": st.column_config.NumberColumn("recall", format="percent"),
                     "box": st.column_config.TextColumn("box (full-size pixels)"),
                     "open": st.column_config.LinkColumn("open", display_text="explorer ↗")})
    more = len(missed) - len(shown)
    st.caption("Each link opens the image in the explorer (a new tab) with the object outlined."
               + (f" {more:,} smaller missed objects are not listed." if more > 0 else ""))
    choice, go_button = st.columns([3, 1], vertical_alignment="bottom")
    records = shown.to_dict("records")
    number = choice.selectbox("Missed object", range(len(records)), key="anatomy_missed_choice",
                              format_func=lambda i: (f"{records[i]['run']} · image {records[i]['id']} · "
                                                     f"{records[i]['label']} {records[i]['instance']} "
                                                     f"({records[i]['pixels']:,} pixels)"))
    if go_button.button("Open in the explorer", width="stretch", key="anatomy_open_missed"):
        row = records[number]
        open_in_explorer(row["id"], [row["run"]], Outline(INSTANCE, int(row["instance"])))


# ---------------------------------------------------------------------------- boundaries

def boundary_figure(points: pd.DataFrame, colors: dict[str, str]) -> go.Figure:
    """IoU against Boundary IoU per class and run; the classes whose edges are worst named on the
    chart (``anatomy.boundary_labels``), every class in its hover."""
    points = anatomy.boundary_labels(points)
    figure = go.Figure()
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="Boundary IoU = IoU", hoverinfo="skip",
                       line=dict(color="#888", dash="dash"))
    for run, color in colors.items():
        rows = points[points["run"] == run]
        if rows.empty:
            continue
        figure.add_scatter(x=rows["IoU"].tolist(), y=rows["Boundary IoU"].tolist(), mode="markers+text", name=run,
                           text=rows["label"].tolist(), textposition=rows["position"].tolist(),
                           customdata=rows["class"].tolist(), marker=dict(color=color, size=9),
                           textfont=dict(size=10, color=color),
                           hovertemplate=(f"{run}<br>%{{customdata}}<br>IoU %{{x:.3f}}<br>Boundary IoU %{{y:.3f}}"
                                          "<extra></extra>"))
    figure.update_layout(height=480, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.15),
                         xaxis=dict(title="IoU", range=[-0.02, 1.02], constrain="domain"),
                         yaxis=dict(title="Boundary IoU", range=[-0.02, 1.02], scaleanchor="x"))
    return figure


def boundaries_ui(key, documents: dict[str, dict], colors: dict[str, str]) -> None:
    st.subheader("Boundaries")
    if not documents:
        st.caption("No selected run has an error anatomy.")
        return
    official = st.radio("Variant", (ALL_CLASSES, OFFICIAL), horizontal=True, key="anatomy_boundary_mode",
                        help=f"{ALL_CLASSES}: {MIOU.description}; {OFFICIAL}: {MIOU_OFFICIAL.description}."
                        ) == OFFICIAL
    points = pd.concat([anatomy.boundary_points(run, store.run_metrics(key, run), documents[run], official)
                        for run in documents], ignore_index=True)
    st.plotly_chart(boundary_figure(points, {run: colors[run] for run in documents}), width="stretch",
                    key="anatomy_boundaries")
    ratios = {as_number(document.get("boundary_ratio")) for document in documents.values()}
    ratio = next(iter(ratios)) if len(ratios) == 1 else float("nan")
    texts = {run: anatomy.width_text(document) for run, document in documents.items()}
    widths = (next(iter(texts.values())) if len(set(texts.values())) == 1
              else "; ".join(f"{run}: {text}" for run, text in texts.items()))
    st.caption(BOUNDARY_EXPLANATION.format(ratio="a share" if np.isnan(ratio) else f"{ratio * 100:g} %", widths=widths)
               + f" A class is shown when both numbers exist; the {anatomy.LABELLED_CLASSES} points furthest under "
               "the diagonal are named, every point in its hover. The explorer's \"boundary band only\" switch shows "
               "an image's errors in that band.")


# ---------------------------------------------------------------------------- where in the frame

def heatmap_figure(values: np.ndarray, counted: np.ndarray, title: str, colorscale, zmin: float, zmax: float,
                   label: str, zmid: float | None = None) -> go.Figure:
    rows, columns = values.shape
    figure = go.Figure(go.Heatmap(
        z=np.where(np.isnan(values), None, values.round(5)).tolist(), customdata=counted.tolist(),
        colorscale=colorscale, zmin=zmin, zmax=zmax, zmid=zmid, hoverongaps=False,
        colorbar=dict(thickness=12, tickformat=".0%"),
        hovertemplate=(f"row %{{y}}, column %{{x}} of {rows}x{columns}<br>{label} %{{z:.1%}}"
                       "<br>%{customdata:,} pixels counted<extra></extra>")))
    figure.update_layout(title=dict(text=title, font=dict(size=14)), height=300, margin=dict(l=10, r=10, t=40, b=10),
                         xaxis=dict(visible=False, constrain="domain"),
                         yaxis=dict(visible=False, autorange="reversed", scaleanchor="x"))
    return figure


def frame_ui(key, documents: dict[str, dict], labels: dict[str, str]) -> None:
    st.subheader("Where in the frame")
    counts = {}
    for run in documents:
        read = anatomy_store.frame_errors(key, run)
        if read.problem:
            st.warning(f"{run}: where its errors are cannot be shown: {read.problem}.")
        else:
            counts[run] = read.value
    if not counts:
        st.caption("No selected run has readable frame counts.")
        return
    grid = next(iter(counts.values())).shape[1:]
    factor = st.select_slider("Cells", grid_factors(grid), key="anatomy_grid",
                              format_func=lambda f: f"{-(-grid[0] // f)}x{-(-grid[1] // f)}",
                              help="Coarser cells pool more pixels: steadier rates, less detail.")
    pooled = {run: pooled_cells(values, factor) for run, values in counts.items()}
    rates = {run: error_rate(values) for run, values in pooled.items()}
    top = max([float(np.nanmax(rate)) for rate in rates.values() if not np.isnan(rate).all()] or [1.0])
    runs = list(pooled)
    for start in range(0, len(runs), HEATMAPS_PER_ROW):
        for column, run in zip(st.columns(HEATMAPS_PER_ROW), runs[start:start + HEATMAPS_PER_ROW]):
            title = f"{run}: {overall_error_rate(pooled[run]):.1%} of pixels wrong"
            column.plotly_chart(heatmap_figure(rates[run], pooled[run][0], title, "Reds", 0.0, max(top, 1e-6),
                                               "error rate"), width="stretch", key=f"anatomy_frame_{run}")
    st.caption("The share of wrong pixels at each place of the frame, over the run's evaluated images (each image "
               "mapped onto the same grid by its relative position; all-classes mode, pixels without ground "
               "truth not counted). One colour scale for every run; blank: nothing counted there.")
    difference_ui(pooled, labels)


def difference_ui(pooled: dict[str, np.ndarray], labels: dict[str, str]) -> None:
    st.markdown("**Run A minus run B**")
    runs = list(pooled)
    if len(runs) < 2:
        st.caption("Select two runs with an error anatomy to compare where their errors are.")
        return
    pick_a, pick_b = st.columns(2)
    names = full_names_text(runs, labels)
    named = {"format_func": lambda r: labels.get(r, r), "help": ("Full names:\n" + names) if names else None}
    run_a = pick_a.selectbox("Run A", runs, index=0, key="anatomy_frame_a", **named)
    run_b = pick_b.selectbox("Run B", runs, index=1, key="anatomy_frame_b", **named)
    if run_a == run_b:
        st.caption("Choose two different runs.")
        return
    try:
        difference = rate_difference(pooled[run_a], pooled[run_b])
    except ValueError as problem:
        st.warning(f"{run_a} and {run_b} cannot be subtracted: {problem}.")
        return
    limit = symmetric_limit(difference, minimum=0.01, margin=1.0)
    counted = np.minimum(pooled[run_a][0], pooled[run_b][0])
    title = f"{run_a} minus {run_b}: error rate"
    st.plotly_chart(heatmap_figure(difference, counted, title, "RdBu_r", -limit, limit, "A - B", zmid=0.0),
                    width="stretch", key="anatomy_frame_difference")
    st.caption(f"Red: {run_a} is wrong more often there than {run_b}; blue: less often; white: as often. Blank: "
               "either counted nothing there. Hover: the fewer pixels the two runs counted.")


# ---------------------------------------------------------------------------- the page

def main() -> None:
    started = page.start("Error anatomy", "What pixel mIoU hides: the objects a run misses (small ones first), its "
                         "edges against its regions, and where in the frame it goes wrong.", RUNS_KEY, URL_RUNS)
    key, table, runs = started.key, started.table, started.runs
    colors = {run: COLORS[number % len(COLORS)] for number, run in enumerate(runs)}
    documents = {}
    for run in runs:
        if not anatomy_store.has_anatomy(key, run):
            st.info(anatomy.no_anatomy_note(run))
            continue
        read = anatomy_store.document(key, run)
        if read.problem:
            st.warning(f"{run}: its error anatomy cannot be shown: {read.problem}.")
        else:
            documents[run] = read.value
    table_ui(key, runs, documents, table)
    objects_ui(key, documents, colors)
    boundaries_ui(key, documents, colors)
    frame_ui(key, documents, run_labels(table, short=True))


main()
