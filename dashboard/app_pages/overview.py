"""Overview: what the product does, the deployed model, the leaderboard (with each run against a
reference run: the difference and its 95% interval), the trade-off, and the runs of the store that
cannot be shown (with the reason). The sidebar switches every mIoU shown between pooled over the
dataset (official) and the mean of per-image mIoU (``?miou=per-image``)."""

from __future__ import annotations

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
    columns[4].metric("Inference", number_text(row["inference_ms"], ".1f", "ms/image"))
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


def leaderboard_ui(key, table: pd.DataFrame, mode: str) -> None:
    st.subheader("Leaderboard")
    shown = analysis.leaderboard(table)
    reference, against, notes = reference_ui(key, shown, mode)
    shown = shown.assign(images=shown["coverage"].replace("", "all")).join(against, on="run")
    # placeholder "": an imported run's training columns (and any number a run lacks) stay empty
    st.dataframe(
        shown[["run", "source", "model", "backbone", "loss_name", "augmentation", "size", "classes", "images",
               "params", "train_minutes", "val_miou", "miou", "vs_reference", "interval", "significance",
               "miou_official", "inference_ms", "deployed"]],
        hide_index=True, width="stretch", placeholder="",
        column_config={
            "source": st.column_config.TextColumn("source", help="trained here, or imported: another tool's "
                                                  "predictions scored here (no model, nothing trained)"),
            "loss_name": st.column_config.TextColumn("loss"),
            "classes": st.column_config.TextColumn("class set"),
            "images": st.column_config.TextColumn("test images", help="the images of its split a run is "
                                                  "scored on: all, or part of them (an import may cover part)"),
            "params": st.column_config.NumberColumn("params", format="%d"),
            "train_minutes": st.column_config.NumberColumn("training (min)", format="%.1f"),
            "val_miou": st.column_config.NumberColumn("val mIoU", format="%.3f"),
            "miou": st.column_config.NumberColumn(TEST_MIOU[mode], format="%.3f"),
            "vs_reference": st.column_config.NumberColumn(
                "B - A", format="%+.3f", help=f"{TEST_MIOU[mode]} of the run (B) minus the reference's "
                                              f"({reference}, A), over the images both evaluated"),
            "interval": st.column_config.TextColumn("95% interval", help="of B - A: paired bootstrap over the "
                                                    "images, 1000 resamples, seed 0"),
            "significance": st.column_config.TextColumn("significance", help="not significant: the 95% "
                                                        "interval holds 0"),
            "miou_official": st.column_config.NumberColumn("test mIoU (official)", format="%.3f"),
            "inference_ms": st.column_config.NumberColumn("inference ms", format="%.1f"),
        })
    st.caption(f"B - A: each run (B) against the reference {reference} (A), over the test images both "
               f"evaluated; its 95% interval comes from a paired bootstrap over those images "
               f"({paired.RESAMPLES} resamples, seed {paired.SEED}): not significant when it holds 0.")
    notes += [analysis.class_sets_note(table["classes"]), imported_runs.imported_note(table),
              imported_runs.given_latency_note(table)]
    for note in filter(None, notes):
        st.caption(note)


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
