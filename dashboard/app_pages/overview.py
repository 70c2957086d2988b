"""Overview: what the product does, the deployed model, the leaderboard (with each run against a
reference run: the difference and its 95% interval), the trade-off, and the runs of the store that
cannot be shown (with the reason). The sidebar switches every mIoU shown between pooled over the
dataset (official) and the mean of per-image mIoU (``?miou=per-image``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import streamlit as st

import dashboard.analysis as analysis
import dashboard.imported_runs as imported_runs
import dashboard.pair_store as pair_store
import dashboard.paired as paired
import dashboard.state as state
import dashboard.store as store
from dashboard.analysis import number_text
from dashboard.imported_runs import IMPORTED
from training.runs.summary import run_summaries

COMPARED_RUNS = 12  # runs given an interval against the reference (~50 ms each at 500 images, once)
TEST_MIOU = {paired.POOLED: "test mIoU", paired.PER_IMAGE: "test mIoU (mean per image)"}


def with_miou_mode(key, table: pd.DataFrame, mode: str) -> pd.DataFrame:
    """The runs table, its ``miou`` the mean of each run's per-image mIoU in the per-image mode."""
    if mode != paired.PER_IMAGE:
        return table
    return table.assign(miou=[paired.per_image_mean(store.per_image(key, run)) for run in table["run"]])


def damaged_ui(key) -> None:
    damaged = store.damaged_runs(key)
    if damaged:
        st.warning(f"**Damaged runs ({len(damaged)})**: left out of every page.\n\n"
                   + "\n".join(f"- **{run}**: {reason}" for run, reason in damaged))


def headline_ui(key, table: pd.DataFrame, mode: str) -> None:
    deployed, problem = store.deployment(key)
    if problem:
        hint = "" if "python -m training deploy" in problem else (
            " `python -m training deploy --best` deploys the best whole run on validation mIoU.")
        st.warning(problem.rstrip(".") + "." + hint)
        return
    rows = table[table["run"] == deployed]
    if deployed is None or rows.empty:
        if (table["source"] == IMPORTED).all():  # deploy --best would find no model: never suggest it
            st.warning("No run is deployed, and none of these can be: imported runs hold another tool's "
                       "predictions, not a model. " + store.HOW_TO_TRAIN)
        else:
            st.warning("No run is deployed: `python -m training deploy --best` deploys the best on "
                       "validation mIoU (of the runs trained here; imported runs have no model).")
        return
    row = rows.iloc[0]
    if row["source"] == IMPORTED:  # only a hand-edited deployed.json can say so: the API cannot serve it
        st.warning(f"deployed.json names {deployed}, an imported run: it holds predictions, not a model, so "
                   "the API cannot serve it. `python -m training deploy --best` deploys the best trained run.")
        return
    st.subheader(f"Deployed: {row['run']}")
    columns = st.columns(5)
    columns[0].metric("Test mIoU (all classes)" if mode == paired.POOLED else "Test mIoU (mean per image)",
                      number_text(row["miou"]))
    columns[1].metric("Test mIoU (official)", number_text(row["miou_official"]))
    columns[2].metric("Validation mIoU", number_text(row["val_miou"]))
    columns[3].metric("Parameters", number_text(row["params"] / 1e6, ".2f", "M"))
    how = latency_how(key).get(row["run"], {}).get("latency_how")
    columns[4].metric("Inference", number_text(row["inference_ms"], ".1f", "ms"),  # "ms/image" is cut at 1600 px
                      help="Per image. " + (how or "How it was measured is not recorded."))
    st.caption(f"{row['model']} ({row['backbone']}), loss {row['loss_name']}, "
               f"augmentation {row['augmentation']}, trained at {row['size']} in "
               f"{number_text(row['train_seconds'] / 60, '.1f')} min; scores on the {row['split']} split, "
               f"{row['classes']}.")


def reference_ui(key, shown: pd.DataFrame, mode: str) -> tuple[str, pd.DataFrame, list[str]]:
    """The reference run (A) chosen above the leaderboard, and for each run (B): B - A, its 95%
    interval and significance (``paired.reference_columns``), with the notes on what was left out."""
    runs = list(shown["run"])
    labels = imported_runs.run_labels(shown)
    default = paired.default_reference(shown, store.deployment(key)[0])
    reference = st.selectbox("Reference run (A) of the intervals", runs, index=runs.index(default),
                             key="overview_reference", format_func=lambda run: labels.get(run, run),
                             help="Each run (B) against this one: B - A in mIoU with its 95% interval, from a "
                                  "paired bootstrap over the images both evaluated. Default: the deployed run, "
                                  "else the best on validation mIoU.")
    compared, left_out = paired.comparable_runs(shown, reference, COMPARED_RUNS)
    with st.spinner("Comparing the runs with the reference (paired bootstrap, once per pair)..."):
        results = {run: pair_store.comparison(key, reference, run) for run in compared}
    notes = [f"{run} not compared with {reference}: {result['error']}."
             for run, result in results.items() if "error" in result]
    others = [run for run in runs if run not in compared and run != reference and run not in left_out]
    if others:
        notes.append(f"Not compared with {reference} (another class set or split): {', '.join(others)}.")
    if left_out:
        notes.append(f"Intervals for the {COMPARED_RUNS} best runs only; not compared: {', '.join(left_out)}.")
    return reference, paired.reference_columns(runs, reference, results, mode), notes


