"""What the pages read about two runs at once, cached: their paired bootstrap, and their pixel
outcomes (A right and B wrong, ...) on every image both evaluated (an image's outcome map is
``dashboard.pictures.outcomes``').

As in ``dashboard.readers.store``, runs are identified by their uid and images by the index fingerprint,
so a replaced run or a rebuilt index never shows a stale comparison.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import streamlit as st

import dashboard.readers.store as store
import dashboard.views.intervals as intervals
from training.data.cityscapes import DatasetError, read_label_ids
from training.data.labels import get_class_set
from training.evaluation.metrics import outcome_counts, paired_outcomes
from training.evaluation.significance import compare_runs
from training.runs.layout import ArtifactError

# ---------------------------------------------------------------------------- significance

@st.cache_data(show_spinner=False, max_entries=256)
def _compared(artifacts: str, run_a: str, uid_a: str, run_b: str, uid_b: str, resamples: int, seed: int) -> dict:
    """``compare_runs`` of two runs (40-50 ms for 500 images), or ``{"error": why}`` when they cannot
    be compared (a returned value, since st.cache_data never caches an exception)."""
    try:
        return compare_runs(store.open_run(artifacts, run_a, uid_a), store.open_run(artifacts, run_b, uid_b),
                            resamples=resamples, seed=seed)
    except (ValueError, ArtifactError) as error:
        return {"error": str(error)}


def comparison(key: store.StoreKey, run_a: str, run_b: str) -> dict:
    """The paired bootstrap of B against A (``intervals.RESAMPLES`` resamples, seed ``intervals.SEED``),
    or ``{"error": message for people}``."""
    result = _compared(key.artifacts, run_a, store.run_uid(key, run_a), run_b, store.run_uid(key, run_b),
                       intervals.RESAMPLES, intervals.SEED)
    return {"error": store.readable(result["error"], key)} if "error" in result else result


# ---------------------------------------------------------------------------- pixel outcomes

@st.cache_data(show_spinner=False, max_entries=16)
def _outcomes(artifacts: str, run_a: str, uid_a: str, run_b: str, uid_b: str, classes: str, root: str,
              fingerprint: str, images: tuple[tuple[int, str], ...]) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Pixels of each outcome on each of ``images`` ((id, label file) both runs evaluated), at full
    size: three PNG decodes an image (about 500 x 3 at 2048x1024, hence once per pair, on threads:
    the decoders release the GIL). Returns the table (id, one column per outcome) and the problems
    of the images left out (a damaged file, another size)."""
    run_a_opened, run_b_opened = store.open_run(artifacts, run_a, uid_a), store.open_run(artifacts, run_b, uid_b)
    lut = get_class_set(classes).lut

    def count(item: tuple[int, str]) -> dict | str:
        image_id, label = item
        try:
            truth = lut[read_label_ids(Path(root) / label)]
            outcomes = paired_outcomes(truth, run_a_opened.prediction(image_id), run_b_opened.prediction(image_id))
        except (ArtifactError, DatasetError, ValueError) as error:
            return f"image {image_id}: {error}"
        return {"id": image_id, **outcome_counts(outcomes)}

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counted = list(pool.map(count, images))
    rows = [row for row in counted if isinstance(row, dict)]
    frame = pd.DataFrame(rows, columns=["id", *intervals.OUTCOME_COUNTS]).astype("int64")
    return frame, tuple(row for row in counted if isinstance(row, str))


def outcomes(key: store.StoreKey, run_a, run_b) -> tuple[pd.DataFrame, list[str]]:
    """``_outcomes`` over the images both runs evaluated that the index has now (messages readable);
    ``run_a`` and ``run_b``: the pictures' ``RunRef`` of each (name, uid, class set)."""
    data = store.dataset(key)
    evaluated_b = set(store.per_image(key, run_b.name)["id"].dropna().astype(int))
    images = tuple((int(image_id), data.index[int(image_id)].label)
                   for image_id in store.per_image(key, run_a.name)["id"].dropna().astype(int)
                   if int(image_id) in evaluated_b and int(image_id) in data.index)
    frame, problems = _outcomes(run_a.artifacts, run_a.name, run_a.uid, run_b.name, run_b.uid, run_a.classes,
                                str(data.root), data.index.fingerprint(), tuple(sorted(images)))
    return frame, [store.readable(problem, key, data.root) for problem in problems]


def outcome_row(frame: pd.DataFrame, image_id: int) -> dict[str, int] | None:
    """An image's pixel counts of each outcome, from the table of ``outcomes``; None if not in it."""
    rows = frame[frame["id"] == int(image_id)]
    return None if rows.empty else {name: int(rows.iloc[0][name]) for name in intervals.OUTCOME_COUNTS}

