"""Other frameworks' predictions as runs: ``python -m training import-predictions``.

A folder of prediction PNGs (labelIds, trainIds or official colours; from mmsegmentation,
torchvision, anything) is scored exactly as ``evaluate-masks`` scores it
(``training.evaluation.masks.score_predictions``) and published as a normal run: the same files
as a trained run, written into a staging folder and renamed into place, with
``source: imported`` in metrics.json and no ``model.keras``. The dashboard then shows it next to
the runs trained here; the API cannot serve it (there is no model).

A folder may cover part of the split: the images with a prediction are scored and the run records
its ``coverage`` (n of N), which every view of its numbers shows. A file for an image outside
the split, or for no image of the dataset, is an error naming it: numbers over the wrong images
would look right and be wrong.

With ``sequence_dir``, the tool's per-frame predictions of drive sequences come along
(``training.runs.imported_sequences``): matched and checked before any image is scored, staged
inside the new run as ``predict-sequence`` stores a trained run's, and published with it.

Publication is ``RunWriter.commit``: one rename, its steps fault points (``PUBLISH_FAULTS``) where
tests kill a real import; the run is in ``runs/`` whole, or not at all.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import yaml
from tqdm import tqdm

from training.data.cityscapes import resolve_data_root
from training.data.index import IndexEntry, index_path_for, load_or_build_index
from training.data.labels import get_class_set
from training.evaluation.masks import match_predictions, score_predictions
from training.evaluation.temporal import PredictionReader
from training.runs.anatomy import stage_anatomy
from training.runs.imported_sequences import import_sequence, match_sequence_files
from training.runs.layout import IMPORTED, PER_IMAGE_CONFUSION, PER_IMAGE_OFFICIAL_CONFUSION
from training.runs.sequences import RunFolder, dataset_sequences
from training.runs.writer import RunWriter

IMPORT_SPLIT_DEFAULT = "test"


def import_predictions(
    pred_dir: str | os.PathLike,
    name: str,
    data_root: str | os.PathLike | None = None,
    index_path: str | None = None,
    classes: str = "categories8",
    format: str = "auto",
    split: str = IMPORT_SPLIT_DEFAULT,
    resize: str | None = None,
    model: str | None = None,
    params: int | None = None,
    inference_ms: float | None = None,
    artifacts: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = True,
    sequence_dir: str | os.PathLike | None = None,
) -> tuple[Path, dict]:
    """Score the predictions under ``pred_dir`` and publish them as run ``name``, with the frame
    predictions of drive sequences under ``sequence_dir`` if given (every sequence with a file
    there, each whole; read in the format of the images' predictions).

    Returns:
        The published run folder (``runs/<name>``, or ``<name>-2``... if the name is taken) and
        its metrics.json.

    Raises:
        DatasetError: a file that does not match an image of ``split`` (or, under ``sequence_dir``,
            a frame of a sequence), a sequence lacking frames, a file of another size (without
            ``resize``) or not in the format; named. No run is published then.
        ArtifactError: the run cannot be written.
    """
    if params is not None and params < 0:
        raise ValueError(f"--params must be a count of parameters, got {params}")
    if inference_ms is not None and not inference_ms > 0:
        raise ValueError(f"--inference-ms must be a positive time, got {inference_ms}")
    class_set = get_class_set(classes)
    pred_dir = Path(pred_dir)
    root = resolve_data_root(data_root)
    index = load_or_build_index(root, index_path)
    matched = match_predictions(index, split, pred_dir, partial=True, strict=True)
    sequences = []
    if sequence_dir is not None:  # checked before the images are scored: a wrong name costs nothing
        found, _ = dataset_sequences(root, index_path_for(root, index_path), index)
        sequences = match_sequence_files(found, root, Path(sequence_dir))
    writer = RunWriter(name, artifacts)
    palette = class_set.palette()

    def stage(entry: IndexEntry, predicted: np.ndarray) -> None:
        writer.write_prediction(entry.id, predicted, palette)

    try:
        scored = score_predictions(root, matched, classes, format, resize, workers, progress, on_prediction=stage)
        metrics = _metrics(name, matched, scored, pred_dir, resize, model, params, inference_ms, root, index)
        if sequence_dir is not None:
            metrics["import"].update(sequence_dir=str(sequence_dir), sequences=[s.sequence.name for s in sequences])
        writer.write_text("config.yaml", yaml.safe_dump(_config(name, root, index_path, classes, matched.split,
                                                                 pred_dir, scored["format"], resize, model),
                                                        sort_keys=False))
        writer.write_text("history.csv", "")  # nothing was trained here
        writer.write_json("metrics.json", metrics)
        writer.write_array("confusion.npy", scored["confusion"])
        writer.write_array(PER_IMAGE_CONFUSION, scored["per_image_confusion"])
        writer.write_array(PER_IMAGE_OFFICIAL_CONFUSION, scored["per_image_official_confusion"])
        writer.write_csv("per_image.csv", [{k: v for k, v in row.items() if k != "stem"}
                                           for row in scored["per_image"]])
        stage_anatomy(writer, scored["anatomy"], matched.split)
        # The frames are read in the format found for the images (with their ground truth to ask).
        reader = PredictionReader(class_set, scored["format"], f"as the images' predictions: {scored['format_reason']}")
        for files in sequences:
            with tqdm(total=len(files.sequence), desc=f"import {files.sequence.name}", unit="frame",
                      disable=not progress) as bar:
                import_sequence(RunFolder(writer.staging, writer.name), writer.uid, files, root, reader, resize,
                                workers, on_frame=lambda: bar.update(1))
        return writer.commit(), metrics
    except BaseException:
        writer.abort()
        raise


def _metrics(name, matched, scored, pred_dir, resize, model, params, inference_ms, root, index) -> dict:
    images = len(matched.entries)
    return {
        "run": name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "split": matched.split,
        **{k: v for k, v in scored["summary"].items() if k != "confusion"},
        "source": IMPORTED, "coverage": matched.coverage,
        "model": model or IMPORTED, "backbone": None, "encoder_weights": None, "loss_name": None,
        "augmentation": None, "image_size": None, "params": params, "train_seconds": None, "epochs": None,
        "best_epoch": None, "loss": None, "val_loss": None, "train_miou": None, "val_miou": None,
        "inference_ms": inference_ms,
        "inference_measured": "given at import" if inference_ms is not None else None,
        "import": {"pred_dir": str(pred_dir), "format": scored["format"], "format_reason": scored["format_reason"],
                   "resize": resize, "resized_images": len(scored["resized"]),
                   "seconds": round(scored["seconds"], 3),
                   "ms_per_image": round(1000 * scored["seconds"] / images, 2)},
        "dataset": {"root": str(root), "fingerprint": index.fingerprint(), "images": len(index)},
        "versions": {"python": platform.python_version(), "numpy": np.__version__},
    }


def _config(name, root, index_path, classes, split, pred_dir, format_name, resize, model) -> dict:
    """What the run was made from, in the shape of a trained run's config where they overlap
    (``data``, ``evaluation``), so readers find the dataset the same way."""
    return {
        "name": name, "source": IMPORTED,
        "data": {"root": str(root), "index": index_path, "classes": classes},
        "model": {"name": model or IMPORTED},
        "evaluation": {"split": split},
        "import": {"pred_dir": str(pred_dir), "format": format_name, "resize": resize},
    }
