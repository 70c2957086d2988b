"""Score prediction PNGs from any tool against ground truth in the Cityscapes layout.

Predictions are matched to ground-truth files by ``<city>_<seq>_<frame>`` anywhere in their file
name, as the official ``evalPixelLevelSemanticLabeling`` does, and may be labelIds (the official
submission format), trainIds or official colours (``training.evaluation.formats``; detected
unless given). ``score_predictions`` is shared by ``evaluate-masks`` and ``import-predictions``,
so an imported run's numbers are those of ``evaluate-masks`` on the same files. PNG decoding, the
slow part, and the scoring of each image run a bounded number of images ahead in threads.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from training.data.cityscapes import DatasetError, read_instance_ids, read_label_ids, read_png_file
from training.data.index import DatasetIndex, IndexEntry, load_or_build_index
from training.evaluation.anatomy import Anatomy, ImageAnatomy, lookup, pair_table
from training.evaluation.boundary import DEFAULT_RATIO, pixel_histogram
from training.evaluation.evaluator import Evaluator, image_scores
from training.evaluation.formats import (
    COLOR_MODES,
    FORMATS,
    INVALID,
    SINGLE_CHANNEL_MODES,
    TO_LABEL_IDS,
    FormatError,
    check_values,
    color_to_label_ids,
    detect_format,
)

KEY_PATTERN = re.compile(r"([A-Za-z0-9-]+_\d{6}_\d{6})")
SPLIT_ALIASES = {"val": "test"}  # the official val folder is our test split
RESIZE_CHOICES = ("nearest",)


def find_predictions(pred_dir: Path) -> dict[str, Path]:
    """``<city>_<seq>_<frame>`` -> prediction file, for every PNG under ``pred_dir``.

    Raises:
        DatasetError: the folder is missing, or two files claim the same image.
    """
    if not pred_dir.is_dir():
        raise DatasetError(f"{pred_dir}: prediction folder does not exist")
    found: dict[str, Path] = {}
    for folder, _, names in os.walk(pred_dir):
        for name in sorted(names):
            match = KEY_PATTERN.search(name)
            if not name.endswith(".png") or not match:
                continue
            path = Path(folder) / name
            key = match.group(1)
            if key in found:
                raise DatasetError(f"{path}: a second prediction for {key} (first: {found[key]})")
            found[key] = path
    return found


def listed_names(items: Sequence[str], limit: int = 5) -> str:
    """The first ``limit`` names of ``items`` for an error message ("a, b, c and 4 more")."""
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


@dataclass(frozen=True)
class Matched:
    """The images of a split that have a prediction, and how many the split has."""

    split: str
    entries: list[IndexEntry]
    paths: list[Path]
    split_images: int

    @property
    def coverage(self) -> dict:
        return {"images": len(self.entries), "split_images": self.split_images}


def match_predictions(index: DatasetIndex, split: str, pred_dir: Path, partial: bool = False,
                      strict: bool = False) -> Matched:
    """Pair the images of ``split`` with their prediction files.

    Args:
        partial: score the images that have a prediction (else a missing one is an error).
        strict: a file for no image of ``split`` is an error (else it is left out, as the
            official script does).

    Raises:
        DatasetError: naming the files (or images) that do not match.
    """
    split = SPLIT_ALIASES.get(split, split)
    entries = index.split(split)
    if not entries:
        raise DatasetError(f"{index.root}: split {split!r} has no images")
    predictions = find_predictions(pred_dir)
    if strict:
        in_split = {e.stem for e in entries}
        by_stem = {e.stem: e for e in index.entries}
        strays = [(path, by_stem.get(key)) for key, path in predictions.items() if key not in in_split]
        if strays:
            path, entry = strays[0]
            where = (f"{entry.stem} is a {entry.split} image, not {split} (--split {entry.split}?)" if entry
                     else f"no image {KEY_PATTERN.search(path.name).group(1)} in {index.root}")
            more = f" ({len(strays) - 1} more such files)" if len(strays) > 1 else ""
            raise DatasetError(f"{path}: {where}{more}")
    matched = [e for e in entries if e.stem in predictions]
    missing = [e.stem for e in entries if e.stem not in predictions]
    if not matched:
        raise DatasetError(f"{pred_dir}: no prediction for any of the {len(entries)} {split} images "
                           f"(file names must hold <city>_<seq>_<frame>, e.g. {entries[0].stem})")
    if missing and not partial:
        raise DatasetError(f"{pred_dir}: no prediction for {len(missing)} of {len(entries)} {split} "
                           f"images: {listed_names(missing)} (score the others with --partial)")
    return Matched(split, matched, [predictions[e.stem] for e in matched], len(entries))


# ---------------------------------------------------------------------------- reading and scoring

@dataclass
class _Read:
    """One decoded prediction: its pixels (labelIds already, for a colour PNG), how many pixels hold
    each value, and (for the format's detection) the counts of (ground-truth labelId, pixel value) pairs."""

    values: np.ndarray
    color: bool
    resized: bool
    problem: str | None = None  # colours outside the palette: said once the format is known
    label_ids: np.ndarray | None = None  # the ground truth
    counts: np.ndarray | None = None  # (256, 256), when asked for


def _read_pixels(gt_path: Path, pred_path: Path, resize: str | None, pairs: bool = False) -> _Read:
    gt = read_label_ids(gt_path)
    pixels = read_png_file(pred_path, SINGLE_CHANNEL_MODES + COLOR_MODES,
                               "labelIds, trainIds or colours of the official palette")
    color = pixels.ndim == 3
    if color:
        try:
            pixels = color_to_label_ids(pixels)
        except FormatError as error:  # a colour PNG in a folder of labelIds is the bigger news
            return _Read(pixels, True, False, str(error), counts=np.zeros((256, 256), np.int64))
    resized = pixels.shape != gt.shape
    if resized:
        if resize != "nearest":
            raise DatasetError(f"{pred_path}: size {pixels.shape[1]}x{pixels.shape[0]}, the ground truth is "
                               f"{gt.shape[1]}x{gt.shape[0]} (--resize nearest scales predictions to it)")
        pixels = np.asarray(Image.fromarray(pixels).resize((gt.shape[1], gt.shape[0]), Image.NEAREST))
    pixels = np.ascontiguousarray(pixels)
    return _Read(pixels, color, resized, label_ids=gt, counts=pair_table(gt, pixels) if pairs else None)


def _format_problem(read: _Read, chosen: str) -> str | None:
    """Why a read prediction is not a file of the format ``chosen`` (None when it may be: its
    values are checked once they are counted, ``_value_problem``)."""
    if read.color != (chosen == "color"):
        kind = "a colour PNG" if read.color else "a single-channel PNG"
        return f"{kind}, but the predictions are {chosen}"
    return read.problem


def _value_problem(read: _Read, chosen: str, counts: np.ndarray) -> str | None:
    """Which values of a single-channel prediction the format ``chosen`` cannot hold (None when
    all can). Such values, and only they, become labelId ``INVALID``: the counts already made say
    whether there are any, and only then are the file's values counted to name them."""
    if read.color or not counts[:, INVALID].any():
        return None
    try:
        check_values(pixel_histogram([read.values], [256]).astype(np.int64), chosen)
    except FormatError as error:
        return str(error)
    return None


@dataclass
class _Scored:
    """One prediction scored in a worker: what the ordered loop adds, or why the file is refused."""

    problem: str | None
    resized: bool = False
    counts: np.ndarray | None = None  # (256, 256) (labelId, predicted labelId) pairs
    anatomy: ImageAnatomy | None = None
    classes: np.ndarray | None = None  # class indices, for on_prediction


def _score_pair(read: _Read, gt_path: Path, image_id: int, chosen: str, anatomy: Anatomy | None,
                class_set, want_classes: bool) -> _Scored:
    """Everything per pixel of one image (decoded by then): the labelIds the file means, their pair
    counts with the ground truth (from the anatomy's histogram when it runs), the anatomy and the
    class map ``on_prediction`` gets."""
    problem = _format_problem(read, chosen)
    if problem:
        return _Scored(problem)
    table = TO_LABEL_IDS["labelIds" if read.color else chosen]
    label_values = read.values if _identity_on(table, read.values) else lookup(table, read.values)
    if anatomy is not None:
        scored = anatomy.score(image_id, anatomy.truth(read.label_ids, read_instance_ids(gt_path)), label_values)
        counts, image_anatomy = scored.counts, scored
    else:
        counts, image_anatomy = pair_table(read.label_ids, label_values), None
    problem = _value_problem(read, chosen, counts)
    if problem:
        return _Scored(problem)
    classes = lookup(class_set.lut, label_values) if want_classes else None
    return _Scored(None, read.resized, counts, image_anatomy, classes)


def _identity_on(table: np.ndarray, values: np.ndarray) -> bool:
    """Whether ``table`` maps every value of ``values`` (uint8) to itself (labelIds below 34: the
    lookup would copy the map unchanged)."""
    if values.dtype != np.uint8 or values.ndim != 2 or not values.size:
        return False
    top = int(cv2.minMaxLoc(values)[1])
    return bool(np.array_equal(table[:top + 1], np.arange(top + 1)))


def ordered_map(function: Callable, items: Sequence, workers: int, depth: int | None = None) -> Iterable:
    """``function(item)`` for each item, in order, up to ``depth`` items ahead in ``workers``
    threads: memory stays bounded however slow the consumer is. A failure is raised at its item."""
    depth = depth or 2 * workers
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="read-ahead") as pool:
        waiting = deque(pool.submit(function, item) for item in items[:depth])
        for item in items[depth:]:
            done = waiting.popleft().result()
            waiting.append(pool.submit(function, item))
            yield done
        while waiting:
            yield waiting.popleft().result()


