"""Close-ups of a candidate region of the Check labels page: the region's bounding box with a margin,
shrunk by whole factors (the photo by area, class colours by nearest; ``dashboard.pictures.drawing``)
to fit, or enlarged by whole pixels, with the region outlined (``dashboard.pictures.outline``), cached
as JPEG/PNG bytes in the pictures' cache."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

import dashboard.pictures.drawing as display
import dashboard.pictures.images as pictures
import dashboard.pictures.outline as outline
import dashboard.readers.store as store
from training.data.cityscapes import read_image, read_label_ids
from training.data.labels import IGNORE_INDEX, get_class_set
from training.evaluation.consensus import runs_mask

CLOSE_UP_WIDTH = 360  # display pixels
MAX_ENLARGE = 8
DISAGREE_DIM = 0.3  # what is left of the photo's brightness where the runs do not all say the same class
NO_TRUTH = np.array((0, 0, 0), dtype=np.uint8)


def close_up_window(box: tuple[int, int, int, int], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box with a margin (a third of its size, at least 8 pixels), clipped to the picture."""
    x0, y0, x1, y1 = box
    height, width = shape
    margin = max(8, (x1 - x0) // 3, (y1 - y0) // 3)
    return max(0, x0 - margin), max(0, y0 - margin), min(width, x1 + margin), min(height, y1 + margin)


def fit(picture: np.ndarray, region: np.ndarray, photo: bool, width: int = CLOSE_UP_WIDTH) -> np.ndarray:
    """``picture`` (a crop) brought to about ``width`` display pixels with ``region`` outlined:
    shrunk by a whole factor (a photo by area, class colours by nearest; the region so that a
    display pixel is in it when any of its block is) or enlarged by whole pixels."""
    factor = display.display_factor(picture.shape[1], width)
    if factor > 1 and min(picture.shape[:2]) >= factor:
        shrunk = display.shrink_photo(picture, factor) if photo else display.shrink_classes(picture, factor)
        small = outline.shrink_region(region, factor)[:shrunk.shape[0], :shrunk.shape[1]]
        return outline.draw_outline(np.ascontiguousarray(shrunk), small)
    enlarge = int(min(MAX_ENLARGE, max(1, width // max(1, picture.shape[1]))))
    big = picture.repeat(enlarge, axis=0).repeat(enlarge, axis=1)
    return outline.draw_outline(big, region.repeat(enlarge, axis=0).repeat(enlarge, axis=1))


def agreement_colors(predictions: Sequence[np.ndarray], class_set, photo: np.ndarray) -> np.ndarray:
    """Class colours where every prediction says the same class of the set; elsewhere the photo,
    dimmed (a grey would pass for a class: construction is dark grey)."""
    agreed = predictions[0]
    same = agreed < class_set.num_classes
    for predicted in predictions[1:]:
        same &= predicted == agreed
    colors = class_set.colorize(np.where(same, agreed, 0))
    colors[~same] = (photo[~same].astype(np.float32) * DISAGREE_DIM).round().astype(np.uint8)
    return colors


def close_ups(image: pictures.ImageRef, refs: Sequence[pictures.RunRef], classes: str, row: dict) -> tuple[bytes, ...]:
    """Three pictures of the region of ``row`` (the scan's row): the photo (JPEG), the ground truth
    (PNG; black where it names no class of the set) and what the runs agree on (PNG; the photo,
    dimmed, where they differ), each with the region outlined in white."""
    box = (int(row["x0"]), int(row["y0"]), int(row["x1"]), int(row["y1"]))

    def compute() -> tuple[bytes, ...]:
        class_set = get_class_set(classes)
        root = Path(image.root)
        truth = class_set.lut[read_label_ids(root / image.label, check_values=False)]
        photo = read_image(root / image.image)
        predictions = [store.open_run(ref.artifacts, ref.name, ref.uid).prediction(image.image_id) for ref in refs]
        x0, y0, x1, y1 = close_up_window(box, truth.shape)
        region = runs_mask(np.asarray(row["runs"]), truth.shape)[y0:y1, x0:x1]
        truth_colors = class_set.colorize(truth)
        truth_colors[truth == IGNORE_INDEX] = NO_TRUTH
        crops = (photo, truth_colors, agreement_colors(predictions, class_set, photo))
        pictures_ = [fit(np.ascontiguousarray(crop[y0:y1, x0:x1]), region, photo=number == 0)
                     for number, crop in enumerate(crops)]
        return display.encode_jpeg(pictures_[0]), display.encode_png(pictures_[1]), display.encode_png(pictures_[2])

    identities = tuple((ref.name, ref.uid) for ref in refs)
    return pictures.cache().get_or_compute(("labels_close_up", image, identities, classes, box), compute)
