"""A run's predictions of drive sequences in the run store, and their temporal consistency.

``python -m training predict-sequence RUN --sequence NAME`` (``training.fit.predict_sequence``)
runs a trained run over the frames of a snippet or demo drive (``training.data.sequences``) and
leaves beside the run::

    artifacts/runs/<run>/sequences/<name>/<frame>.png             class indices, palette PNG
                                                                  (<frame>: six digits, 000001)
    artifacts/runs/<run>/sequences/<name>/confidence/<frame>.png  round(255 x top probability), grey
    artifacts/runs/<run>/sequences/<name>/temporal.json           temporal consistency of the frames
                                                                  (``training.evaluation.temporal``)

``python -m training import-sequences`` (``training.runs.imported_sequences``) leaves the same
files from another tool's frame predictions, without confidence maps.

A sequence's folder appears whole or not at all: it is written into a hidden staging folder
(``sequences/.staging-<name>-<pid>``) and renamed into place; a sequence predicted again replaces
the old folder (moved aside first, then removed), so a reader sees the old folder or the new one,
and for a moment between the two renames neither; a process killed in that moment leaves the old
folder aside, and the next writer of the run's sequences puts it back. The commit's steps are
fault points (``SEQUENCE_FAULTS``). One process writes a sequence at a time (an exclusive lock on
``sequences/.lock-<name>``; a second is refused at once). No TensorFlow here: the dashboard and the
API read these files through this module, and every failure is an ``ArtifactError`` naming the file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Sequence as CollectionSequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.cityscapes import DatasetError
from training.data.index import index_path_for
from training.data.sequences import discover_sequences, load_sequences, sequences_path_for
from training.evaluation.temporal import score_runs
from training.files import (
    LockHeld,
    exclusive_lock,
    fault_point,
    file_stamp,
    fsync_directory,
    fsync_tree,
    write_json_atomic,
)
from training.runs.layout import STAGING_PREFIX, ArtifactError
from training.runs.reader import Run
from training.runs.run_files import read_document, read_png
from training.runs.writer import process_alive, write_class_png

SEQUENCES = "sequences"
TEMPORAL = "temporal.json"
CONFIDENCE = "confidence"
FORMAT = "sequence-predictions v1"
SEQUENCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")  # training.data.sequences' names are URL-safe
OLD_PREFIX = ".old-"
REQUIRED = ("format", "sequence", "frames", "temporal_consistency", "temporal_consistency_per_class",
            "flicker_rate", "pairs")
# The commit's steps, where a test kills the process (``training.files.fault_point``): the staging
# folder complete and flushed; an older prediction moved aside; the new folder renamed into place.
SEQUENCE_FAULTS = ("sequence:staged", "sequence:moved_aside", "sequence:renamed")


def frame_filename(frame: int) -> str:
    """``000042.png``: a frame's number in six digits, as Cityscapes writes it."""
    return f"{int(frame):06d}.png"


def check_sequence_name(name: str) -> str:
    if not isinstance(name, str) or not SEQUENCE_NAME.fullmatch(name):
        raise ArtifactError(f"{name!r} is not a sequence name (letters, digits, '_' and '-')")
    return name


def sequences_dir(run: Run) -> Path:
    return run.path / SEQUENCES


def sequence_dir(run: Run, name: str) -> Path:
    return sequences_dir(run) / check_sequence_name(name)


def sequence_names(run: Run) -> list[str]:
    """The sequences the run has predicted (a folder holding temporal.json), by name; staging and
    half-removed folders are not listed."""
    folder = sequences_dir(run)
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name) if folder.is_dir() else []
    except OSError as error:
        raise ArtifactError(f"run {run.name}: {SEQUENCES}/ cannot be listed ({error.strerror or error})") from None
    return [entry.name for entry in entries
            if not entry.name.startswith(".") and SEQUENCE_NAME.fullmatch(entry.name)
            and (Path(entry.path) / TEMPORAL).is_file()]


def sequences_stamp(run: Run) -> tuple:
    """A cache key from ``stat`` calls: changes when a sequence of the run is predicted (again)."""
    return tuple((name, file_stamp(sequences_dir(run) / name / TEMPORAL)) for name in sequence_names(run))


def _where(run: Run, name: str, filename: str) -> str:
    return f"run {run.name}: {SEQUENCES}/{name}/{filename}"


def sequence_prediction(run: Run, name: str, frame: int) -> np.ndarray:
    """``(H, W)`` uint8 class indices the run predicted for frame ``frame`` of sequence ``name``."""
    filename = frame_filename(frame)
    return read_png(sequence_dir(run, name) / filename, _where(run, name, filename), ("P", "L"),
                    "a class-index PNG")


