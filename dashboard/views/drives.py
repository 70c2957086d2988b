"""The Drive page's tables, from the runs' temporal.json (``training.runs.sequences``): pure
functions, no Streamlit. Every number is the core's (``training.evaluation.temporal``)."""

from __future__ import annotations

import hashlib

import pandas as pd

from dashboard.views.numbers import number_text
from dashboard.views.text import plain

MAX_RUNS = 4  # runs side by side in one video
TC = "temporal consistency"
FLICKER = "flicker rate"


def predict_command(run: str, sequence: str, source: str = "trained") -> str:
    """The command that makes ``run``'s predictions of ``sequence``: an imported run (no model)
    takes its tool's predictions of the frames."""
    if source == "imported":
        return f"python -m training import-sequences {run} --pred-dir DIR --sequence {sequence}"
    return f"python -m training predict-sequence {run} --sequence {sequence}"


def sequence_label(sequence) -> str:
    """``stuttgart_00 (drive, 120 frames)``; a snippet with its annotated frame."""
    text = f"{sequence.name} ({sequence.kind}, {len(sequence)} frames"
    return text + (", annotated frame" if sequence.annotated_id is not None else "") + ")"


def flicker_frame(documents: dict[str, dict]) -> pd.DataFrame:
    """One row per run and consecutive pair: ``run``, ``frame`` (the later frame's number),
    ``flicker rate`` (its counted pixels whose class changed) and ``pair mIoU``."""
    rows = []
    for run, document in documents.items():
        frames = document.get("frames") or []
        for number, pair in zip(frames[1:], document.get("pairs") or []):
            rows.append({"run": run, "frame": number, FLICKER: pair.get("flicker_rate"),
                         "pair mIoU": pair.get("miou")})
    return pd.DataFrame(rows, columns=["run", "frame", FLICKER, "pair mIoU"])


def tc_table(documents: dict[str, dict]) -> pd.DataFrame:
    """Temporal consistency per class (rows) and run (columns), then the sequence's TC and flicker
    rate; empty cells where a class never occurs in a run's frames."""
    names: list[str] = []
    for document in documents.values():
        names += [name for name in document.get("class_names") or document["temporal_consistency_per_class"]
                  if name not in names]
    table = pd.DataFrame(index=[*names, TC, FLICKER], columns=list(documents), dtype=float)
    for run, document in documents.items():
        per_class = document.get("temporal_consistency_per_class") or {}
        for name in names:
            table.loc[name, run] = per_class.get(name)
        table.loc[TC, run] = document.get("temporal_consistency")
        table.loc[FLICKER, run] = document.get("flicker_rate")
    table.index.name = "class"
    return table


def tc_markdown(table: pd.DataFrame, labels: dict[str, str] | None = None) -> str:
    """``tc_table`` as a Markdown table (three decimals, "-" for an empty cell): drawn with the
    page's text, where a data grid would load its 1.2 MB of scripts while the video starts."""
    labels = labels or {}
    header = ["class", *(labels.get(run, run) for run in table.columns)]
    lines = ["| " + " | ".join(plain(text) for text in header) + " |",
             "|---|" + "---:|" * len(table.columns)]
    for name, row in table.iterrows():
        cells = [number_text(value) for value in row]
        text = plain(name)
        lines.append("| " + " | ".join([f"**{text}**" if name in (TC, FLICKER) else text, *cells]) + " |")
    return "\n".join(lines)


def video_key(sequence: str, runs: list[tuple[str, str, tuple]], fps: float, layout: str, width: int) -> str:
    """The name of a rendered video: a hash of the sequence, each run's name, uid and the stamp of
    its predictions of the sequence (a sequence predicted again is another video), and the
    rendering's settings."""
    text = repr((sequence, [tuple(run) for run in runs], float(fps), layout, int(width)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def overall_tc_text(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