# The leaderboard's shown columns (a 1600 px window with the sidebar open leaves ~1150 px): short
# headers, pixel widths, and the columns that would repeat one value on every row left out (the
# caption names that value). The table's other columns stay in its data, for the tests and a download.
SHOWN = {  # column: (header, pixel width)
    "name": ("run", 160), "model_text": ("model", 95), "training": ("loss, aug.", 95), "size": ("size", 65),
    "classes": ("class set", 85), "params_m": ("params (M)", 60), "train_minutes": ("train (min)", 60),
    "val_miou": ("val mIoU", 60), "miou": ("test mIoU", 65), "vs_reference": ("B - A", 55),
    "verdict": ("95% interval", 150), "miou_official": ("official", 60), "inference_ms": ("ms/image", 60),
    "latency_measured": ("measured", 100)}
ONLY_WHEN_THEY_DIFFER = ("training", "size", "classes")


@st.cache_data(show_spinner=False)
def latency_how(key) -> dict[str, dict]:
    """Each whole run's latency headline (``training.runs.latency``): ``latency_how`` and
    ``latency_measured`` (the runs table keeps only the figure)."""
    return {s["run"]: {k: s.get(k) or "" for k in ("latency_how", "latency_measured")}
            for s in run_summaries(Path(key.artifacts)) if "error" not in s}


def _text(value) -> str:
    """A cell's text: "" for None, NaN and the words "None"/"nan" (never shown)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or str(value) in ("None", "nan"):
        return ""
    return str(value)


def leaderboard_frame(shown: pd.DataFrame, names: dict[str, str], how: dict[str, dict]) -> pd.DataFrame:
    """The leaderboard's rows with its display columns added (``SHOWN``): the run's short name
    (tagged imported or deployed), model with backbone, loss and augmentation, parameters in
    millions, the interval of B - A with its verdict when significant, how its latency was
    measured; every text cell a string, "" where nothing is known."""
    backbone = [_text(b) for b in shown["backbone"]]
    frame = shown.assign(
        name=[names.get(run, run) + (" (deployed)" if _text(deployed) == "True" else "")
              for run, deployed in zip(shown["run"], shown["deployed"])],
        model_text=[_text(m) + (f" ({b})" if b not in ("", "-") else "") for m, b in zip(shown["model"], backbone)],
        training=[", ".join(filter(None, (_text(loss), _text(aug))))
                  for loss, aug in zip(shown["loss_name"], shown["augmentation"])],
        params_m=pd.to_numeric(shown["params"], errors="coerce") / 1e6,
        latency_measured=[how.get(run, {}).get("latency_measured", "") for run in shown["run"]],
        verdict=[" ".join(filter(None, (_text(interval), _text(said).replace("not significant", ""))))
                 for interval, said in zip(shown["interval"], shown["significance"])])
    for column in frame.columns:
        if frame[column].dtype == object and column not in ("deployed",):
            frame[column] = [_text(v) for v in frame[column]]
    return frame


def shown_columns(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The columns shown, and "size 128x256"-like notes for those left out because every run has
    the same value there."""
    columns, same = [], []
    for column in SHOWN:
        values = set(frame[column]) - {""} if column in ONLY_WHEN_THEY_DIFFER else None
        if values is not None and len(values) <= 1:
            same += [f"{SHOWN[column][0]} {next(iter(values))}"] if values else []
            continue
        columns.append(column)
    return columns, same


