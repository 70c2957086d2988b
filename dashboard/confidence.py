"""Confidence maps and calibration as the pages show them: numpy and pandas only (no Streamlit).

A run evaluated by the current code stores, beside each prediction, ``confidence/<id>.png``: the
top softmax probability of every pixel as a grey level ``round(255 x p)``; ``Run.confidence``
reads it back as ``level / 255`` in float32. Its metrics.json holds a ``calibration`` block
(``training.evaluation.calibration.summarize_calibration``). Older runs have neither; imported
runs never have maps (another tool's masks carry no probabilities).

The explorer shows a map at display size (nearest, like the class maps, so a greyed pixel of the
thresholded overlay is a pixel of the heatmap), but the share of pixels kept at a threshold is
counted at full size, from a 256-bin histogram of the grey levels: any threshold is then a sum.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.analysis import hover_grid
from dashboard.display import display_factor, shrink_classes
from training.data.labels import ClassSet
from training.viz import overlay

NO_MAPS_NOTE = "no confidence maps: this run was evaluated before they were stored (train it again to see them)"
IMPORTED_NOTE = "imported predictions carry no confidence"
NO_CALIBRATION_NOTE = ("no calibration: this run was evaluated before confidence was stored "
                       "(train it again, or evaluate it again, to see it)")
IMPORTED_CALIBRATION_NOTE = "imported predictions carry no confidence, so no calibration"

# What ``Run.confidence`` returns for each stored grey level (float32, as it computes it): a
# threshold compared with these gives exactly the pixels ``Run.confidence(id) >= threshold`` keeps.
LEVELS = np.arange(256, dtype=np.float32) / 255.0

# A viridis-like colour map (dark violet = 0, yellow = 1): matplotlib's viridis at nine stops,
# interpolated linearly to 256 colours (no matplotlib in the dashboard's requirements).
_STOPS = np.array([(68, 1, 84), (72, 40, 120), (62, 73, 137), (49, 104, 142), (38, 130, 142),
                   (31, 158, 137), (53, 183, 121), (110, 206, 88), (253, 231, 37)], dtype=np.float64)
COLORMAP = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_STOPS)), _STOPS[:, channel])
                     for channel in range(3)], axis=1).round().astype(np.uint8)


def to_levels(confidence: np.ndarray) -> np.ndarray:
    """``Run.confidence``'s float32 values back to the stored grey levels (exact: v = level / 255)."""
    return np.rint(np.asarray(confidence, dtype=np.float32) * 255.0).astype(np.uint8)


@dataclass(frozen=True)
class ConfidenceView:
    """A run's confidence map for one image, as the explorer needs it (no full-size array)."""

    problem: str | None  # why it cannot be shown (then the rest is None)
    levels: np.ndarray | None = None  # display size, grey levels by nearest
    hover: np.ndarray | None = None  # full-size grey levels at the hover grid's cells
    histogram: np.ndarray | None = None  # (256,) full-size pixels per grey level

    def kept_share(self, threshold: float) -> float:
        return kept_share(self.histogram, threshold)


def confidence_view(confidence: np.ndarray, truth_shape: tuple[int, int], max_width: int,
                    filename: str) -> ConfidenceView:
    """A full-size confidence map (``Run.confidence``) for a ground truth of ``truth_shape``."""
    if confidence.shape != tuple(truth_shape):
        return ConfidenceView(f"{filename} has shape {confidence.shape}, the ground truth {tuple(truth_shape)}")
    levels = to_levels(confidence)
    rows, columns, _, _ = hover_grid(*levels.shape)
    return ConfidenceView(None, shrink_classes(levels, display_factor(levels.shape[1], max_width)),
                          np.ascontiguousarray(levels[rows, columns]), np.bincount(levels.ravel(), minlength=256))


def kept_share(histogram: np.ndarray, threshold: float) -> float:
    """Share of the pixels whose confidence is at least ``threshold`` (0 for an empty map)."""
    total = int(histogram.sum())
    return float(histogram[LEVELS >= threshold].sum() / total) if total else 0.0


def heatmap(levels: np.ndarray) -> np.ndarray:
    """Grey levels (H, W) as colours of ``COLORMAP`` (H, W, 3)."""
    return COLORMAP[levels]


def confident_overlay(photo: np.ndarray, classes: np.ndarray, levels: np.ndarray, class_set: ClassSet,
                      opacity: float, threshold: float) -> np.ndarray:
    """The prediction's colours over the photo where the confidence reaches ``threshold``; the
    photo in grey (no class colour) where it does not: what a threshold would leave unlabelled."""
    out = overlay(photo, class_set.colorize(classes), opacity)
    below = LEVELS[levels] < threshold
    grey = photo[below].astype(np.float32).mean(axis=-1, keepdims=True).round().astype(np.uint8)
    out[below] = np.repeat(grey, 3, axis=-1)
    return out


_LEVEL_NOTES = np.array([f"<br>confidence {value:.2f}" for value in LEVELS.tolist()])


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


# ---------------------------------------------------------------------------- calibration

CALIBRATION_LISTS = ("edges", "count", "accuracy", "confidence")
CURVE_LISTS = ("threshold", "coverage", "accuracy", "miou")


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
