"""The explorer's pictures with marks: an outlined region (``?outline=``) on the ground truth,
the predictions and the error maps, and error maps restricted to the boundary band.

Drawn at display size on the arrays ``dashboard.pictures.images`` keeps (``dashboard.pictures.outline`` draws),
encoded as the unmarked pictures are (overlays JPEG, error maps PNG) and cached beside them in
the same ``ByteLRU``, keyed by the image, the run and the mark. Without a mark, the pictures are
``dashboard.pictures.images``' own. The band and its counts are the core's
(``training.evaluation.boundary.error_band``), on the full-size ground truth and prediction (only a
display-size copy and the counts are kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

import dashboard.pictures.drawing as display
import dashboard.pictures.images as pictures
import dashboard.pictures.outline as outline
import dashboard.readers.store as store
from dashboard.views.regions import BOX, Outline, box_param
from training.data.cityscapes import DatasetError, instance_path, read_instance_ids, read_label_ids
from training.data.labels import ID_TO_LABEL, get_class_set
from training.evaluation.boundary import DEFAULT_RATIO, BandCounts, boundary_width, error_band
from training.evaluation.instances import INSTANCE_OFFSET
from training.runs.layout import ArtifactError


class Marks(NamedTuple):
    """What the explorer marks on its pictures: an outline (None: none), and whether its error
    maps show the boundary band only, with the ratio each run's Boundary IoU used."""

    outline: Outline | None = None
    band: bool = False
    ratios: tuple[tuple[str, float], ...] = ()

    def ratio(self, run: str) -> float:
        return dict(self.ratios).get(run, DEFAULT_RATIO)


NO_MARKS = Marks()


class Region(NamedTuple):
    """An outline's region at display size, and what it is; or why it cannot be drawn."""

    pixels: np.ndarray | None
    text: str  # "car 26000 (1,234 pixels)", or the problem


def _object_name(instance: int) -> str:
    label = ID_TO_LABEL.get(instance // INSTANCE_OFFSET)
    return f"{label.name} {instance}" if label is not None else f"object {instance}"


def _region(image: pictures.ImageRef, wanted: Outline) -> Region:
    view = pictures.photo_view(image)
    if wanted.kind == BOX:
        x0, y0, x1, y1 = wanted.box
        height, width = view.shape
        if x0 >= width or y0 >= height:
            return Region(None, f"the box {box_param(*wanted.box)} lies outside the image ({width}x{height})")
        text = f"the box x {x0}-{min(x1, width) - 1}, y {y0}-{min(y1, height) - 1}"
        return Region(outline.shrink_region(outline.box_mask(view.shape, wanted.box), view.factor), text)
    label_file = Path(image.root) / image.label
    try:
        ids = read_instance_ids(label_file)
    except DatasetError as error:  # it names the file
        return Region(None, f"the instance ids cannot be read: {error}")
    if ids is None:
        return Region(None, f"the dataset has no {instance_path(image.label).name}: no object to outline")
    mask = ids == wanted.instance
    count = int(mask.sum())
    if not count:
        return Region(None, f"image {image.image_id} has no object with instance id {wanted.instance}")
    if mask.shape != tuple(view.shape):
        return Region(None, f"{instance_path(image.label).name} is not the size of the image")
    return Region(outline.shrink_region(mask, view.factor), f"{_object_name(wanted.instance)} ({count:,} pixels)")


def region(image: pictures.ImageRef, wanted: Outline) -> Region:
    """The region ``wanted`` names in the image (its pixels at display size), or why not."""
    return pictures.cache().get_or_compute(("outline", image, wanted), lambda: _region(image, wanted))


def _outlined(picture: np.ndarray, image: pictures.ImageRef, marks: Marks) -> np.ndarray:
    drawn = region(image, marks.outline).pixels if marks.outline is not None else None
    return picture if drawn is None else outline.draw_outline(picture, drawn)


def _has_outline(image: pictures.ImageRef, marks: Marks) -> bool:
    return marks.outline is not None and region(image, marks.outline).pixels is not None


class Band(NamedTuple):
    pixels: np.ndarray  # display size, by nearest (as the error map's classes)
    counts: BandCounts


def band(image: pictures.ImageRef, run: pictures.RunRef, ratio: float) -> Band:
    """The run's boundary band on the image, and its full-size counts of wrong pixels.

    Raises:
        ArtifactError, DatasetError: the prediction or the ground truth cannot be read.
    """
    def compute() -> Band:
        label_ids = read_label_ids(Path(image.root) / image.label)
        class_set = get_class_set(run.classes)
        predicted = store.open_run(run.artifacts, run.name, run.uid).prediction(image.image_id)
        pixels, counts = error_band(class_set.lut[label_ids], predicted, boundary_width(label_ids.shape, ratio))
        return Band(display.shrink_classes(pixels, display.display_factor(pixels.shape[1], image.width)), counts)

    return pictures.cache().get_or_compute(("band", image, run, ratio), compute)


# ---------------------------------------------------------------------------- what the explorer calls

def truth_picture(image: pictures.ImageRef, classes: str, opacity: float, marks: Marks,
                  shown: tuple[int, ...] | None = None) -> bytes:
    """``pictures.truth_picture`` (``shown``: the class indices painted), outlined when ``marks`` say so."""
    if not _has_outline(image, marks):
        return pictures.truth_picture(image, classes, opacity, shown)
    view = pictures.photo_view(image)
    return pictures.cache().get_or_compute(
        ("truth", image, classes, opacity, shown, marks.outline),
        lambda: display.encode_jpeg(_outlined(display.truth_overlay(view, get_class_set(classes), opacity, shown),
                                              image, marks)))


def prediction_picture(image: pictures.ImageRef, run: pictures.RunRef, opacity: float, marks: Marks,
                       shown: tuple[int, ...] | None = None) -> bytes:
    """``pictures.prediction_picture``, outlined when ``marks`` say so."""
    if not _has_outline(image, marks):
        return pictures.prediction_picture(image, run, opacity, shown)
    view, predicted = pictures.photo_view(image), pictures.prediction_view(image, run)
    return pictures.cache().get_or_compute(
        ("overlay", image, run, opacity, shown, marks.outline),
        lambda: display.encode_jpeg(_outlined(
            display.prediction_overlay(view, predicted, get_class_set(run.classes), opacity, shown), image, marks)))


def error_picture(image: pictures.ImageRef, run: pictures.RunRef, marks: Marks,
                  shown: tuple[int, ...] | None = None) -> bytes:
    """``pictures.error_picture``: dimmed outside the boundary band and outlined when ``marks``
    say so (a band that cannot be computed leaves the map whole: ``band_note`` says why)."""
    outlined = _has_outline(image, marks)
    if not outlined and not marks.band:
        return pictures.error_picture(image, run, shown)
    ratio = marks.ratio(run.name) if marks.band else None

    def compute() -> bytes:
        view, predicted = pictures.photo_view(image), pictures.prediction_view(image, run)
        picture = display.errors(view, predicted, get_class_set(run.classes), shown)
        if ratio is not None:
            try:
                band_pixels = band(image, run, ratio).pixels
            except (ArtifactError, DatasetError):
                band_pixels = None
            if band_pixels is not None and band_pixels.shape == picture.shape[:2]:
                picture = outline.dim_outside(picture, band_pixels)
        return display.encode_png(_outlined(picture, image, marks) if outlined else picture)

    return pictures.cache().get_or_compute(
        ("errors", image, run, shown, ratio, marks.outline if outlined else None), compute)
