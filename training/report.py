"""The comparison table of all runs (the source's experiment table), as Markdown or CSV."""

from __future__ import annotations

import csv
import io

from training.artifacts import ArtifactError, Run

COLUMNS = ("run", "model", "backbone", "loss", "augmentation", "size", "params", "train time",
           "train loss", "val loss", "mIoU", "val mIoU", "test mIoU", "test mIoU (official)", "inference ms")


def _duration(seconds) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def _number(value, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def table_rows(runs: list[Run]) -> list[dict]:
    """One row per run, in COLUMNS order; a damaged run gets a row that says so."""
    rows = []
    for run in runs:
        try:
            m = run.metrics
        except ArtifactError as error:
            rows.append({"run": run.name, "model": f"unreadable: {error}"})
            continue
        evaluated = m.get("split")
        rows.append({
            "run": run.name, "model": m.get("model"), "backbone": m.get("backbone") or "-",
            "loss": m.get("loss_name"), "augmentation": m.get("augmentation"),
            "size": "x".join(str(v) for v in m.get("image_size", [])),
            "params": m.get("params"), "train time": _duration(m.get("train_seconds")),
            "train loss": _number(m.get("loss"), 4), "val loss": _number(m.get("val_loss"), 4),
            "mIoU": _number(m.get("train_miou")), "val mIoU": _number(m.get("val_miou")),
            "test mIoU": _number(m.get("miou")) if evaluated == "test" else "",
            "test mIoU (official)": _number(m.get("miou_official")) if evaluated == "test" else "",
            "inference ms": _number(m.get("inference_ms"), 1),
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
