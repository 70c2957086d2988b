"""A run's error anatomy in the run store, and adding it to runs evaluated before it existed.

    runs/<run>/anatomy.json             Boundary IoU, iIoU and their settings (``Anatomy.summary``)
    runs/<run>/instances.csv            one row per object (``training.evaluation.instances``)
    runs/<run>/per_image_anatomy.csv    id, boundary mIoU, objects, missed objects
    runs/<run>/frame_errors.npy         (2, 128, 256) int64: pixels counted, pixels wrong per cell

Every evaluation writes them with the run (trained, ``evaluate``, ``import-predictions``). A run
published before them gets them from ``python -m training anatomy RUN`` (``training.runs.rescore``):
the anatomy needs only what the run stored (its predictions at ground-truth size) and the dataset,
no model and no TensorFlow. That adds files beside the run's own and changes none of them: each
file is written atomically and ``anatomy.json``, the one readers look for, comes last.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from training.evaluation.anatomy import Anatomy
from training.evaluation.instances import INSTANCE_COLUMNS
from training.files import write_bytes_atomic, write_json_atomic, write_text_atomic
from training.runs.layout import ANATOMY
from training.runs.writer import csv_text

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