def cores() -> int:
    """The cores this process may run on (a container or ``taskset`` may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def evaluation_threads(workers: int | None = None) -> int:
    """The threads an evaluation decodes and scores images in: ``workers``, else every core this
    process may run on."""
    if workers is None:
        return cores()
    if workers < 1:
        raise ValueError(f"--workers must be at least 1, got {workers}")
    return int(workers)


@contextlib.contextmanager
def opencv_threads_beside(threads: int):
    """Size OpenCV's own thread pool for ``threads`` threads of ours sharing the cores (one each
    when ours fill them), then restore it. Each image is one thread's work already: OpenCV
    splitting every call across the same busy cores only adds hand-offs (2 cores: 25 ms per
    2048x1024 pair with its pool, 21 without)."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(max(1, cores() // max(1, threads)))
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def score_predictions(gt_root: Path, matched: Matched, classes: str = "categories8", format: str = "auto",
                      resize: str | None = None, workers: int | None = None, progress: bool = True,
                      on_prediction: Callable[[IndexEntry, np.ndarray], None] | None = None,
                      boundary_ratio: float = DEFAULT_RATIO, with_anatomy: bool = True) -> dict:
    """Score every matched prediction; ``on_prediction(entry, classes)`` gets each as class
    indices of ``classes`` (255 where it names no class of the set) at ground-truth size, in order.

    Each image is decoded and scored whole (pair counts, anatomy, class map) in one of ``workers``
    threads (default: every core), a bounded number of images ahead; the loop here only adds
    the small results up in order. The format, when not given, is detected from the first file
    while the others are decoded.

    Returns:
        ``summary`` (``training.evaluation.evaluator.summarize``), ``confusion`` (K x K),
        ``per_image`` rows (id, stem, split, mIoU, pixel accuracy, IoU per class),
        ``per_image_confusion`` and ``per_image_official_confusion`` (N x K x K), ``format`` and
        ``format_reason`` (how it was known), ``resized`` (stems scaled to the ground truth),
        ``seconds`` and ``anatomy`` (``training.evaluation.anatomy.Anatomy``: Boundary IoU, iIoU,
        objects, frame; None without ``with_anatomy``).

    Raises:
        DatasetError: a file that cannot be read, or is not in the format (named).
    """
    if format != "auto" and format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; choose auto or one of {', '.join(FORMATS)}")
    if resize is not None and resize not in RESIZE_CHOICES:
        raise ValueError(f"unknown resize {resize!r}; choose {', '.join(RESIZE_CHOICES)}")
    start = time.perf_counter()
    evaluator = Evaluator(classes, prediction_kind="label_ids")
    class_set = evaluator.class_set
    anatomy = Anatomy(class_set, "label_ids", boundary_ratio) if with_anatomy else None
    threads = evaluation_threads(workers)
    jobs = [(gt_root / e.label, path, e.id) for e, path in zip(matched.entries, matched.paths)]
    # The first file says which format the others are in: the other threads decode meanwhile and
    # wait for it to score (an error in it is raised at the first image, where the loop meets it).
    known: Future = Future()
    if format != "auto":
        known.set_result((format, "given"))

    def detect(read: _Read, pred_path: Path) -> None:
        try:
            detected = detect_format("RGB" if read.color else "L", read.counts, classes)
        except FormatError as error:
            known.set_exception(DatasetError(f"{pred_path}: {error}"))
            raise known.exception() from None
        known.set_result((detected.format, f"detected from {pred_path.name}: {detected.reason}"))

    def score(numbered: tuple[int, tuple]) -> _Scored:
        n, (gt_path, pred_path, image_id) = numbered
        detecting = n == 0 and not known.done()
        try:
            read = _read_pixels(gt_path, pred_path, resize, pairs=detecting)
        except BaseException as error:
            if detecting:
                known.set_exception(error)
            raise
        if detecting:
            detect(read, pred_path)
        chosen = known.result()[0]
        return _score_pair(read, gt_path, image_id, chosen, anatomy, class_set, on_prediction is not None)

    rows, resized = [], []
    with opencv_threads_beside(threads):
        scored_images = ordered_map(score, list(enumerate(jobs)), threads)
        bar = tqdm(scored_images, total=len(jobs), desc="score", unit="img", disable=not progress)
        for entry, path, scored in zip(matched.entries, matched.paths, bar):
            if scored.problem:
                raise DatasetError(f"{path}: {scored.problem}")
            image_confusion = evaluator.add_counts(scored.counts).all_classes
            if anatomy is not None:
                anatomy.add_scored(scored.anatomy)
            rows.append({"id": entry.id, "stem": entry.stem, "split": entry.split,
                         **image_scores(class_set, image_confusion)})
            if scored.resized:
                resized.append(entry.stem)
            if on_prediction is not None:
                on_prediction(entry, scored.classes)
    stacks = evaluator.per_image_confusions()
    chosen, reason = known.result()
    return {"summary": evaluator.summary(), "confusion": evaluator.confusion.copy(), "per_image": rows,
            "per_image_confusion": stacks.all_classes, "per_image_official_confusion": stacks.official,
            "format": chosen,
            "format_reason": reason, "resized": resized, "seconds": time.perf_counter() - start,
            "anatomy": anatomy}


