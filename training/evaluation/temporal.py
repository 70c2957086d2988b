"""Temporal consistency: how much a model's per-frame predictions flicker along a drive.

The measure of Liu et al., "Efficient Semantic Video Segmentation with Per-frame Inference"
(ECCV 2020): the prediction of frame ``t-1`` is carried to frame ``t`` by the optical flow between
the two photos, and compared with the prediction of frame ``t``::

    TC = mean over consecutive pairs (t-1, t) of  mIoU(P_t, warp(P_{t-1}, flow t -> t-1))

A model whose classes stay on the objects as they move scores near 1; one that flickers (a car
that is a car, then a truck, then a car) scores lower, whatever the ground truth. No ground truth
is needed: any model's frames can be scored, the sequences Cityscapes ships without labels too.

How it is computed here:

* **flow**: OpenCV's DIS (``cv2.DISOpticalFlow_create``, preset ``fast``) on the grey photos, at
  most ``flow_width`` pixels wide (by default a quarter of the photo's width, at least 256:
  ``bench/bench_temporal.py`` measures what the smaller size costs in TC), from ``t`` to ``t-1``
  and from ``t-1`` to ``t``; the flow is scaled back to the prediction's size.
* **warp**: ``P_{t-1}`` sampled at ``x + flow(x)`` by nearest neighbour (``cv2.remap``,
  ``INTER_NEAREST``): class indices are never blended.
* **pixels not counted**: those whose flow leaves the frame, and those failing the
  forward-backward check of Sundaram et al. (ECCV 2010), as used for video style transfer by Ruder
  et al. (2016): with ``b`` the flow ``t -> t-1`` at ``x`` and ``f`` the flow ``t-1 -> t`` at
  ``x + b``, a pixel counts when ``|b + f|^2 <= 0.01 (|b|^2 + |f|^2) + 0.5`` (``FB_ALPHA``,
  ``FB_BETA``; in pixels of the flow's size), and, as Ruder et al. add, when it is on no motion
  boundary: ``|grad b_x|^2 + |grad b_y|^2 <= 0.01 |b|^2 + 0.002`` (``MB_ALPHA``, ``MB_BETA``);
  the neighbours (3x3) of a pixel failing either are left out too. Pixels an object uncovers at
  ``t`` (occluded at ``t-1``) have no counterpart and mostly fail it, as do many flow errors
  (``tests/test_temporal.py``: about 80 % of the uncovered strip of a moving square).
* **scores**: per pair, the confusion of ``P_t`` against the warped ``P_{t-1}`` over the counted
  pixels (the classes, and "no class" (255) as one more value); the IoU of each class, the mean
  over the classes present in either map (classes absent from both are left out) and the
  flicker rate (counted pixels whose class changed). A sequence's ``temporal_consistency`` is the
  mean of its pairs' mIoU, its ``flicker_rate`` the pooled share of changed pixels; overall, the
  same over every pair of every sequence.

Limits (docs/metrics.md, "Temporal consistency"): flow errors count as flicker (textureless road, sky,
motion blur, very fast motion), and a correct change of class (an object entering from behind
another) is flicker too where the check does not catch it; a model that predicts one class
everywhere scores 1. TC is a companion of mIoU against ground truth, never a substitute.

Frames are photos named ``<city>_<seq>_<frame>_leftImg8bit.png`` anywhere under a folder
(``leftImg8bit_sequence/<split>/<city>/`` or ``leftImg8bit/demoVideo/<video>/``, whose video names
such as ``stuttgart_00`` hold an underscore: names are read from the right). A sequence is a run
of consecutive frame numbers of one ``<city>_<seq>``; it is named by its first frame. Predictions
are PNGs in any of the formats of ``evaluate-masks`` (``training.evaluation.formats``), matched
by the frame's ``<city>_<seq>_<frame>`` in their names. Decoding and flow run in a few threads
(libspng and OpenCV release the GIL).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from training.data.cityscapes import DatasetError, read_png_file
from training.data.labels import IGNORE_INDEX, NUM_LABEL_IDS, ClassSet, get_class_set
from training.evaluation.anatomy import lookup
from training.evaluation.boundary import pixel_histogram
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
from training.evaluation.masks import evaluation_threads, listed_names, opencv_threads_beside
from training.files import finite_or_none

PHOTO_SUFFIX = "_leftImg8bit.png"
# The flow's width unless given: a quarter of the photo's, at least 256 pixels (2048 -> 512, 512 -> 256):
# TC within 0.006 of full-size flow at 3 to 5 times its speed (bench/bench_temporal.py; docs/benchmarks.md).
FLOW_SHRINK, MIN_FLOW_WIDTH = 4, 256
MIN_FLOW_SIDE = 12  # DIS refuses smaller images
DEFAULT_FLOW_WIDTH = None
FLOW_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
DEFAULT_PRESET = "fast"
FB_ALPHA, FB_BETA = 0.01, 0.5  # the forward-backward check (Sundaram et al. 2010), in flow pixels
MB_ALPHA, MB_BETA = 0.01, 0.002  # the motion-boundary check beside it (Ruder et al. 2016)
OUTSIDE = 254  # a warped pixel whose flow leaves the frame (never a class index: at most 19 classes)

_FRAME_NAME = re.compile(r"^(?P<city>.+)_(?P<seq>\d{6})_(?P<frame>\d{6})" + re.escape(PHOTO_SUFFIX) + "$")
_TAIL = re.compile(r"(\d{6})_(\d{6})(?!\d)")


# ---------------------------------------------------------------------------- frames and sequences

@dataclass(frozen=True)
class Frame:
    """One photo of a drive: ``key`` is ``<city>_<seq>_<frame>`` (city may hold underscores)."""

    city: str
    seq: str
    number: int
    path: Path

    @property
    def key(self) -> str:
        return f"{self.city}_{self.seq}_{self.number:06d}"


@dataclass(frozen=True)
class FrameRun:
    """Consecutive frames of one ``<city>_<seq>``, named by its first frame."""

    name: str
    frames: tuple[Frame, ...]


def photo_frame(path: Path) -> Frame | None:
    """The frame a photo named ``<city>_<seq>_<frame>_leftImg8bit.png`` is; None for another name."""
    match = _FRAME_NAME.match(Path(path).name)
    return Frame(match["city"], match["seq"], int(match["frame"]), Path(path)) if match else None


def find_frames(frames_dir: Path) -> list[Frame]:
    """Every ``<city>_<seq>_<frame>_leftImg8bit.png`` under ``frames_dir``, sorted.

    Raises:
        DatasetError: the folder is missing or holds no such photo, or two photos have one name.
    """
    frames_dir = Path(frames_dir)
    if not frames_dir.is_dir():
        raise DatasetError(f"{frames_dir}: frames folder does not exist")
    found: dict[str, Frame] = {}
    for folder, _, names in os.walk(frames_dir):
        for name in sorted(names):
            frame = photo_frame(Path(folder) / name)
            if frame is None:
                continue
            if frame.key in found:
                raise DatasetError(f"{frame.path}: a second photo of {frame.key} (first: {found[frame.key].path})")
            found[frame.key] = frame
    if not found:
        raise DatasetError(f"{frames_dir}: no photos named <city>_<seq>_<frame>{PHOTO_SUFFIX}")
    return sorted(found.values(), key=lambda f: (f.city, f.seq, f.number))


def group_sequences(frames: Sequence[Frame]) -> list[FrameRun]:
    """Runs of consecutive frame numbers of one ``<city>_<seq>`` (a gap starts a new run)."""
    runs: list[list[Frame]] = []
    for frame in sorted(frames, key=lambda f: (f.city, f.seq, f.number)):
        last = runs[-1][-1] if runs else None
        if last and (last.city, last.seq, last.number + 1) == (frame.city, frame.seq, frame.number):
            runs[-1].append(frame)
        else:
            runs.append([frame])
    return [FrameRun(run[0].key, tuple(run)) for run in runs]


@dataclass(frozen=True)
class FramePredictions:
    """``paths``: frame key -> prediction PNG; ``skipped``: PNGs of sequences with no photo under
    the frames folder (another city, another drive), left out; ``unnamed``: PNGs whose names hold
    no ``<seq>_<frame>`` at all, left out."""

    paths: dict[str, Path]
    skipped: list[Path]
    unnamed: list[Path] = field(default_factory=list)


def match_frame_predictions(frames: Sequence[Frame], pred_dir: Path, partial: bool = False,
                            photos: str = "under the frames folder") -> FramePredictions:
    """The prediction PNG of each frame that has one.

    A file matches the frame whose ``<city>_<seq>_<frame>`` its name holds (the longest such
    name when several would, e.g. ``stuttgart_00_000000_000001`` before ``00_000000_000001``). A
    file of a ``<city>_<seq>`` with no photo at all is skipped (a folder of predictions may hold
    more cities or drives than the frames folder).

    Raises:
        DatasetError: the folder is missing; a file names a frame whose photo is missing from a
            sequence that has photos; two files name one frame; a frame has no file (unless
            ``partial``); nothing matched. ``photos`` says where the photos are, in these messages.
    """
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise DatasetError(f"{pred_dir}: prediction folder does not exist")
    by_tail: dict[str, list[Frame]] = {}
    cities_of_seq: dict[str, set[str]] = {}
    for frame in frames:
        by_tail.setdefault(f"{frame.seq}_{frame.number:06d}", []).append(frame)
        cities_of_seq.setdefault(frame.seq, set()).add(frame.city)
    found: dict[str, Path] = {}
    no_photo: list[str] = []
    skipped: list[Path] = []
    unnamed: list[Path] = []
    for folder, _, names in os.walk(pred_dir):
        for name in sorted(names):
            if not name.endswith(".png"):
                continue
            path = Path(folder) / name
            frame = _frame_of(name, by_tail)
            if frame is None:
                sequence = _sequence_of(name, cities_of_seq)
                if sequence:
                    no_photo.append(f"{sequence} ({path})")
                elif _TAIL.search(name):
                    skipped.append(path)
                else:
                    unnamed.append(path)
                continue
            if frame.key in found:
                raise DatasetError(f"{path}: a second prediction for {frame.key} (first: {found[frame.key]})")
            found[frame.key] = path
    if no_photo:
        raise DatasetError(f"{len(no_photo)} predictions of frames with no photo {photos}: "
                           f"{listed_names(no_photo, 3)}")
    if not found:
        raise DatasetError(f"{pred_dir}: no prediction for any of the {len(frames)} frames (file names must hold "
                           f"<city>_<seq>_<frame>, e.g. {frames[0].key})")
    missing = [f.key for f in frames if f.key not in found]
    if missing and not partial:
        raise DatasetError(f"{pred_dir}: no prediction for {len(missing)} of {len(frames)} frames: "
                           f"{listed_names(missing)} (score the others with --partial)")
    return FramePredictions(found, skipped, unnamed)


def _sequence_of(name: str, cities_of_seq: dict[str, set[str]]) -> str | None:
    """The ``<city>_<seq>_<frame>`` a file name holds when its ``<city>_<seq>`` has photos."""
    for match in _TAIL.finditer(name):
        before = name[:match.start()]
        if any(before.endswith(city + "_") for city in cities_of_seq.get(match[1], ())):
            city = max((c for c in cities_of_seq[match[1]] if before.endswith(c + "_")), key=len)
            return f"{city}_{match[1]}_{match[2]}"
    return None


def _frame_of(name: str, by_tail: dict[str, list[Frame]]) -> Frame | None:
    best = None
    for match in _TAIL.finditer(name):
        for frame in by_tail.get(f"{match[1]}_{match[2]}", ()):
            before = name[:match.start()]
            if before.endswith(frame.city + "_") and (best is None or len(frame.city) > len(best.city)):
                best = frame
    return best


# ---------------------------------------------------------------------------- reading

def read_photo_grey(path: Path) -> np.ndarray:
    """``(H, W)`` uint8 grey of an 8-bit RGB photo (decoded in a GIL-free thread where possible)."""
    rgb = read_png_file(Path(path), ("RGB",), "8-bit RGB photo")
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


@dataclass(frozen=True)
class PredictionReader:
    """Turns a prediction PNG of ``format`` into class indices of ``class_set`` (255: no class)."""

    class_set: ClassSet
    format: str
    reason: str = "given"

    def __call__(self, path: Path) -> np.ndarray:
        values = read_png_file(Path(path), SINGLE_CHANNEL_MODES + COLOR_MODES,
                                   "labelIds, trainIds or colours of the official palette")
        try:
            if values.ndim == 3:
                if self.format != "color":
                    raise FormatError(f"a colour PNG, but the predictions are {self.format}")
                label_ids = color_to_label_ids(values)
            else:
                if self.format == "color":
                    raise FormatError("a single-channel PNG, but the predictions are color")
                label_ids = lookup(TO_LABEL_IDS[self.format], values)
                if int(cv2.minMaxLoc(label_ids)[1]) == INVALID:
                    check_values(np.bincount(values.ravel(), minlength=256), self.format)
        except FormatError as error:
            raise DatasetError(f"{path}: {error}") from None
        return np.ascontiguousarray(lookup(self.class_set.lut, label_ids))


def prediction_reader(first: Path, classes: str = "categories8", format: str = "auto") -> PredictionReader:
    """The reader of a folder of predictions, its format given or detected from ``first``: colour
    PNGs are colours; values 19..33 mean labelIds; 255 means trainIds; with only 0..18 (no ground
    truth to ask here) they are read as trainIds, and the reason says so."""
    class_set = get_class_set(classes)
    if format != "auto":
        if format not in FORMATS:
            raise ValueError(f"unknown format {format!r}; choose auto or one of {', '.join(FORMATS)}")
        return PredictionReader(class_set, format)
    values = read_png_file(Path(first), SINGLE_CHANNEL_MODES + COLOR_MODES,
                               "labelIds, trainIds or colours of the official palette")
    if values.ndim == 3:
        return PredictionReader(class_set, "color", f"detected from {first.name}: colours")
    present = np.bincount(values.ravel(), minlength=256)
    if not present[19:NUM_LABEL_IDS].any() and not present[NUM_LABEL_IDS:].any():
        return PredictionReader(class_set, "trainIds", f"detected from {first.name}: only values 0..18, "
                                "read as trainIds (give --format labelIds if they are labelIds)")
    counts = np.zeros((256, 256), np.int64)
    counts[0] = present
    try:
        detected = detect_format("L", counts, classes)
    except FormatError as error:
        raise DatasetError(f"{first}: {error}") from None
    return PredictionReader(class_set, detected.format, f"detected from {first.name}: {detected.reason}")


# ---------------------------------------------------------------------------- flow, warp, one pair

def flow_size(shape: tuple[int, int], flow_width: int | None) -> tuple[int, int]:
    """``(height, width)`` the flow is computed at: ``shape`` scaled down to at most ``flow_width``
    pixels wide (never up); None: a quarter of the width, at least ``MIN_FLOW_WIDTH``."""
    height, width = shape[:2]
    if flow_width is None:
        flow_width = max(MIN_FLOW_WIDTH, width // FLOW_SHRINK)
    if flow_width >= width:
        return height, width
    return max(8, round(height * flow_width / width)), int(flow_width)


_PER_THREAD = threading.local()


def _dis(preset: str):
    """A DIS flow object per thread and preset (``calc`` keeps state: one object per thread)."""
    if preset not in FLOW_PRESETS:
        raise ValueError(f"unknown flow preset {preset!r}; choose one of {', '.join(FLOW_PRESETS)}")
    objects = _PER_THREAD.__dict__.setdefault("dis", {})
    if preset not in objects:
        objects[preset] = cv2.DISOpticalFlow_create(FLOW_PRESETS[preset])
    return objects[preset]


def consistent_flow(grey: np.ndarray, previous_grey: np.ndarray, preset: str = DEFAULT_PRESET,
                    alpha: float = FB_ALPHA, beta: float | None = FB_BETA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(flow, ok, inside)``: the flow from ``grey`` (frame t) to ``previous_grey`` (t-1),
    ``(H, W, 2)`` float32 in pixels (x, y); the uint8 map of pixels whose flow stays in the frame
    and passes the forward-backward and motion-boundary checks (1; else 0); the uint8 map of pixels
    whose flow stays in the frame. ``beta=None`` skips the checks."""
    dis = _dis(preset)
    backward = dis.calc(grey, previous_grey, None)
    height, width = grey.shape
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = grid_x + backward[..., 0], grid_y + backward[..., 1]
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    inside = inside.astype(np.uint8)
    if beta is None:
        return backward, inside, inside
    forward = dis.calc(previous_grey, grey, None)
    forward_there = cv2.remap(forward, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    loop = backward + forward_there
    squared = (backward ** 2).sum(-1)
    consistent = (loop ** 2).sum(-1) <= alpha * (squared + (forward_there ** 2).sum(-1)) + beta
    # Motion boundaries (Ruder et al.): DIS smooths the flow across an object's edge, so pixels an
    # object uncovers borrow its motion and pass the loop; a steep flow gradient marks them.
    gradient = sum((cv2.Sobel(backward, cv2.CV_32F, dx, 1 - dx, ksize=1) / 2) ** 2 for dx in (0, 1)).sum(-1)
    consistent &= gradient <= MB_ALPHA * squared + MB_BETA
    rejected = cv2.dilate((~consistent).astype(np.uint8), np.ones((3, 3), np.uint8))  # and their neighbours
    return backward, inside & (rejected == 0), inside


def warp_previous(previous: np.ndarray, flow: np.ndarray, ok: np.ndarray,
                  inside: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(warped, counted)``: class map ``previous`` (t-1) carried to frame t by ``flow`` (t -> t-1,
    at any size of the same aspect: scaled to ``previous``), nearest neighbour, ``OUTSIDE`` where it
    leaves the frame (or ``inside`` is 0); ``counted`` (uint8) = the flow's ``ok`` at the map's
    size, and inside."""
    height, width = previous.shape
    if flow.shape[:2] != (height, width):
        scale_x, scale_y = width / flow.shape[1], height / flow.shape[0]
        flow = cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR)
        flow[..., 0] *= scale_x
        flow[..., 1] *= scale_y
        ok = cv2.resize(ok, (width, height), interpolation=cv2.INTER_NEAREST)
        if inside is not None:
            inside = cv2.resize(inside, (width, height), interpolation=cv2.INTER_NEAREST)
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    warped = cv2.remap(previous, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_NEAREST,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=OUTSIDE)
    if inside is not None:
        warped[inside == 0] = OUTSIDE
    counted = ok.copy()
    counted[warped == OUTSIDE] = 0
    return warped, counted


def pair_confusion(current: np.ndarray, warped: np.ndarray, counted: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K+1, K+1)`` int64 counts of (class at t, warped class of t-1) over the counted pixels; the
    last row and column are "no class" (255)."""
    table = pixel_histogram([current, warped], [256, 256], mask=counted).astype(np.int64)
    values = [*range(num_classes), IGNORE_INDEX]
    return table[np.ix_(values, values)]


def class_ious(confusion: np.ndarray) -> np.ndarray:
    """``(K,)`` IoU per class of a ``(K+1, K+1)`` pair confusion (NaN for a class in neither map)."""
    confusion = np.asarray(confusion, dtype=np.float64)
    k = confusion.shape[0] - 1
    inter = np.diag(confusion)[:k]
    union = confusion.sum(0)[:k] + confusion.sum(1)[:k] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), np.nan)


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


