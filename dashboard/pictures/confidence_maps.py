"""A run's confidence map for one image, cached like the other pictures (``dashboard.pictures.images``):
the display-size view (grey levels, their full-size histogram, the hover grid's levels) and the
pictures made from it, the heatmap and the prediction greyed under a threshold, as encoded bytes.
The share of pixels a threshold keeps is the core's (``training.evaluation.calibration.kept_share``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import dashboard.pictures.drawing as display
import dashboard.pictures.images as pictures
import dashboard.readers.store as store
import dashboard.views.calibration_tables as confidence
from dashboard.views.hover_cells import hover_grid
from training.data.labels import get_class_set
from training.evaluation.calibration import kept_share, level_histogram

THRESHOLD_DIGITS = 2  # the slider's step is 0.01: one cached picture per step, not per float


@dataclass(frozen=True)
class ConfidenceView:
    """A run's confidence map for one image, as the explorer needs it (no full-size array)."""

    problem: str | None  # why it cannot be shown (then the rest is None)
    levels: np.ndarray | None = None  # display size, grey levels by nearest
    hover: np.ndarray | None = None  # full-size grey levels at the hover grid's cells
    histogram: np.ndarray | None = None  # (256,) full-size pixels per grey level

    def kept_share(self, threshold: float) -> float:
        """The share of the image's pixels a ``threshold`` keeps (``calibration.kept_share``)."""
        return kept_share(self.histogram, threshold)


def view_of(values: np.ndarray, truth_shape: tuple[int, int], max_width: int, filename: str) -> ConfidenceView:
    """A full-size confidence map (``Run.confidence``) for a ground truth of ``truth_shape``."""
    if values.shape != tuple(truth_shape):
        return ConfidenceView(f"{filename} has shape {values.shape}, the ground truth {tuple(truth_shape)}")
    levels = confidence.to_levels(values)
    rows, columns, _, _ = hover_grid(*levels.shape)
    return ConfidenceView(None, display.shrink_classes(levels, display.display_factor(levels.shape[1], max_width)),
                          np.ascontiguousarray(levels[rows, columns]), level_histogram(levels))


def missing_note(image: pictures.ImageRef, run: pictures.RunRef) -> str | None:
    """Why ``run`` has no confidence map for the image (an imported run, a run evaluated before
    maps were stored), or None when it has one."""
    if run.imported:
        return confidence.IMPORTED_NOTE
    if not store.open_run(run.artifacts, run.name, run.uid).has_confidence(image.image_id):
        return confidence.NO_MAPS_NOTE
    return None


def confidence_view(image: pictures.ImageRef, run: pictures.RunRef) -> ConfidenceView:
    """``run``'s map for the image at display size; it must have one (``missing_note`` is None).

    Raises:
        ArtifactError: the map is damaged (the message names it, relative to the run).
    """
    def compute() -> ConfidenceView:
        values = store.open_run(run.artifacts, run.name, run.uid).confidence(image.image_id)
        return view_of(values, pictures.photo_view(image).shape, image.width, f"confidence/{image.image_id}.png")

    return pictures.cache().get_or_compute(("confidence", image, run), compute)


def heatmap_picture(image: pictures.ImageRef, run: pictures.RunRef) -> bytes:
    """The confidence as colours (JPEG, display size); its view must be one that can be shown."""
    view = confidence_view(image, run)
    return pictures.cache().get_or_compute(("confidence heatmap", image, run),
                                           lambda: display.encode_jpeg(display.heatmap(view.levels)))


def thresholded_picture(image: pictures.ImageRef, run: pictures.RunRef, opacity: float, threshold: float) -> bytes:
    """The prediction over the photo, grey where the confidence is under ``threshold`` (JPEG,
    display size); the prediction and the map must be ones that can be shown."""
    threshold = round(float(threshold), THRESHOLD_DIGITS)
    photo, predicted = pictures.photo_view(image), pictures.prediction_view(image, run)
    view = confidence_view(image, run)
    return pictures.cache().get_or_compute(
        ("confident overlay", image, run, opacity, threshold),
        lambda: display.encode_jpeg(display.confident_overlay(
            photo.photo, predicted.classes, view.levels, get_class_set(run.classes), opacity, threshold)))


def zoom_picture(image: pictures.ImageRef, run: pictures.RunRef, full_size: bool) -> tuple[bytes, str]:
    """The heatmap for the zoom view: at display size, or at the image's own size (decoded again);
    its view must be one that can be shown (of the image's size)."""
    if not full_size:
        return heatmap_picture(image, run), "image/jpeg"

    def compute() -> bytes:
        values = store.open_run(run.artifacts, run.name, run.uid).confidence(image.image_id)
        return display.encode_jpeg(display.heatmap(confidence.to_levels(values)))

    return pictures.cache().get_or_compute(("zoom confidence", image, run), compute), "image/jpeg"
