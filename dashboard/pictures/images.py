"""The pictures of the pages, at display size (``dashboard.pictures.drawing``), cached as encoded bytes.

One ``ByteLRU`` per process (``st.cache_resource``, shared by every session) holds them, bounded
by ``$DASHBOARD_CACHE_MB``: photos and overlays as JPEG, error maps as PNG, and the small views
they are made from (display-size arrays, the hover grid's classes, a K x K confusion matrix per
prediction). Full-size arrays stay out of it: a second, small cache (``FULL_SIZE_MB``) keeps the
decoded files of the last images or so, so that a new image is decoded once for its display-size
views and the explorer's full-size panels (and its controls' reruns) together, not once each.

Keys are identities, as in ``dashboard.readers.store``: an image by the index fingerprint and its files,
a run by its uid (and class set), both with the display width, so a replaced run or a rebuilt
index never shows a stale picture.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

import numpy as np
import streamlit as st

import dashboard.pictures.drawing as display
import dashboard.readers.store as store
from dashboard.views.run_names import evaluated_on_another_index
from training.data.cityscapes import read_label_ids, read_pair
from training.data.labels import get_class_set
from training.data.png import PngError, read_header
from training.memory import ByteLRU
from training.runs.layout import IMPORTED, ArtifactError


class ImageRef(NamedTuple):
    """An image id, the files it names now (by the index's fingerprint), its display width."""

    root: str
    fingerprint: str
    image_id: int
    image: str
    label: str
    width: int


class RunRef(NamedTuple):
    """Which run a name stands for now, the class set it predicts, whether it was evaluated on
    the index the page reads (then its stored per-image numbers are this image's), and whether it
    is imported (its predictions may say "no class": 255)."""

    artifacts: str
    name: str
    uid: str
    classes: str
    same_index: bool
    imported: bool = False


@st.cache_resource(show_spinner=False, max_entries=1)
def _cache(max_bytes: int) -> ByteLRU:
    return ByteLRU(max_bytes)


# The decoded full-size files (photo, labelIds, predictions): 2048x1024 with 4 runs is 16 MB an
# image, so this keeps the last two or three. Decoding them is most of a new image's time there
# (about 60 ms the photo and labels, 15 ms a prediction), asked for by the display-size views and the
# explorer's full-size panels alike.
FULL_SIZE_MB = 48


@st.cache_resource(show_spinner=False, max_entries=1)
def _full_size_cache() -> ByteLRU:
    return ByteLRU(FULL_SIZE_MB * 1024 * 1024)


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False  # shared by every caller: a change would show in the next picture
    return array


def full_size_pair(image: ImageRef) -> tuple[np.ndarray, np.ndarray]:
    """The photo and its labelIds at the image's own size (read-only, shared).

    Raises:
        DatasetError: the files cannot be read, or their sizes differ.
    """
    return _full_size_cache().get_or_compute(
        ("pair", image), lambda: tuple(_read_only(a) for a in read_pair(Path(image.root), image.image, image.label)))


def full_size_prediction(image: ImageRef, run: RunRef) -> np.ndarray:
    """``run``'s prediction of the image at its own size (read-only, shared).

    Raises:
        ArtifactError: the run has no readable prediction of the image.
    """
    return _full_size_cache().get_or_compute(
        ("prediction", image, run),
        lambda: _read_only(store.open_run(run.artifacts, run.name, run.uid).prediction(image.image_id)))


def cache() -> ByteLRU:
    """The process's cache of pictures (a new one when ``$DASHBOARD_CACHE_MB`` changes)."""
    return _cache(display.cache_bytes())


def image_ref(key: store.StoreKey, image_id: int) -> ImageRef:
    """``image_id`` as the index names it now (computed once per rerun: the rest takes the ref)."""
    data = store.dataset(key)
    entry = data.index[int(image_id)]
    return ImageRef(str(data.root), data.index.fingerprint(), int(image_id), entry.image, entry.label,
                    display.display_width())


def run_refs(key: store.StoreKey, runs: list[str], image: ImageRef) -> dict[str, RunRef | ArtifactError]:
    """Each of ``runs`` as the store holds it now, or the ArtifactError that says it is not a
    whole run (computed once per rerun: the rest takes the refs)."""
    classes_of, refs = store.run_classes(key), {}
    for run in runs:
        try:
            metrics = store.run_metrics(key, run)
            other = evaluated_on_another_index(metrics, image.fingerprint)
            imported = metrics.get("source") == IMPORTED
            refs[run] = RunRef(key.artifacts, run, store.run_uid(key, run), classes_of[run], not other, imported)
        except ArtifactError as error:
            refs[run] = error
    return refs


# ---------------------------------------------------------------------------- views (computed on a cache miss)

class _Labels:
    """An image's full-size labelIds, decoded at most once, when first needed."""

    def __init__(self, image: ImageRef):
        self.image, self._value = image, None

    def known(self, label_ids: np.ndarray) -> None:
        """The labelIds, decoded elsewhere (with the photo)."""
        self._value = label_ids

    def __call__(self) -> np.ndarray:
        if self._value is None:
            self._value = read_label_ids(Path(self.image.root) / self.image.label)
        return self._value

    @property
    def shape(self) -> tuple[int, int]:
        """(H, W), from the PNG header when the pixels are not decoded yet."""
        if self._value is None:
            try:
                with open(Path(self.image.root) / self.image.label, "rb") as stream:
                    header = read_header(stream.read(33))
                return header.height, header.width
            except (OSError, PngError):
                pass  # decoding says why, naming the file
        return self().shape


def _photo(lru: ByteLRU, image: ImageRef, labels: _Labels) -> display.PhotoView:
    def compute() -> display.PhotoView:
        photo, label_ids = full_size_pair(image)  # raises the DatasetError that names the files
        labels.known(label_ids)
        return display.photo_view(photo, label_ids, image.width)

    return lru.get_or_compute(("photo", image), compute)


@functools.lru_cache(maxsize=32)
def _evaluated(artifacts: str, run: str, uid: str) -> tuple[dict[int, int], np.ndarray]:
    """(image id -> row, N x K x K memory-mapped counts) of a run's per-image evaluation: the
    confusion matrices its evaluation counted at full size, opened once per run (by uid)."""
    opened = store.open_run(artifacts, run, uid)
    rows = {row["id"]: number for number, row in enumerate(opened.per_image()) if isinstance(row.get("id"), int)}
    return rows, opened.per_image_confusion(mmap=True)


def _stored_confusion(run: RunRef, image_id: int) -> np.ndarray | None:
    """This image's K x K counts as the run's evaluation stored them, with the sink beyond the K
    classes where it has one (cityscapes19: the predictions of no class, which only an imported
    run makes: they are wrong, and dropping them would raise its IoU); None when they may be
    another image's (another index) or cannot be read: the caller counts them itself."""
    if not run.same_index:
        return None
    try:
        rows, matrices = _evaluated(run.artifacts, run.name, run.uid)
    except ArtifactError:
        return None
    k = get_class_set(run.classes).num_classes
    row = rows.get(int(image_id))
    if row is None or row >= len(matrices) or matrices.shape[1] < k:
        return None
    size = min(matrices.shape[1], k + 1)
    return np.array(matrices[row, :size, :size], dtype=np.int64)


def _prediction(lru: ByteLRU, image: ImageRef, run: RunRef, labels: _Labels) -> display.PredictionView | None:
    def compute() -> display.PredictionView | None:
        opened = store.open_run(run.artifacts, run.name, run.uid)
        try:
            opened.prediction_path(image.image_id)
        except ArtifactError:
            return None  # the run did not evaluate this image
        stored = _stored_confusion(run, image.image_id)
        return display.prediction_view(full_size_prediction(image, run), labels.shape, get_class_set(run.classes),
                                       image.width, f"predictions/{image.image_id}.png", stored,
                                       labels() if stored is None else None, no_class_allowed=run.imported)

    return lru.get_or_compute(("prediction", image, run), compute)


# ---------------------------------------------------------------------------- what the pages call

def photo_view(image: ImageRef) -> display.PhotoView:
    """The image at display size. Raises DatasetError (its files cannot be read)."""
    return _photo(cache(), image, _Labels(image))


def prediction_view(image: ImageRef, run: RunRef) -> display.PredictionView | None:
    """``run``'s prediction for the image; None if it did not evaluate that image.

    Raises:
        ArtifactError: the prediction file is damaged (the message names it, relative to the run).
    """
    return _prediction(cache(), image, run, _Labels(image))


def truth_picture(image: ImageRef, classes: str, opacity: float, shown: tuple[int, ...] | None = None) -> bytes:
    """The ground truth in ``classes`` over the photo (JPEG, display size); ``shown``: the class
    indices painted (None: all; ``dashboard.class_view``)."""
    view = photo_view(image)
    return cache().get_or_compute(
        ("truth", image, classes, opacity, shown),
        lambda: display.encode_jpeg(display.truth_overlay(view, get_class_set(classes), opacity, shown)))


def prediction_picture(image: ImageRef, run: RunRef, opacity: float, shown: tuple[int, ...] | None = None) -> bytes:
    """``run``'s prediction over the photo (JPEG, display size); it must be one that can be shown."""
    view, predicted = photo_view(image), prediction_view(image, run)
    return cache().get_or_compute(
        ("overlay", image, run, opacity, shown),
        lambda: display.encode_jpeg(display.prediction_overlay(view, predicted, get_class_set(run.classes), opacity,
                                                               shown)))


def error_picture(image: ImageRef, run: RunRef, shown: tuple[int, ...] | None = None) -> bytes:
    """``run``'s error map (PNG, display size); its prediction must be one that can be shown."""
    view, predicted = photo_view(image), prediction_view(image, run)
    return cache().get_or_compute(
        ("errors", image, run, shown),
        lambda: display.encode_png(display.errors(view, predicted, get_class_set(run.classes), shown)))


def zoom_picture(image: ImageRef, run: RunRef | None, classes: str, kind: str, opacity: float,
                 full_size: bool, shown: tuple[int, ...] | None = None) -> tuple[bytes, str]:
    """(encoded picture, MIME type) of the zoom view: ``kind`` ("photo", "ground truth", or with
    ``run`` "prediction", "error map") at display size, the pictures the page shows anyway; or,
    with ``full_size``, at the image's own size (from the decoded files' cache; cached like the rest).
    ``shown``: the class indices painted (None: all)."""
    if kind in ("prediction", "error map") and run is None:
        kind = "ground truth"
    if not full_size:
        if kind == "photo":
            return photo_view(image).jpeg, "image/jpeg"
        if kind == "prediction":
            return prediction_picture(image, run, opacity, shown), "image/jpeg"
        if kind == "error map":
            return error_picture(image, run, shown), "image/png"
        return truth_picture(image, classes, opacity, shown), "image/jpeg"
    needs_run = kind in ("prediction", "error map")

    def compute() -> bytes:
        photo, label_ids = full_size_pair(image)
        predicted = full_size_prediction(image, run) if needs_run else None
        return display.full_size_picture(photo, label_ids, predicted, get_class_set(classes), kind, opacity, shown)

    return cache().get_or_compute(("zoom", image, run if needs_run else None, classes, kind, opacity, shown),
                                  compute), "image/jpeg"