def sequence_prediction_path(run: Run, name: str, frame: int) -> Path:
    return sequence_dir(run, name) / frame_filename(frame)


class SequencePredictions(CollectionSequence):
    """A run's class maps of a sequence's ``frames``, each read when it is asked for (a video draws
    them in threads, one at a time, instead of holding a whole drive in memory)."""

    def __init__(self, run: Run, name: str, frames: list[int]):
        self.run, self.name, self.frames = run, check_sequence_name(name), list(frames)

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index):
        return sequence_prediction(self.run, self.name, self.frames[index])


def sequence_confidence(run: Run, name: str, frame: int) -> np.ndarray:
    """``(H, W)`` float32 top probability of each pixel of a frame (1/255 steps)."""
    filename = f"{CONFIDENCE}/{frame_filename(frame)}"
    levels = read_png(sequence_dir(run, name) / filename, _where(run, name, filename), ("L",),
                      "a grey confidence map")
    return levels.astype(np.float32) / 255.0


def read_sequence_temporal(run: Run, name: str) -> dict:
    """One sequence's temporal.json (``write_temporal``), its keys checked."""
    document = read_document(sequence_dir(run, name) / TEMPORAL, _where(run, name, TEMPORAL), "JSON", dict)
    missing = [key for key in REQUIRED if key not in document]
    if missing:
        raise ArtifactError(f"{_where(run, name, TEMPORAL)} lacks {', '.join(missing)}")
    if document["format"] != FORMAT:
        raise ArtifactError(f"{_where(run, name, TEMPORAL)}: format is {document['format']!r}, not {FORMAT!r}")
    frames = document["frames"]
    if not isinstance(frames, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in frames):
        raise ArtifactError(f"{_where(run, name, TEMPORAL)}: frames is not a list of frame numbers")
    if not isinstance(document["pairs"], list) or not isinstance(document["temporal_consistency_per_class"], dict):
        raise ArtifactError(f"{_where(run, name, TEMPORAL)}: pairs or temporal_consistency_per_class "
                            "has another type than a list and an object")
    return document


def read_temporal(run: Run) -> dict[str, dict]:
    """Every predicted sequence's temporal.json, by sequence name (empty when the run has none)."""
    return {name: read_sequence_temporal(run, name) for name in sequence_names(run)}


def overall_temporal_consistency(documents: dict[str, dict]) -> float | None:
    """The mean of the sequences' temporal consistency weighted by their pairs (= the mean over
    every pair of every sequence); None without a scored pair."""
    total = weight = 0.0
    for document in documents.values():
        value, pairs = document.get("temporal_consistency"), len(document.get("pairs") or [])
        if isinstance(value, (int, float)) and not isinstance(value, bool) and pairs:
            total, weight = total + value * pairs, weight + pairs
    return total / weight if weight else None


# ---------------------------------------------------------------------------- the dataset's sequences

def dataset_sequences(root: Path, index_file: Path | None = None, index=None) -> tuple[list, list[str]]:
    """The snippets and drives of the dataset at ``root`` (``training.data.sequences.Sequence``):
    ``sequences.json`` beside ``index_file`` (default: ``<root>/segmentation_index.csv``) where it
    is there and readable, else found on disk; with the dataset's ``index``, annotated ids looked up
    in it. Returns (sequences, problems)."""
    sidecar = sequences_path_for(index_file or index_path_for(Path(root)))
    if sidecar.is_file():
        try:
            return load_sequences(sidecar, index)
        except DatasetError as error:
            sequences, problems = discover_sequences(root, index)
            return sequences, [str(error), *problems]
    return discover_sequences(root, index)


def find_sequence(sequences: list, name: str):
    """The sequence called ``name``; ``KeyError`` naming the known ones when there is none."""
    for sequence in sequences:
        if sequence.name == name:
            return sequence
    names = [s.name for s in sequences]
    shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
    none = "none (no leftImg8bit_sequence/ or leftImg8bit/demoVideo/ folder)"
    raise KeyError(f"no sequence named {name!r} in the dataset; there are: {shown or none}")


# ---------------------------------------------------------------------------- writing

@dataclass(frozen=True)
class RunFolder:
    """Where a run's sequences go when the run is not published yet: a ``RunWriter``'s staging
    folder (``RunFolder(writer.staging, writer.name)``); a published ``Run`` has the same two
    attributes."""

    path: Path
    name: str