def leaderboard_ui(key, table: pd.DataFrame, mode: str) -> None:
    st.subheader("Leaderboard")
    shown = analysis.leaderboard(table)
    reference, against, notes = reference_ui(key, shown, mode)
    shown = shown.assign(images=shown["coverage"].replace("", "all")).join(against, on="run")
    how = latency_how(key)
    frame = leaderboard_frame(shown, imported_runs.run_labels(table, short=True), how)
    columns, same = shown_columns(frame)
    formats = {"params_m": "%.2f", "train_minutes": "%.1f", "val_miou": "%.3f", "miou": "%.3f",
               "vs_reference": "%+.3f", "miou_official": "%.3f", "inference_ms": "%.1f"}
    helps = {
        "name": "short name (the part the runs' names do not share); imported: another tool's predictions "
                "scored here, on all or part of the test images",
        "miou": TEST_MIOU[mode],
        "vs_reference": f"{TEST_MIOU[mode]} of the run (B) minus the reference's ({reference}, A), over the "
                        "images both evaluated",
        "verdict": "of B - A: paired bootstrap over the images, 1000 resamples, seed 0; B better or B worse "
                   "when it does not hold 0 (else not significant)",
        "miou_official": "test mIoU (official)",
        "inference_ms": "time per image at batch 1, median of warm runs (see how each was measured below)",
        "latency_measured": "benchmark: python -m training benchmark, on a quiet machine; after training: right "
                            "after the run's evaluation; during training: measured once, on whatever load the "
                            "machine had; busy: the load was high"}
    config = {column: (st.column_config.NumberColumn(header, width=width, format=formats[column],
                                                     help=helps.get(column))
                       if column in formats else
                       st.column_config.TextColumn(header, width=width, help=helps.get(column)))
              for column, (header, width) in SHOWN.items()}
    st.dataframe(frame, hide_index=True, width="stretch", placeholder="", column_order=columns,
                 column_config=config)
    st.caption(f"B - A: each run (B) against the reference {reference} (A), over the test images both "
               f"evaluated; its 95% interval comes from a paired bootstrap over those images "
               f"({paired.RESAMPLES} resamples, seed {paired.SEED}): not significant when it holds 0."
               + (f" In common: {', '.join(same)}." if same else ""))
    latency_ui(frame, how)
    notes += [analysis.class_sets_note(table["classes"]), imported_runs.imported_note(table),
              imported_runs.given_latency_note(table)]
    for note in filter(None, notes):
        st.caption(note)


def latency_ui(frame: pd.DataFrame, how: dict[str, dict]) -> None:
    """How each run's latency was measured, in full (the table says it in a word)."""
    lines = [f"- **{row['name']}**: {row['inference_ms']:.1f} ms, {how[row['run']]['latency_how']}"
             for row in frame.to_dict("records")
             if how.get(row["run"], {}).get("latency_how") and not np.isnan(row["inference_ms"])]
    if lines:
        with st.expander("How each latency was measured"):
            st.markdown("\n".join(lines) + "\n\nMeasure every run again, one at a time on a quiet machine: "
                        "`python -m training benchmark`.")


def tradeoff_ui(table: pd.DataFrame, mode: str) -> None:
    st.subheader("Accuracy against speed")
    # The hover's numbers as text: a number a run lacks (an imported run's parameters, validation
    # mIoU) reads "-", never "NaN", and the marker size of unknown parameters is not shown as theirs.
    described = table.assign(
        parameters=[number_text(v, ",.0f") for v in table["params"]],
        official=[number_text(v) for v in table["miou_official"]],
        validation=[number_text(v) for v in table["val_miou"]],
        images=table["coverage"].replace("", "all"))
    points, left_out = analysis.tradeoff_points(described)
    several = points["classes"].nunique() > 1
    figure = px.scatter(points, x="inference_ms", y="miou", size="params", color="model", hover_name="run",
                        symbol="classes" if several else None, size_max=40,
                        labels={"inference_ms": "inference (ms per image)", "miou": TEST_MIOU[mode],
                                "classes": "class set", "official": "test mIoU (official)",
                                "validation": "val mIoU", "images": "test images"},
                        hover_data={"params": False, "parameters": True, "official": True, "validation": True,
                                    "source": True, "images": True})
    figure.update_layout(height=380, margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(figure, width="stretch")
    st.caption("Marker size: number of parameters"
               + ("; marker shape: class set (mIoU of different class sets are not comparable)" if several else "")
               + ". Up and to the left is better."
               + (f" Not plotted (no test mIoU or inference time): {', '.join(left_out)}." if left_out else ""))
    note = imported_runs.given_latency_note(points)
    if note:
        st.caption(note)


def main() -> None:
    st.title("Street-scene segmentation")
    st.markdown("Train, compare and show semantic-segmentation models of street scenes. See where and why "
                "models differ: image by image, class by class, confusion by confusion.")
    key = store.store_key()
    damaged_ui(key)
    runs = store.require_runs()
    mode = state.miou_mode_ui(st.sidebar)
    runs = with_miou_mode(key, runs, mode)
    headline_ui(key, runs, mode)
    leaderboard_ui(key, runs, mode)
    tradeoff_ui(runs, mode)


main()
