"""A run's confidence and calibration as the pages show them (no Streamlit).

A run evaluated by the current code stores, beside each prediction, ``confidence/<id>.png``: the
top softmax probability of every pixel as a grey level ``round(255 x p)``, and its metrics.json a
``calibration`` block (``training.evaluation.calibration.summarize_calibration``). Older runs have
neither; imported runs never have maps (another tool's masks carry no probabilities). The share of
pixels a threshold keeps is the core's (``training.evaluation.calibration.kept_share``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from dashboard.views.colours import COLORMAP

NO_MAPS_NOTE = "no confidence maps: this run was evaluated before they were stored (train it again to see them)"
IMPORTED_NOTE = "imported predictions carry no confidence"
NO_CALIBRATION_NOTE = ("no calibration: this run was evaluated before confidence was stored "
                       "(train it again, or evaluate it again, to see it)")
IMPORTED_CALIBRATION_NOTE = "imported predictions carry no confidence, so no calibration"
LEVELS = np.arange(256, dtype=np.float32) / 255.0  # what ``Run.confidence`` returns for each stored grey level
_LEVEL_NOTES = np.array([f"<br>confidence {value:.2f}" for value in LEVELS.tolist()])
CALIBRATION_LISTS = ("edges", "count", "accuracy", "confidence")
CURVE_LISTS = ("threshold", "coverage", "accuracy", "miou")


def to_levels(confidence: np.ndarray) -> np.ndarray:
    """``Run.confidence``'s float32 values back to the stored grey levels (exact: v = level / 255)."""
    return np.rint(np.asarray(confidence, dtype=np.float32) * 255.0).astype(np.uint8)


def hover_notes(levels: np.ndarray) -> np.ndarray:
    """A line per hover cell that names its confidence (appended to the predicted class): one
    lookup, as for the class names, rather than formatting every cell."""
    return _LEVEL_NOTES[levels]


def colorbar_html(width_em: int = 14) -> str:
    """The heatmap's scale: a gradient strip from 0 to 1."""
    stops = ", ".join(f"rgb({r},{g},{b})" for r, g, b in COLORMAP[::32].tolist() + [COLORMAP[-1].tolist()])
    return (f'<div style="display:flex;align-items:center;gap:.4em;font-size:.85em">confidence 0'
            f'<span style="display:inline-block;width:{width_em}em;height:.8em;border:1px solid #888;'
            f'background:linear-gradient(to right, {stops})"></span>1</div>')


def calibration_of(metrics: Mapping) -> dict | None:
    """A run's ``calibration`` block when it is there and whole (lists of matching lengths), else None."""
    block = metrics.get("calibration")
    if not isinstance(block, dict) or not all(isinstance(block.get(name), list) for name in CALIBRATION_LISTS):
        return None
    bins = len(block["count"])
    curve = block.get("coverage_curve")
    if (bins == 0 or len(block["edges"]) != bins + 1 or len(block["accuracy"]) != bins
            or len(block["confidence"]) != bins or not isinstance(curve, dict)
            or not all(isinstance(curve.get(name), list) and len(curve[name]) == bins for name in CURVE_LISTS)):
        return None
    return block


def _numbers(values) -> list[float]:
    return [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else float("nan") for v in values]


def reliability_frame(calibration: Mapping) -> pd.DataFrame:
    """One row per confidence bin that holds pixels: its edges and centre, pixels, accuracy and
    mean confidence (the bars of a reliability diagram; empty bins have neither)."""
    edges = _numbers(calibration["edges"])
    frame = pd.DataFrame({"low": edges[:-1], "high": edges[1:], "pixels": _numbers(calibration["count"]),
                          "accuracy": _numbers(calibration["accuracy"]),
                          "confidence": _numbers(calibration["confidence"])})
    frame["centre"] = (frame["low"] + frame["high"]) / 2
    return frame[(frame["pixels"] > 0) & frame["accuracy"].notna()].reset_index(drop=True)


def coverage_frame(calibration: Mapping) -> pd.DataFrame:
    """mIoU against coverage: one row per threshold that keeps pixels (threshold, coverage,
    accuracy, miou)."""
    curve = calibration["coverage_curve"]
    frame = pd.DataFrame({name: _numbers(curve[name]) for name in CURVE_LISTS})
    return frame[(frame["coverage"] > 0) & frame["miou"].notna()].reset_index(drop=True)