def sequence_numbers(sequence, class_set, photos: list, predictions: list, read_prediction=None,
                     workers: int | None = None, progress=None) -> dict:
    """What temporal.json says of ``sequence`` alike for a run's own and imported frames: the
    sequence, the class set, and the temporal consistency of ``predictions`` (one per photo:
    paths read with ``read_prediction``, or class-index arrays; ``training.evaluation.temporal
    .score_runs``). A sequence of one frame has no pair: no number."""
    described = {"kind": sequence.kind, "split": sequence.split, "city": sequence.city,
                 "annotated_id": sequence.annotated_id, "annotated_stem": sequence.annotated_stem,
                 "frames": sequence.frame_numbers, "classes": class_set.name, "class_names": list(class_set.names)}
    if len(sequence) < 2:
        return {**described, "temporal_consistency": None, "flicker_rate": None, "pairs": [],
                "temporal_consistency_per_class": {name: None for name in class_set.names}}
    scored = score_runs([(sequence.name, photos, predictions)], class_set, read_prediction=read_prediction,
                        workers=workers, progress=progress)
    numbers = {key: value for key, value in scored["sequences"][0].items() if key not in ("name", "frames")}
    return {**described, **numbers, "flow": scored["flow"]}


class SequenceWriter:
    """Stage one sequence's predictions, then publish them with ``commit()`` (replacing any older
    prediction of the sequence).

    Example::

        writer = SequenceWriter(run, "stuttgart_00")
        writer.write_frame(1, classes, palette, levels)
        writer.commit(temporal_document)
    """

    def __init__(self, run: Run | RunFolder, name: str):
        self.run, self.name = run, check_sequence_name(name)
        self.parent = sequences_dir(run)
        self.parent.mkdir(parents=True, exist_ok=True)
        self._lock = contextlib.ExitStack()  # one writer of a sequence at a time, until commit or abort
        try:
            self._lock.enter_context(exclusive_lock(self.parent / f".lock-{name}"))
        except LockHeld as held:
            raise ArtifactError(f"run {run.name}: sequence {name} is being predicted by process {held.pid}; "
                                "wait for it to finish") from None
        remove_stale(self.parent)
        self.staging = self.parent / f"{STAGING_PREFIX}{name}-{os.getpid()}"
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir(parents=True)

    def path(self, frame: int) -> Path:
        return self.staging / frame_filename(frame)

    def write_frame(self, frame: int, classes: np.ndarray, palette: np.ndarray,
                    levels: np.ndarray | None = None) -> None:
        """One frame's class indices, and its confidence ``levels`` (uint8) where there are some
        (imported frames have none). Safe to call from several threads for different frames."""
        write_class_png(self.path(frame), classes, palette)
        if levels is not None:
            (self.staging / CONFIDENCE).mkdir(exist_ok=True)
            Image.fromarray(levels, mode="L").save(self.staging / CONFIDENCE / frame_filename(frame), compress_level=3)

    def commit(self, temporal: dict) -> Path:
        """Write temporal.json, flush, rename into ``sequences/<name>``."""
        write_json_atomic(self.staging / TEMPORAL, {"format": FORMAT, "sequence": self.name, **temporal})
        fsync_tree(self.staging)
        fault_point("sequence:staged")
        target = self.parent / self.name
        old = None
        if target.exists():
            old = self.parent / f"{OLD_PREFIX}{self.name}-{os.getpid()}"
            os.replace(target, old)
            fault_point("sequence:moved_aside")
        os.replace(self.staging, target)
        fault_point("sequence:renamed")
        fsync_directory(self.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        self._lock.close()
        return target

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
        self._lock.close()


def remove_stale(parent: Path) -> list[Path]:
    """Remove staging and moved-aside folders of processes that no longer run; a moved-aside folder
    whose sequence has no folder (its writer was killed between the two renames of ``commit``) is
    put back instead."""
    removed = []
    for folder in sorted(parent.iterdir()) if parent.is_dir() else []:
        if not folder.name.startswith((STAGING_PREFIX, OLD_PREFIX)) or not folder.is_dir():
            continue
        rest, _, pid = folder.name.rpartition("-")
        if pid.isdigit() and (int(pid) == os.getpid() or process_alive(int(pid))):
            continue
        if folder.name.startswith(OLD_PREFIX):
            name = rest[len(OLD_PREFIX):]
            if SEQUENCE_NAME.fullmatch(name) and not (parent / name).exists():
                os.replace(folder, parent / name)
                continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed
