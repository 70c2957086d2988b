"""Marks on the explorer's pictures, with numpy and the core's ``training.raster`` (no Streamlit):
an outlined region (``views.regions`` says which a link asks for), and an error map dimmed outside
the boundary band (the band and its counts are ``training.evaluation.boundary.error_band``'s).

**Outlines.** The outline is a ring of ``OUTLINE_THICKNESS`` display pixels just outside the region,
so the region's own pixels (the object's colours, its errors) stay visible; where the region touches
the picture's edge, its edge pixels are drawn instead, so a region against the border stays marked.

Pictures are shown at display size (``pictures.drawing``): a region is shrunk so that a display
pixel is in it when any full-size pixel of its block is (a 3-pixel person far away stays visible
at any factor), with the blocks ``shrink_classes`` uses: the partial blocks at the right and
bottom edges are dropped, as the displayed photo drops them (a region lying entirely in that strip
of fewer than ``k`` pixels is not shown, and neither are its pixels).
"""

from __future__ import annotations

import numpy as np

from training.raster import dilate_square, shrink

OUTLINE_COLOR = np.array((255, 255, 255), dtype=np.uint8)  # no class of either set is white
OUTLINE_THICKNESS = 2  # display pixels
BAND_DIM = 0.25  # what is left of an error map's brightness outside the band


def box_mask(shape: tuple[int, int], box: tuple[int, int, int, int]) -> np.ndarray:
    """``(H, W)`` bool: the pixels of the box (``x1``, ``y1`` exclusive), clipped to the picture."""
    mask = np.zeros(shape, dtype=bool)
    x0, y0, x1, y1 = box
    mask[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    return mask


def shrink_region(mask: np.ndarray, factor: int) -> np.ndarray:
    """``(H // k, W // k)`` bool: a display pixel is set when any full-size pixel of its k x k block
    is; the partial blocks at the right and bottom edges are dropped, as the photo's are
    (``training.raster.shrink``, "any")."""
    return shrink(mask, factor, "any")


def outline_pixels(region: np.ndarray, thickness: int = OUTLINE_THICKNESS) -> np.ndarray:
    """``(H, W)`` bool: the ring of ``thickness`` pixels just outside ``region``, and the region's
    own pixels on the picture's edge (where a ring has no room)."""
    ring = dilate_square(region, thickness) & ~region
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


def dim_outside(rgb: np.ndarray, band: np.ndarray, dim: float = BAND_DIM) -> np.ndarray:
    """A copy of ``rgb`` with the pixels outside ``band`` (same ``H, W``) at ``dim`` of their brightness."""
    if band.shape != rgb.shape[:2]:
        raise ValueError(f"band {band.shape} and picture {rgb.shape[:2]} differ in size")
    out = rgb.copy()
    out[~band] = (rgb[~band].astype(np.float32) * dim).round().astype(np.uint8)
    return out
