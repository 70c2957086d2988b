"""Pictures of segmentations, shared by the API, the dashboard and the contact sheets: overlays,
error maps, flip maps (where an exported model changed the Keras model's class), legends, and a
contact sheet of a dataset (photo | ground truth | overlay).

numpy, OpenCV, Pillow and ``training.raster`` only; colours are the official Cityscapes ones (``ClassSet.colors``).
"""

from __future__ import annotations

import html
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from training.data.cityscapes import read_pair
from training.data.index import DatasetIndex
from training.data.labels import IGNORE_INDEX, ClassSet, get_class_set
from training.raster import first_set, shrink

TILE_WIDTH = 384
OVERLAY_OPACITY = 0.55
ERROR_DIM = 0.3  # correct pixels of an error map: the photo in grey at 30 % brightness


def overlay(image: np.ndarray, colors: np.ndarray, opacity: float = OVERLAY_OPACITY) -> np.ndarray:
    """Blend a colour mask over a photo (both ``(H, W, 3)`` uint8): ``opacity`` 0 is the photo,
    1 the colours.

    OpenCV's blend, one pass without float temporaries: 1 ms at 2048x1024 where numpy's float
    arithmetic took 50-170 ms (the explorer blends five such panels per image). Its rounding
    differs from float32 arithmetic rounded half to even by one level for a few value pairs."""
    image, colors = np.ascontiguousarray(image, dtype=np.uint8), np.ascontiguousarray(colors, dtype=np.uint8)
    if image.shape != colors.shape or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"overlay needs a photo and colours of one (H, W, 3) shape, got {image.shape} and "
                         f"{colors.shape}")
    return cv2.addWeighted(image, 1.0 - opacity, colors, float(opacity), 0.0)


def dimmed_grey(photo: np.ndarray) -> np.ndarray:
    """The grey of an error map's correct pixels: ``(..., 3)`` colours -> ``(...)`` uint8, the mean
    of the channels at ``ERROR_DIM`` of its brightness."""
    return (photo.astype(np.float32).mean(axis=-1) * ERROR_DIM).round().astype(np.uint8)


def error_map(photo: np.ndarray, truth: np.ndarray, predicted: np.ndarray, class_set: ClassSet) -> np.ndarray:
    """Where the prediction is wrong, the colour of the TRUE class; correct pixels are the
    photo dimmed to grey; pixels without ground truth (ignored) are black."""
    out = np.repeat(dimmed_grey(photo)[..., None], 3, axis=-1)
    wrong = (truth != predicted) & (truth != IGNORE_INDEX)
    out[wrong] = class_set.palette()[truth[wrong]]
    out[truth == IGNORE_INDEX] = 0
    return out


# The A-vs-B pixel map: B worse in orange, B better in blue, both wrong in magenta.
OUTCOME_COLORS = np.array([(0, 0, 0), (255, 140, 0), (30, 144, 255), (200, 0, 200)], dtype=np.uint8)


def outcome_picture(photo: np.ndarray, outcomes: np.ndarray) -> np.ndarray:
    """``paired_outcomes`` drawn over the photo: pixels both runs get right are the photo dimmed
    to grey (as in ``error_map``), the others in ``OUTCOME_COLORS``, unscored pixels black."""
    out = np.repeat(dimmed_grey(photo)[..., None], 3, axis=-1)
    differs = (outcomes != 0) & (outcomes != IGNORE_INDEX)
    out[differs] = OUTCOME_COLORS[outcomes[differs]]
    out[outcomes == IGNORE_INDEX] = 0
    return out


# A flip map's unchanged pixels: the photo in grey at 15 % (darker than an error map's: flips are
# thin lines of single pixels), or without a photo a dark grey that is not the black of void.
FLIP_DIM, FLIP_BACKGROUND = 0.15, 40


