"""The Overview's leaderboard and trade-off chart as tables: one row per run, the columns people read,
every text cell a string ("" where nothing is known). Plain functions (no Streamlit)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboard.views.numbers import column_width
from dashboard.views.run_names import source
from training.runs.layout import IMPORTED
from training.runs.summary import coverage_text

LEADERBOARD_COLUMNS = ["run", "uid", "source", "model", "backbone", "loss_name", "augmentation", "size", "params",
                       "train_seconds", "val_miou", "miou", "miou_official", "inference_ms", "split",
                       "classes", "coverage", "deployed"]
NUMBER_COLUMNS = ("params", "train_seconds", "val_miou", "miou", "miou_official", "inference_ms")
TRAINING_TEXT = ("backbone", "loss_name", "augmentation")  # what only a run trained here has

# The leaderboard's shown columns: short headers (their help says the rest), each column as wide
# as its longest cell (``column_widths``: a run's name is never cut), the run pinned at the left
# while the others scroll; the columns that would repeat one value on every row left out (the
# caption names that value). The table's other columns stay in its data, for the tests and a download.
SHOWN = {  # column: (header, width in pixels of its numbers; None: as wide as its longest text)
    "name": ("run", None), "model_text": ("model", None), "training": ("loss, aug.", None), "size": ("size", None),
    "classes": ("class set", None), "params_m": ("params", 60), "train_minutes": ("train", 70),
    "val_miou": ("val mIoU", 60), "miou": ("mIoU (all classes)", 60), "vs_reference": ("B - A", 60),
    "verdict": ("95% interval", None), "miou_official": ("mIoU (official)", 60), "inference_ms": ("ms/image", 60),
    "latency_measured": ("measured", None), "tc": ("TC", 60)}
NUMBER_FORMATS = {"params_m": "%.2f M", "train_minutes": "%.1f min", "val_miou": "%.3f", "miou": "%.3f",
                  "vs_reference": "%+.3f", "miou_official": "%.3f", "inference_ms": "%.1f", "tc": "%.3f"}
HEADER_LIMIT = 24  # characters of a header at most: the help says the rest


def headers(per_image: bool) -> dict[str, str]:
    """The shown columns' headers; the mIoU columns say how they are averaged, and the validation
    mIoU, which training measured pooled, says so beside per-image ones."""
    named = {column: header for column, (header, _) in SHOWN.items()}
    if per_image:
        named.update(miou="mIoU/image (all classes)", miou_official="mIoU/image (official)",
                     val_miou="val mIoU (pooled)")
    return named


def column_widths(frame: pd.DataFrame, named: dict[str, str]) -> dict[str, int]:
    """Each shown column's width in pixels: its header whole, and every cell of a text column."""
    widths = {}
    for column, (_, numbers) in SHOWN.items():
        texts = [] if numbers is not None or column not in frame else [str(v) for v in frame[column]]
        widths[column] = column_width(named[column], texts, low=numbers or 50)
    return widths


ONLY_WHEN_THEY_DIFFER = ("training", "size", "classes")
ONLY_WHEN_KNOWN = ("tc",)  # temporal consistency: only runs that predicted a drive have one


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


BUSY = "measured while busy"  # the trade-off chart's legend entry for a latency measured under load
BUSY_SUFFIX = ", busy"  # how ``training.runs.latency.short_text`` ends for such a figure


def measured_while_busy(measured) -> bool:
    """Whether a run's ``latency_measured`` (``training.runs.latency.short_text``) says other processes
    took the CPU while its latency was measured (the figure is pessimistic)."""
    return isinstance(measured, str) and measured.endswith(BUSY_SUFFIX)


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


def leaderboard_frame(shown: pd.DataFrame, names: dict[str, str], how: dict[str, dict],
                      temporal: dict[str, float | None] | None = None) -> pd.DataFrame:
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
        tc=pd.to_numeric(pd.Series([(temporal or {}).get(run) for run in shown["run"]], index=shown.index,
                                   dtype=object), errors="coerce"),
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
        if column in ONLY_WHEN_KNOWN and frame[column].isna().all():
            continue
        values = set(frame[column]) - {""} if column in ONLY_WHEN_THEY_DIFFER else None
        if values is not None and len(values) <= 1:
            same += [f"{SHOWN[column][0]} {next(iter(values))}"] if values else []
            continue
        columns.append(column)
    return columns, same
