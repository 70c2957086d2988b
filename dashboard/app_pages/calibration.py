"""Calibration: can a run's confidence be trusted? For each selected run, a reliability diagram
(the accuracy of the pixels in each confidence bin against the diagonal of perfect calibration,
the ECE in its title), then mIoU against coverage for all of them (keep only the pixels whose
confidence reaches a threshold: does mIoU rise as coverage falls?).

Everything comes from the ``calibration`` block of each run's metrics.json (15 bins of the top
softmax probability, pixels with ground truth only). Runs evaluated before confidence was stored,
and imported runs, have none: a note says so. The runs live in the URL (``?runs=a,b``).
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative

import dashboard.readers.store as store
import dashboard.sections.page as page
import dashboard.views.calibration_tables as confidence
from training.runs.layout import IMPORTED

RUNS_KEY, URL_RUNS = "calibration_runs", "_calibration_url_runs"
COLORS = qualitative.Plotly
PER_ROW = 2  # reliability diagrams side by side


def reliability_figure(run: str, calibration: dict, color: str) -> go.Figure:
    """Bars: the accuracy of each non-empty bin, as wide as the bin; the diagonal: perfect calibration."""
    bins = confidence.reliability_frame(calibration)
    figure = go.Figure(go.Bar(
        x=bins["centre"].tolist(), y=bins["accuracy"].tolist(), width=(bins["high"] - bins["low"]).tolist(),
        name="accuracy", marker=dict(color=color, line=dict(color="white", width=1)),
        customdata=bins[["low", "high", "pixels", "confidence"]].to_numpy().tolist(),
        hovertemplate=("confidence %{customdata[0]:.2f} to %{customdata[1]:.2f}<br>%{customdata[2]:,.0f} pixels"
                       "<br>accuracy %{y:.3f}<br>mean confidence %{customdata[3]:.3f}<extra></extra>")))
    figure.add_scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                       line=dict(color="#888", dash="dash"), hoverinfo="skip")
    ece = calibration.get("ece")
    title = f"{run}: ECE {ece:.3f}" if isinstance(ece, (int, float)) else f"{run}: ECE -"
    figure.update_layout(title=dict(text=title, font=dict(size=14)), height=340, showlegend=False,
                         margin=dict(l=10, r=10, t=40, b=10), bargap=0,
                         xaxis=dict(title="confidence (top softmax probability)", range=[0, 1]),
                         yaxis=dict(title="accuracy", range=[0, 1.02]))
    return figure


def coverage_figure(curves: dict[str, dict], colors: dict[str, str]) -> go.Figure:
    """One line per run: mIoU of the pixels kept against their share, a point per threshold."""
    figure = go.Figure()
    for run, calibration in curves.items():
        points = confidence.coverage_frame(calibration)
        figure.add_scatter(x=points["coverage"].tolist(), y=points["miou"].tolist(), mode="lines+markers",
                           name=run, line=dict(color=colors[run]), customdata=points["threshold"].tolist(),
                           hovertemplate=(f"{run}<br>confidence ≥ %{{customdata:.2f}}<br>coverage %{{x:.1%}}"
                                          "<br>mIoU %{y:.3f}<extra></extra>"))
    figure.update_layout(title=dict(text="mIoU against coverage", font=dict(size=14)), height=380,
                         margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.2),
                         xaxis=dict(title="coverage (share of pixels kept)", range=[1.02, -0.02], tickformat=".0%"),
                         yaxis=dict(title="mIoU of the pixels kept"))
    return figure


def missing_note(run: str, table) -> str:
    imported = table.set_index("run").loc[run, "source"] == IMPORTED
    return f"{run}: " + (confidence.IMPORTED_CALIBRATION_NOTE if imported else confidence.NO_CALIBRATION_NOTE) + "."


def main() -> None:
    started = page.start("Calibration", "Does a run know when it is wrong? Its pixels' top softmax probability "
                         "(confidence) against how often they are right, and what keeping only the confident pixels "
                         "does to mIoU.", RUNS_KEY, URL_RUNS)
    key, table, runs = started.key, started.table, started.runs
    colors = {run: COLORS[number % len(COLORS)] for number, run in enumerate(runs)}
    blocks = {run: confidence.calibration_of(store.run_metrics(key, run)) for run in runs}
    present = {run: block for run, block in blocks.items() if block is not None}

    st.subheader("Reliability")
    for start in range(0, len(present), PER_ROW):
        for column, (run, block) in zip(st.columns(PER_ROW), list(present.items())[start:start + PER_ROW]):
            column.plotly_chart(reliability_figure(run, block, colors[run]), width="stretch",
                                key=f"calibration_reliability_{run}")
    if present:
        st.caption("Bars: the accuracy of the pixels whose confidence falls in each of the 15 bins (hover: their "
                   "count and mean confidence); on the dashed diagonal a run is perfectly calibrated, under it "
                   "over-confident. ECE: the pixel-weighted mean gap between accuracy and confidence.")
    for run in runs:
        if run not in present:
            st.info(missing_note(run, table))

    st.subheader("mIoU against coverage")
    if not present:
        st.caption("No selected run has a calibration block.")
        return
    st.plotly_chart(coverage_figure(present, colors), width="stretch", key="calibration_coverage")
    st.caption("Each point keeps the pixels whose confidence reaches a threshold (a bin's lower edge, on hover) "
               "and scores only those: left, everything; to the right, ever fewer and more confident pixels. "
               "A useful confidence makes the line rise. Pixels with ground truth only, pooled over the images.")
    classes = {store.run_classes(key)[run] for run in present}
    if len(classes) > 1:
        st.caption("These runs predict different class sets: compare their mIoU only within one class set.")


main()
