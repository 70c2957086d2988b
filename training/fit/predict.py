"""Predict with a Keras model, and evaluate it on a split, at the resolution of the ground truth.

The model sees images at its training size; its class probabilities are resized back to the
original size (bilinear, ``upsample_argmax``) before the argmax, so the scores are comparable with any other model
and with the official evaluation, whatever size each model was trained at.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from training.data.cityscapes import read_instance_ids, read_pair
from training.data.index import IndexEntry
from training.data.labels import ClassSet
from training.data.resize import resize_image
from training.evaluation.anatomy import Anatomy, lookup, pair_table
from training.evaluation.boundary import DEFAULT_RATIO, scratch
from training.evaluation.calibration import BINS as CALIBRATION_BINS
from training.evaluation.calibration import calibration_counts, summarize_calibration
from training.evaluation.evaluator import Evaluator, image_scores
from training.evaluation.masks import cores, evaluation_threads, opencv_threads_beside, ordered_map

# Up to this many output pixels (4 MP) the planes are resized whole; above, in bands of rows,
# so a 36 MP upload needs a few tens of MB instead of 8 x 144 MB of float planes.
WHOLE_PLANE_PIXELS = 4 * 1024 * 1024
BAND_ROWS = 256
READ_AHEAD = 2  # at least this many images are decoded ahead of the model during evaluation
THREADS_ENV = "EVALUATION_THREADS"  # threads per stage of a model's evaluation (default: half the cores)


def predict_probabilities(model, image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(h, w, K)`` class probabilities of one ``(H, W, 3)`` uint8 image, at the model's ``size``."""
    small = resize_image(image, size)
    # predict_on_batch runs Keras' compiled predict function: 2-7x faster than an eager call.
    return np.asarray(model.predict_on_batch(small[None].astype(np.float32) / 255.0))[0]


def upsample_argmax(probabilities: np.ndarray, size: tuple[int, int], band_rows: int = BAND_ROWS) -> np.ndarray:
    """``(H, W)`` uint8 argmax of ``(h, w, K)`` probabilities resized bilinearly to ``size``
    (``upsample_with_confidence``, without the confidence)."""
    return upsample_with_confidence(probabilities, size, band_rows)[0]


def upsample_with_confidence(probabilities: np.ndarray, size: tuple[int, int],
                             band_rows: int = BAND_ROWS, reuse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W)`` uint8 argmax of ``(h, w, K)`` probabilities resized bilinearly to ``size``, and
    ``(H, W)`` float32 top probability there (the running maximum comes free with the argmax;
    bilinear weights sum to 1, so the resized planes are probabilities too).

    The same bilinear as ``keras.ops.image.resize`` (half-pixel centres, edges clamped, no
    antialias), computed one class plane at a time with a running maximum: OpenCV resizes a
    plane in ~1 ms where the 8-channel float tensor took TensorFlow 20-260 ms, and no
    ``(H, W, K)`` float tensor is ever made. Above ``WHOLE_PLANE_PIXELS`` the rows are
    interpolated in bands, so memory stays bounded whatever the output size.

    Both sum float32 in another order, so the argmax may differ from Keras' where two classes
    are within a rounding error: at most 1e-5 of the pixels, whole or in bands, K = 8 or 19,
    integer or not scale factors (``tests/test_upsampling.py``; measured: 0 to 4.5e-6).

    ``reuse``: the planes after the first are resized into this thread's work arrays
    (``training.evaluation.boundary.scratch``), for a thread that upsamples image after image
    (an evaluation); the API's threads, which upsample now and then, keep no such memory.
    """
    height, width = int(size[0]), int(size[1])
    planes = [np.ascontiguousarray(probabilities[..., k], dtype=np.float32) for k in range(probabilities.shape[-1])]
    if height * width <= WHOLE_PLANE_PIXELS:
        return _running_argmax(_resized(planes, width, height, reuse), reuse)
    # Bilinear is separable: widen every plane once (h x W, small), then blend row pairs per band.
    wide = [cv2.resize(plane, (width, plane.shape[0]), interpolation=cv2.INTER_LINEAR) for plane in planes]
    source_rows = planes[0].shape[0]
    classes = np.empty((height, width), dtype=np.uint8)
    confidence = np.empty((height, width), dtype=np.float32)
    for top in range(0, height, band_rows):
        rows = np.arange(top, min(top + band_rows, height))
        y = np.clip((rows + 0.5) * (source_rows / height) - 0.5, 0.0, source_rows - 1)
        y0 = np.floor(y).astype(np.intp)
        y1 = np.minimum(y0 + 1, source_rows - 1)
        weight = (y - y0).astype(np.float32)[:, None]
        band = slice(rows[0], rows[-1] + 1)
        classes[band], confidence[band] = _running_argmax(
            plane[y0] * (1.0 - weight) + plane[y1] * weight for plane in wide)
    return classes, confidence


def _resized(planes: list[np.ndarray], width: int, height: int, reuse: bool):
    """Each plane resized bilinearly to ``width x height``: the first into a new array (it becomes the
    running maximum, returned), the others one after the other into one buffer (this thread's
    with ``reuse``)."""
    yield cv2.resize(planes[0], (width, height), interpolation=cv2.INTER_LINEAR)
    buffer = scratch("upsampled plane", (height, width), np.float32) if reuse else np.empty((height, width),
                                                                                                np.float32)
    for plane in planes[1:]:
        yield cv2.resize(plane, (width, height), dst=buffer, interpolation=cv2.INTER_LINEAR)


def _running_argmax(planes, reuse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Index of the largest plane at every pixel (the first one on ties, as ``argmax``), and
    that largest value.

    All in OpenCV (twice numpy's speed, without the GIL). Plane ``k`` beats every earlier one
    where it is strictly greater; as ``k`` only grows, ``max(classes, k where better else 0)``
    writes ``k`` exactly there.
    """
    planes = iter(planes)
    best = next(planes)
    classes = np.zeros(best.shape, dtype=np.uint8)
    better = scratch("better", best.shape, np.uint8) if reuse else np.empty(best.shape, np.uint8)
    for k, plane in enumerate(planes, start=1):
        cv2.compare(plane, best, cv2.CMP_GT, dst=better)  # 255 where greater, else 0
        np.bitwise_and(better, np.uint8(k), out=better)  # cv2 reads a 1x1 array as a scalar here
        cv2.max(classes, better, dst=classes)
        cv2.max(best, plane, dst=best)
    return classes, best


def predict_classes(model, image: np.ndarray, size: tuple[int, int],
                    output_size: tuple[int, int] | None = None) -> np.ndarray:
    """``(H, W)`` uint8 class indices for one image, at ``output_size`` (default: the image's)."""
    return upsample_argmax(predict_probabilities(model, image, size), output_size or image.shape[:2])


def start_tensorflow_quietly() -> None:
    """Import TensorFlow and list its devices inside ``training.runtime_env.quiet_tensorflow_start``
    (without its start-up lines, above all the cuInit error of a machine without a GPU), once per
    process; nothing when it is imported already. For a process that loads a model at first use,
    such as an API worker: lines other threads write to stderr meanwhile are written after it, in
    order, none dropped."""
    if "tensorflow" in sys.modules:
        return
    from training.runtime_env import quiet_tensorflow_start

    with quiet_tensorflow_start():
        import tensorflow as tf

        tf.config.list_physical_devices()


class Predictor:
    """A published run's model, ready to segment photos of any size.

    The one door from the TensorFlow-free side (the API, ``python -m training evaluate``) to
    Keras: importing this module imports TensorFlow, so they import it only when a model is
    needed.

    Example::

        predictor = Predictor.load(get_run("unet_scratch_cce-dice_v1_128x256"))
        classes = predictor.classes(photo)      # (H, W) uint8 class indices at the photo's size
    """

    def __init__(self, model, size: tuple[int, int], run: str | None = None):
        self.model, self.size, self.run = model, (int(size[0]), int(size[1])), run

    @classmethod
    def load(cls, run) -> Predictor:
        """Load ``run.model_path`` (any process; the project's Keras objects are registered)."""
        from training.models import load_model

        return cls(load_model(run.model_path), run.input_size, run.name)

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """``(h, w, K)`` class probabilities at the model's size (``upsample_argmax`` takes them to
        any size; the API runs only this under its inference lock)."""
        return predict_probabilities(self.model, image, self.size)

    def classes(self, image: np.ndarray, output_size: tuple[int, int] | None = None) -> np.ndarray:
        """Class indices of ``image`` at ``output_size`` (default: the image's own size). A caller
        holding a huge photo may shrink it first and ask for the original size here."""
        return predict_classes(self.model, image, self.size, output_size)


