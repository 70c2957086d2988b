"""The Gallery's thumbnails: an image's photo, a run's prediction over it, or the run's error map, as a
small JPEG (at most ``THUMBNAIL_WIDTH`` pixels wide, shrunk by an integer factor as
``dashboard.pictures.drawing`` shrinks: photos by area, class maps by nearest).

A thumbnail drawn for the first time decodes the full-size files: PNG has no reduced decode (only
JPEG has, Pillow's ``draft``), and a 2048x1024 photo PNG costs ~45 ms of CPU with libspng, so a page
of 24 costs ~1.5 s of CPU at 2048x1024 and ~0.1 s at 256x512 (``bench/bench_gallery.py``). Three
layers keep pages fast once seen:

- memory: a ``ByteLRU`` per process (``st.cache_resource``, shared by every session, bounded in
  bytes) of the encoded JPEGs (~10 KB each): a page seen before is drawn from it in well under a
  millisecond. It is filled a page at a time from a thread pool, which ``st.cache_data`` cannot be
  (its functions need the script's context, and fill one at a time);
- disk: each thumbnail drawn is also written (atomically) to ``<run store>/.thumbnails/``, named by
  a hash of what it shows: the stamps (inode, mtime, size) of the photo, label and prediction
  files, the index fingerprint, the run's uid, the mode, the width. A restarted dashboard reads a
  page of 24 from there in ~5 ms instead of seconds; a rewritten file or a replaced run gets another
  name, so nothing stale is ever read. A read-only store only loses this layer; the folder can be
  deleted at any time;
- a thread pool of ``WORKERS`` draws what neither holds (libspng, zlib and Pillow release the GIL:
  it helps where cores are free, and costs nothing measurable where they are not);
- ``prefetch``: once a page is shown, one background thread draws the next page into both layers,
  so "Next" finds it ready (while someone looks at a page, the next one is drawn).

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import streamlit as st

from dashboard.pictures.drawing import display_factor, encode_jpeg, shrink_classes, shrink_photo
from dashboard.pictures.images import ImageRef, RunRef
from training.data.cityscapes import DatasetError, read_image, read_label_ids
from training.data.labels import get_class_set
from training.data.png import read_file
from training.evaluation.confusions import mask_problem
from training.files import file_stamp, write_bytes_atomic
from training.memory import ByteLRU
from training.runs.layout import RUNS, ArtifactError
from training.runs.reader import Run
from training.viz import error_map, overlay

PHOTO, OVERLAY, ERROR_MAP = "photo", "overlay", "error map"
MODES = (PHOTO, OVERLAY, ERROR_MAP)
THUMBNAIL_WIDTH = 320
OPACITY = 0.6  # the explorer's default
QUALITY = 85
MEMORY_MB = 48  # ~10 KB a thumbnail: about five thousand
FOLDER = ".thumbnails"  # under the run store
MAX_THUMBNAIL_BYTES = 4 * 2**20  # a 320-pixel JPEG is ~10 KB
VERSION = "1"  # part of every file's name: change it when the drawing changes
WORKERS = max(1, min(4, os.cpu_count() or 1))
JPEG_START, JPEG_END = b"\xff\xd8", b"\xff\xd9"


class Thumbnail(NamedTuple):
    """A thumbnail (JPEG bytes, None when the image cannot be read) and a note on what it shows
    instead of what was asked (the photo when the run has no readable prediction), or why it is
    missing."""

    jpeg: bytes | None
    note: str | None = None


class Request(NamedTuple):
    """Which thumbnail: the image (its ``width`` is the thumbnail's), the run (None: the photo), the mode."""

    image: ImageRef
    run: RunRef | None
    mode: str


@st.cache_resource(show_spinner=False, max_entries=1)
def memory() -> ByteLRU:
    """The process's thumbnails (shared by every session)."""
    return ByteLRU(MEMORY_MB * 1024 * 1024)


def request(image: ImageRef, run: RunRef | None, mode: str, width: int = THUMBNAIL_WIDTH) -> Request:
    """The thumbnail of ``image`` in ``mode`` (the photo when ``run`` is None)."""
    if mode not in MODES:
        raise ValueError(f"unknown thumbnail mode {mode!r}; choose one of {', '.join(MODES)}")
    return Request(image._replace(width=int(width)), run if mode != PHOTO else None, mode if run else PHOTO)


# ---------------------------------------------------------------------------- drawing (no Streamlit)

def _prediction(run: RunRef, image_id: int) -> tuple[np.ndarray | None, str | None]:
    """The run's prediction of the image, or why there is none to show."""
    opened = Run(run.name, Path(run.artifacts) / RUNS / run.name)
    if not (opened.path / f"predictions/{int(image_id)}.png").is_file():
        return None, f"{run.name} has no prediction of this image"
    try:
        return opened.prediction(image_id), None
    except ArtifactError as error:
        return None, str(error).removeprefix(f"run {run.name}: ")


def draw(wanted: Request) -> Thumbnail:
    """Decode the files and draw the thumbnail (the slow path: every cache missed)."""
    image, run = wanted.image, wanted.run
    root = Path(image.root)
    try:
        photo = read_image(root / image.image)
    except DatasetError as error:
        return Thumbnail(None, str(error))
    factor = display_factor(photo.shape[1], image.width)
    small = shrink_photo(photo, factor)
    if wanted.mode == PHOTO:
        return Thumbnail(encode_jpeg(small, QUALITY))
    predicted, problem = _prediction(run, image.image_id)
    class_set = get_class_set(run.classes)
    if predicted is not None:
        problem = mask_problem(predicted, photo.shape[:2], class_set.num_classes,
                                     f"predictions/{image.image_id}.png", run.imported)
    if problem:
        return Thumbnail(encode_jpeg(small, QUALITY), f"photo only: {problem}")
    classes = shrink_classes(predicted, factor)
    if wanted.mode == OVERLAY:
        picture = overlay(small, class_set.colorize(classes), OPACITY)
    else:
        try:
            label_ids = read_label_ids(root / image.label)
        except DatasetError as error:
            return Thumbnail(encode_jpeg(small, QUALITY), f"photo only: {error}")
        picture = error_map(small, class_set.lut[shrink_classes(label_ids, factor)], classes, class_set)
    return Thumbnail(encode_jpeg(picture, QUALITY))


# ---------------------------------------------------------------------------- the disk layer

def disk_name(wanted: Request) -> str:
    """The file name of a thumbnail: a hash of everything it shows, the files' stamps included."""
    image, run = wanted.image, wanted.run
    root = Path(image.root)
    parts = [VERSION, image.fingerprint, image.image_id, image.image, file_stamp(root / image.image), image.width,
             wanted.mode, OPACITY, QUALITY]
    if run is not None:
        prediction = Path(run.artifacts) / RUNS / run.name / f"predictions/{image.image_id}.png"
        parts += [run.uid, run.classes, run.imported, file_stamp(prediction)]
        if wanted.mode == ERROR_MAP:
            parts.append(file_stamp(root / image.label))
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32] + ".jpg"


