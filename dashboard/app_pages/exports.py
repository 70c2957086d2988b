"""Embedded exports: a run's TFLite exports side by side with its Keras model (file size, latency,
mIoU, the pixels whose class changed) and, per class, what each export's quantisation cost: its
IoU minus the Keras model's. One aggregate mIoU drop hides which classes pay for it; thin classes
(poles, signs, people) are what matters on a car.

Every number is an export's report (``runs/<run>/exports/<name>.json``, written by ``python -m
training export``) or the run's metrics.json: nothing here runs a model. The explorer's flip map
shows where, on one image, an export changed the Keras model's class.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.colors import qualitative

import dashboard.readers.exports as export_store
import dashboard.readers.store as store
import dashboard.sections.page as page
from dashboard.views.exports_tables import (
    DELTA,
    changed_frame,
    delta_frame,
    exports_table,
    keras_latency_note,
)
from training.evaluation.variants import MIOU, MIOU_OFFICIAL

RUN_KEY = "exports_run"
COLORS = qualitative.Plotly


def delta_figure(deltas: pd.DataFrame) -> go.Figure:
    figure = go.Figure()
    for number, export in enumerate(deltas.columns):
        values = deltas[export]
        figure.add_bar(name=export, x=list(values.index), y=values.tolist(), marker_color=COLORS[number % len(COLORS)],
                       text=[f"{v:+.3f}" if pd.notna(v) else "" for v in values], textposition="outside")
    figure.add_hline(y=0, line_color="#888", line_width=1)
    figure.update_layout(barmode="group", yaxis_title="IoU export - IoU Keras", height=420,
                         margin=dict(l=10, r=10, t=30, b=10), legend_title_text="export")
    return figure


def _keras_latency(key, table: pd.DataFrame, run: str) -> dict:
    """The run's latency headline: the runs table's time per image (latency.json's median where the
    run has one, ``training.runs.summary.run_summary``) and how it was measured."""
    rows = table[table["run"] == run]
    ms = rows["inference_ms"].iloc[0] if len(rows) else None
    texts = store.latency_texts(key).get(run, {})
    return {"inference_ms": None if ms is None or pd.isna(ms) else float(ms), **texts}


def main() -> None:
    started = page.start("Embedded exports")
    key, table, labels = started.key, started.table, started.labels
    runs = export_store.runs_with_exports(key, list(table["run"]))
    if not runs:
        st.info(f"No run has an embedded export yet. `{export_store.EXPORT_COMMAND}` converts a run's model "
                "(float32: `--quantize none`, `float16`, `int8`) and measures it.")
        st.stop()
    run = st.sidebar.selectbox("Run", runs, key=RUN_KEY, format_func=lambda name: labels.get(name, name))
    reports, problems = export_store.reports(key, run)
    for name, problem in problems.items():
        st.warning(f"Export {name} cannot be shown: {problem}")
    if not reports:
        st.stop()
    metrics = store.run_metrics(key, run)
    names = list(metrics.get("class_names") or next(iter(reports.values())).get("class_names") or [])
    keras_latency = _keras_latency(key, table, run)
    st.subheader(f"{run}: the Keras model and its exports")
    st.dataframe(exports_table(metrics, reports, keras_latency), hide_index=True, width="stretch", column_config={
        "size (MB)": st.column_config.NumberColumn(format="%.2f"),
        "latency (ms)": st.column_config.NumberColumn(format="%.1f"),
        MIOU.label(): st.column_config.NumberColumn(format="%.4f"),
        MIOU_OFFICIAL.label(): st.column_config.NumberColumn(format="%.4f"),
        DELTA: st.column_config.NumberColumn(format="%.4f"),
        "pixels changed": st.column_config.NumberColumn(format="percent",
                                                        help="of the split's pixels, against the Keras model's "
                                                             "stored predictions")})
    conditions = sorted({f"{(r.get('latency') or {}).get('threads')} threads, batch 1, median of "
                         f"{(r.get('latency') or {}).get('runs')} runs" for r in reports.values()})
    st.caption(f"Exports on the {metrics.get('split')} split at ground-truth resolution. Latency: one image at "
               f"the model's size through the CPU TFLite interpreter ({'; '.join(conditions)}); "
               f"{keras_latency_note(keras_latency)}.")

    st.subheader("What each class pays")
    official = st.toggle("Official-compatible IoU", key="exports_official",
                         help="The official rules (void left out for the categories); off: every class counts.")
    deltas = delta_frame(reports, names, official)
    st.plotly_chart(delta_figure(deltas), width="stretch", config={"displaylogo": False}, key="exports_deltas")
    st.caption("Per class, the export's IoU minus the Keras model's (metrics.json), on the same images. "
               "Below 0: the class lost overlap in the conversion.")
    st.markdown("**Pixels whose class changed, per Keras class**")
    st.dataframe(changed_frame(reports, names), width="stretch",
                 column_config={name: st.column_config.NumberColumn(name, format="percent") for name in reports})
    st.caption("The explorer's flip map shows where, image by image.")


main()
