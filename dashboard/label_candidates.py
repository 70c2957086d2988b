"""What the Check labels page reads and draws: the regions where every chosen run agrees against
the ground truth (``training.evaluation.consensus``), scanned over the images all the runs
predicted, cached, and a close-up picture of one region.

The scan reads every image's ground truth and each run's prediction at full size, so it is the
slow part of the page (about 15-25 ms an image at 2048x1024 with three runs, measured by
``bench/bench_consensus.py``): its result is cached by what decides it (the runs' uids, the class
set, the dataset index's fingerprint and the images, the minimum size), never by run names, so a
run replaced under the same name is scanned again and the other pages' caches are left alone.
The progress bar is drawn inside the cached function, where Streamlit records it and replays it
(it ends empty) when the result comes from the cache.

The close-ups are pure numpy (like ``dashboard.display``): the region's bounding box with a margin,
shrunk by area (the photo) or nearest (class colours) to fit, or enlarged by whole pixels, with the
region outlined (``dashboard.outline``), cached as JPEG/PNG bytes in the pictures' cache.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

import dashboard.display as display
import dashboard.outline as outline
import dashboard.pictures as pictures
import dashboard.store as store
from training.data.cityscapes import read_image, read_label_ids
from training.data.labels import IGNORE_INDEX, get_class_set
from training.evaluation.consensus import Scan, runs_mask, scan_images
from training.runs.store import ArtifactError

MAX_WORKERS = 8  # reader threads: PNG decoding releases the GIL; more adds memory, not speed
PROGRESS_STEPS = 50  # updates of the progress bar per scan (each is a message Streamlit replays)
PER_PAGE = 25  # rows of the list at a time
CLOSE_UP_WIDTH = 360  # display pixels
MAX_ENLARGE = 8
DISAGREE_DIM = 0.3  # what is left of the photo's brightness where the runs do not all say the same class
NO_TRUTH = np.array((0, 0, 0), dtype=np.uint8)


def default_min_pixels(height: int, width: int) -> int:
    """A size that leaves out specks: a thousandth of the frame (2,100 pixels at 2048x1024, 130 at
    256x512), with two significant digits."""
    size = max(1, height * width // 1000)
    digits = max(0, len(str(size)) - 2)
    return max(1, round(size, -digits))


def common_ids(per_run_ids: dict[str, Sequence[int]], index) -> list[int]:
    """The ids every run predicted that the index knows, in id order."""
    sets = [{int(i) for i in ids if i == i and int(i) >= 0} for ids in per_run_ids.values()]  # i == i: not NaN
    shared = set.intersection(*sets) if sets else set()
    return sorted(i for i in shared if i in index)


@st.cache_data(show_spinner=False, max_entries=16)
def _scan(artifacts: str, runs: tuple[tuple[str, str], ...], classes: str, root: str, fingerprint: str,
          images: tuple[tuple[int, str], ...], min_pixels: int) -> Scan:
    opened = [store.open_run(artifacts, run, uid) for run, uid in runs]
    bar = st.progress(0.0, text=f"Scanning {len(images)} images…")
    every = max(1, len(images) // PROGRESS_STEPS)

    def progress(done: int, total: int) -> None:
        if done % every == 0 or done == total:
            bar.progress(done / total, text=f"Scanning: {done} of {total} images")

    try:
        return scan_images([(image_id, Path(root) / label) for image_id, label in images],
                           [run.prediction for run in opened], get_class_set(classes), min_pixels,
                           workers=min(MAX_WORKERS, os.cpu_count() or 1), skip_errors=(ArtifactError,),
                           progress=progress)
    finally:
        bar.empty()


def scan(key: store.StoreKey, runs: Sequence[str], classes: str, ids: Sequence[int], min_pixels: int) -> Scan:
    """The candidates of ``runs`` (one class set) over the images ``ids``, cached (see the module)."""
    data = store.dataset(key, classes)
    images = tuple((int(i), data.index[i].label) for i in ids)
    identities = tuple((run, store.run_uid(key, run)) for run in runs)
    return _scan(key.artifacts, identities, classes, str(data.root), data.index.fingerprint(), images,
                 int(min_pixels))


def candidates_frame(found: Scan) -> pd.DataFrame:
    """The scan's rows as a table, largest first (``runs`` left out: they are the regions' pixels)."""
    columns = ["id", "pixels", "x0", "y0", "x1", "y1", "ground_truth", "truth_share", "runs_say", "agreed_share"]
    frame = pd.DataFrame([{column: row[column] for column in columns} for row in found.rows], columns=columns)
    frame["box"] = [f"{x0},{y0},{x1},{y1}" for x0, y0, x1, y1 in frame[["x0", "y0", "x1", "y1"]].itertuples(
        index=False)]
    return frame


def box_outline(row) -> outline.Outline:
    return outline.Outline(outline.BOX, box=(int(row["x0"]), int(row["y0"]), int(row["x1"]), int(row["y1"])))


# ---------------------------------------------------------------------------- close-ups

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