def _from_disk_or_drawn(wanted: Request, folder: Path | None) -> Thumbnail:
    """The thumbnail from the disk layer under ``folder`` (None: no disk layer), else drawn and
    written there when it shows what was asked."""
    if folder is None:
        return draw(wanted)
    name = disk_name(wanted)
    path = folder / name[:2] / name
    try:
        stored = read_file(path, MAX_THUMBNAIL_BYTES)  # a cache folder is ours, but not only ours
        if stored.startswith(JPEG_START) and stored.endswith(JPEG_END):  # else a damaged file: drawn again
            return Thumbnail(stored)
    except OSError:
        pass
    made = draw(wanted)
    if made.jpeg is not None and made.note is None:
        try:
            write_bytes_atomic(path, made.jpeg)
        except OSError:
            pass  # a read-only store: the memory layer still holds it
    return made


# ---------------------------------------------------------------------------- what the page calls

def thumbnails(wanted: list[Request], artifacts: str | None, lru: ByteLRU | None = None,
               workers: int = WORKERS) -> list[Thumbnail]:
    """The thumbnails of ``wanted``, in order: from memory, else from the disk layer under
    ``artifacts`` (None: none), else drawn, several at a time."""
    lru = memory() if lru is None else lru
    found = [lru.get(request) for request in wanted]
    missing = [i for i, thumbnail in enumerate(found) if thumbnail is None]
    folder = Path(artifacts) / FOLDER if artifacts else None
    if missing:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(missing)))) as pool:
            made = list(pool.map(lambda i: _from_disk_or_drawn(wanted[i], folder), missing))
        for i, thumbnail in zip(missing, made, strict=True):
            found[i] = thumbnail
            if thumbnail.jpeg is not None:
                lru.put(wanted[i], thumbnail)
    return found


# ---------------------------------------------------------------------------- the next page, in the background

_BACKGROUND = ThreadPoolExecutor(max_workers=1, thread_name_prefix="thumbnail-prefetch")
_LOCK = threading.Lock()
_pending: Future | None = None


def prefetch(wanted: list[Request], artifacts: str | None, lru: ByteLRU | None = None) -> Future | None:
    """Draw the thumbnails of ``wanted`` that memory lacks in the background, one at a time, into
    memory and the disk layer (None: nothing to draw). A prefetch not yet started is dropped for
    the newer one: pages skipped quickly are not drawn."""
    global _pending
    lru = memory() if lru is None else lru  # here, in the script's thread: the worker calls no Streamlit
    missing = [request for request in wanted if request not in lru]
    if not missing:
        return None
    with _LOCK:
        if _pending is not None:
            _pending.cancel()  # only succeeds while it waits
        _pending = _BACKGROUND.submit(thumbnails, missing, artifacts, lru, 1)
        return _pending
