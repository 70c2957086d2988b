"""Imported runs beside trained ones: what the pages say about where a run's numbers come from.

An imported run (``python -m training import-predictions``) holds another tool's predictions,
scored here: no model, no training, and it may cover only part of its split (its metrics.json
says ``coverage``: n of N images). Its numbers are then over other images than a whole run's, so
every view of them says so, and run A is compared with run B on the images both have, from their
per-image confusion matrices (an evaluation's confusion is the sum of its images', so the numbers
over the shared images are exact, not estimates).

Plain functions of the runs table and of arrays (no Streamlit), like ``dashboard.analysis``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from training.evaluation.metrics import iou_per_class, mean_iou
from training.runs.store import IMPORTED

TRAINED = "trained"
NO_CLASS = "no class"  # what a prediction's 255 means in an imported run (and hover names it)


def source(metrics_source) -> str:
    """A run's source as the pages show it: "imported" or "trained" (older runs do not say)."""
    return IMPORTED if metrics_source == IMPORTED else TRAINED


def run_label(run: str, row: Mapping, with_classes: bool = False) -> str:
    """How selectors name a run: a trained run by its name; an imported one tagged, with its
    coverage when partial ("x (imported, 60 of 100 images)"); ``with_classes``: its class set too."""
    parts = []
    if row.get("source") == IMPORTED:
        covered = row.get("coverage") or ""
        parts.append("imported" + (f", {covered} images" if covered else ""))
    if with_classes:
        parts.append(str(row.get("classes")))
    return f"{run} ({'; '.join(parts)})" if parts else run


def run_labels(runs: pd.DataFrame, with_classes: bool = False) -> dict[str, str]:
    """``run_label`` of every run of the runs table."""
    return {row["run"]: run_label(row["run"], row, with_classes) for row in runs.to_dict("records")}


def imported_note(runs: pd.DataFrame, names: Sequence[str] | None = None) -> str | None:
    """A sentence naming the imported runs among ``names`` (default: all) with their coverage, or None."""
    rows = runs if names is None else runs[runs["run"].isin(list(names))]
    imported = rows[rows["source"] == IMPORTED]
    if imported.empty:
        return None
    described = [f"{row['run']}" + (f" ({row['coverage']} {row['split']} images)" if row["coverage"] else "")
                 for row in imported.to_dict("records")]
    return ("Imported predictions of another tool, scored here (nothing trained, no model to deploy): "
            + ", ".join(described) + ".")


def given_latency_note(runs: pd.DataFrame) -> str | None:
    """A sentence naming the imported runs whose inference time was given at import, or None."""
    given = runs[(runs["source"] == IMPORTED) & runs["inference_ms"].notna()]
    if given.empty:
        return None
    return ("Inference time of " + ", ".join(given["run"]) + ": as given at import, not measured here "
            "as the trained runs' are.")


def partial_coverage_note(runs: pd.DataFrame, names: Sequence[str]) -> str | None:
    """When ``names`` are several and some are scored on part of their split: which, and that
    their numbers are over other images than the others' (None otherwise)."""
    rows = runs[runs["run"].isin(list(names))]
    partial = rows[rows["coverage"] != ""]
    if partial.empty or len(rows) < 2:
        return None
    which = ", ".join(f"{row['run']} on {row['coverage']} {row['split']} images" for row in partial.to_dict("records"))
    return (f"Scored on part of the split: {which}. The runs' numbers here are over different images; "
            "Run A against run B below compares two runs on the images both have.")


# ---------------------------------------------------------------------------- run A against run B

def scored_ids(ids: np.ndarray) -> set[int]:
    return {int(i) for i in ids if i >= 0}


def shared_ids(ids_a: np.ndarray, ids_b: np.ndarray) -> list[int]:
    """The image ids both runs scored, in A's order."""
    other = scored_ids(ids_b)
    return [int(i) for i in ids_a if int(i) in other]


def metrics_over(ids: np.ndarray, matrices: np.ndarray, keep: Sequence[int], names: Sequence[str]) -> dict:
    """A run's per-class IoU and mIoU over the images ``keep`` only (the keys of a metrics.json that
    ``analysis.difference_frame`` reads), from its N x K x K per-image confusion matrices (rows in
    ``ids`` order; a sink column beyond the ``names``, such as an imported run's "no class", counts as
    wrong and has no IoU of its own)."""
    wanted = set(int(i) for i in keep)
    rows = [number for number, image_id in enumerate(ids) if int(image_id) in wanted]
    total = matrices[rows].sum(axis=0) if rows else np.zeros(matrices.shape[1:], dtype=np.int64)
    iou = iou_per_class(total)[:len(names)]
    return {"class_names": list(names), "miou": mean_iou(iou),
            "iou": {name: None if np.isnan(value) else float(value) for name, value in zip(names, iou)}}


def shared_images_text(run_a: str, count_a: int, run_b: str, count_b: int, shared: int, split: str) -> str:
    """What the A-B comparison is over when the two runs scored different images."""
    return (f"{run_a} scored {count_a} {split} images, {run_b} {count_b}: compared on the {shared} images both "
            "have (their numbers there, from each image's confusion matrix; the leaderboard's are over each "
            "run's own images).")
