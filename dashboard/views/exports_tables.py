"""A run's embedded exports as tables: the Keras model beside each export (file size, latency, mIoU,
pixels changed), what each class pays per export, and an image's flips per Keras class. Every
number is an export's report or the run's metrics.json (``training.runs.tflite_exports``); plain
functions (no Streamlit).
"""

from __future__ import annotations

import pandas as pd

from training.evaluation.variants import MIOU, MIOU_OFFICIAL
from training.viz import changed_shares

KERAS = "Keras (model.keras)"
DELTA = f"{MIOU.label()} - Keras"


MEASURED = "latency measured"
AT_EXPORT = "at export"


def exports_table(metrics: dict, reports: dict[str, dict], keras_latency: dict | None = None) -> pd.DataFrame:
    """One row for the Keras model (its metrics.json; its latency from ``keras_latency``, the run's
    ``training.runs.latency.latency_headline``: latency.json's median where the run has one), one
    per export (its report)."""
    keras_bytes = next((r.get("keras_file_bytes") for r in reports.values() if r.get("keras_file_bytes")), None)
    headline = keras_latency or {"inference_ms": metrics.get("inference_ms"), "latency_measured": None}
    rows = [{"model": KERAS, "quantisation": "float32", "size (MB)": _megabytes(keras_bytes),
             "latency (ms)": headline.get("inference_ms"), MEASURED: headline.get("latency_measured") or "",
             "threads": None, MIOU.label(): metrics.get("miou"),
             MIOU_OFFICIAL.label(): metrics.get("miou_official"), DELTA: 0.0, "pixels changed": 0.0}]
    for name, report in reports.items():
        latency, quantize = report.get("latency") or {}, report.get("quantize")
        rows.append({"model": name, "quantisation": "float32" if quantize == "none" else quantize,
                     "size (MB)": _megabytes(report.get("file_bytes")), "latency (ms)": latency.get("ms_per_image"),
                     MEASURED: AT_EXPORT, "threads": latency.get("threads"), MIOU.label(): report.get("miou"),
                     MIOU_OFFICIAL.label(): report.get("miou_official"), DELTA: report.get("delta_miou"),
                     "pixels changed": (report.get("changed_pixels") or {}).get("share")})
    frame = pd.DataFrame(rows)
    for column in frame.columns[2:]:
        if column != MEASURED:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def keras_latency_note(keras_latency: dict | None) -> str:
    """How the Keras row's latency was measured, for the page's caption."""
    how = (keras_latency or {}).get("latency_how")
    if not how:
        return "the Keras row's is metrics.json's, measured with TensorFlow when the run was trained"
    return f"the Keras row's is the run's own measurement with TensorFlow: {how}"


def _megabytes(size) -> float | None:
    return None if size is None else size / 1e6


def delta_frame(reports: dict[str, dict], names: list[str], official: bool = False) -> pd.DataFrame:
    """Per class (rows) and export (columns): the export's IoU minus the Keras model's."""
    field = "delta_official" if official else "delta"
    return pd.DataFrame({name: [(report.get(field) or {}).get(c) for c in names] for name, report in reports.items()},
                        index=names, dtype=float)


def changed_frame(reports: dict[str, dict], names: list[str]) -> pd.DataFrame:
    """Per Keras class (rows) and export (columns): the share of its pixels the export changed."""
    return pd.DataFrame({name: [((report.get("changed_pixels") or {}).get("by_keras_class") or {}).get(c)
                                for c in names] for name, report in reports.items()}, index=names, dtype=float)


def flip_table(changed, pixels, names) -> pd.DataFrame:
    """Per Keras class with pixels: its pixels, those changed and their share (``training.viz.changed_shares``)."""
    shares = changed_shares(changed, pixels)
    rows = [{"Keras class": name, "pixels": int(p), "changed": int(c), "share changed": float(share)}
            for name, c, p, share in zip(names, changed, pixels, shares) if p]
    return pd.DataFrame(rows, columns=["Keras class", "pixels", "changed", "share changed"])
