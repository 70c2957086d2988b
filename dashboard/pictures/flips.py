"""An export's flip map of one image (the pixels whose class an embedded export changed from the run's
Keras model, in the colour of the Keras class) at display size, with the full-size pixels changed
per Keras class (``training.viz.flip_counts``), cached like the other pictures. Both masks are files:
nothing here runs a model. Shown smaller, a pixel is marked when any pixel of its block changed
(``training.viz.shrink_flips``), so no change disappears.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

import dashboard.pictures.drawing as display
import dashboard.pictures.images as pictures
import dashboard.readers.store as store
from training.data.labels import get_class_set
from training.runs.layout import ArtifactError
from training.runs.tflite_exports import export_prediction, has_export_prediction
from training.viz import flip_counts, flip_picture, shrink_flips


class Flips(NamedTuple):
    """An export's flip map of one image: the picture at display size (PNG), and per Keras class
    its full-size pixels and those whose class the export changed."""

    png: bytes
    changed: np.ndarray
    pixels: np.ndarray


def flips(image: pictures.ImageRef, run: pictures.RunRef, export: str, stamp) -> Flips | str:
    """The flip map of ``export`` of ``run`` on the image, or why there is none (a note for people).
    ``stamp``: the export's report stamp (``version``), so a replaced export is drawn again."""
    opened = store.open_run(run.artifacts, run.name, run.uid)
    if not has_export_prediction(opened, export, image.image_id):
        return f"{export} has no prediction of image {image.image_id} (it evaluated the run's split only)"
    try:
        opened.prediction_path(image.image_id)
    except ArtifactError:
        return f"{run.name} has no prediction of image {image.image_id}"
    photo = pictures.photo_view(image)

    def compute() -> Flips | str:
        try:
            before, after = opened.prediction(image.image_id), export_prediction(opened, export, image.image_id)
        except ArtifactError as error:
            return store.readable(error).removeprefix(f"run {run.name}: ")
        if before.shape != after.shape:
            return f"{export}'s prediction is {after.shape[1]}x{after.shape[0]}, the run's {before.shape[1]}x" \
                   f"{before.shape[0]}"
        class_set = get_class_set(run.classes)
        classes, changed = shrink_flips(before, after, photo.factor)
        shape = photo.photo.shape[:2]  # the photo's display shape (edges' partial blocks dropped alike)
        picture = flip_picture(changed[:shape[0], :shape[1]], classes[:shape[0], :shape[1]], class_set, photo.photo)
        counts = flip_counts(before, after, class_set.num_classes)
        return Flips(display.encode_png(picture), *counts)

    return pictures.cache().get_or_compute(("flips", image, run, export, stamp), compute)