@dataclass
class PairScore:
    """One pair (t-1, t): its confusion over counted pixels, and the pixels it left out."""

    frame: str
    confusion: np.ndarray
    pixels: int
    outside: int  # flow left the frame
    inconsistent: int  # failed the forward-backward check (inside the frame)

    @property
    def counted(self) -> int:
        return int(self.confusion.sum())

    @property
    def changed(self) -> int:
        return self.counted - int(np.trace(self.confusion))

    def row(self, names: Sequence[str]) -> dict:
        ious = class_ious(self.confusion)
        return {"frame": self.frame, "miou": finite_or_none(_nanmean(ious)),
                "flicker_rate": finite_or_none(self.changed / self.counted if self.counted else float("nan")),
                "counted_pixels": self.counted, "pixels": self.pixels, "outside": self.outside,
                "inconsistent": self.inconsistent,
                "iou": {name: finite_or_none(v) for name, v in zip(names, ious)}}


def score_pair(grey: np.ndarray, previous_grey: np.ndarray, current: np.ndarray, previous: np.ndarray,
               num_classes: int, flow_width: int | None = DEFAULT_FLOW_WIDTH, preset: str = DEFAULT_PRESET,
               beta: float | None = FB_BETA, frame: str = "") -> PairScore:
    """Score ``current`` (class map of t) against ``previous`` (t-1) warped by the flow of the
    photos (grey, any size of the maps' aspect)."""
    if current.shape != previous.shape:
        raise DatasetError(f"{frame}: prediction size {current.shape[1]}x{current.shape[0]} differs from the "
                           f"previous frame's {previous.shape[1]}x{previous.shape[0]}")
    if grey.shape != previous_grey.shape:
        raise DatasetError(f"{frame}: photo size {grey.shape[1]}x{grey.shape[0]} differs from the previous "
                           f"frame's {previous_grey.shape[1]}x{previous_grey.shape[0]}")
    if abs(grey.shape[1] / grey.shape[0] - current.shape[1] / current.shape[0]) > 0.02 * grey.shape[1] / grey.shape[0]:
        raise DatasetError(f"{frame}: prediction {current.shape[1]}x{current.shape[0]} and photo "
                           f"{grey.shape[1]}x{grey.shape[0]} differ in shape")
    height, width = flow_size(grey.shape, flow_width)
    if min(height, width) < MIN_FLOW_SIDE:
        raise DatasetError(f"{frame}: photos of {grey.shape[1]}x{grey.shape[0]} are too small for optical flow "
                           f"at {width}x{height} (at least {MIN_FLOW_SIDE} pixels a side)")
    if (height, width) != grey.shape:
        grey = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)
        previous_grey = cv2.resize(previous_grey, (width, height), interpolation=cv2.INTER_AREA)
    flow, ok, inside = consistent_flow(grey, previous_grey, preset, beta=beta)
    warped, counted = warp_previous(previous, flow, ok, inside)
    confusion = pair_confusion(current, warped, counted, num_classes)
    outside = int(np.count_nonzero(warped == OUTSIDE))
    return PairScore(frame, confusion, current.size, outside, current.size - outside - int(confusion.sum()))


