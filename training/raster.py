"""Rasters made smaller by a whole factor, and masks grown by a square: the one rule for each,
shared by the evaluation, the pictures and the dashboard.

**Shrinking by an integer factor** ``k`` (``shrink``): the output is ``(H // k, W // k)`` and
every output pixel is exactly one full ``k x k`` block of the input; the partial blocks at the
right and bottom edges (fewer than ``k`` rows or columns) are dropped, so a photo and its class
maps shrink to the same shape. What a block becomes depends on what the values are (``how``):

* ``"mean"``, photos: the block mean, rounded as Pillow's ``Image.reduce`` rounds it,
  ``((sum + k*k // 2) * (2**24 // (k*k))) >> 24`` (round half up for ``k`` a power of two, at most
  one below that otherwise);
* ``"centre"``, class maps: the pixel at offset ``(k // 2, k // 2)`` of the block (the pixel
  Pillow's NEAREST resize picks), so a shown class is always the class of one input pixel;
* ``"any"``, masks: set where any pixel of the block is set (a 3-pixel object stays visible);
* ``"sum"``, counts: the block sums.

With the same blocks, ``first_set`` says where each block's first set pixel is (row by row), for
pictures that show a block by one chosen pixel of it.

**Square dilation** (``dilate_square``): a mask grown by ``r`` pixels in the 8 directions, i.e.
set where its ``(2r + 1) x (2r + 1)`` window holds a set pixel; outside the image counts as unset.

OpenCV does the work where it gives the same numbers (its loops run in C, outside the GIL, on
several cores); ``"mean"`` goes through Pillow except at ``k = 2``, because OpenCV's ``INTER_AREA``
rounds ties to even for other factors. numpy, OpenCV and Pillow only.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

HOWS = ("mean", "centre", "any", "sum")
# What cv2.resize takes for a nearest pick (any element it can copy; bool and 64-bit integers it cannot).
_NEAREST_DTYPES = {np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32, np.float64)}


def _checked(number, name: str, least: int) -> int:
    """``number`` as an int, ValueError unless it is at least ``least``."""
    number = int(number)
    if number < least:
        raise ValueError(f"the {name} must be a whole number of at least {least}, got {number}")
    return number


def _mask(mask) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"a mask is (H, W), not {mask.shape}")
    return mask


def _crop(values: np.ndarray, factor: int) -> tuple[np.ndarray, int, int]:
    """The full blocks of ``values`` (a view) and the output's height and width."""
    height, width = values.shape[0] // factor, values.shape[1] // factor
    return values[:height * factor, :width * factor], height, width


