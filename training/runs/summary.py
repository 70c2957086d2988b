"""A run's headline numbers, and the comparison table of all runs (the source's experiment table).

``run_summary`` is the one place that says what a run is at a glance: the leaderboard of the
dashboard, ``python -m training table`` and the API's ``/api/runs`` and ``/api/model`` are all
built from it, so they can never disagree.
"""

from __future__ import annotations

import csv
import io
import math
import os

from training.runs.deployment import deployed_run
from training.runs.health import inspect_store
from training.runs.latency import latency_headline
from training.runs.layout import ArtifactError
from training.runs.reader import Run

# Keys of metrics.json that make a run's summary, in the order a table shows them.
SUMMARY_KEYS = ("model", "backbone", "encoder_weights", "loss_name", "augmentation", "image_size", "classes",
                "split", "params", "train_seconds", "epochs", "best_epoch", "loss", "val_loss", "train_miou",
                "val_miou", "miou", "miou_official", "pixel_accuracy", "inference_ms", "created", "source",
                "coverage")

COLUMNS = ("run", "source", "model", "backbone", "loss", "augmentation", "size", "params", "train time",
           "train loss", "val loss", "mIoU", "val mIoU", "test mIoU", "test mIoU (official)",
           "boundary mIoU", "iIoU", "images", "inference ms", "latency measured")
ANATOMY_KEYS = ("mean_boundary_iou", "mean_iiou")  # of anatomy.json, None for a run without one


def run_summary(run: Run, deployed: str | None = None) -> dict:
    """``run``, the ``SUMMARY_KEYS`` of its metrics.json (None where absent) and ``deployed``;
    ``inference_ms`` from latency.json when the run has one, with ``latency_how`` and
    ``latency_measured`` saying how it was measured (``training.runs.latency.latency_headline``).

    Raises:
        ArtifactError: metrics.json is missing or damaged.
    """
    metrics = run.metrics
    summary = {"run": run.name, "uid": run.uid, **{key: metrics.get(key) for key in SUMMARY_KEYS}}
    summary["deployed"] = deployed is not None and deployed == run.name
    summary["source"] = summary["source"] or "trained"
    summary.update(_anatomy_headline(run))
    summary.update(latency_headline(run, metrics))
    return summary


def _anatomy_headline(run: Run) -> dict:
    """Mean Boundary IoU and iIoU; None when the run has no anatomy (or a damaged one: the
    run's own numbers still show, the anatomy pages say what is wrong)."""
    try:
        anatomy = run.anatomy() if run.has_anatomy else {}
    except ArtifactError:
        anatomy = {}
    return {key: anatomy.get(key) if isinstance(anatomy.get(key), (int, float)) else None for key in ANATOMY_KEYS}


def coverage_text(summary: dict) -> str:
    """"60 of 100" for a run scored on part of its split, "" for a whole one (or unknown)."""
    coverage = summary.get("coverage")
    if not isinstance(coverage, dict):
        return ""
    images, split_images = coverage.get("images"), coverage.get("split_images")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (images, split_images)) \
            or images == split_images:
        return ""
    return f"{images} of {split_images}"


def deployed_name(root: str | os.PathLike | None = None) -> str | None:
    """The deployed run's name; None when nothing (readable) is deployed."""
    try:
        run = deployed_run(root)
    except ArtifactError:
        return None
    return run.name if run else None


def run_summaries(root: str | os.PathLike | None = None) -> list[dict]:
    """``run_summary`` of every run, oldest first; a damaged run is ``{"run", "error"}`` with
    every problem that keeps it from being shown (``training.runs.health``)."""
    deployed = deployed_name(root)
    rows = []
    for health in inspect_store(root):
        if health.ok:
            rows.append(run_summary(health.run, deployed))
        else:
            rows.append({"run": health.run.name, "error": health.reason})
    return rows


# ---------------------------------------------------------------------------- the table

def _duration(seconds) -> str:
    if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        return ""
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def _number(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def table_rows(summaries: list[dict]) -> list[dict]:
    """One row per run summary, in COLUMNS order; a damaged run gets a row that says so."""
    rows = []
    for s in summaries:
        if "error" in s:
            rows.append({"run": s["run"], "model": f"unreadable: {s['error']}"})
            continue
        tested = s["split"] == "test"
        rows.append({
            "run": s["run"], "source": s["source"], "model": s["model"], "backbone": s["backbone"] or "-",
            "loss": s["loss_name"] or "", "augmentation": s["augmentation"] or "",
            "size": "x".join(str(v) for v in s["image_size"] or []),
            "params": "" if s["params"] is None else s["params"], "train time": _duration(s["train_seconds"]),
            "train loss": _number(s["loss"], 4), "val loss": _number(s["val_loss"], 4),
            "mIoU": _number(s["train_miou"]), "val mIoU": _number(s["val_miou"]),
            "test mIoU": _number(s["miou"]) if tested else "",
            "test mIoU (official)": _number(s["miou_official"]) if tested else "",
            "boundary mIoU": _number(s.get("mean_boundary_iou")) if tested else "",
            "iIoU": _number(s.get("mean_iiou")) if tested else "",
            "images": coverage_text(s) or "all",
            "inference ms": _number(s["inference_ms"], 1),
            "latency measured": s.get("latency_how") or "",
        })
    return rows


def to_markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in COLUMNS) + " |")
    return "\n".join(lines)


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