# ---------------------------------------------------------------------------- sequences

def summarize_pairs(pairs: Sequence[PairScore], class_set: ClassSet) -> dict:
    """``temporal_consistency`` (mean over pairs of their mIoU), ``temporal_consistency_per_class``
    (per class, mean of its IoU over the pairs where it occurs), ``flicker_rate`` (changed counted
    pixels over counted pixels, pooled) and the ``counts``; None where there is no pair."""
    names = class_set.names
    ious = np.array([class_ious(p.confusion) for p in pairs]).reshape(len(pairs), len(names))
    pair_mious = [_nanmean(row) for row in ious]
    counted = sum(p.counted for p in pairs)
    pixels = sum(p.pixels for p in pairs)
    per_class = [_nanmean(ious[:, k]) for k in range(len(names))]
    return {
        "temporal_consistency": finite_or_none(_nanmean(pair_mious)),
        "temporal_consistency_per_class": {name: finite_or_none(v) for name, v in zip(names, per_class)},
        "flicker_rate": finite_or_none(sum(p.changed for p in pairs) / counted if counted else float("nan")),
        "counts": {"pairs": len(pairs), "pixels": pixels, "counted_pixels": counted,
                   "counted_share": finite_or_none(counted / pixels if pixels else float("nan")),
                   "outside": sum(p.outside for p in pairs), "inconsistent": sum(p.inconsistent for p in pairs)},
    }


