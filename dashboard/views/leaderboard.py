"""The Overview's leaderboard and trade-off chart as tables: one row per run, the columns people read,
every text cell a string ("" where nothing is known). Plain functions (no Streamlit)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.views.run_names import source
from training.runs.layout import IMPORTED
from training.runs.summary import coverage_text

LEADERBOARD_COLUMNS = ["run", "uid", "source", "model", "backbone", "loss_name", "augmentation", "size", "params",
                       "train_seconds", "val_miou", "miou", "miou_official", "inference_ms", "split",
                       "classes", "coverage", "deployed"]
NUMBER_COLUMNS = ("params", "train_seconds", "val_miou", "miou", "miou_official", "inference_ms")
TRAINING_TEXT = ("backbone", "loss_name", "augmentation")  # what only a run trained here has

# The leaderboard's shown columns (a 1600 px window with the sidebar open leaves ~1150 px): short
# headers, pixel widths, and the columns that would repeat one value on every row left out (the
# caption names that value). The table's other columns stay in its data, for the tests and a download.
SHOWN = {  # column: (header, pixel width)
    "name": ("run", 150), "model_text": ("model", 95), "training": ("loss, aug.", 95), "size": ("size", 65),
    "classes": ("class set", 85), "params_m": ("params (M)", 60), "train_minutes": ("train (min)", 60),
    "val_miou": ("val mIoU", 60), "miou": ("mIoU (all classes)", 95), "vs_reference": ("B - A", 55),
    "verdict": ("95% interval", 130), "miou_official": ("mIoU (official)", 95), "inference_ms": ("ms/image", 60),
    "latency_measured": ("measured", 100)}
ONLY_WHEN_THEY_DIFFER = ("training", "size", "classes")


def leaderboard_row(summary: dict) -> dict:
    """A run summary (``training.runs.summary.run_summary``) as the runs table holds it. An imported
    run has no training: its training columns are empty (not "-", which says a trained run has none,
    nor "None"); ``coverage`` is "60 of 100" for a run scored on part of its split, else ""."""
    kind = source(summary["source"])
    imported = kind == IMPORTED
    blank = "" if imported else "-"
    row = {**summary, "source": kind, "classes": str(summary["classes"]),
           "backbone": summary["backbone"] or blank, "coverage": coverage_text(summary),
           "size": "x".join(map(str, summary["image_size"])) if isinstance(summary["image_size"], list) else blank}
    if imported:
        row.update({column: row[column] or "" for column in TRAINING_TEXT})
    return row


def runs_frame(summaries: list[dict]) -> pd.DataFrame:
    """One row per whole run (``leaderboard_row``), its numbers as numbers (a damaged one NaN)."""
    table = pd.DataFrame([leaderboard_row(s) for s in summaries if "error" not in s], columns=LEADERBOARD_COLUMNS)
    for column in NUMBER_COLUMNS:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    return table


def leaderboard(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs table, best test mIoU first (runs without one last), with the training time in
    minutes."""
    minutes = pd.to_numeric(runs["train_seconds"], errors="coerce") / 60
    return runs.assign(train_minutes=minutes).sort_values("miou", ascending=False, na_position="last")


def tradeoff_points(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The runs that have both a test mIoU and an inference time (marker size: parameters, the
    smallest where unknown), and the names of those left out."""
    plotted = runs.dropna(subset=["miou", "inference_ms"])
    left_out = [str(run) for run in runs["run"] if run not in set(plotted["run"])]
    params = pd.to_numeric(plotted["params"], errors="coerce")
    return plotted.assign(params=params.fillna(params.min() if params.notna().any() else 1)), left_out


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
