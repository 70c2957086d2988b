"""Boundary IoU (Cheng et al., "Boundary IoU: Improving Object-Centric Image Segmentation
Evaluation", CVPR 2021), for every class of a class map at once, with OpenCV and numpy.

The reference ``mask_to_boundary`` pads a binary mask with one pixel of zeros, erodes it ``d``
times with a 3x3 kernel (``d = max(1, round(ratio x image diagonal))``), crops the padding and keeps
the mask minus its erosion. A pixel of class ``c`` therefore lies on the boundary of ``c`` exactly
when its ``(2d+1) x (2d+1)`` window holds another value, or reaches the zero padding (it is within
``d`` pixels of the image border). That test does not depend on ``c``, so one pass over a class
map gives every class's boundary (``boundary_band``): the boundary of ``c`` is
``(map == c) & band``. ``packed_bands`` gives the bands of several maps at once, one bit each,
from where 4-neighbours differ (``tests/test_boundary.py`` checks the band against the reference,
written with OpenCV as published).

Boundary IoU of class ``c`` is ``|G_d & P_d| / |G_d | P_d|`` with the ground truth's and the
prediction's boundary regions, intersections and unions summed over all images like IoU. Pixels
whose ground truth has no class (ignored) are not counted, as for IoU. An image's counts come from
the few distinct (truth, prediction, in which band) tuples of one OpenCV histogram
(``pixel_histogram``, exact), not from masked copies of its pixels (``counts_from_tuples``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from training.evaluation.metrics import mean_iou

DEFAULT_RATIO = 0.005  # the paper's choice for Cityscapes-sized images
IGNORE = 255


def boundary_width(shape: tuple[int, int], ratio: float = DEFAULT_RATIO) -> int:
    """``d``: the reference's erosion count, ``max(1, round(ratio x diagonal))`` (11 at 2048x1024,
    3 at 256x512)."""
    if not (math.isfinite(ratio) and ratio > 0):
        raise ValueError(f"the boundary ratio must be a positive number, got {ratio}")
    height, width = shape[:2]
    return max(1, int(round(ratio * math.hypot(height, width))))


_THREAD = threading.local()


def scratch(name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    """This thread's work array ``name`` of ``shape`` and ``dtype``, the same one from call to call
    (its content is what its last user left), kept while the thread lives: for the threads of an
    evaluation, which score image after image. A fresh full-size temporary pays its page faults
    again at every image (~0.5 ms per 2 MB, a tenth of an image's scoring on 2 cores); a few
    reused ones do not. Never return one: the next call overwrites it."""
    buffers = _THREAD.__dict__.setdefault("buffers", {})
    key = (name, tuple(shape), np.dtype(dtype))
    array = buffers.get(key)
    if array is None:
        if len(buffers) >= 32:  # images of many sizes: keep memory bounded
            buffers.clear()
        array = buffers[key] = np.empty(shape, dtype=dtype)
    return array


# The element types cv2.dilate / cv2.erode take as they are.
_MORPHOLOGY_DTYPES = {np.dtype(t) for t in (np.uint8, np.uint16, np.int16, np.float32, np.float64)}


def _as_morphology_input(class_map: np.ndarray) -> np.ndarray:
    """``class_map`` in an element type OpenCV's min / max filters take, with equal values staying
    equal and different ones different (all that the band depends on)."""
    if class_map.dtype in _MORPHOLOGY_DTYPES:
        return class_map
    if class_map.dtype == bool:
        return class_map.view(np.uint8)
    if class_map.dtype == np.int8:
        return class_map.astype(np.int16)
    if np.issubdtype(class_map.dtype, np.integer) and class_map.dtype.itemsize <= 4:
        return class_map.astype(np.float64)  # exact for every 32-bit integer
    _, codes = np.unique(class_map, return_inverse=True)  # 64-bit values: their ranks instead
    return codes.reshape(class_map.shape).astype(np.float64)


def boundary_band(class_map: np.ndarray, width: int, reuse: bool = False) -> np.ndarray:
    """``(H, W)`` bool: the pixels on the boundary of their own class (``mask_to_boundary`` of
    every class, united): their ``(2 width + 1)`` square window is not constant, or they lie
    within ``width`` pixels of the image border.

    For a uint8 (or bool) map, ``packed_bands`` of the map alone. For other types, OpenCV's
    dilation and erosion with the square kernel: a window is constant exactly when its maximum
    equals its minimum (their border handling never matters, since the pixels whose window leaves
    the image are in the band anyway). ``reuse``: the work arrays are this thread's (``scratch``),
    for a thread that computes band after band.
    """
    class_map = np.asarray(class_map)
    if class_map.ndim != 2:
        raise ValueError(f"a class map is (H, W), got shape {class_map.shape}")
    d = int(width)
    if d < 1:
        raise ValueError(f"the boundary width must be at least 1, got {width}")
    if class_map.dtype in (np.uint8, bool):
        return packed_bands([class_map], d, reuse=reuse).view(bool)
    values = _as_morphology_input(class_map)
    kernel = np.ones((2 * d + 1, 2 * d + 1), dtype=np.uint8)
    high = cv2.dilate(values, kernel, dst=scratch("dilated", values.shape, values.dtype) if reuse else None)
    low = cv2.erode(values, kernel, dst=scratch("eroded", values.shape, values.dtype) if reuse else None)
    band = high != low
    _set_border(band, d, True)
    return band


def _set_border(band: np.ndarray, d: int, value) -> None:
    """Every pixel within ``d`` of the image border gets ``value``."""
    band[:d] = value
    band[-d:] = value
    band[:, :d] = value
    band[:, -d:] = value


def packed_bands(maps: list[np.ndarray], width: int, first_bit: int = 0, reuse: bool = False,
                 out: np.ndarray | None = None) -> np.ndarray:
    """``(H, W)`` uint8: bit ``first_bit + i`` set where the pixel is on ``boundary_band(maps[i])``
    (at most 8 bits in all): the bands of several same-shaped uint8 (or bool) class maps in one
    pass, packed as ``band_bits`` packs bands; into ``out`` when given, else a new array.

    A square window is constant exactly when no two 4-neighbours in it differ. With ``across``
    (a pixel differs from its right-hand neighbour) and ``down`` (from the one below), the window
    of (y, x) is not constant when ``across`` holds somewhere in rows ``y-d..y+d``, columns
    ``x-d..x+d-1``, or ``down`` in rows ``y-d..y+d-1``, columns ``x-d..x+d``. Each map's neighbour
    tests set its bit in two shared bytes, and the windows are ORs of shifted copies of those bytes
    (``_or_run``, 5 per axis at d = 11): cheap whole-map passes that serve every map at once,
    in place of a 2-D min and a 2-D max filter per map. ``reuse``: the work arrays are this
    thread's (``scratch``).
    """
    d = int(width)
    if d < 1:
        raise ValueError(f"the boundary width must be at least 1, got {width}")
    maps = [np.ascontiguousarray(m).view(np.uint8) if m.dtype == bool else np.ascontiguousarray(m) for m in maps]
    shape = maps[0].shape
    if len(shape) != 2 or any(m.shape != shape or m.dtype != np.uint8 for m in maps):
        raise ValueError("packed_bands takes same-shaped (H, W) uint8 class maps")
    if first_bit < 0 or first_bit + len(maps) > 8:
        raise ValueError(f"{len(maps)} bands from bit {first_bit} do not fit in a byte")
    height, columns = shape

    def work(name: str, work_shape: tuple[int, int]) -> np.ndarray:
        return scratch(name, work_shape, np.uint8) if reuse else np.empty(work_shape, np.uint8)

    bits = np.empty(shape, np.uint8) if out is None else out
    if bits.shape != shape or bits.dtype != np.uint8:
        raise ValueError(f"packed_bands writes into a {shape} uint8 array, got {bits.dtype} {bits.shape}")
    everything = ((1 << len(maps)) - 1) << first_bit
    if height <= 2 * d or columns <= 2 * d:  # every pixel is within d of the border
        bits[...] = everything
        return bits
    across, down = work("across", (height, columns - 1)), work("down", (height - 1, columns))
    one_across, one_down = work("across of one map", across.shape), work("down of one map", down.shape)
    for i, class_map in enumerate(maps):
        into = (across, down) if i == 0 else (one_across, one_down)
        cv2.compare(class_map[:, :-1], class_map[:, 1:], cv2.CMP_NE, dst=into[0])  # 255 where they differ
        cv2.compare(class_map[:-1], class_map[1:], cv2.CMP_NE, dst=into[1])
        for flags, total in zip(into, (across, down)):
            cv2.bitwise_and(flags, 1 << (first_bit + i), dst=flags)
            if i:
                cv2.bitwise_or(total, flags, dst=total)
    spare = (work("run a", shape), work("run b", shape))
    # runs[y, s]: across in columns s..s+2d-1, that is the columns x-d..x+d-1 of x = s + d.
    runs = _or_run(across, 2 * d, 1, spare)
    rows = work("rows", (height - 1, columns))[:, d:columns - d]
    # A window's rows y-d..y+d of runs, and its rows y-d..y+d-1 of down: 2d rows of this.
    cv2.bitwise_or(runs[:-1], runs[1:], dst=rows)
    cv2.bitwise_or(rows, down[:, d:columns - d], dst=rows)
    inner = bits[d:height - d, d:columns - d]
    _or_run(rows, 2 * d, 0, spare, last=inner)
    _set_border(bits, d, everything)
    return bits


def _or_run(flags: np.ndarray, length: int, axis: int, spare: tuple[np.ndarray, np.ndarray],
            last: np.ndarray | None = None) -> np.ndarray:
    """``out[i] = flags[i] | flags[i + 1] | ... | flags[i + length - 1]`` along ``axis`` (0: rows,
    1: columns), for every ``i`` where the run fits (``length - 1`` fewer along ``axis``), by
    doubling; each step writes into one of the two ``spare`` arrays (at least ``flags``' shape),
    the last one into ``last`` when given."""
    def cut(array: np.ndarray, start: int, size: int) -> np.ndarray:
        return array[start:start + size] if axis == 0 else array[:, start:start + size]

    def target(step: int, size: int) -> np.ndarray:
        rows, columns = (size, current.shape[1]) if axis == 0 else (current.shape[0], size)
        return spare[step % 2][:rows, :columns]

    if length < 2:
        raise ValueError("a run of OR has at least 2 elements")
    current, span = flags, 1
    shifts = []
    while span * 2 <= length:
        shifts.append(span)
        span *= 2
    if span < length:
        shifts.append(length - span)
    for step, shift in enumerate(shifts):
        size = current.shape[axis] - shift
        out = last if last is not None and step == len(shifts) - 1 else target(step, size)
        cv2.bitwise_or(cut(current, 0, size), cut(current, shift, size), dst=out)
        current = out
    return current


def boundary_counts(truth: np.ndarray, predicted: np.ndarray, num_classes: int, width: int,
                    truth_band: np.ndarray | None = None, predicted_band: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray]:
    """One image's per-class ``(intersection, union)`` of the boundary regions, ``(K,)`` each.

    Args:
        truth: ``(H, W)`` class indices, 255 where the ground truth has no class (not counted).
        predicted: ``(H, W)`` class indices; values ``>= num_classes`` are nobody's boundary.
        truth_band: ``boundary_band`` of ``truth``, when the caller has it.
        predicted_band: ``boundary_band`` of ``predicted``, when the caller has it.
    """
    if truth.shape != predicted.shape:
        raise ValueError(f"shapes differ: truth {truth.shape}, prediction {predicted.shape}")
    if truth_band is None:
        truth_band = boundary_band(truth, width)
    if predicted_band is None:
        predicted_band = boundary_band(predicted, width)
    # Class indices of another type: a value above 255 is no class (254), and counted in the truth.
    truth, predicted = (m if m.dtype == np.uint8 else np.where(m < 256, m, 254).astype(np.uint8)
                        for m in (np.asarray(truth), np.asarray(predicted)))
    bits = band_bits([truth_band, predicted_band])
    index, count = tuple_counts([truth, predicted, bits], [256, 256, 4])
    truth_value, predicted_value, bit = np.unravel_index(index, (256, 256, 4))
    return counts_from_tuples(truth_value, predicted_value, bit & 1, bit >> 1, count, num_classes)


def counts_from_tuples(truth: np.ndarray, predicted: np.ndarray, on_truth: np.ndarray, on_prediction: np.ndarray,
                       count: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class ``(intersection, union)`` of the boundary regions from counted value tuples: ``count``
    pixels had ground truth ``truth`` (255: no class, not counted), prediction ``predicted``, and lay in
    the ground truth's band (``on_truth``, 0 or 1) and the prediction's (``on_prediction``). The rule of
    ``boundary_counts``, applied to the few distinct tuples of an image instead of its pixels."""
    counted = truth != IGNORE
    size = max(num_classes, 256)
    truth_region = np.bincount(truth, weights=count * (counted & (on_truth == 1)), minlength=size)
    predicted_region = np.bincount(predicted, weights=count * (counted & (on_prediction == 1)), minlength=size)
    both = counted & (on_truth == 1) & (on_prediction == 1) & (truth == predicted)
    intersection = np.bincount(truth, weights=count * both, minlength=size)
    # float64 sums of integer counts: exact up to 2^53 pixels.
    intersection, truth_region, predicted_region = (v[:num_classes].astype(np.int64)
                                                    for v in (intersection, truth_region, predicted_region))
    return intersection, truth_region + predicted_region - intersection


# ---------------------------------------------------------------------------- exact histograms with OpenCV

# OpenCV's histogram bins are float32: whole numbers are exact up to 2^24 pixels per call.
EXACT_PIXELS = 1 << 24


def band_bits(bands: list[np.ndarray], out: np.ndarray | None = None) -> np.ndarray:
    """``(H, W)`` uint8: bit ``i`` set where ``bands[i]`` (bool) is (at most 8 bands); into ``out``
    when given."""
    flags = [np.ascontiguousarray(band, dtype=bool).view(np.uint8) for band in bands]
    bits = flags[0].copy() if out is None else np.copyto(out, flags[0]) or out
    for i, band in enumerate(flags[1:], start=1):
        cv2.scaleAdd(band, 1 << i, bits, dst=bits)  # bits += band * 2^i, in place, no GIL
    return bits


def pixel_histogram(channels: list[np.ndarray], sizes: list[int], mask: np.ndarray | None = None) -> np.ndarray:
    """``sizes``-shaped counts of value tuples over same-shaped uint8 maps: ``out[a, b, ...]`` pixels
    have ``a`` in channel 0, ``b`` in channel 1, ...; a value at or above its channel's size is not
    counted, nor a pixel where ``mask`` (uint8) is 0. Whole numbers, exact (float32 up to
    ``EXACT_PIXELS`` pixels, else float64): what ``np.bincount`` of the combined code gives, in one
    pass of ``cv2.calcHist`` (C, no GIL, no ``(H, W)`` code array), in bands of rows past
    ``EXACT_PIXELS``."""
    shape = channels[0].shape
    if any(c.shape != shape or c.dtype != np.uint8 for c in channels) or len(shape) != 2:
        raise ValueError("pixel_histogram counts same-shaped (H, W) uint8 maps")
    if mask is not None and (mask.shape != shape or mask.dtype != np.uint8):
        raise ValueError("the mask of pixel_histogram is a uint8 map of the channels' shape")
    sizes = [int(s) for s in sizes]
    ranges = [bound for size in sizes for bound in (0, size)]
    rows = max(1, EXACT_PIXELS // max(1, shape[1]))
    total = None
    for top in range(0, max(1, shape[0]), rows):
        band = [np.ascontiguousarray(c[top:top + rows]) for c in channels]
        band_mask = None if mask is None else np.ascontiguousarray(mask[top:top + rows])
        histogram = cv2.calcHist(band, list(range(len(band))), band_mask, sizes, ranges).reshape(sizes)
        if top == 0 and rows >= shape[0]:
            return histogram
        total = histogram.astype(np.float64) if total is None else total + histogram
    return total


def tuple_counts(channels: list[np.ndarray], sizes: list[int], mask: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The value tuples ``pixel_histogram`` finds: their flat index into a ``sizes`` array and their
    pixel counts (int64), in index order; an image holds few distinct tuples."""
    histogram = pixel_histogram(channels, sizes, mask).ravel()
    index = np.flatnonzero(histogram)
    return index, histogram[index].astype(np.int64)


def boundary_iou(intersection: np.ndarray, union: np.ndarray) -> np.ndarray:
    """Per-class Boundary IoU from summed counts; NaN where the union is empty."""
    intersection = np.asarray(intersection, dtype=np.float64)
    union = np.asarray(union, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, intersection / union, np.nan)


def mean_boundary_iou(intersection: np.ndarray, union: np.ndarray, classes=None) -> float:
    """Mean over ``classes`` (all by default) with a non-empty union; NaN if none has one."""
    return mean_iou(boundary_iou(intersection, union), classes)


# ---------------------------------------------------------------------------- an image's errors in the band

@dataclass(frozen=True)
class BandCounts:
    """A prediction's wrong pixels and those in the boundary band, at full size."""

    wrong: int
    in_band: int
    band: int  # the band's pixels (with ground truth)
    width: int  # d, in full-size pixels

    @property
    def share(self) -> float:
        """The share of the wrong pixels that lie in the band (NaN when none is wrong)."""
        return self.in_band / self.wrong if self.wrong else float("nan")


def error_band(truth: np.ndarray, predicted: np.ndarray, width: int) -> tuple[np.ndarray, BandCounts]:
    """The boundary band of an image for one prediction (``boundary_band`` of the ground truth
    united with the prediction's, both full size, in the same class indices; 255 in the truth:
    no class, its pixels never counted) and the counts of wrong pixels, as the error map counts them."""
    if truth.shape != predicted.shape:
        raise ValueError(f"ground truth {truth.shape} and prediction {predicted.shape} differ in size")
    band = boundary_band(truth, width) | boundary_band(predicted, width)
    counted = truth != IGNORE
    wrong = (truth != predicted) & counted
    return band, BandCounts(int(wrong.sum()), int((wrong & band).sum()), int((band & counted).sum()), int(width))