@dataclass
class _Decoded:
    key: str
    grey: np.ndarray  # at the flow's size
    classes: np.ndarray


def _pipeline(runs: Sequence[Sequence], load: Callable, pair: Callable, threads: int,
              on_frame: Callable[[], None] | None = None):
    """``(run index, pair(previous, current))`` for each consecutive pair of each run, in order:
    ``load`` decodes frames a bounded number ahead and ``pair`` scores pairs in ``threads`` threads,
    one pool (a worker never waits for another's future)."""
    flat = [(r, i, item) for r, run in enumerate(runs) for i, item in enumerate(run)]
    depth = 2 * threads
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="temporal") as pool:
        loads: deque[Future] = deque(pool.submit(load, item) for _, _, item in flat[:depth])
        pending: deque[tuple[int, Future]] = deque()
        previous = None
        for n, (r, i, _) in enumerate(flat):
            current = loads.popleft().result()
            if n + depth < len(flat):
                loads.append(pool.submit(load, flat[n + depth][2]))
            if i > 0:
                pending.append((r, pool.submit(pair, previous, current)))
            previous = current
            if on_frame is not None:
                on_frame()
            while len(pending) > depth:
                run, done = pending.popleft()
                yield run, done.result()
        while pending:
            run, done = pending.popleft()
            yield run, done.result()


