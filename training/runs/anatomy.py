"""A run's error anatomy in the run store, and adding it to runs evaluated before it existed.

    runs/<run>/anatomy.json             Boundary IoU, iIoU and their settings (``Anatomy.summary``)
    runs/<run>/instances.csv            one row per object (``training.evaluation.instances``)
    runs/<run>/per_image_anatomy.csv    id, boundary mIoU, objects, missed objects
    runs/<run>/frame_errors.npy         (2, 128, 256) int64: pixels counted, pixels wrong per cell

Every evaluation writes them with the run (trained, ``evaluate``, ``import-predictions``). A run
published before them gets them from ``python -m training anatomy RUN``: the anatomy needs only
what the run stored (its predictions at ground-truth size) and the dataset, no model and no
TensorFlow. That adds files beside the run's own and changes none of them: each file is written
atomically and ``anatomy.json``, the one readers look for, comes last.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from training.data.cityscapes import read_label_ids
from training.evaluation.anatomy import Anatomy, read_instance_ids
from training.evaluation.boundary import DEFAULT_RATIO
from training.evaluation.instances import INSTANCE_COLUMNS
from training.evaluation.masks import ordered_map
from training.evaluation.metrics import pair_counts
from training.files import write_bytes_atomic, write_json_atomic, write_text_atomic
from training.runs.store import ANATOMY, ArtifactError, Run, csv_text

INSTANCES, PER_IMAGE_ANATOMY, FRAME_ERRORS = "instances.csv", "per_image_anatomy.csv", "frame_errors.npy"
ANATOMY_FILES = (INSTANCES, PER_IMAGE_ANATOMY, FRAME_ERRORS, ANATOMY)
HOW_TO_ADD = "python -m training anatomy {run}"


def anatomy_document(anatomy: Anatomy, split: str, seconds: float | None = None) -> dict:
    """What ``anatomy.json`` holds: the summary, the split and the cost."""
    document = {"split": split, "images": anatomy.images, "classes": anatomy.class_set.name, **anatomy.summary()}
    if seconds is not None:
        document["seconds"] = round(seconds, 3)
    return document


def anatomy_files(anatomy: Anatomy, split: str, seconds: float | None = None) -> dict[str, object]:
    """``{file name: content}`` of a run's anatomy: text for the CSVs and JSON, an array for
    ``frame_errors.npy``."""
    return {
        INSTANCES: csv_text(anatomy.instance_rows, INSTANCE_COLUMNS),
        PER_IMAGE_ANATOMY: csv_text(anatomy.per_image),
        FRAME_ERRORS: anatomy.frame,
        ANATOMY: anatomy_document(anatomy, split, seconds),
    }


def stage_anatomy(writer, anatomy: Anatomy, split: str, seconds: float | None = None) -> None:
    """Put the anatomy files into a ``RunWriter``'s staging folder (published with the run)."""
    for name, content in anatomy_files(anatomy, split, seconds).items():
        if isinstance(content, np.ndarray):
            writer.write_array(name, content)
        elif isinstance(content, dict):
            writer.write_json(name, content)
        else:
            writer.write_text(name, content)


def anatomize_run(run: Run, data_root: str | os.PathLike | None = None, ratio: float = DEFAULT_RATIO,
                  replace: bool = False, workers: int = 2, progress: bool = True) -> dict:
    """Compute the anatomy of a published run from its stored predictions and add its files.

    Raises:
        ArtifactError: the run already has an anatomy (without ``replace``), misses a prediction,
            or was evaluated on another version of the dataset.
        DatasetError: the dataset cannot be read.
    """
    if run.has_anatomy and not replace:
        raise ArtifactError(f"run {run.name} already has its anatomy ({ANATOMY}); --replace computes it again")
    dataset = run.data_settings.open(data_root)
    recorded = (run.metrics.get("dataset") or {}).get("fingerprint")
    if recorded and recorded != dataset.index.fingerprint():
        raise ArtifactError(f"run {run.name} was evaluated on another version of the dataset than "
                            f"{dataset.root} holds now: its image ids would name other files")
    by_id = {entry.id: entry for entry in dataset.index.entries}
    ids = [int(row["id"]) for row in run.per_image()]
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise ArtifactError(f"run {run.name}: images {unknown[:5]} are not in the dataset's index")
    anatomy = Anatomy(dataset.class_set, "classes", ratio)

    def load(image_id: int):
        entry = by_id[image_id]
        label_ids = read_label_ids(dataset.root / entry.label)
        predicted = run.prediction(image_id)
        if predicted.shape != label_ids.shape:
            raise ArtifactError(f"run {run.name}: predictions/{image_id}.png is {predicted.shape[1]}x"
                                f"{predicted.shape[0]}, the ground truth {label_ids.shape[1]}x{label_ids.shape[0]}")
        truth = anatomy.truth(label_ids, read_instance_ids(dataset.root / entry.label))
        return image_id, truth, predicted, pair_counts(label_ids, predicted)

    start = time.perf_counter()
    for image_id, truth, predicted, counts in tqdm(ordered_map(load, ids, workers), total=len(ids),
                                                   desc="anatomy", unit="img", disable=not progress):
        anatomy.add(image_id, truth, predicted, counts)
    files = anatomy_files(anatomy, run.metrics.get("split") or "test", time.perf_counter() - start)
    write_anatomy_files(run.path, files)
    return files[ANATOMY]


def write_anatomy_files(folder: Path, files: dict[str, object]) -> None:
    """Each file atomically, ``anatomy.json`` last: a reader that finds it finds the others."""
    for name, content in files.items():
        path = folder / name
        if isinstance(content, np.ndarray):
            buffer = io.BytesIO()
            np.save(buffer, content)
            write_bytes_atomic(path, buffer.getvalue())
        elif isinstance(content, dict):
            write_json_atomic(path, content)
        else:
            write_text_atomic(path, content)

