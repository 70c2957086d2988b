"""Overview: what the product does, the deployed model, the leaderboard (with each run against a
reference run: the difference and its 95% interval), the trade-off, and the runs of the store that
cannot be shown (with the reason). The sidebar switches every test mIoU shown, all classes and
official alike, between pooled over the dataset and the mean of per-image mIoU (``?miou=per-image``;
``training.evaluation.variants`` names them); the validation mIoU, which training measured pooled,
then says "(pooled)". The trade-off chart crosses out the latencies measured while the machine was
busy (``training.runs.latency.record_busy``), and every point's hover says how its time was measured.
The reference run starts on the deployed run, else the best (``views.run_names.default_runs``)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

import dashboard.readers.drives as drives
import dashboard.readers.pairs as pairs
import dashboard.readers.store as store
import dashboard.sections.page as page
import dashboard.state as state
import dashboard.views.intervals as intervals
import dashboard.views.leaderboard as leaderboard
from dashboard.views.numbers import number_text
from dashboard.views.run_names import (
    class_sets_note,
    default_runs,
    full_names_text,
    given_latency_note,
    imported_note,
    run_labels,
)
from dashboard.views.text import plain
from training.evaluation.variants import MIOU, MIOU_OFFICIAL, PER_IMAGE, POOLED
from training.runs.layout import IMPORTED

COMPARED_RUNS = 12  # runs given an interval against the reference (~50 ms each at 500 images, once)


def with_miou_mode(key, table: pd.DataFrame, mode: str) -> pd.DataFrame:
    """The runs table, its ``miou`` and ``miou_official`` each run's means of per-image mIoU in the
    per-image mode (NaN for a run stored before the per-image confusions it needs)."""
    if mode != PER_IMAGE:
        return table
    return table.assign(**{which.key: [store.run_miou(key, run, which.key, PER_IMAGE) for run in table["run"]]
                           for which in (MIOU, MIOU_OFFICIAL)})


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
    columns[0].metric(f"Test {MIOU.label(mode)}", number_text(row["miou"]))
    columns[1].metric(f"Test {MIOU_OFFICIAL.label(mode)}", number_text(row["miou_official"]))
    columns[2].metric("Validation mIoU" + (" (pooled)" if mode == PER_IMAGE else ""), number_text(row["val_miou"]),
                      help=f"{MIOU.label(POOLED)} on the validation split, as training measured it (pooled "
                           "whichever way the test mIoU is averaged)")
    columns[3].metric("Parameters", number_text(row["params"] / 1e6, ".2f", "M"))
    how = store.latency_texts(key).get(row["run"], {}).get("latency_how")
    columns[4].metric("Inference", number_text(row["inference_ms"], ".1f", "ms"),  # "ms/image" is cut at 1600 px
                      help="Per image. " + (how or "How it was measured is not recorded."))
    st.caption(f"{plain(str(row['model']))} ({plain(str(row['backbone']))}), loss {row['loss_name']}, "
               f"augmentation {row['augmentation']}, trained at {row['size']} in "
               f"{number_text(row['train_seconds'] / 60, '.1f')} min; scores on the {row['split']} split, "
               f"{row['classes']}.")


def _full_names(runs: list[str], labels: dict[str, str]) -> str:
    names = full_names_text(runs, labels)
    return "\n\nFull names:\n" + names if names else ""


def reference_ui(key, shown: pd.DataFrame, mode: str) -> tuple[str, pd.DataFrame, list[str]]:
    """The reference run (A) chosen above the leaderboard, and for each run (B): B - A, its 95%
    interval and significance (``intervals.reference_columns``), with the notes on what was left out."""
    runs = list(shown["run"])
    labels = run_labels(store.runs_table(key), short=True)  # the whole table's short names, as every page's
    default = default_runs(store.runs_table(key), store.deployment(key)[0])[0]  # pooled: whatever the mode
    reference = st.selectbox("Reference run (A) of the intervals", runs, index=runs.index(default),
                             key="overview_reference", format_func=lambda run: labels.get(run, run),
                             help="Each run (B) against this one: B - A in mIoU with its 95% interval, from a "
                                  "paired bootstrap over the images both evaluated. Default: the deployed run, "
                                  "else the best on official test mIoU." + _full_names(runs, labels))
    compared, left_out = intervals.comparable_runs(shown, reference, COMPARED_RUNS)
    with st.spinner("Comparing the runs with the reference (paired bootstrap, once per pair)..."):
        results = {run: pairs.comparison(key, reference, run) for run in compared}
    notes = [f"{run} not compared with {reference}: {result['error']}."
             for run, result in results.items() if "error" in result]
    others = [run for run in runs if run not in compared and run != reference and run not in left_out]
    if others:
        notes.append(f"Not compared with {reference} (another class set or split): {', '.join(others)}.")
    if left_out:
        notes.append(f"Intervals for the {COMPARED_RUNS} best runs only; not compared: {', '.join(left_out)}.")
    return reference, intervals.reference_columns(runs, reference, results, mode), notes


def leaderboard_ui(key, table: pd.DataFrame, mode: str) -> None:
    st.subheader("Leaderboard")
    shown = leaderboard.leaderboard(table)
    reference, against, notes = reference_ui(key, shown, mode)
    shown = shown.assign(images=shown["coverage"].replace("", "all")).join(against, on="run")
    how = store.latency_texts(key)
    names = run_labels(table, short=True)
    temporal = {run: drives.temporal_consistency(key, run) for run in shown["run"]}
    frame = leaderboard.leaderboard_frame(shown, names, how, temporal)
    columns, same = leaderboard.shown_columns(frame)
    headers = leaderboard.headers(mode == PER_IMAGE)
    helps = {
        "name": "short name (the part the runs' names do not share); imported: another tool's predictions "
                "scored here, on all or part of the test images" + _full_names(list(frame["run"]), names),
        "model_text": "model (backbone)",
        "training": "loss, augmentation",
        "params_m": "millions of parameters",
        "train_minutes": "training time in minutes",
        "miou": f"test {MIOU.label(mode)}: {MIOU.description}",
        "vs_reference": f"test {MIOU.label(mode)} of the run (B) minus the reference's ({reference}, A), over the "
                        "images both evaluated",
        "verdict": "of B - A: paired bootstrap over the images, 1000 resamples, seed 0; B better or B worse "
                   "when it does not hold 0 (else not significant)",
        "miou_official": f"test {MIOU_OFFICIAL.label(mode)}: {MIOU_OFFICIAL.description}",
        "val_miou": f"{MIOU.label(POOLED)} on the validation split, as training measured it (pooled whichever "
                    "way the sidebar averages the test mIoU)",
        "inference_ms": "milliseconds per image at batch 1, median of warm runs (see how each was measured below)",
        "tc": "temporal consistency over the drives the run predicted (python -m training predict-sequence) or "
              "whose frames it imported (import-sequences): "
              "the mIoU between each frame's prediction and the previous frame's warped by optical flow; "
              "1 = no flicker (the Drive page shows it per frame and per class)",
        "latency_measured": "benchmark: python -m training benchmark, on a quiet machine; after training: right "
                            "after the run's evaluation; during training: measured once, on whatever load the "
                            "machine had; busy: the load was high"}
    widths = leaderboard.column_widths(frame, headers)
    formats = leaderboard.NUMBER_FORMATS
    config = {column: (st.column_config.NumberColumn(headers[column], width=widths[column], format=formats[column],
                                                     help=helps.get(column))
                       if column in formats else
                       st.column_config.TextColumn(headers[column], width=widths[column], help=helps.get(column),
                                                   pinned=column == "name" or None))
              for column in leaderboard.SHOWN}
    st.dataframe(frame, hide_index=True, width="stretch", placeholder="", column_order=columns,
                 column_config=config)
    st.caption(f"B - A: each run (B) against the reference {reference} (A) in {MIOU.label(mode)}, over the test "
               f"images both evaluated; its 95% interval comes from a paired bootstrap over those images "
               f"({intervals.RESAMPLES} resamples, seed {intervals.SEED}): not significant when it holds 0."
               + (f" In common: {', '.join(same)}." if same else ""))
    if mode == PER_IMAGE and frame["miou_official"].isna().any():
        notes.append(f"{MIOU_OFFICIAL.label(mode)} empty: the run was evaluated before its official per-image "
                     "confusions were stored (`python -m training rescore RUN` adds them to a trained run).")
    latency_ui(frame, how)
    notes += [class_sets_note(table["classes"]), imported_note(table), given_latency_note(table)]
    for note in filter(None, notes):
        st.caption(note)


def latency_ui(frame: pd.DataFrame, how: dict[str, dict]) -> None:
    """How each run's latency was measured, in full (the table says it in a word)."""
    lines = [f"- **{row['name']}**: {row['inference_ms']:.1f} ms, {how[row['run']]['latency_how']}"
             for row in frame.to_dict("records")
             if how.get(row["run"], {}).get("latency_how") and not pd.isna(row["inference_ms"])]
    if lines:
        with st.expander("How each latency was measured"):
            st.markdown("\n".join(lines) + "\n\nMeasure every run again, one at a time on a quiet machine: "
                        "`python -m training benchmark`.")


