"""Overview: what the product does, the deployed model, the leaderboard, the trade-off."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

import dashboard.analysis as analysis
import dashboard.store as store


def headline_ui(table: pd.DataFrame) -> None:
    deployed = table[table["deployed"]]
    if deployed.empty:
        st.warning("No run is deployed: `python -m training deploy --best` deploys the best on "
                   "validation mIoU.")
        return
    row = deployed.iloc[0]
    st.subheader(f"Deployed: {row['run']}")
    columns = st.columns(5)
    columns[0].metric("Test mIoU (all classes)", f"{row['miou']:.3f}")
    columns[1].metric("Test mIoU (official)", f"{row['miou_official']:.3f}")
    columns[2].metric("Validation mIoU", f"{row['val_miou']:.3f}" if pd.notna(row["val_miou"]) else "-")
    columns[3].metric("Parameters", f"{row['params'] / 1e6:.2f} M")
    columns[4].metric("Inference", f"{row['inference_ms']:.1f} ms/image")
    st.caption(f"{row['model']} ({row['backbone']}), loss {row['loss_name']}, "
               f"augmentation {row['augmentation']}, trained at {row['size']} in "
               f"{row['train_seconds'] / 60:.1f} min; scores on the {row['split']} split, {row['classes']}.")


def leaderboard_ui(table: pd.DataFrame) -> None:
    st.subheader("Leaderboard")
    shown = analysis.leaderboard(table)
    st.dataframe(
        shown[["run", "model", "backbone", "loss_name", "augmentation", "size", "params", "train_minutes",
               "val_miou", "miou", "miou_official", "inference_ms", "deployed"]],
        hide_index=True, width="stretch",
        column_config={
            "loss_name": st.column_config.TextColumn("loss"),
            "params": st.column_config.NumberColumn("params", format="%d"),
            "train_minutes": st.column_config.NumberColumn("training (min)", format="%.1f"),
            "val_miou": st.column_config.NumberColumn("val mIoU", format="%.3f"),
            "miou": st.column_config.NumberColumn("test mIoU", format="%.3f"),
            "miou_official": st.column_config.NumberColumn("test mIoU (official)", format="%.3f"),
            "inference_ms": st.column_config.NumberColumn("inference ms", format="%.1f"),
        })


def tradeoff_ui(table: pd.DataFrame) -> None:
    st.subheader("Accuracy against speed")
    figure = px.scatter(table, x="inference_ms", y="miou", size="params", color="model", hover_name="run",
                        size_max=40, labels={"inference_ms": "inference (ms per image)", "miou": "test mIoU"},
                        hover_data={"params": ":,", "miou_official": ":.3f", "val_miou": ":.3f"})
    figure.update_layout(height=380, margin=dict(l=10, r=10, t=10, b=10))
    st.plotly_chart(figure, width="stretch")
    st.caption("Marker size: number of parameters. Up and to the left is better.")


def main() -> None:
    st.title("Street-scene segmentation")
    st.markdown("Train, compare and show semantic-segmentation models of street scenes. See where and why "
                "models differ: image by image, class by class, confusion by confusion.")
    runs = store.require_runs()
    headline_ui(runs)
    leaderboard_ui(runs)
    tradeoff_ui(runs)


main()