def _check_settings(flow_width: int | None, preset: str) -> None:
    if flow_width is not None and flow_width < 16:
        raise ValueError(f"flow width must be at least 16 pixels, got {flow_width}")
    if preset not in FLOW_PRESETS:
        raise ValueError(f"unknown flow preset {preset!r}; choose one of {', '.join(FLOW_PRESETS)}")


def score_runs(runs: Sequence[tuple[str, Sequence, Sequence]], class_set: ClassSet,
               read_photo: Callable = read_photo_grey, read_prediction: Callable | None = None,
               flow_width: int | None = DEFAULT_FLOW_WIDTH, preset: str = DEFAULT_PRESET,
               beta: float | None = FB_BETA, workers: int | None = None,
               progress: Callable[[], None] | None = None) -> dict:
    """Temporal consistency of ``runs``: ``(name, photos, predictions)``, each photo a path (read
    with ``read_photo``) or an ``(H, W, 3)`` RGB / ``(H, W)`` grey array, each prediction a path
    (read with ``read_prediction``) or an ``(H, W)`` array of class indices of ``class_set``
    (255: no class). Consecutive items of a run are consecutive frames. ``progress()`` is called
    once per frame.

    Returns:
        ``summarize_pairs`` of all pairs, ``sequences`` (per run: its name, ``frames``, the same
        numbers and ``pairs``: one row per pair, for a per-frame chart), ``class_names``, ``flow``
        (the settings), ``seconds`` and ``frames_per_second``.
    """
    _check_settings(flow_width, preset)
    start = time.perf_counter()
    threads = evaluation_threads(workers)
    num_classes = class_set.num_classes

    def load(item) -> _Decoded:
        key, photo, prediction = item
        if isinstance(photo, np.ndarray):
            grey = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY) if photo.ndim == 3 else photo
        else:
            grey = read_photo(photo)
        if not shapes:
            shapes.append(grey.shape)
        height, width = flow_size(grey.shape, flow_width)
        if (height, width) != grey.shape:
            grey = cv2.resize(grey, (width, height), interpolation=cv2.INTER_AREA)
        if isinstance(prediction, np.ndarray):
            classes = prediction
        elif read_prediction is None:
            raise ValueError("predictions given as paths need read_prediction")
        else:
            classes = read_prediction(prediction)
        classes = np.ascontiguousarray(classes, dtype=np.uint8)
        if classes.ndim != 2:
            raise DatasetError(f"{key}: a prediction must be one class index per pixel, got shape {classes.shape}")
        return _Decoded(key, np.ascontiguousarray(grey), classes)

    def pair(previous: _Decoded, current: _Decoded) -> PairScore:
        return score_pair(current.grey, previous.grey, current.classes, previous.classes, num_classes,
                          flow_width, preset, beta, frame=current.key)

    items = []
    for name, photos, predictions in runs:
        if len(photos) != len(predictions):
            raise ValueError(f"{name}: {len(photos)} photos but {len(predictions)} predictions")
        items.append([(_key(name, i, photo), photo, prediction)
                      for i, (photo, prediction) in enumerate(zip(photos, predictions))])
    scored: list[list[PairScore]] = [[] for _ in runs]
    shapes: list[tuple[int, int]] = []
    with opencv_threads_beside(threads):
        for run, score in _pipeline(items, load, pair, threads, progress):
            scored[run].append(score)
    all_pairs = [p for pairs in scored for p in pairs]
    if not all_pairs:
        raise DatasetError("no two consecutive frames to compare (every sequence has a single frame)")
    sequences = []
    for (name, photos, _), pairs, run_items in zip(runs, scored, items):
        sequences.append({"name": name, "frames": len(photos), "first": run_items[0][0], "last": run_items[-1][0],
                          **summarize_pairs(pairs, class_set),
                          "pairs": [p.row(class_set.names) for p in pairs]})
    seconds = time.perf_counter() - start
    frames = sum(len(photos) for _, photos, _ in runs)
    first_shape = shapes[0] if shapes else None
    result = summarize_pairs(all_pairs, class_set)
    result["counts"].update(sequences=len(runs), frames=frames,
                            single_frame_sequences=sum(1 for s in sequences if s["frames"] < 2))
    return {**result, "classes": class_set.name, "class_names": list(class_set.names),
            "flow": {"method": "DIS (OpenCV)", "preset": preset, "max_width": flow_width,
                     "width": flow_size(first_shape, flow_width)[1] if first_shape else None,
                     "forward_backward": None if beta is None else {"alpha": FB_ALPHA, "beta": beta}},
            "sequences": sequences, "seconds": seconds, "frames_per_second": frames / seconds if seconds else None}


