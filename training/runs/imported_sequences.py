"""Another tool's predictions of drive sequences in a run: ``python -m training import-sequences``
and ``import-predictions --sequence-dir``.

A folder of per-frame prediction PNGs of snippets (``leftImg8bit_sequence/...``) and demo drives
(``leftImg8bit/demoVideo/...``) is matched to the frames of the run's dataset by the
``<city>_<seq>_<frame>`` in the file names, exactly as ``python -m training temporal --pred-dir``
matches them (``training.evaluation.temporal.match_frame_predictions``), read in the formats of
``evaluate-masks`` (labelIds, trainIds, official colours; detected unless given), and stored as
``predict-sequence`` stores a trained run's: class-index PNGs per frame and temporal.json with the
temporal consistency (``training.runs.sequences.SequenceWriter``). The Drive page, the ``video``
command, the Overview's TC column and ``results`` then read them like a trained run's. Imported
frames have no confidence maps: the other tool's PNGs hold classes only.

What is refused, before any file is decoded, each named:

* a file naming no frame of the dataset's sequences (another city, a frame number the dataset
  lacks, a name holding no ``<city>_<seq>_<frame>``): a folder that is not what it seems;
* a sequence with some frames but not all: its video and its temporal consistency need every
  frame, so a sequence is imported whole or not at all (its missing frames are named).

Each file is decoded once: the temporal scoring's threads read it, turn it into class indices,
scale it to the photo's size where ``resize`` says so, and stage it for the sequence's folder. A
sequence is published by ``SequenceWriter.commit`` (a staging folder renamed into place): an
import that fails or is killed leaves the sequence as it was. Sequences are published one after
the other; with ``import-predictions --sequence-dir`` they are staged inside the new run, which
is then published whole, with them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.cityscapes import DatasetError, open_png
from training.data.resize import resize_mask
from training.data.sequences import Sequence
from training.evaluation.masks import RESIZE_CHOICES, listed_names
from training.evaluation.temporal import (
    PredictionReader,
    match_frame_predictions,
    photo_frame,
    prediction_reader,
)
from training.runs.layout import IMPORTED
from training.runs.reader import Run
from training.runs.sequences import RunFolder, SequenceWriter, dataset_sequences, find_sequence, sequence_numbers

NO_SEQUENCES = ("the dataset has no sequence (leftImg8bit_sequence/ or leftImg8bit/demoVideo/); "
                "`python -m training data make` writes some")


@dataclass(frozen=True)
class SequenceFiles:
    """A sequence of the dataset and the prediction PNG of each of its frames (found under
    ``pred_dir``), in frame order."""

    sequence: Sequence
    files: tuple[Path, ...]
    pred_dir: Path


def match_sequence_files(sequences: list[Sequence], root: Path, pred_dir: Path,
                         names: Iterable[str] | None = None) -> list[SequenceFiles]:
    """The sequences to import from ``pred_dir`` and their files: those called ``names``, else every
    sequence with a file there. Nothing is decoded.

    Raises:
        DatasetError: the folder is missing or names nothing; a file names no frame of the
            dataset's sequences; a chosen sequence lacks a frame (each named).
        KeyError: a name that is no sequence of the dataset (the known ones listed).
    """
    pred_dir = Path(pred_dir)
    if not sequences:
        raise DatasetError(f"{root}: {NO_SEQUENCES}")
    frames_of = {sequence.name: [photo_frame(path) for path in sequence.frame_paths(root)] for sequence in sequences}
    matched = match_frame_predictions([frame for frames in frames_of.values() for frame in frames if frame],
                                      pred_dir, partial=True, photos="in the dataset's sequences")
    strays = [str(path) for path in [*matched.skipped, *matched.unnamed]]
    if strays:
        files = "1 file names" if len(strays) == 1 else f"{len(strays)} files name"
        raise DatasetError(f"{pred_dir}: {files} no frame of the dataset's sequences (<city>_<seq>_<frame> of a "
                           f"snippet or demo drive of {root}): {listed_names(strays, 3)}")
    if names:
        chosen = [find_sequence(sequences, name) for name in dict.fromkeys(names)]
    else:
        chosen = [s for s in sequences if any(f and f.key in matched.paths for f in frames_of[s.name])]
    planned = []
    for sequence in chosen:
        frames = frames_of[sequence.name]
        missing = [frame.key if frame else Path(path).name
                   for frame, path in zip(frames, sequence.paths) if not frame or frame.key not in matched.paths]
        if missing:
            raise DatasetError(f"{pred_dir}: sequence {sequence.name}: no prediction for {len(missing)} of its "
                               f"{len(sequence)} frames: {listed_names(missing)} (a sequence is imported whole: "
                               "its video and temporal consistency need every frame)")
        planned.append(SequenceFiles(sequence, tuple(matched.paths[frame.key] for frame in frames), pred_dir))
    return planned


def photo_size(path: Path) -> tuple[int, int]:
    """``(height, width)`` of a photo, from its PNG header (``DatasetError`` naming the file)."""
    with open_png(Path(path)) as image:
        return image.height, image.width


def import_sequence(target: Run | RunFolder, run_uid: str, planned: SequenceFiles, root: Path,
                    reader: PredictionReader, resize: str | None = None, workers: int | None = None,
                    on_frame: Callable[[], None] | None = None) -> dict:
    """Stage one sequence's predictions in ``target``, score their temporal consistency and publish
    them as ``sequences/<name>/``.

    Args:
        target: the published run, or the staging folder of one being imported (``RunFolder``).
        run_uid: the run's uid, recorded in temporal.json (a new run's name may yet become
            ``<name>-2``; its uid is its identity).
        reader: turns a file into class indices of the run's class set (``prediction_reader``).
        resize: ``"nearest"`` scales predictions of another size to the photos'; None refuses them.
        on_frame: called after each frame is read.

    Returns:
        The temporal.json document written.

    Raises:
        DatasetError: a file or photo that cannot be read, is not in the format, or (without
            ``resize``) is of another size than the photos (named); nothing is published then.
    """
    if resize is not None and resize not in RESIZE_CHOICES:
        raise ValueError(f"unknown resize {resize!r}; choose one of {', '.join(RESIZE_CHOICES)}")
    sequence, class_set = planned.sequence, reader.class_set
    photos = sequence.frame_paths(root)
    size = photo_size(photos[0])
    number_of = dict(zip(planned.files, sequence.frame_numbers))
    palette = class_set.palette()
    resized: list[Path] = []
    start = time.perf_counter()
    writer = SequenceWriter(target, sequence.name)

    def read_and_stage(path: Path) -> np.ndarray:
        """The file's class indices at the photo's size, staged as the frame's PNG on the way."""
        classes = reader(path)
        if classes.shape != size:
            if resize is None:
                raise DatasetError(f"{path}: size {classes.shape[1]}x{classes.shape[0]}, the photos of "
                                   f"{sequence.name} are {size[1]}x{size[0]} (--resize nearest scales "
                                   "predictions to them)")
            classes = resize_mask(classes, size)
            resized.append(path)
        writer.write_frame(number_of[path], classes, palette)
        return classes

    try:
        if len(sequence) == 1:  # no pair to score: its one file is staged here
            read_and_stage(planned.files[0])
            if on_frame is not None:
                on_frame()
        numbers = sequence_numbers(sequence, class_set, photos, list(planned.files), read_and_stage, workers, on_frame)
        document = {
            "sequence": sequence.name, "run_uid": run_uid, "source": IMPORTED, "model": IMPORTED,
            **numbers,
            "import": {"pred_dir": str(planned.pred_dir), "format": reader.format, "format_reason": reader.reason,
                       "resize": resize, "resized_frames": len(resized)},
            "import_seconds": round(time.perf_counter() - start, 3),
        }
        writer.commit(document)
    except BaseException:
        writer.abort()
        raise
    return document


