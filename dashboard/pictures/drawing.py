"""Pictures at display size, encoded once, kept in a cache bounded in bytes.

A Cityscapes frame is 2048x1024; the explorer shows up to ten pictures of it in columns a few
hundred pixels wide. Everything is therefore computed at **display size**: a full-size image is
decoded, shrunk by an integer factor ``k`` (``display_factor``), encoded, and dropped. The rules:

- photos by **area**: the mean of each k x k block (Pillow's ``Image.reduce``);
- class maps (labelIds, predictions) by **nearest**: the pixel at offset ``k // 2`` of each
  k x k block, the pixel Pillow's NEAREST resize picks for an integer factor. A displayed class
  is always the class of one full-size pixel, never a blend;
- incomplete blocks at the right and bottom edges are dropped (the display shape is
  ``(H // k, W // k)``), so photo and class maps keep the same shape;
- overlays and error maps are computed from the shrunk photo and class maps. Under nearest,
  every class-coloured pixel (an overlay's colours, an error map's wrong and ignored pixels) is
  the one of the full-size picture nearest-downscaled; only the photo under them is averaged.

Numbers are never taken from display pixels: a prediction's confusion matrix (per-class IoU,
share of wrong pixels) is the one the run's evaluation stored, or is counted on the full-size
maps, and the hover grid's classes are read from the full-size maps.

numpy, Pillow and the core's ``training.raster`` only (no Streamlit): ``dashboard.pictures`` caches
these values, the tests check them.
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from dashboard.views.calibration_tables import LEVELS
from dashboard.views.colours import COLORMAP
from dashboard.views.hover_cells import hover_grid
from training.data.labels import IGNORE_INDEX, ClassSet
from training.evaluation.confusions import image_confusion, mask_problem
from training.raster import shrink
from training.viz import dimmed_grey, error_map, overlay

# Settings (environment variables; docs/dashboard.md lists them).
DISPLAY_WIDTH_ENV, DEFAULT_DISPLAY_WIDTH = "DASHBOARD_DISPLAY_WIDTH", 512
CACHE_MB_ENV, DEFAULT_CACHE_MB = "DASHBOARD_CACHE_MB", 128
JPEG_QUALITY = 90  # what Streamlit itself uses when it re-encodes a picture
PNG_LEVEL = 1  # error maps: fast zlib; level 6 is 2.5x slower for 20 % fewer bytes

def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


def display_width() -> int:
    """``$DASHBOARD_DISPLAY_WIDTH``: the widest picture the pages show, in pixels (default 512,
    the width of a 256x512 frame: such frames are shown as they are)."""
    return _positive_int(DISPLAY_WIDTH_ENV, DEFAULT_DISPLAY_WIDTH)


def cache_bytes() -> int:
    """``$DASHBOARD_CACHE_MB`` in bytes: what the pictures' cache may hold (default 128 MB)."""
    return _positive_int(CACHE_MB_ENV, DEFAULT_CACHE_MB) * 1024 * 1024


# ---------------------------------------------------------------------------- shrinking, encoding