def _key(name: str, index: int, photo) -> str:
    if isinstance(photo, (str, os.PathLike)):
        match = _FRAME_NAME.match(Path(photo).name)
        if match:
            return f"{match['city']}_{match['seq']}_{match['frame']}"
    return f"{name}[{index}]"


def evaluate_temporal(frames_dir: Path, pred_dir: Path, classes: str = "categories8", format: str = "auto",
                      partial: bool = False, flow_width: int | None = DEFAULT_FLOW_WIDTH,
                      preset: str = DEFAULT_PRESET, workers: int | None = None,
                      progress: Callable[[], None] | None = None) -> dict:
    """Temporal consistency of the predictions under ``pred_dir`` for the photos under ``frames_dir``
    (``score_runs``; sequences found as the module says), with ``format`` and ``format_reason``,
    the folders, and each sequence's ``city``, ``seq`` and frame numbers.

    Raises:
        DatasetError: no photos, predictions matching no photo, photos without a prediction (unless
            ``partial``), a file that cannot be read or is not in the format (each named).
    """
    _check_settings(flow_width, preset)
    frames = find_frames(Path(frames_dir))
    matched = match_frame_predictions(frames, Path(pred_dir), partial)
    found = matched.paths
    runs = group_sequences([f for f in frames if f.key in found])
    first = found[runs[0].frames[0].key]
    reader = prediction_reader(first, classes, format)
    result = score_runs([(run.name, [f.path for f in run.frames], [found[f.key] for f in run.frames])
                         for run in runs], reader.class_set, read_prediction=reader, flow_width=flow_width,
                        preset=preset, workers=workers, progress=progress)
    for sequence, run in zip(result["sequences"], runs):
        sequence.update(city=run.frames[0].city, seq=run.frames[0].seq, first_frame=run.frames[0].number,
                        last_frame=run.frames[-1].number)
    result["counts"].update(frames_without_prediction=len(frames) - len(found),
                            predictions_skipped=len(matched.skipped))
    return {**result, "format": reader.format, "format_reason": reader.reason, "frames_dir": str(frames_dir),
            "pred_dir": str(pred_dir)}


