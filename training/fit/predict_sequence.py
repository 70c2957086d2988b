"""Predicting a drive: a trained run (or one of its TFLite exports) over every frame of a
sequence, its predictions stored beside the run with their temporal consistency.

Each frame is predicted as ``evaluate_model`` predicts an image (the photo shrunk to the model's
size, the probabilities upsampled bilinearly to the photo's size before the argmax; the top
probability kept as the confidence map), written into the sequence's staging folder
(``training.runs.sequences.SequenceWriter``); then the frames are scored for temporal consistency
by the core (``training.evaluation.temporal.score_runs``: optical flow between the photos, the
previous prediction warped by it) and the folder is published whole.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import cv2

from training.data.cityscapes import read_image, read_png_file
from training.data.labels import ClassSet
from training.data.sequences import Sequence
from training.evaluation.masks import ordered_map
from training.fit.predict import Predictor, upsample_with_confidence
from training.runs.reader import Run
from training.runs.sequences import SequenceWriter, sequence_numbers

READ_AHEAD_THREADS = 2  # photos decoded beside the model


def load_predictor(run: Run, export: str | None = None) -> Predictor:
    """The run's Keras model, or its TFLite export ``export``, behind ``Predictor``'s interface."""
    if export:
        from training.fit.tflite import TFLitePredictor

        return TFLitePredictor.load(run, export)
    return Predictor.load(run)


def read_classes(path: Path):
    """A stored class-index PNG as ``(H, W)`` uint8."""
    return read_png_file(Path(path), ("P", "L"), "a class-index PNG")


def predict_sequence(run: Run, predictor: Predictor, sequence: Sequence, root: Path, class_set: ClassSet,
                     export: str | None = None, on_frame: Callable[[], None] | None = None,
                     on_pair: Callable[[], None] | None = None, workers: int | None = None) -> dict:
    """Predict every frame of ``sequence`` (photos under ``root``), score the predictions' temporal
    consistency and publish both as ``runs/<run>/sequences/<name>/``.

    Args:
        on_frame: called after each frame is predicted; ``on_pair`` after each frame is scored.

    Returns:
        The temporal.json document written (``training.runs.sequences``).

    Raises:
        DatasetError: a frame cannot be read (named); nothing is published then.
    """
    if len(sequence) == 0:
        raise ValueError(f"sequence {sequence.name} has no frames")
    start = time.perf_counter()
    writer = SequenceWriter(run, sequence.name)
    photos = sequence.frame_paths(root)
    try:
        for number, photo in zip(sequence.frame_numbers, ordered_map(read_image, photos, READ_AHEAD_THREADS)):
            probabilities = predictor.probabilities(photo)
            classes, confidence = upsample_with_confidence(probabilities, photo.shape[:2])
            writer.write_frame(number, classes, class_set.palette(), cv2.convertScaleAbs(confidence, alpha=255.0))
            if on_frame is not None:
                on_frame()
        predicted = time.perf_counter()
        staged = [writer.path(number) for number in sequence.frame_numbers]
        numbers = sequence_numbers(sequence, class_set, photos, staged, read_classes, workers, on_pair)
        document = {
            "run": run.name, "run_uid": run.uid,
            "model": f"exports/{export}.tflite" if export else "model.keras",
            **numbers,
            "predict_seconds": round(predicted - start, 3),
            "temporal_seconds": round(time.perf_counter() - predicted, 3),
        }
        writer.commit(document)
    except BaseException:
        writer.abort()
        raise
    return document