def evaluate_masks(
    gt_root: Path,
    pred_dir: Path,
    split: str = "test",
    classes: str = "categories8",
    workers: int | None = None,
    progress: bool = True,
    index_path: str | None = None,
    format: str = "auto",
    resize: str | None = None,
    partial: bool = False,
    boundary_ratio: float = DEFAULT_RATIO,
    anatomy: bool = True,
) -> dict:
    """Evaluate the ground-truth images of ``split`` against their predictions.

    Returns:
        The summary of ``training.evaluation.evaluator.summarize``, the anatomy's unless
        ``anatomy`` is False (``Anatomy.summary``: ``boundary_iou``, ``mean_boundary_iou``, ``iiou``,
        ``mean_iiou``...),
        ``per_image`` (id, stem, mIoU, pixel accuracy), ``coverage`` (images scored, images in the split), ``format``
        and the folders evaluated.

    Raises:
        DatasetError: predictions missing for some images (unless ``partial``), or a bad file
            (named).
    """
    gt_root, pred_dir = Path(gt_root), Path(pred_dir)
    index = load_or_build_index(gt_root, index_path)
    matched = match_predictions(index, split, pred_dir, partial=partial)
    scored = score_predictions(gt_root, matched, classes, format, resize, workers, progress,
                               boundary_ratio=boundary_ratio, with_anatomy=anatomy)
    result = {**scored["summary"], **(scored["anatomy"].summary() if anatomy else {})}
    result.update(split=matched.split, gt_root=str(gt_root), pred_dir=str(pred_dir),
                  format=scored["format"], format_reason=scored["format_reason"], coverage=matched.coverage,
                  resized=len(scored["resized"]),
                  per_image=[{key: row[key] for key in ("id", "stem", "miou", "pixel_accuracy")}
                             for row in scored["per_image"]])
    return result