@dataclass(frozen=True)
class ImportPlan:
    """What ``import_sequence`` needs for each sequence of a run's import."""

    root: Path
    reader: PredictionReader
    sequences: list[SequenceFiles]


def plan_import(run: Run, pred_dir: str | os.PathLike, names: Iterable[str] | None = None,
                data_root: str | os.PathLike | None = None, format: str = "auto") -> ImportPlan:
    """The run's dataset, the sequences to import from ``pred_dir`` (``match_sequence_files``) and
    the reader of their files in the run's class set: ``format``, or detected from the first file
    (``training.evaluation.temporal.prediction_reader``; the reason is kept in temporal.json)."""
    settings = run.data_settings
    dataset = settings.open(data_root)
    sequences, _ = dataset_sequences(dataset.root, settings.index_file(dataset.root), dataset.index)
    planned = match_sequence_files(sequences, dataset.root, Path(pred_dir), names)
    return ImportPlan(dataset.root, prediction_reader(planned[0].files[0], dataset.class_set.name, format), planned)


def import_sequences(run: Run, pred_dir: str | os.PathLike, names: Iterable[str] | None = None,
                     data_root: str | os.PathLike | None = None, format: str = "auto", resize: str | None = None,
                     workers: int | None = None) -> list[dict]:
    """Import the frame predictions under ``pred_dir`` into the published ``run`` (trained or
    imported), one sequence after the other (``plan_import`` says which; ``names``: those, else
    every sequence with a file there). Returns each sequence's temporal.json document."""
    plan = plan_import(run, pred_dir, names, data_root, format)
    return [import_sequence(run, run.uid, files, plan.root, plan.reader, resize, workers) for files in plan.sequences]
