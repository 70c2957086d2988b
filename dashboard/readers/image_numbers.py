"""The Gallery's numbers, read from the store and cached: one row per image of a split, a column for
every number the store has of it (``dashboard.views.image_table`` shapes it): the chosen runs'
per-image numbers, their anatomy where they have one, and the ground truth's class shares from the
first run's per-image confusions. Notes say which runs' numbers are left out or partial.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st

import dashboard.readers.store as store
from dashboard.views.image_table import image_table, truth_shares
from dashboard.views.run_names import evaluated_on_another_index
from training.data.labels import get_class_set
from training.files import file_stamp
from training.runs.anatomy import ANATOMY, PER_IMAGE_ANATOMY
from training.runs.layout import RUNS, ArtifactError


class GalleryTable(NamedTuple):
    """The table of a split for chosen runs (without tags: they change without the store), and a
    note per run whose numbers are left out or partial (markdown, no path)."""

    table: pd.DataFrame
    notes: tuple[str, ...]
    share_run: str | None  # the run whose evaluation gives the class shares


@st.cache_data(show_spinner=False, max_entries=64)
def _anatomy_rows(artifacts: str, run: str, uid: str, stamp: tuple | None) -> pd.DataFrame | str:
    """per_image_anatomy.csv as numbers, or why it cannot be read (``stamp``: the file's, so a run
    given its anatomy later is read again)."""
    try:
        frame = pd.DataFrame(store.open_run(artifacts, run, uid).per_image_anatomy())
    except (ArtifactError, OSError) as error:
        return store.readable(error, store.StoreKey(artifacts, (), ())).removeprefix(f"run {run}: ")
    if "id" not in frame:
        return f"{PER_IMAGE_ANATOMY} has no id column"
    return frame.apply(lambda column: pd.to_numeric(column, errors="coerce"))


@st.cache_data(show_spinner=False, max_entries=32)
def _shares(artifacts: str, run: str, uid: str, classes: str) -> pd.DataFrame:
    """The class shares of the ground truth of every image the run evaluated (its per-image
    confusion matrices, in per_image.csv order)."""
    opened = store.open_run(artifacts, run, uid)
    ids = [row.get("id") if isinstance(row.get("id"), int) else -1 for row in opened.per_image()]
    matrices = opened.per_image_confusion(mmap=True)
    if len(ids) != len(matrices):
        raise ArtifactError(f"run {run}: per_image_confusion.npy has {len(matrices)} images, "
                            f"per_image.csv {len(ids)}")
    return truth_shares(np.asarray(ids, dtype=np.int64), matrices, get_class_set(classes).names)


def _anatomy(key: store.StoreKey, run: str) -> pd.DataFrame | str | None:
    """A run's per-image anatomy, why it cannot be shown, or None (the run has none)."""
    # anatomy.json is the switch: it names the companion files ("-<hex>" ones after a --replace)
    folder = Path(key.artifacts) / RUNS / run
    switch = file_stamp(folder / ANATOMY)
    if switch is None:
        return None
    named = store.open_run(key.artifacts, run, store.run_uid(key, run)).anatomy_file("per_image")
    stamp = (switch, file_stamp(folder / named))
    return _anatomy_rows(key.artifacts, run, store.run_uid(key, run), stamp)


def gallery_table(key: store.StoreKey, split: str, runs: Sequence[str]) -> GalleryTable:
    """The gallery's table of ``split`` for ``runs`` (whole runs of the store), tags empty."""
    data = store.dataset(key)
    entries = [(entry.id, entry.city, entry.stem) for entry in data.index.split(split)]
    fingerprint = data.index.fingerprint()
    classes_of = store.run_classes(key)
    per_image, anatomy, notes = {}, {}, []
    for run in runs:
        try:
            if evaluated_on_another_index(store.run_metrics(key, run), fingerprint):
                notes.append(f"**{run}** was evaluated on another index of the dataset: its image ids may name "
                             "other pictures, so its numbers are left out.")
                continue
            per_image[run] = store.per_image(key, run)
        except ArtifactError as error:
            notes.append(f"**{run}**: {store.readable(error, key).removeprefix(f'run {run}: ')}")
            continue
        found = _anatomy(key, run)
        if isinstance(found, str):
            notes.append(f"**{run}**: no anatomy columns ({found}).")
        elif found is not None:
            anatomy[run] = found
    shares, share_run = None, None
    for run in per_image:
        if not store.known_class_set(classes_of[run]):
            continue
        try:
            shares = _shares(key.artifacts, run, store.run_uid(key, run), classes_of[run])
            share_run = run
        except ArtifactError as error:
            notes.append(f"**{run}**: no class shares ({store.readable(error, key).removeprefix(f'run {run}: ')}).")
        break
    return GalleryTable(image_table(entries, per_image, shares, anatomy), tuple(notes), share_run)