def format_report(result: dict) -> str:
    """The per-class table and the means, as printed by ``evaluate-masks``."""
    def cell(value):
        return "   n/a" if value is None else f"{value:6.3f}"

    width = max(len(name) for name in result["class_names"]) + 2
    coverage = result.get("coverage")
    scored = (f"{coverage['images']} of {coverage['split_images']}" if coverage
              and coverage["images"] != coverage["split_images"] else str(result["images"]))
    lines = [f"{scored} images, split {result['split']}, classes {result['classes']}"]
    if result.get("format"):
        lines.append(f"predictions: {result['format']} ({result['format_reason']})")
    if result.get("resized"):
        lines.append(f"{result['resized']} predictions scaled to the ground truth (nearest)")
    lines += ["", f"{'class':<{width}}{'IoU':>8}{'official':>10}"]
    for name in result["class_names"]:
        lines.append(f"{name:<{width}}{cell(result['iou'][name]):>8}{cell(result['iou_official'][name]):>10}")
    lines += ["", f"{'mIoU (all classes)':<28}{cell(result['miou'])}",
              f"{'mIoU (official-compatible)':<28}{cell(result['miou_official'])}",
              f"{'pixel accuracy':<28}{cell(result['pixel_accuracy'])}"]
    if result["classes"] == "categories8":
        lines.append("official-compatible: the cityscapesScripts category score (void and the labels "
                     "it ignores are left out)")
    return "\n".join(lines)
