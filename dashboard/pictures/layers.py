"""The comparison view's full-size panels as layers the browser stacks: the photo (or its dimmed
grey, under an error map) sent once and shared by every panel, and over it one small palette PNG
per panel whose pixels are class colours or transparent, drawn at the overlay's opacity.

Blending in the browser gives what ``training.viz.overlay`` / ``error_map`` and
``drawing.keep_classes`` / ``keep_errors`` compute (within a level of rounding), for a fraction of
what is sent and drawn: at 2048x1024 five blended JPEGs were about 2.5 MB for every new image, a
class layer is 20-60 KB (one byte a pixel, compressed) and the photo is sent once. Pure functions
(no Streamlit): the layers as encoded bytes.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from PIL import Image

from training.data.labels import IGNORE_INDEX, ClassSet

PNG_LEVEL = 3  # zlib level: 4 ms and ~35 KB for a 2048x1024 class map (level 6: 10 ms, ~25 KB)
CLEAR = 254  # the palette entry of transparent pixels in an error layer (class indices stay below it)


def _palette_png(indices: np.ndarray, colors: np.ndarray, alpha: np.ndarray) -> bytes:
    """``indices`` (H, W) uint8 as an 8-bit palette PNG: entry i is ``colors[i]`` at ``alpha[i]``."""
    picture = Image.fromarray(np.ascontiguousarray(indices, dtype=np.uint8), "P")
    picture.putpalette(np.asarray(colors, dtype=np.uint8).reshape(-1).tolist())
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=PNG_LEVEL, transparency=bytes(alpha.tolist()))
    return buffer.getvalue()


def _opaque(class_set: ClassSet, shown: Sequence[int] | None) -> np.ndarray:
    """Per palette entry: 255 for the classes shown (all when ``shown`` is None), 0 for the others."""
    alpha = np.zeros(256, dtype=np.uint8)
    alpha[: class_set.num_classes] = 255 if shown is None else 0
    if shown is not None:
        alpha[[index for index in shown if 0 <= index < class_set.num_classes]] = 255
    return alpha


def class_layer(classes: np.ndarray, class_set: ClassSet, shown: Sequence[int] | None = None) -> bytes:
    """The colours of ``classes`` (H, W class indices; 255 no class) as a PNG to lay over the photo
    at the overlay's opacity: the classes of ``shown`` (None: all) in their colours, the other
    classes transparent (the photo shows, as ``keep_classes`` draws them), no class in black (as
    ``ClassSet.colorize`` paints it) unless classes are chosen."""
    alpha = _opaque(class_set, shown)
    alpha[IGNORE_INDEX] = 255 if shown is None else 0  # with classes chosen, no class is none of them
    return _palette_png(classes, class_set.palette(), alpha)


def error_indices(truth: np.ndarray, predicted: np.ndarray, shown: Sequence[int] | None = None) -> np.ndarray:
    """Per pixel: the true class where the prediction is wrong, ``IGNORE_INDEX`` where there is no
    ground truth, else ``CLEAR``; with ``shown`` (None: all classes) only at the pixels whose true
    or predicted class is among them, as ``drawing.keep_errors`` keeps them."""
    ignored = truth == IGNORE_INDEX
    wrong = (truth != predicted) & ~ignored
    if shown is not None:
        lookup = np.zeros(256, dtype=bool)
        lookup[list(shown)] = True
        kept = lookup[truth] | lookup[predicted]
        wrong &= kept
        ignored &= kept
    out = np.where(wrong, truth, np.uint8(CLEAR)).astype(np.uint8)
    out[ignored] = IGNORE_INDEX
    return out


def error_layer(truth: np.ndarray, predicted: np.ndarray, class_set: ClassSet,
                shown: Sequence[int] | None = None) -> bytes:
    """An error map's colours as a PNG to lay, opaque, over the photo's dimmed grey
    (``training.viz.dimmed_grey``): wrong pixels in the colour of the true class, pixels without
    ground truth black, the rest transparent (``error_indices``)."""
    alpha = np.zeros(256, dtype=np.uint8)
    alpha[: class_set.num_classes] = 255
    alpha[IGNORE_INDEX] = 255
    return _palette_png(error_indices(truth, predicted, shown), class_set.palette(), alpha)


def composite(base: np.ndarray, layer: bytes, opacity: float) -> np.ndarray:
    """``layer`` (a PNG of this module) laid over ``base`` (H, W, 3) at ``opacity``, as a browser
    draws it: for checking the layers against the pictures drawn in Python."""
    with Image.open(io.BytesIO(layer)) as opened:
        rgba = np.asarray(opened.convert("RGBA"), dtype=np.float32)
    weight = rgba[..., 3:] / 255.0 * opacity
    return np.round(base.astype(np.float32) * (1 - weight) + rgba[..., :3] * weight).astype(np.uint8)
