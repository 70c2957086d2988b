"""A run's error anatomy in the run store, and adding it to runs evaluated before it existed.

    runs/<run>/anatomy.json             Boundary IoU, iIoU and their settings (``Anatomy.summary``),
                                        and ``files``: the three below, by kind
    runs/<run>/instances.csv            one row per object (``training.evaluation.instances``)
    runs/<run>/per_image_anatomy.csv    id, boundary mIoU, objects, missed objects
    runs/<run>/frame_errors.npy         (2, 128, 256) int64: pixels counted, pixels wrong per cell

Every evaluation writes them with the run (trained, ``evaluate``, ``import-predictions``). A run
published before them gets them from ``python -m training anatomy RUN`` (``training.runs.rescore``):
the anatomy needs only what the run stored (its predictions at ground-truth size) and the dataset,
no model and no TensorFlow. That adds files beside the run's own and changes none of them.

anatomy.json is the switch: readers find the other three through its ``files``
(``Run.anatomy_file``; an anatomy.json without them means the names above). An anatomy computed
again (``anatomy RUN --replace``) writes its three files under names the anatomy in place does not
hold (the names above, else ``instances-<generation>.csv``...), then renames the new anatomy.json
over the old one, and only then removes the files it no longer names: at every instant a reader
finds one whole anatomy, never numbers of one ratio beside files of another. A kill leaves at
most files nobody names, which the next anatomy of the run removes. The steps are fault points
(``ANATOMY_FAULTS``).
"""

from __future__ import annotations

import io
import os
import secrets
from pathlib import Path

import numpy as np

from training.evaluation.anatomy import Anatomy
from training.evaluation.instances import INSTANCE_COLUMNS
from training.files import fault_point, fsync_directory, write_json_atomic
from training.runs.layout import ANATOMY, ArtifactError
from training.runs.reader import Run
from training.runs.writer import csv_text

INSTANCES, PER_IMAGE_ANATOMY, FRAME_ERRORS = "instances.csv", "per_image_anatomy.csv", "frame_errors.npy"
COMPANIONS = {"instances": INSTANCES, "per_image": PER_IMAGE_ANATOMY, "frame": FRAME_ERRORS}  # by kind
ANATOMY_FILES = (INSTANCES, PER_IMAGE_ANATOMY, FRAME_ERRORS, ANATOMY)
HOW_TO_ADD = "python -m training anatomy {run}"
# Where a test kills an anatomy written into a published run (``training.files.fault_point``): the
# new files written under their new names; anatomy.json's new content on disk, not yet renamed;
# renamed (the old files still there); the first old file removed.
ANATOMY_FAULTS = ("anatomy:written", f"before_replace:{ANATOMY}", "anatomy:switched", "anatomy:collecting")


def anatomy_document(anatomy: Anatomy, split: str, seconds: float | None = None) -> dict:
    """What ``anatomy.json`` holds: the summary, the split and the cost."""
    document = {"split": split, "images": anatomy.images, "classes": anatomy.class_set.name, **anatomy.summary()}
    if seconds is not None:
        document["seconds"] = round(seconds, 3)
    return document


def anatomy_files(anatomy: Anatomy, split: str, seconds: float | None = None,
                  names: dict[str, str] | None = None) -> dict[str, object]:
    """``{file name: content}`` of a run's anatomy, anatomy.json last: text for the CSVs, an array
    for the frame counts, a dict for anatomy.json, which names the others (``names``, by kind;
    default ``COMPANIONS``)."""
    names = dict(names or COMPANIONS)
    return {
        names["instances"]: csv_text(anatomy.instance_rows, INSTANCE_COLUMNS),
        names["per_image"]: csv_text(anatomy.per_image),
        names["frame"]: anatomy.frame,
        ANATOMY: {**anatomy_document(anatomy, split, seconds), "files": names},
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


def write_anatomy(run: Run, anatomy: Anatomy, split: str, seconds: float | None = None) -> dict:
    """Give the published ``run`` this anatomy, in place of the one it has, if any (see the module's
    docstring); returns what anatomy.json now holds."""
    held, generation = named_files(run), secrets.token_hex(6)
    # Each file under its own name unless the anatomy in place holds it, then under a new one.
    names = {kind: _generation_name(default, generation) if default in held else default
             for kind, default in COMPANIONS.items()}
    files = anatomy_files(anatomy, split, seconds, names)
    document = files.pop(ANATOMY)
    for name, content in files.items():
        _write_new_file(run.path / name, content)
    fsync_directory(run.path)  # the files are there before anatomy.json names them
    fault_point("anatomy:written")
    write_json_atomic(run.path / ANATOMY, document)
    fault_point("anatomy:switched")
    remove_unnamed_files(run)
    return document


def named_files(run: Run) -> set[str]:
    """The files the run's anatomy.json names (the default names when it names none, or cannot be
    read: readers then look for those); none when it has no anatomy.json."""
    return {run.anatomy_file(kind) for kind in COMPANIONS} if run.has_anatomy else set()


def remove_unnamed_files(run: Run) -> list[Path]:
    """Remove the anatomy files of ``run`` its anatomy.json does not name (those of the anatomy it
    replaced, or written by one killed before its switch); nothing unless anatomy.json is readable.
    Returns what was removed."""
    try:
        run.anatomy()
    except ArtifactError:
        return []
    named = named_files(run)
    removed = []
    for path in sorted(run.path.iterdir()):
        if path.is_file() and path.name not in named and any(_is_generation_of(path.name, default)
                                                                 for default in COMPANIONS.values()):
            path.unlink(missing_ok=True)
            removed.append(path)
            fault_point("anatomy:collecting")
    return removed


def _generation_name(default: str, generation: str) -> str:
    """``instances.csv`` -> ``instances-<generation>.csv`` (the form ``Run.anatomy_file`` accepts)."""
    stem, _, suffix = default.rpartition(".")
    return f"{stem}-{generation}.{suffix}"


def _is_generation_of(name: str, default: str) -> bool:
    """Whether ``name`` is ``default`` or ``_generation_name(default, <letters and digits>)``."""
    stem, _, suffix = default.rpartition(".")
    generation = name.removeprefix(f"{stem}-").removesuffix(f".{suffix}")
    return name == default or (name == f"{stem}-{generation}.{suffix}" and generation.isalnum()
                               and generation.isascii())


def _write_new_file(path: Path, content) -> None:
    """Write a file no reader looks for yet (no anatomy.json names it), flushed to disk: no
    temporary needed, and a kill halfway leaves a file that ``remove_unnamed_files`` collects."""
    if isinstance(content, np.ndarray):
        buffer = io.BytesIO()
        np.save(buffer, content)
        data = buffer.getvalue()
    else:
        data = content.encode()
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
