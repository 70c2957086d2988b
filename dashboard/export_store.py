"""What the pages read of runs' embedded exports (``training.runs.exports``), cached: their
reports, and an image's flip map (the pixels whose class an export changed).

As in ``dashboard.store``, a run is read by its uid; its exports by the stamps of their reports
(``exports_version``: ``stat`` calls on every rerun), so a new or replaced export shows at once
and a replaced run never shows another's exports. No TensorFlow: reports and predictions are files.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st

import dashboard.display as display
import dashboard.pictures as pictures
import dashboard.store as store
from training.data.labels import get_class_set
from training.runs.exports import (
    QUANTIZATIONS,
    export_prediction,
    exports_version,
    has_export_prediction,
    read_export,
)
from training.runs.store import ArtifactError
from training.viz import flip_counts, flip_picture, shrink_flips

EXPORT_COMMAND = "python -m training export RUN --format tflite --quantize int8"


def version(key: store.StoreKey, run: str) -> tuple:
    """The cache key of ``run``'s exports now (empty when it has none or is not whole)."""
    try:
        return exports_version(store.open_run(key.artifacts, run, store.run_uid(key, run)))
    except ArtifactError:
        return ()


@st.cache_data(show_spinner=False, max_entries=64)
def _reports(artifacts: str, run: str, uid: str, exports: tuple) -> tuple[dict[str, dict], dict[str, str]]:
    opened = store.open_run(artifacts, run, uid)
    reports, problems = {}, {}
    for name, _ in exports:
        try:
            reports[name] = read_export(opened, name)
        except ArtifactError as error:
            problems[name] = str(error).removeprefix(f"run {run}: ")
    return reports, problems


def reports(key: store.StoreKey, run: str) -> tuple[dict[str, dict], dict[str, str]]:
    """(export name -> report, export name -> why it cannot be shown): float32, float16, int8,
    then any other, each by name."""
    exports = version(key, run)
    if not exports:
        return {}, {}
    found, problems = _reports(key.artifacts, run, store.run_uid(key, run), exports)
    order = sorted(found, key=lambda name: (_QUANTIZATION_ORDER.get(found[name].get("quantize"), 3), name))
    return {name: found[name] for name in order}, {name: store.readable(p, key) for name, p in problems.items()}


_QUANTIZATION_ORDER = {quantize: number for number, quantize in enumerate(QUANTIZATIONS)}


def runs_with_exports(key: store.StoreKey, runs: list[str]) -> list[str]:
    return [run for run in runs if version(key, run)]


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
