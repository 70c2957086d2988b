"""Scoring a published run again from what it stored, to add what its evaluation would write today.

A run keeps its predictions at ground-truth size, so everything an evaluation derives from a
prediction and its ground truth can be computed again later, without the model and without
TensorFlow, and added beside the run's files (each written atomically, an anatomy as one whole
switched by its anatomy.json, ``training.runs.anatomy.write_anatomy``; the run's own numbers,
predictions and uid never change):

* ``anatomize_run`` (``python -m training anatomy RUN``): the error anatomy (Boundary IoU, iIoU,
  objects, errors in the frame; ``training.runs.anatomy``), or again with another boundary ratio;
* ``rescore_run`` (``python -m training rescore RUN``): every file the run lacks among
  ``per_image_official_confusion.npy`` (the official per-image confusions behind the intervals of
  ``training.evaluation.significance``) and the anatomy. The all-classes confusions it counts on the
  way must equal the stored ones, image by image: otherwise the predictions or the dataset changed,
  and nothing is written.

Imported runs stored labels of another tool folded into the class set, which for ``categories8``
loses whether a predicted label was one the official rules ignore: their official confusions
cannot be counted again from the stored masks (import the predictions again instead).
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator

import numpy as np
from tqdm import tqdm

from training.data.cityscapes import read_instance_ids, read_label_ids
from training.data.dataset import Dataset
from training.evaluation.anatomy import Anatomy
from training.evaluation.boundary import DEFAULT_RATIO
from training.evaluation.evaluator import Evaluator
from training.evaluation.masks import ordered_map
from training.evaluation.metrics import pair_counts
from training.files import write_bytes_atomic
from training.runs.anatomy import write_anatomy
from training.runs.layout import ANATOMY, IMPORTED, PER_IMAGE_OFFICIAL_CONFUSION, ArtifactError
from training.runs.reader import Run

WORKERS = 2


def _stored_pairs(run: Run, dataset: Dataset, anatomy: Anatomy | None, workers: int,
                  progress: bool, what: str) -> Iterator[tuple[int, np.ndarray, np.ndarray, object]]:
    """(image id, labelIds, stored prediction, the image's ``Anatomy.score`` or None) of every image
    the run evaluated, in per_image.csv order, read and scored ahead in ``workers`` threads."""
    by_id = {entry.id: entry for entry in dataset.index.entries}
    ids = [int(row["id"]) for row in run.per_image()]
    unknown = [i for i in ids if i not in by_id]
    if unknown:
        raise ArtifactError(f"run {run.name}: images {unknown[:5]} are not in the dataset's index")

    def load(image_id: int):
        entry = by_id[image_id]
        label_ids = read_label_ids(dataset.root / entry.label)
        predicted = run.prediction(image_id)
        if predicted.shape != label_ids.shape:
            raise ArtifactError(f"run {run.name}: predictions/{image_id}.png is {predicted.shape[1]}x"
                                f"{predicted.shape[0]}, the ground truth {label_ids.shape[1]}x{label_ids.shape[0]}")
        if anatomy is None:
            return image_id, label_ids, predicted, None
        truth = anatomy.truth(label_ids, read_instance_ids(dataset.root / entry.label))
        return image_id, label_ids, predicted, anatomy.score(image_id, truth, predicted)

    yield from tqdm(ordered_map(load, ids, workers), total=len(ids), desc=what, unit="img", disable=not progress)


def anatomize_run(run: Run, data_root: str | os.PathLike | None = None, ratio: float = DEFAULT_RATIO,
                  replace: bool = False, workers: int = WORKERS, progress: bool = True) -> dict:
    """Compute the anatomy of a published run from its stored predictions and add its files;
    returns what anatomy.json holds.

    Raises:
        ArtifactError: the run already has an anatomy (without ``replace``), misses a prediction,
            or was evaluated on another version of the dataset.
        DatasetError: the dataset cannot be read.
    """
    if run.has_anatomy and not replace:
        raise ArtifactError(f"run {run.name} already has its anatomy ({ANATOMY}); --replace computes it again")
    dataset = run.open_dataset(data_root)
    anatomy = Anatomy(dataset.class_set, "classes", ratio)
    start = time.perf_counter()
    for _, _, _, scored in _stored_pairs(run, dataset, anatomy, workers, progress, "anatomy"):
        anatomy.add_scored(scored)
    return write_anatomy(run, anatomy, run.metrics.get("split") or "test", time.perf_counter() - start)


def missing_files(run: Run) -> list[str]:
    """What ``rescore_run`` would add to ``run``: the files of today's evaluation it lacks."""
    missing = [] if run.has_official_confusion else [PER_IMAGE_OFFICIAL_CONFUSION]
    return missing + ([] if run.has_anatomy else [ANATOMY])


def rescore_run(run: Run, data_root: str | os.PathLike | None = None, workers: int = WORKERS,
                progress: bool = True) -> dict:
    """Add to ``run`` the files of today's evaluation it lacks (``missing_files``), in one pass over
    its stored predictions. Returns ``added`` (file names), ``images``, ``seconds`` and ``anatomy``
    (what anatomy.json holds, when it was added).

    Raises:
        ArtifactError: an imported run lacking its official confusions, a prediction that is
            missing or of another size, counts that disagree with per_image_confusion.npy, or
            another version of the dataset.
        DatasetError: the dataset cannot be read.
    """
    missing = missing_files(run)
    if not missing:
        return {"added": [], "images": len(run.per_image()), "seconds": 0.0, "anatomy": None}
    counting = PER_IMAGE_OFFICIAL_CONFUSION in missing
    if counting and run.metrics.get("source") == IMPORTED:
        raise ArtifactError(f"run {run.name} holds imported predictions: its official per-image confusions cannot "
                            "be counted from the stored masks (import the predictions again to add them)")
    dataset = run.open_dataset(data_root)
    evaluator = Evaluator(dataset.class_set, "classes") if counting else None
    anatomy = Anatomy(dataset.class_set, "classes") if ANATOMY in missing else None
    start = time.perf_counter()
    for _, label_ids, predicted, scored in _stored_pairs(run, dataset, anatomy, workers, progress, "rescore"):
        if evaluator is not None:  # the anatomy's histogram holds the pair counts
            evaluator.add_counts(scored.counts if scored is not None else pair_counts(label_ids, predicted))
        if scored is not None:
            anatomy.add_scored(scored)
    seconds = time.perf_counter() - start
    if evaluator is not None:
        stacks = evaluator.per_image_confusions()
        _check_same(run, stacks.all_classes)
        buffer = io.BytesIO()
        np.save(buffer, stacks.official)
        write_bytes_atomic(run.path / PER_IMAGE_OFFICIAL_CONFUSION, buffer.getvalue())
    document = None
    if anatomy is not None:
        document = write_anatomy(run, anatomy, run.metrics.get("split") or "test", seconds)
    return {"added": missing, "images": evaluator.images if evaluator else anatomy.images, "seconds": seconds,
            "anatomy": document}


def _check_same(run: Run, counted: np.ndarray) -> None:
    """The all-classes confusions counted again must be the stored ones, image by image."""
    stored = run.per_image_confusion()
    if stored.shape != counted.shape:
        raise ArtifactError(f"run {run.name}: per_image_confusion.npy holds {stored.shape}, the stored predictions "
                            f"give {counted.shape}: nothing written")
    differs = np.flatnonzero((stored != counted).any(axis=(1, 2)))
    if differs.size:
        image_id = run.per_image()[int(differs[0])]["id"]
        raise ArtifactError(f"run {run.name}: the stored prediction of image {image_id} and its ground truth no longer "
                            f"give the counts of per_image_confusion.npy ({differs.size} images differ): the dataset "
                            "or the predictions changed since the run's evaluation; nothing written")
