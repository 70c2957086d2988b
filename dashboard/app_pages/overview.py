"""Overview: what the product does, the deployed model, the leaderboard, the trade-off, and the
runs of the store that cannot be shown (with the reason)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

import dashboard.analysis as analysis
import dashboard.imported_runs as imported_runs
import dashboard.store as store
from dashboard.analysis import number_text
from dashboard.imported_runs import IMPORTED


def damaged_ui(key) -> None:
    damaged = store.damaged_runs(key)
    if damaged:
        st.warning(f"**Damaged runs ({len(damaged)})**: left out of every page.\n\n"
                   + "\n".join(f"- **{run}**: {reason}" for run, reason in damaged))


def headline_ui(key, table: pd.DataFrame) -> None:
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
    columns[0].metric("Test mIoU (all classes)", number_text(row["miou"]))
    columns[1].metric("Test mIoU (official)", number_text(row["miou_official"]))
    columns[2].metric("Validation mIoU", number_text(row["val_miou"]))
    columns[3].metric("Parameters", number_text(row["params"] / 1e6, ".2f", "M"))
    columns[4].metric("Inference", number_text(row["inference_ms"], ".1f", "ms/image"))
    st.caption(f"{row['model']} ({row['backbone']}), loss {row['loss_name']}, "
               f"augmentation {row['augmentation']}, trained at {row['size']} in "
               f"{number_text(row['train_seconds'] / 60, '.1f')} min; scores on the {row['split']} split, "
               f"{row['classes']}.")


def leaderboard_ui(table: pd.DataFrame) -> None:
    st.subheader("Leaderboard")
    shown = analysis.leaderboard(table)
    shown = shown.assign(images=shown["coverage"].replace("", "all"))
    # placeholder "": an imported run's training columns (and any number a run lacks) stay empty
    st.dataframe(
        shown[["run", "source", "model", "backbone", "loss_name", "augmentation", "size", "classes", "images",
               "params", "train_minutes", "val_miou", "miou", "miou_official", "inference_ms", "deployed"]],
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
            "miou": st.column_config.NumberColumn("test mIoU", format="%.3f"),
            "miou_official": st.column_config.NumberColumn("test mIoU (official)", format="%.3f"),
            "inference_ms": st.column_config.NumberColumn("inference ms", format="%.1f"),
        })
    notes = [analysis.class_sets_note(table["classes"]), imported_runs.imported_note(table),
             imported_runs.given_latency_note(table)]
    for note in filter(None, notes):
        st.caption(note)


def tradeoff_ui(table: pd.DataFrame) -> None:
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
                        labels={"inference_ms": "inference (ms per image)", "miou": "test mIoU",
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
    headline_ui(key, runs)
    leaderboard_ui(runs)
    tradeoff_ui(runs)


main()