def evaluate_model(model, root: Path, entries: Sequence[IndexEntry], class_set: ClassSet,
                   size: tuple[int, int], on_prediction: Callable[[int, np.ndarray], None] | None = None,
                   progress: bool = True, on_confidence: Callable[[int, np.ndarray], None] | None = None,
                   boundary_ratio: float = DEFAULT_RATIO, with_anatomy: bool = True,
                   threads: int | None = None) -> dict:
    """Predict every image of ``entries`` and score it against its ground truth.

    Three stages overlap, each image's work in one thread: reading (decode, shrink to ``size``)
    runs ahead in ``threads`` threads
    (``model_evaluation_threads``: by default half the cores); the model predicts here, one image
    at a time; finishing (upsampling, pair counts, the anatomy with its instanceIds, calibration
    table) runs in ``threads`` more: about a third of the work each.
    ``on_prediction`` and ``on_confidence`` are called here, in image order, while the threads
    work on the next images (libspng, OpenCV, zlib and TensorFlow release the GIL).

    ``on_confidence(id, map)`` gets each image's top probability as uint8 ``round(255 p)``.

    Returns:
        ``summary`` (``training.evaluation.evaluator.summarize``), ``confusion`` (K x K),
        ``per_image`` rows (id, split, mIoU, pixel accuracy, IoU per class),
        ``per_image_confusion`` and ``per_image_official_confusion`` (N x K x K, same order),
        ``calibration``
        (``training.evaluation.calibration.summarize_calibration``: ECE, reliability bins,
        mIoU against coverage) and ``anatomy`` (``training.evaluation.anatomy.Anatomy``:
        Boundary IoU, iIoU, objects, errors in the frame; None without ``with_anatomy``, which
        only ``bench/bench_anatomy.py`` turns off to measure its cost).
    """
    evaluator = Evaluator(class_set, "classes")
    rows = []
    k = class_set.num_classes
    by_confidence = np.zeros((CALIBRATION_BINS, k, k), dtype=np.int64)
    confidence_sums = np.zeros(CALIBRATION_BINS)
    anatomy = Anatomy(class_set, "classes", boundary_ratio) if with_anatomy else None
    threads = model_evaluation_threads(threads)

    def load(entry: IndexEntry):
        image, label_ids = read_pair(root, entry.image, entry.label)
        return entry, resize_image(image, size), label_ids

    def finish(entry: IndexEntry, probabilities: np.ndarray, label_ids: np.ndarray) -> _Finished:
        predicted, confidence = upsample_with_confidence(probabilities, label_ids.shape, reuse=True)
        if anatomy is not None:
            truth = anatomy.truth(label_ids, read_instance_ids(root / entry.label))
            scored = anatomy.score(entry.id, truth, predicted)
            counts, truth_classes = scored.counts, truth.all_classes
        else:
            scored, counts, truth_classes = None, pair_table(label_ids, predicted), lookup(class_set.lut, label_ids)
        levels = cv2.convertScaleAbs(confidence, alpha=255.0)  # round(255 p), saturated
        table, sums = calibration_counts(truth_classes, predicted, levels, k)
        return _Finished(entry, predicted, levels, counts, scored, table, sums)

    def add(done: _Finished) -> None:
        nonlocal confidence_sums
        image_confusion = evaluator.add_counts(done.counts).all_classes
        if anatomy is not None:
            anatomy.add_scored(done.anatomy)
        by_confidence[...] += done.calibration
        confidence_sums += done.confidence_sums
        rows.append({"id": done.entry.id, "split": done.entry.split, **image_scores(class_set, image_confusion)})
        if on_prediction is not None:
            on_prediction(done.entry.id, done.predicted)
        if on_confidence is not None:
            on_confidence(done.entry.id, done.levels)

    with opencv_threads_beside(2 * threads), \
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="finish") as finishing:
        waiting: deque = deque()
        examples = iter(tqdm(ordered_map(load, entries, threads, depth=max(READ_AHEAD, 2 * threads)),
                             total=len(entries), desc="evaluate", unit="img", disable=not progress))
        while True:
            try:
                entry, small, label_ids = next(examples)
            except StopIteration:
                break
            except Exception:  # an unreadable image: the images before it are added first
                while waiting:
                    add(waiting.popleft().result())
                raise
            probabilities = np.asarray(model.predict_on_batch(small[None].astype(np.float32) / 255.0))[0]
            waiting.append(finishing.submit(finish, entry, probabilities, label_ids))
            while len(waiting) > threads:
                add(waiting.popleft().result())
        while waiting:
            add(waiting.popleft().result())
    stacks = evaluator.per_image_confusions()
    return {"summary": evaluator.summary(), "confusion": evaluator.confusion.copy(), "per_image": rows,
            "per_image_confusion": stacks.all_classes, "per_image_official_confusion": stacks.official,
            "calibration": summarize_calibration(by_confidence, confidence_sums), "anatomy": anatomy}


@dataclass
class _Finished:
    """One image past the model: what ``evaluate_model`` adds up and hands to its callbacks, in order."""

    entry: IndexEntry
    predicted: np.ndarray  # (H, W) uint8 classes
    levels: np.ndarray  # (H, W) uint8 round(255 p)
    counts: np.ndarray  # (256, 256) pair counts
    anatomy: object  # ImageAnatomy or None
    calibration: np.ndarray  # (bins, K, K)
    confidence_sums: np.ndarray  # (bins,)


def model_evaluation_threads(threads: int | None = None) -> int:
    """The threads of each of the two stages around the model in ``evaluate_model``: ``threads``,
    else ``$EVALUATION_THREADS``, else half the cores this process may run on (at least one).
    Reading, the model (TensorFlow's own threads) and finishing share the cores: more threads
    than cores only add hand-offs (2 cores: 1 thread per stage 80 ms per 2048x1024 image, 2 per
    stage 93 ms)."""
    if threads is None:
        text = os.environ.get(THREADS_ENV, "").strip()
        if not text:
            return max(1, cores() // 2)
        try:
            threads = int(text)
        except ValueError:
            raise ValueError(f"{THREADS_ENV}={text!r} is not a whole number") from None
    return evaluation_threads(threads)


def inference_ms_per_image(model, size: tuple[int, int], repeats: int = 10) -> float:
    """Median time in ms of one compiled forward pass on one image at the training size (batch 1),
    timed as ``training.fit.latency`` times it (which also records the conditions)."""
    from training.fit.latency import time_calls

    return round(float(np.median(time_calls(model, size, repeats))), 3)