def display_factor(width: int, max_width: int) -> int:
    """The smallest integer factor that brings ``width`` to at most ``max_width`` (1: as it is)."""
    return max(1, -(-int(width) // max(1, int(max_width))))


def shrink_photo(photo: np.ndarray, factor: int) -> np.ndarray:
    """``(H // k, W // k, 3)``: the mean of each k x k block (rounded as Pillow's ``Image.reduce``),
    edges' partial blocks dropped (``training.raster.shrink``, "mean")."""
    return shrink(photo, factor, "mean")


def shrink_classes(classes: np.ndarray, factor: int) -> np.ndarray:
    """``(H // k, W // k, ...)``: the pixel at offset ``k // 2`` of each k x k block, edges' partial
    blocks dropped (``training.raster.shrink``, "centre"), as a new array (a view would keep the
    full-size array alive in the cache)."""
    return shrink(classes, factor, "centre")


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def encode_png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=PNG_LEVEL)
    return buffer.getvalue()


def data_uri(picture: bytes, mime: str) -> str:
    """An encoded picture as a ``data:`` address, for a chart that embeds it."""
    return f"data:{mime};base64," + base64.b64encode(picture).decode("ascii")


def class_picture(rgb: np.ndarray, max_width: int) -> bytes:
    """A picture of class colours (H, W, 3) at display size by nearest, PNG: no blended colours."""
    return encode_png(shrink_classes(rgb, display_factor(rgb.shape[1], max_width)))


# ---------------------------------------------------------------------------- views of one image

@dataclass(frozen=True)
class PhotoView:
    """A dataset image and its labelIds, as the pages need them (no full-size array)."""

    shape: tuple[int, int]  # full size (H, W)
    factor: int  # display = full // factor
    photo: np.ndarray  # display size, by area
    jpeg: bytes  # ``photo`` encoded
    label_ids: np.ndarray  # display size, by nearest
    hover_label_ids: np.ndarray  # full-size labelIds at the hover grid's cells (``views.hover_cells.hover_grid``)

    def truth(self, class_set: ClassSet) -> np.ndarray:
        """The displayed ground truth in ``class_set`` (``IGNORE_INDEX``: no label)."""
        return class_set.lut[self.label_ids]

    def hover_truth(self, class_set: ClassSet) -> np.ndarray:
        return class_set.lut[self.hover_label_ids]


@dataclass(frozen=True)
class PredictionView:
    """A run's prediction for an image: shown at display size, scored at full size."""

    problem: str | None  # why it cannot be shown (then the rest is None)
    classes: np.ndarray | None = None  # display size, by nearest
    hover: np.ndarray | None = None  # full-size classes at the hover grid's cells
    confusion: np.ndarray | None = None  # K x K full-size counts against the ground truth (+ a "no class" sink)
    no_class: int = 0  # full-size pixels an imported run predicted no class for (255, shown black)


def photo_view(photo: np.ndarray, label_ids: np.ndarray, max_width: int) -> PhotoView:
    """``photo`` (H, W, 3) and its ``label_ids`` (H, W) at display size."""
    factor = display_factor(photo.shape[1], max_width)
    small = shrink_photo(photo, factor)
    rows, columns, _, _ = hover_grid(*label_ids.shape)
    return PhotoView(shape=label_ids.shape, factor=factor, photo=small, jpeg=encode_jpeg(small),
                     label_ids=shrink_classes(label_ids, factor),
                     hover_label_ids=np.ascontiguousarray(label_ids[rows, columns]))


def prediction_view(predicted: np.ndarray, truth_shape: tuple[int, int], class_set: ClassSet, max_width: int,
                    filename: str, confusion: np.ndarray | None = None,
                    label_ids: np.ndarray | None = None, no_class_allowed: bool = False) -> PredictionView:
    """A full-size prediction (class indices of ``class_set``; ``filename`` names it in a problem)
    for a ground truth of ``truth_shape``. ``confusion``: this image's K x K counts as the run's
    evaluation stored them; without it, they are counted here against the full-size ``label_ids``
    (``training.evaluation.confusions.image_confusion``). ``no_class_allowed`` (an imported run):
    255 is "no class", counted in a sink column K, so those pixels are wrong for their true class as
    the run's evaluation counted them."""
    k = class_set.num_classes
    problem = mask_problem(predicted, truth_shape, k, filename, no_class_allowed)
    if problem:
        return PredictionView(problem)
    no_class = int(np.count_nonzero(predicted == IGNORE_INDEX)) if predicted.size and predicted.max() >= k else 0
    if confusion is None:
        confusion = image_confusion(label_ids, predicted, class_set)
    rows, columns, _, _ = hover_grid(*predicted.shape)
    return PredictionView(
        problem=None, classes=shrink_classes(predicted, display_factor(predicted.shape[1], max_width)),
        hover=np.ascontiguousarray(predicted[rows, columns]), confusion=np.asarray(confusion), no_class=no_class)


# ---------------------------------------------------------------------------- pictures

def truth_overlay(view: PhotoView, class_set: ClassSet, opacity: float,
                  shown: Sequence[int] | None = None) -> np.ndarray:
    """The ground truth's colours over the photo, at display size; ``shown`` (class indices):
    only those classes painted, the photo elsewhere (``keep_classes``)."""
    truth = view.truth(class_set)
    painted = overlay(view.photo, class_set.colorize(truth), opacity)
    return painted if shown is None else keep_classes(painted, view.photo, truth, shown)


def prediction_overlay(view: PhotoView, predicted: PredictionView, class_set: ClassSet,
                       opacity: float, shown: Sequence[int] | None = None) -> np.ndarray:
    """The prediction's colours over the photo, at display size (``shown`` as in ``truth_overlay``)."""
    painted = overlay(view.photo, class_set.colorize(predicted.classes), opacity)
    return painted if shown is None else keep_classes(painted, view.photo, predicted.classes, shown)


def errors(view: PhotoView, predicted: PredictionView, class_set: ClassSet,
           shown: Sequence[int] | None = None) -> np.ndarray:
    """``training.viz.error_map`` at display size (encode it as PNG: its class colours stay exact);
    ``shown``: only the errors whose true or predicted class is among them."""
    truth = view.truth(class_set)
    picture = error_map(view.photo, truth, predicted.classes, class_set)
    return picture if shown is None else keep_errors(picture, view.photo, truth, predicted.classes, shown)


def full_size_picture(photo: np.ndarray, label_ids: np.ndarray, predicted: np.ndarray | None,
                      class_set: ClassSet, kind: str, opacity: float, shown: Sequence[int] | None = None) -> bytes:
    """The zoom view's picture at full size, JPEG: ``kind`` is "photo", "ground truth",
    "prediction" or "error map" (the last two need ``predicted``); ``shown`` as in ``truth_overlay``."""
    truth = class_set.lut[label_ids]
    if kind == "photo":
        picture = photo
    elif kind == "prediction":
        picture = overlay(photo, class_set.colorize(predicted), opacity)
        picture = picture if shown is None else keep_classes(picture, photo, predicted, shown)
    elif kind == "error map":
        picture = error_map(photo, truth, predicted, class_set)
        picture = picture if shown is None else keep_errors(picture, photo, truth, predicted, shown)
    else:
        picture = overlay(photo, class_set.colorize(truth), opacity)
        picture = picture if shown is None else keep_classes(picture, photo, truth, shown)
    return encode_jpeg(picture)


# ---------------------------------------------------------------------------- shown classes, confidence

def _is_shown(classes: np.ndarray, shown: Sequence[int]) -> np.ndarray:
    lookup = np.zeros(256, dtype=bool)
    lookup[list(shown)] = True
    return lookup[classes]


def keep_classes(picture: np.ndarray, photo: np.ndarray, classes: np.ndarray, shown: Sequence[int]) -> np.ndarray:
    """An overlay (``H, W, 3``) with the pixels whose class (``classes``, ``H, W``; 255 no class) is
    not among ``shown`` turned back to the ``photo``."""
    # One pass of np.where: a boolean-mask copy (``out[hidden] = photo[hidden]``) is 5x slower, 60 ms
    # a panel at 2048x1024 (the explorer's side by side paints up to five with the classes hidden).
    return np.where(_is_shown(classes, shown)[..., None], picture, photo)


def keep_errors(picture: np.ndarray, photo: np.ndarray, truth: np.ndarray, predicted: np.ndarray,
                shown: Sequence[int]) -> np.ndarray:
    """An error map (``training.viz.error_map``) keeping only the pixels whose true or predicted
    class is among ``shown`` (the errors in those classes' IoU); the others are drawn as correct
    pixels are: the photo dimmed to grey."""
    hidden = ~(_is_shown(truth, shown) | _is_shown(predicted, shown))
    grey = dimmed_grey(photo[hidden])
    out = picture.copy()
    out[hidden] = grey[:, None]
    return out


def heatmap(levels: np.ndarray) -> np.ndarray:
    """Grey levels ``round(255 p)`` (H, W) as colours of the confidence colour map (H, W, 3)."""
    return COLORMAP[levels]


def confident_overlay(photo: np.ndarray, classes: np.ndarray, levels: np.ndarray, class_set: ClassSet,
                      opacity: float, threshold: float) -> np.ndarray:
    """The prediction's colours over the photo where the confidence reaches ``threshold``; the
    photo in grey (no class colour) where it does not: what a threshold would leave unlabelled."""
    out = overlay(photo, class_set.colorize(classes), opacity)
    below = LEVELS[levels] < threshold
    grey = photo[below].astype(np.float32).mean(axis=-1, keepdims=True).round().astype(np.uint8)
    out[below] = np.repeat(grey, 3, axis=-1)
    return out


# ---------------------------------------------------------------------------- the API's pictures

def decode_image(data: bytes) -> np.ndarray:
    """An image file's bytes (PNG, JPEG, palette or not) as an RGB array.

    Raises:
        PIL.UnidentifiedImageError, OSError, ValueError: the bytes are not a readable image.
    """
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def decode_png(encoded: str) -> np.ndarray:
    """A base64 PNG of the API (palette or RGB) as an RGB array."""
    return decode_image(base64.b64decode(encoded))