def format_temporal(result: dict, limit: int = 20) -> str:
    """What ``python -m training temporal`` prints: the overall numbers, per class, per sequence."""
    def cell(value):
        return "   n/a" if value is None else f"{value:6.3f}"

    counts = result["counts"]
    lines = [f"{counts['frames']} frames in {counts['sequences']} sequences, {counts['pairs']} pairs, "
             f"classes {result['classes']}"]
    if result.get("format"):
        lines.append(f"predictions: {result['format']} ({result['format_reason']})")
    if counts.get("predictions_skipped"):
        lines.append(f"{counts['predictions_skipped']} predictions of sequences with no photo under the frames "
                     "folder left out")
    if counts.get("frames_without_prediction"):
        lines.append(f"{counts['frames_without_prediction']} frames without a prediction left out (--partial)")
    flow = result["flow"]
    lines.append(f"flow: {flow['method']}, preset {flow['preset']}, {flow['width']} px wide; "
                 f"{cell(counts['counted_share']).strip()} of pixels counted "
                 f"({counts['outside']:,} left the frame, {counts['inconsistent']:,} failed the "
                 "forward-backward check)")
    width = max(len(name) for name in result["class_names"]) + 2
    lines += ["", f"{'class':<{width}}{'TC':>8}"]
    for name in result["class_names"]:
        lines.append(f"{name:<{width}}{cell(result['temporal_consistency_per_class'][name]):>8}")
    lines += ["", f"{'temporal consistency (mIoU)':<30}{cell(result['temporal_consistency'])}",
              f"{'flicker rate':<30}{cell(result['flicker_rate'])}", ""]
    sequences = result["sequences"]
    name_width = max(len(s["name"]) for s in sequences) + 2
    lines.append(f"{'sequence':<{name_width}}{'frames':>7}{'TC':>8}{'flicker':>9}")
    for sequence in sequences[:limit]:
        lines.append(f"{sequence['name']:<{name_width}}{sequence['frames']:>7}{cell(sequence['temporal_consistency']):>8}"
                     f"{cell(sequence['flicker_rate']):>9}")
    if len(sequences) > limit:
        lines.append(f"... and {len(sequences) - limit} more sequences (all of them in --json)")
    return "\n".join(lines)