def tradeoff_ui(key, table: pd.DataFrame, mode: str) -> None:
    st.subheader("Accuracy against speed")
    # The hover's numbers as text: a number a run lacks (an imported run's parameters, validation
    # mIoU) reads "-", never "NaN", and the marker size of unknown parameters is not shown as theirs.
    how = store.latency_texts(key)
    measured = [how.get(run, {}).get("latency_measured", "") for run in table["run"]]
    described = table.assign(
        parameters=[number_text(v, ",.0f") for v in table["params"]],
        official=[number_text(v) for v in table["miou_official"]],
        validation=[number_text(v) for v in table["val_miou"]],
        images=table["coverage"].replace("", "all"),
        latency=[how.get(run, {}).get("latency_how") or "not recorded" for run in table["run"]],
        busy=[leaderboard.measured_while_busy(words) for words in measured])
    points, left_out = leaderboard.tradeoff_points(described)
    several = points["classes"].nunique() > 1
    figure = px.scatter(points, x="inference_ms", y="miou", size="params", color="model", hover_name="run",
                        symbol="classes" if several else None, size_max=40,
                        labels={"inference_ms": "inference (ms per image)", "miou": f"test {MIOU.label(mode)}",
                                "classes": "class set", "official": f"test {MIOU_OFFICIAL.label(mode)}",
                                "validation": "val mIoU" + (" (pooled)" if mode == PER_IMAGE else ""),
                                "images": "test images", "latency": "latency measured"},
                        hover_data={"params": False, "parameters": True, "official": True, "validation": True,
                                    "source": True, "images": True, "latency": True, "busy": False})
    busy = points[points["busy"]]
    if not busy.empty:  # a cross over each: its time is pessimistic, said in the legend and the hover
        figure.add_scatter(x=busy["inference_ms"].tolist(), y=busy["miou"].tolist(), mode="markers",
                           name=leaderboard.BUSY, customdata=busy[["run", "latency"]].values.tolist(),
                           marker=dict(symbol="x-thin-open", size=22, line=dict(width=2.5, color="#d62728")),
                           hovertemplate=f"<b>%{{customdata[0]}}</b><br>{leaderboard.BUSY}: "
                                         "%{customdata[1]}<extra></extra>")
    figure.update_layout(height=380, margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(figure, width="stretch")
    st.caption("Marker size: number of parameters"
               + ("; marker shape: class set (mIoU of different class sets are not comparable)" if several else "")
               + (f"; a red cross: {leaderboard.BUSY} (other processes took the CPU: the time is pessimistic; "
                  "`python -m training benchmark` measures every run again)" if not busy.empty else "")
               + ". Up and to the left is better."
               + (f" Not plotted (no test mIoU or inference time): {', '.join(left_out)}." if left_out else ""))
    note = given_latency_note(points)
    if note:
        st.caption(note)


def main() -> None:
    st.title("Street-scene segmentation")
    st.markdown("Train, compare and show semantic-segmentation models of street scenes. See where and why "
                "models differ: image by image, class by class, confusion by confusion.")
    key = store.store_key()
    damaged_ui(key)
    table = page.require_runs(key)
    mode = state.miou_mode_ui(st.sidebar)
    table = with_miou_mode(key, table, mode)
    headline_ui(key, table, mode)
    leaderboard_ui(key, table, mode)
    tradeoff_ui(key, table, mode)


main()
