"""What the Check labels page reads: the regions where every chosen run agrees against
the ground truth (``training.evaluation.consensus``), scanned over the images all the runs
predicted, cached.

The scan reads every image's ground truth and each run's prediction at full size, so it is the
slow part of the page (about 15-25 ms an image at 2048x1024 with three runs, measured by
``bench/bench_consensus.py``): its result is cached by what decides it (the runs' uids, the class
set, the dataset index's fingerprint and the images, the minimum size), never by run names, so a
run replaced under the same name is scanned again and the other pages' caches are left alone.
The progress bar is drawn inside the cached function, where Streamlit records it and replays it
(it ends empty) when the result comes from the cache. The scan is also kept in the run store
(``training.runs.derived``, under the same identities), so a restarted dashboard reads it instead
of scanning again: with 500 full-size images and three runs that is 10 s or more of a first visit.

The close-ups of a region are ``dashboard.pictures.close_ups``'.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

import dashboard.readers.store as store
from training.data.labels import get_class_set
from training.evaluation.consensus import Scan, scan_document, scan_from_document, scan_images
from training.runs.derived import cache_key, read_derived, write_derived
from training.runs.layout import ArtifactError

MAX_WORKERS = 8  # reader threads: PNG decoding releases the GIL; more adds memory, not speed
DERIVED_KIND = "label-scans"  # under <artifacts>/.cache/
PROGRESS_STEPS = 50  # updates of the progress bar per scan (each is a message Streamlit replays)


@st.cache_data(show_spinner=False, max_entries=16)
def _scan(artifacts: str, runs: tuple[tuple[str, str], ...], classes: str, root: str, fingerprint: str,
          images: tuple[tuple[int, str], ...], min_pixels: int) -> Scan:
    key = cache_key(tuple(uid for _, uid in runs), classes, fingerprint, images, min_pixels)
    kept = read_derived(artifacts, DERIVED_KIND, key)
    if kept is not None:
        try:
            return scan_from_document(kept)
        except ValueError:
            pass  # not a scan (another format): scanned again and replaced
    opened = [store.open_run(artifacts, run, uid) for run, uid in runs]
    bar = st.progress(0.0, text=f"Scanning {len(images)} images…")
    every = max(1, len(images) // PROGRESS_STEPS)

    def progress(done: int, total: int) -> None:
        if done % every == 0 or done == total:
            bar.progress(done / total, text=f"Scanning: {done} of {total} images")

    try:
        found = scan_images([(image_id, Path(root) / label) for image_id, label in images],
                            [run.prediction for run in opened], get_class_set(classes), min_pixels,
                            workers=min(MAX_WORKERS, os.cpu_count() or 1), skip_errors=(ArtifactError,),
                            progress=progress)
    finally:
        bar.empty()
    if not found.skipped:  # an image left out may be readable next time (a file being written)
        write_derived(artifacts, DERIVED_KIND, key, scan_document(found))
    return found


def scan(key: store.StoreKey, runs: Sequence[str], classes: str, ids: Sequence[int], min_pixels: int) -> Scan:
    """The candidates of ``runs`` (one class set) over the images ``ids``, cached (see the module)."""
    data = store.dataset(key, classes)
    images = tuple((int(i), data.index[i].label) for i in ids)
    identities = tuple((run, store.run_uid(key, run)) for run in runs)
    return _scan(key.artifacts, identities, classes, str(data.root), data.index.fingerprint(), images,
                 int(min_pixels))
