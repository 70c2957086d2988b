"""A run's predictions in the official submission layout: ``python -m training export-predictions``.

    <out>/<city>/<city>_<seq>_<frame>_pred_labelIds.png   (or _pred_trainIds.png, _pred_color.png)

labelIds is what the official ``evalPixelLevelSemanticLabeling`` and the benchmark server read
(they find a prediction by ``<city>_<seq>_<frame>*.png``); trainIds and colours are for other
tools. A class is written as the label that stands for it (``class_to_label_id``: a category as
its first evaluated label, void as unlabeled), so the official script gives back the run's
official-compatible numbers. One case cannot round-trip: a ``categories8`` run imported from
files that predicted a label the official evaluation ignores but whose category is not void
(parking, rail track, guard rail...) stored that label's category, and exports it as such.

The folder appears only when complete: files are written into a hidden sibling folder that is
renamed to ``out`` at the end; an existing, non-empty ``out`` is never written into.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from training.evaluation.formats import FORMATS, class_to_label_id, label_ids_to
from training.files import fsync_directory, fsync_tree
from training.runs.health import inspect_run
from training.runs.layout import ArtifactError
from training.runs.reader import get_run


def export_file_name(stem: str, format_name: str) -> str:
    return f"{stem}_pred_{format_name}.png"


def export_predictions(name: str, out: str | os.PathLike, format: str = "labelIds",
                       artifacts: str | os.PathLike | None = None, data_root: str | os.PathLike | None = None,
                       progress: bool = True) -> dict:
    """Write the predictions of run ``name`` under ``out``; returns what was written.

    Raises:
        ArtifactError: the run is damaged, kept no predictions, or its dataset changed.
        ValueError: an unknown format, or ``out`` exists and is not empty.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"{out} exists and is not an empty folder: choose another --out")
    run = get_run(name, artifacts)
    health = inspect_run(run)
    if not health.ok:
        raise ArtifactError(f"run {run.name} cannot be exported: {health.reason}")
    ids = [int(row["id"]) for row in run.per_image()]
    if not ids or not (run.path / "predictions" / f"{ids[0]}.png").exists():
        raise ArtifactError(f"run {run.name} kept no predictions (evaluation.save_predictions was off): "
                            f"re-evaluate it to export them")
    dataset = run.open_dataset(data_root)
    to_label_id = class_to_label_id(run.metrics["classes"])
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        for image_id in tqdm(ids, desc="export", unit="img", disable=not progress):
            entry = dataset.entry(image_id)
            pixels = label_ids_to(to_label_id[run.prediction(image_id)], format)
            target = staging / entry.city / export_file_name(entry.stem, format)
            target.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(target, compress_level=3)
        fsync_tree(staging)
        if out.exists():
            out.rmdir()  # empty, checked above
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, out)
        fsync_directory(out.parent)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return {"run": run.name, "out": str(out), "format": format, "images": len(ids),
            "classes": run.metrics["classes"], "split": run.metrics.get("split")}