def shrink(values: np.ndarray, factor: int, how: str) -> np.ndarray:
    """``values`` (``(H, W)``, or ``(H, W, C)`` for ``"mean"`` and ``"centre"``) shrunk by the
    integer ``factor`` to ``(H // k, W // k, ...)``, each output pixel one full ``k x k`` block
    (partial blocks at the right and bottom edges dropped), the block made one value by ``how``
    (module docstring): ``"mean"`` (uint8 photos), ``"centre"``, ``"any"`` (a bool result) or
    ``"sum"`` (numpy's sum type: int64 for integers). ``factor == 1`` returns ``values`` itself
    (``"any"``: as bool). A new array otherwise, never a view that would keep the input alive."""
    if how not in HOWS:
        raise ValueError(f"how must be one of {', '.join(HOWS)}, not {how!r}")
    factor = _checked(factor, "factor", 1)
    values = np.asarray(values)
    if values.ndim not in (2, 3) or (values.ndim == 3 and how in ("any", "sum")):
        raise ValueError(f"cannot shrink an array of shape {values.shape} by {how!r}")
    if factor == 1:
        return values.astype(bool, copy=False) if how == "any" else values
    blocks, height, width = _crop(values, factor)
    if height == 0 or width == 0:
        dtype = {"any": bool, "sum": np.sum(values[:0]).dtype}.get(how, values.dtype)
        return np.zeros((height, width, *values.shape[2:]), dtype=dtype)
    if how == "mean":
        return _block_mean(values, factor, height, width)
    if how == "centre":
        if blocks.dtype in _NEAREST_DTYPES and blocks.shape[2:] in ((3,), (4,)):
            # INTER_NEAREST_EXACT picks source pixel floor((x + 0.5) k): offset k // 2 of each block.
            # (Colours: 5-10x faster than numpy's strided copy; one channel: numpy's is as fast.)
            small = cv2.resize(blocks, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
            return small.reshape(height, width, *blocks.shape[2:])
        return blocks[factor // 2::factor, factor // 2::factor].copy()  # a copy even where the pick is contiguous
    if how == "any":
        flags = blocks.astype(bool, copy=False).view(np.uint8)
        # The block's maximum lands on its top-left pixel (anchor 0, 0); only those are kept.
        grown = cv2.dilate(flags, np.ones((factor, factor), dtype=np.uint8), anchor=(0, 0))
        return grown[::factor, ::factor].astype(bool)
    # "sum": the count grids are small int64 arrays, which OpenCV does not add up exactly.
    return blocks.reshape(height, factor, width, factor).sum(axis=(1, 3))


def _block_mean(photo: np.ndarray, factor: int, height: int, width: int) -> np.ndarray:
    if photo.dtype != np.uint8:
        raise ValueError(f"a photo to shrink by its mean is uint8, not {photo.dtype}")
    if factor == 2 and photo.shape[2:] in ((), (3,)):
        # OpenCV's 2 x 2 area path computes (a + b + c + d + 2) >> 2: Pillow's rounding, 5x faster.
        return cv2.resize(photo[:2 * height, :2 * width], (width, height), interpolation=cv2.INTER_AREA)
    # Other factors: OpenCV rounds ties to even (and its sums are not Pillow's fixed point).
    return np.asarray(Image.fromarray(photo).reduce(factor, box=(0, 0, width * factor, height * factor)))


def first_set(mask: np.ndarray, factor: int) -> np.ndarray:
    """``(H // k, W // k)`` int64: per full k x k block of ``mask`` (partial blocks at the right and
    bottom edges dropped, as ``shrink`` drops them), the position of its first set pixel row by row
    (``dy * k + dx``), or ``k * k`` where none is set."""
    factor = _checked(factor, "factor", 1)
    mask = _mask(mask)
    blocks, height, width = _crop(mask.astype(bool, copy=False), factor)
    none = factor * factor
    if height == 0 or width == 0:
        return np.zeros((height, width), dtype=np.int64)
    # The smallest type OpenCV's erosion takes that holds 0 .. k*k.
    dtype = np.uint8 if none <= 255 else np.uint16 if none <= 65535 else np.float64
    positions = np.tile(np.arange(none, dtype=dtype).reshape(factor, factor), (height, width))
    marked = np.where(blocks, positions, dtype(none))
    # The block's minimum lands on its top-left pixel (anchor 0, 0); only those are kept.
    first = cv2.erode(marked, np.ones((factor, factor), dtype=np.uint8), anchor=(0, 0))[::factor, ::factor]
    return first.astype(np.int64)


def dilate_square(mask: np.ndarray, radius: int) -> np.ndarray:
    """``(H, W)`` bool: ``mask`` grown by ``radius`` pixels in the 8 directions (set where its
    ``(2 radius + 1)`` square window holds a set pixel; pixels outside the image are unset).
    ``radius == 0`` gives the mask itself (as bool)."""
    radius = _checked(radius, "radius", 0)
    mask = _mask(mask)
    if radius == 0 or mask.size == 0:
        return mask.astype(bool, copy=False)
    flags = np.ascontiguousarray(mask, dtype=bool).view(np.uint8)
    side = 2 * radius + 1
    grown = cv2.dilate(flags, np.ones((side, side), dtype=np.uint8), borderType=cv2.BORDER_CONSTANT, borderValue=0)
    return grown.view(bool)
