"""Resizing photos and masks: bilinear (antialiased) for photos, nearest neighbour for masks, so
a resized mask only ever holds values of the original."""

from __future__ import annotations

import numpy as np
from PIL import Image

Pair = tuple[np.ndarray, np.ndarray]


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a photo to ``size = (height, width)``, bilinear (antialiased)."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a label or class mask to ``size = (height, width)``, nearest neighbour."""
    height, width = size
    if mask.shape[:2] == (height, width):
        return mask
    return np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST))


def resize_pair(image: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> Pair:
    """Resize a photo and its mask together to ``size = (height, width)``."""
    return resize_image(image, size), resize_mask(mask, size)
