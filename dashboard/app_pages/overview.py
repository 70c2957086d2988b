"""Overview: what the product does, the deployed model, the leaderboard, the trade-off, and the
runs of the store that cannot be shown (with the reason)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

import dashboard.analysis as analysis
import dashboard.store as store
from dashboard.analysis import number_text


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
        st.warning("No run is deployed: `python -m training deploy --best` deploys the best on "
                   "validation mIoU.")
        return
    row = rows.iloc[0]
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
    st.dataframe(
        shown[["run", "model", "backbone", "loss_name", "augmentation", "size", "classes", "params", "train_minutes",
               "val_miou", "miou", "miou_official", "inference_ms", "deployed"]],
        hide_index=True, width="stretch",
        column_config={
            "loss_name": st.column_config.TextColumn("loss"),
            "classes": st.column_config.TextColumn("class set"),
            "params": st.column_config.NumberColumn("params", format="%d"),
            "train_minutes": st.column_config.NumberColumn("training (min)", format="%.1f"),
            "val_miou": st.column_config.NumberColumn("val mIoU", format="%.3f"),
            "miou": st.column_config.NumberColumn("test mIoU", format="%.3f"),
            "miou_official": st.column_config.NumberColumn("test mIoU (official)", format="%.3f"),
            "inference_ms": st.column_config.NumberColumn("inference ms", format="%.1f"),
        })
    note = analysis.class_sets_note(table["classes"])
    if note:
        st.caption(note)


def tradeoff_ui(table: pd.DataFrame) -> None:
    st.subheader("Accuracy against speed")
    points, left_out = analysis.tradeoff_points(table)
    several = points["classes"].nunique() > 1
    figure = px.scatter(points, x="inference_ms", y="miou", size="params", color="model", hover_name="run",
                        symbol="classes" if several else None, size_max=40,
                        labels={"inference_ms": "inference (ms per image)", "miou": "test mIoU",
                                "classes": "class set"},
                        hover_data={"params": ":,", "miou_official": ":.3f", "val_miou": ":.3f"})
    figure.update_layout(height=380, margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(figure, width="stretch")
    st.caption("Marker size: number of parameters"
               + ("; marker shape: class set (mIoU of different class sets are not comparable)" if several else "")
               + ". Up and to the left is better."
               + (f" Not plotted (no test mIoU or inference time): {', '.join(left_out)}." if left_out else ""))


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
