"""Marks on the explorer's pictures, pure numpy (no Streamlit): an outlined object or box, and the
boundary band of an error map.

**Outlines.** A link may ask the explorer to outline a region of its image:
``?id=<image id>&outline=instance:<instance id>`` (an object of the ground truth, its pixels read
from the image's ``gtFine_instanceIds``) or ``?id=<image id>&outline=box:x0,y0,x1,y1`` (a
rectangle in full-size pixels, ``x1`` and ``y1`` exclusive, as ``instances.csv`` writes boxes).
The outline is a ring of ``OUTLINE_THICKNESS`` display pixels just outside the region, so the
region's own pixels (the object's colours, its errors) stay visible; where the region touches
the picture's edge, its edge pixels are drawn instead, so a region against the border stays marked.

Pictures are shown at display size (``dashboard.display``): a region is shrunk so that a display
pixel is in it when any full-size pixel of its block is (a 3-pixel person far away stays visible
at any factor), with the blocks ``shrink_classes`` uses (a partial block at the right or bottom
edge belongs to the last display row or column).

**The boundary band.** Boundary IoU (``training.evaluation.boundary``) scores the pixels within
``d`` pixels of a contour. The explorer's band view keeps an error map's colours there, around
the contours of the ground truth and of the prediction, and dims the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.data.labels import IGNORE_INDEX
from training.evaluation.boundary import boundary_band

OUTLINE_PARAM = "outline"
INSTANCE, BOX = "instance", "box"
OUTLINE_COLOR = np.array((255, 255, 255), dtype=np.uint8)  # no class of either set is white
OUTLINE_THICKNESS = 2  # display pixels
BAND_DIM = 0.25  # what is left of an error map's brightness outside the band


@dataclass(frozen=True)
class Outline:
    """What ``?outline=`` asks for: an object (``instance``) or a box (``x0, y0, x1, y1``)."""

    kind: str
    instance: int = 0
    box: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def param(self) -> str:
        """The URL value that asks for this outline."""
        return instance_param(self.instance) if self.kind == INSTANCE else box_param(*self.box)


def instance_param(instance: int) -> str:
    return f"{INSTANCE}:{int(instance)}"


def box_param(x0: int, y0: int, x1: int, y1: int) -> str:
    return f"{BOX}:{int(x0)},{int(y0)},{int(x1)},{int(y1)}"


def parse_outline(raw: str) -> Outline:
    """``instance:<id>`` or ``box:x0,y0,x1,y1``; ValueError saying what is wrong otherwise."""
    kind, _, value = str(raw).partition(":")
    numbers = value.split(",")
    if not value or not all(number.strip().isascii() and number.strip().isdigit() for number in numbers):
        raise ValueError(f"outline={raw!r} is not instance:<id> or box:x0,y0,x1,y1 (whole numbers)")
    values = [int(number) for number in numbers]
    if kind == INSTANCE and len(values) == 1:
        return Outline(INSTANCE, instance=values[0])
    if kind == BOX and len(values) == 4:
        x0, y0, x1, y1 = values
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"outline={raw!r}: a box needs x0 < x1 and y0 < y1")
        return Outline(BOX, box=(x0, y0, x1, y1))
    raise ValueError(f"outline={raw!r} is not instance:<id> or box:x0,y0,x1,y1")


def box_mask(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """``(H, W)`` bool: the pixels of the box (``x1``, ``y1`` exclusive), clipped to the picture."""
    mask = np.zeros(shape, dtype=bool)
    x0, y0, x1, y1 = box
    mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    return mask


def shrink_region(mask: np.ndarray, factor: int) -> np.ndarray:
    """``(H // k, W // k)`` bool: a display pixel is set when any full-size pixel of its block is
    (a partial block at the right or bottom edge joins the last row or column)."""
    if factor == 1:
        return mask.copy()
    height, width = max(1, mask.shape[0] // factor), max(1, mask.shape[1] // factor)
    small = np.zeros((height, width), dtype=bool)
    rows, columns = np.nonzero(mask)
    small[np.minimum(rows // factor, height - 1), np.minimum(columns // factor, width - 1)] = True
    return small


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    """``mask`` grown by ``steps`` pixels in the 8 directions (a square of side ``2 steps + 1``)."""
    grown = mask
    for _ in range(steps):
        padded = np.pad(grown, 1)
        height, width = grown.shape
        grown = np.zeros_like(grown)
        for dy in range(3):
            for dx in range(3):
                grown |= padded[dy:dy + height, dx:dx + width]
    return grown


def outline_pixels(region: np.ndarray, thickness: int = OUTLINE_THICKNESS) -> np.ndarray:
    """``(H, W)`` bool: the ring of ``thickness`` pixels just outside ``region``, and the region's
    own pixels on the picture's edge (where a ring has no room)."""
    ring = _dilate(region, thickness) & ~region
    edge = np.zeros_like(region)
    edge[[0, -1], :] = True
    edge[:, [0, -1]] = True
    return ring | (region & edge)


def draw_outline(rgb: np.ndarray, region: np.ndarray, thickness: int = OUTLINE_THICKNESS,
                 color: np.ndarray = OUTLINE_COLOR) -> np.ndarray:
    """A copy of ``rgb`` ``(H, W, 3)`` with ``region`` (same ``H, W``) outlined in ``color``."""
    if region.shape != rgb.shape[:2]:
        raise ValueError(f"region {region.shape} and picture {rgb.shape[:2]} differ in size")
    out = rgb.copy()
    out[outline_pixels(region, thickness)] = color
    return out


# ---------------------------------------------------------------------------- the boundary band

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
    counted = truth != IGNORE_INDEX
    wrong = (truth != predicted) & counted
    return band, BandCounts(int(wrong.sum()), int((wrong & band).sum()), int((band & counted).sum()), int(width))


def dim_outside(rgb: np.ndarray, band: np.ndarray, dim: float = BAND_DIM) -> np.ndarray:
    """A copy of ``rgb`` with the pixels outside ``band`` (same ``H, W``) at ``dim`` of their brightness."""
    if band.shape != rgb.shape[:2]:
        raise ValueError(f"band {band.shape} and picture {rgb.shape[:2]} differ in size")
    out = rgb.copy()
    out[~band] = (rgb[~band].astype(np.float32) * dim).round().astype(np.uint8)
    return out
