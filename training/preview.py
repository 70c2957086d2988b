"""A contact sheet of a dataset: photo, ground truth in official colours, and their overlay.

What a person looks at first to trust (or not) a dataset; ``make demo`` writes one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from training.cityscapes import read_pair
from training.index import DatasetIndex
from training.labels import get_class_set

TILE_WIDTH = 384
OVERLAY_OPACITY = 0.55


def overlay(image: np.ndarray, colors: np.ndarray, opacity: float = OVERLAY_OPACITY) -> np.ndarray:
    """Blend a colour mask over a photo (both ``(H, W, 3)`` uint8): ``opacity`` 0 is the photo,
    1 the colours. The one blend of the project (contact sheets, API pictures, dashboard)."""
    blended = image.astype(np.float32) * (1 - opacity) + colors.astype(np.float32) * opacity
    return blended.round().astype(np.uint8)


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
    legend = _legend(class_set, 3 * TILE_WIDTH)
    sheet = Image.new("RGB", (3 * TILE_WIDTH, sum(r.height for r in rows) + legend.height))
    y = 0
    for tile in rows + [legend]:
        sheet.paste(tile, (0, y))
        y += tile.height
    return sheet


def _legend(class_set, width: int) -> Image.Image:
    legend = Image.new("RGB", (width, 24), (255, 255, 255))
    draw = ImageDraw.Draw(legend)
    x = 6
    for name, color in zip(class_set.names, class_set.colors):
        draw.rectangle((x, 6, x + 12, 18), fill=tuple(int(c) for c in color), outline=(0, 0, 0))
        draw.text((x + 16, 6), name, fill=(0, 0, 0))
        x += 24 + 7 * len(name)
    return legend


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