def flipped(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """``(H, W)`` bool: the pixels whose class differs between two class-index masks."""
    if before.shape != after.shape:
        raise ValueError(f"masks of different sizes: {before.shape} and {after.shape}")
    return before != after


def flip_map(before: np.ndarray, after: np.ndarray, class_set: ClassSet, photo: np.ndarray | None = None) -> np.ndarray:
    """``(H, W, 3)``: the pixels whose class changed from ``before`` (the Keras model's classes) to
    ``after`` (an export's) in the colour of their ``before`` class; the others dark: the photo
    dimmed to grey (``FLIP_DIM``), or dark grey without a photo."""
    return flip_picture(flipped(before, after), before, class_set, photo)


def flip_picture(changed: np.ndarray, before: np.ndarray, class_set: ClassSet,
                 photo: np.ndarray | None = None) -> np.ndarray:
    """``flip_map`` from the changed pixels (``(H, W)`` bool) and the classes they had."""
    if photo is None:
        out = np.full((*before.shape, 3), FLIP_BACKGROUND, dtype=np.uint8)
    else:
        grey = photo.astype(np.float32).mean(axis=-1, keepdims=True) * FLIP_DIM
        out = np.repeat(grey, 3, axis=-1).round().astype(np.uint8)
    out[changed] = class_set.palette()[before[changed]]
    return out


def shrink_flips(before: np.ndarray, after: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, changed)`` at ``(H // k, W // k)`` for a picture ``k`` times smaller, where a
    flip stays visible: a small pixel is changed when any pixel of its k x k block is, and then has
    the ``before`` class of the first such pixel (row by row); an unchanged one has the block's
    centre class (nearest, as the dashboard shrinks class maps). Partial blocks at the right and
    bottom edges are dropped (``training.raster.shrink``)."""
    changed = flipped(before, after)
    if factor == 1:
        return before, changed
    any_changed = shrink(changed, factor, "any")
    classes = shrink(before, factor, "centre")
    blocks_y, blocks_x = np.nonzero(any_changed)
    if len(blocks_y):
        first = first_set(changed, factor)[blocks_y, blocks_x]
        classes[blocks_y, blocks_x] = before[blocks_y * factor + first // factor, blocks_x * factor + first % factor]
    return classes, any_changed


def flip_counts(before: np.ndarray, after: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(changed, pixels)``, each ``(num_classes,)`` int64: per class of ``before``, its pixels
    whose class differs in ``after``, and all its pixels (classes beyond ``num_classes`` are not
    counted)."""
    changed = flipped(before, after)
    pixels = np.bincount(before.ravel(), minlength=256)[:num_classes]
    return np.bincount(before[changed].ravel(), minlength=256)[:num_classes].astype(np.int64), pixels.astype(np.int64)


def changed_shares(changed: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Per class, the share of its pixels whose class changed (``flip_counts``); NaN where the class
    has no pixel."""
    changed, pixels = np.asarray(changed, dtype=np.float64), np.asarray(pixels, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pixels > 0, changed / np.where(pixels > 0, pixels, 1.0), np.nan)


def legend_html(names, colors) -> str:
    """Class names and colours (a class set's, or the API's) as a row of swatches in HTML."""
    items = []
    for name, color in zip(names, colors):
        r, g, b = (int(v) for v in color)
        items.append(f'<span style="display:inline-block;margin:0 .8em .2em 0;white-space:nowrap">'
                     f'<span style="display:inline-block;width:.9em;height:.9em;background:rgb({r},{g},{b});'
                     f'border:1px solid #888;vertical-align:middle"></span> {html.escape(name)}</span>')
    return "<div>" + "".join(items) + "</div>"


def legend_image(names, colors, width: int) -> Image.Image:
    """The same legend as a strip of pixels ``width`` wide, for pictures saved to files."""
    legend = Image.new("RGB", (width, 24), (255, 255, 255))
    draw = ImageDraw.Draw(legend)
    x = 6
    for name, color in zip(names, colors):
        draw.rectangle((x, 6, x + 12, 18), fill=tuple(int(c) for c in color), outline=(0, 0, 0))
        draw.text((x + 16, 6), name, fill=(0, 0, 0))
        x += 24 + 7 * len(name)
    return legend


# ---------------------------------------------------------------------------- contact sheets

def contact_sheet(index: DatasetIndex, ids: list[int], classes: str = "categories8") -> Image.Image:
    """Rows of (photo | ground truth | overlay) for the given image ids, captioned."""
    class_set = get_class_set(classes)
    rows = []
    for image_id in ids:
        entry = index[image_id]
        image, label_ids = read_pair(index.root, entry.image, entry.label)
        colors = class_set.colorize(class_set.lut[label_ids])
        row = np.concatenate([image, colors, overlay(image, colors)], axis=1)
        height = round(row.shape[0] * 3 * TILE_WIDTH / row.shape[1])
        tile = Image.fromarray(row).resize((3 * TILE_WIDTH, height), Image.Resampling.BILINEAR)
        ImageDraw.Draw(tile).text((6, 4), f"id {entry.id}  {entry.split}  {entry.stem}", fill=(255, 255, 0))
        rows.append(tile)
    legend = legend_image(class_set.names, class_set.colors, 3 * TILE_WIDTH)
    sheet = Image.new("RGB", (3 * TILE_WIDTH, sum(r.height for r in rows) + legend.height))
    y = 0
    for tile in rows + [legend]:
        sheet.paste(tile, (0, y))
        y += tile.height
    return sheet


def write_contact_sheet(index: DatasetIndex, out: Path, count: int = 6, split: str = "train",
                        classes: str = "categories8") -> Path:
    entries = index.split(split)
    step = max(1, len(entries) // count)
    ids = [e.id for e in entries[::step][:count]]
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp.png")
    contact_sheet(index, ids, classes).save(temporary)
    temporary.replace(out)
    return out
