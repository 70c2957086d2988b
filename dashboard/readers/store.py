"""What the dashboard reads: the run store and the dataset, through cached functions.

Identities, never names alone. A run is read by its ``uid`` (a run replaced under the same name
is another run, with other numbers), an image by the index's fingerprint and its own files (a
rebuilt index may give an id to another file). ``store_key()`` is recomputed on every rerun from
``stat`` calls and a cached read of the runs' configs: it changes when a run is published,
removed, replaced or deployed, when an index file the runs read is rewritten (``python -m
training data index --rebuild``) or ``$CITYSCAPES_DATASET`` changes. The tables of runs are
cached by it; the readers of a run's files by (store, name, uid), so publishing a run leaves the
others' cached tables alone. Photos, labels and predictions are not read here but in
``dashboard.pictures.images``, which keeps them at display size in a cache bounded in bytes.

A damaged run never reaches a page: ``runs_table`` holds the whole runs (``training.runs.health``),
``damaged_runs`` the others with their reasons. Messages never show an absolute path. Readers
return values or raise (``ArtifactError``, ``DatasetError``): what a page then says is
``dashboard.sections.page``'s. Nothing here imports TensorFlow: everything shown comes from the
files a run leaves behind.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.views.leaderboard import runs_frame
from training.data.cityscapes import DatasetError, read_label_ids
from training.data.dataset import Dataset, DataSettings
from training.data.index import DatasetIndex
from training.data.labels import CLASS_SET_NAMES, get_class_set
from training.evaluation.shares import class_shares as shares_of
from training.evaluation.shares import truth_pixels
from training.evaluation.significance import has_confusions, run_confusions
from training.evaluation.variants import POOLED, miou, variant
from training.files import file_stamp
from training.runs.deployment import deployed_run
from training.runs.layout import ArtifactError, artifacts_dir
from training.runs.reader import Run, get_run, list_runs, store_version
from training.runs.summary import run_summaries

HOW_TO_TRAIN = ("`make demo` trains the demo model set (about 10 minutes on 2 cores); or train one config: "
                "`python -m training train configs/demo/simple_scratch_cce_v1_128x256.yaml`.")
TRAIN_HINT = "No trained run yet. " + HOW_TO_TRAIN
STORE_NAME, DATA_NAME = "the run store", "the dataset folder"  # what messages say instead of paths


class StoreKey(NamedTuple):
    """Changes whenever what the pages show may have: the store, or an index of the data."""

    artifacts: str
    version: tuple  # training.runs.reader.store_version
    data: tuple  # $CITYSCAPES_DATASET, and (index file, stamp) of every index the runs read


@st.cache_data(show_spinner=False)
def _index_files(artifacts: str, version: tuple, environment: str) -> tuple[str, ...]:
    """The index file of every run's data (those that can be found on this machine)."""
    files = []
    for run in list_runs(artifacts):
        try:
            settings = run.data_settings
            path = str(settings.index_file(settings.resolve_root()))
        except (ArtifactError, DatasetError):
            continue
        if path not in files:
            files.append(path)
    return tuple(files)


def store_key() -> StoreKey:
    """Cheap to compute on every rerun (``stat`` calls; the runs' configs are read once per
    store version)."""
    artifacts = str(artifacts_dir())
    version = store_version(artifacts)
    environment = os.environ.get("CITYSCAPES_DATASET", "")
    files = _index_files(artifacts, version, environment)
    return StoreKey(artifacts, version, (environment, tuple((path, file_stamp(path)) for path in files)))


def readable(error: Exception | str, key: StoreKey | None = None, data_root: str | Path | None = None) -> str:
    """A message for people: the run store's and the dataset's folders named, not spelled out."""
    message = str(error)
    artifacts = key.artifacts if key else str(artifacts_dir())
    folders = {artifacts: STORE_NAME, str(Path(artifacts).resolve()): STORE_NAME}
    for data in (os.environ.get("CITYSCAPES_DATASET"), data_root):
        if data:
            folders.update({str(data): DATA_NAME, str(Path(data).resolve()): DATA_NAME})
    for folder, name in sorted(folders.items(), key=lambda item: -len(item[0])):  # longest first
        if folder not in ("", ".", "/"):
            message = message.replace(folder, name)
    return message


# ---------------------------------------------------------------------------- runs

@st.cache_data(show_spinner=False)
def _summaries(key: StoreKey) -> list[dict]:
    """``run_summaries``: a summary per whole run, ``{"run", "error"}`` per damaged one."""
    return run_summaries(Path(key.artifacts))


@st.cache_data(show_spinner=False)
def runs_table(key: StoreKey) -> pd.DataFrame:
    """One row per whole run, oldest first: what the leaderboard shows (``uid`` included)."""
    return runs_frame(_summaries(key))


def latency_texts(key: StoreKey) -> dict[str, dict]:
    """Each whole run's latency headline (``training.runs.latency``): ``latency_how`` (a sentence) and
    ``latency_measured`` (a few words), "" where the run has none."""
    return {s["run"]: {k: s.get(k) or "" for k in ("latency_how", "latency_measured")}
            for s in _summaries(key) if "error" not in s}


def damaged_runs(key: StoreKey) -> list[tuple[str, str]]:
    """(run, reason) of every run that cannot be shown, oldest first."""
    return [(s["run"], readable(s["error"], key)) for s in _summaries(key) if "error" in s]


@st.cache_data(show_spinner=False)
def deployment(key: StoreKey) -> tuple[str | None, str | None]:
    """(the deployed run's name, what is wrong with the deployment): (None, None) when nothing is
    deployed; a problem when deployed.json is damaged or names a run that is missing or damaged."""
    try:
        run = deployed_run(key.artifacts)
    except ArtifactError as error:  # deployed.json is damaged, or names a run that is not there
        message = readable(error, key)
        return None, message if message.startswith("deployed.json") else f"deployed.json: {message}"
    if run is None:
        return None, None
    reason = dict(damaged_runs(key)).get(run.name)
    if reason is not None:
        return run.name, f"The deployed run {run.name} is damaged: {reason}"
    return run.name, None


def store_problems(key: StoreKey) -> list[str]:
    """One line (markdown) per thing the pages leave out: damaged runs, a damaged deployment."""
    deployed, problem = deployment(key)
    damaged = damaged_runs(key)
    lines = [f"**{run}**" + (" (the deployed run)" if run == deployed else "") + f": {reason}"
             for run, reason in damaged]
    if problem and deployed not in dict(damaged):  # a damaged deployed run is named above
        lines.append(problem)
    return lines


def run_uid(key: StoreKey, run: str) -> str:
    """The uid of the whole run called ``run`` now; ArtifactError if there is none."""
    uids = _uids(key)
    if run not in uids:
        raise ArtifactError(f"run {run} is not a whole run of {STORE_NAME}")
    return uids[run]


@st.cache_data(show_spinner=False)
def _uids(key: StoreKey) -> dict[str, str]:
    return {s["run"]: s["uid"] for s in _summaries(key) if "error" not in s}


def run_classes(key: StoreKey) -> dict[str, str]:
    """The class set of every whole run (from its metrics.json)."""
    table = runs_table(key)
    return {run: str(classes) for run, classes in zip(table["run"], table["classes"], strict=True)}


def open_run(artifacts: str, run: str, uid: str) -> Run:
    """The run called ``run``, which must still be the one with ``uid``."""
    opened = get_run(run, artifacts)
    if opened.uid != uid:
        raise ArtifactError(f"run {run} was replaced while the page read it: reload the page")
    return opened


@st.cache_data(show_spinner=False, max_entries=256)
def _metrics(artifacts: str, run: str, uid: str) -> dict:
    return open_run(artifacts, run, uid).metrics


@st.cache_data(show_spinner=False, max_entries=64)
def _history(artifacts: str, run: str, uid: str) -> pd.DataFrame:
    table = pd.DataFrame(open_run(artifacts, run, uid).history())
    table = table.apply(lambda column: pd.to_numeric(column, errors="coerce"))
    return table.dropna(subset=["epoch"]) if "epoch" in table else table.iloc[0:0]


@st.cache_data(show_spinner=False, max_entries=64)
def _per_image(artifacts: str, run: str, uid: str) -> pd.DataFrame:
    table = pd.DataFrame(open_run(artifacts, run, uid).per_image())
    for column in table.columns:
        if column != "split":  # empty cells (a class absent from an image) become NaN
            table[column] = pd.to_numeric(table[column], errors="coerce")
    return table


@st.cache_data(show_spinner=False, max_entries=64)
def _confusion(artifacts: str, run: str, uid: str) -> np.ndarray:
    return open_run(artifacts, run, uid).confusion()


@st.cache_data(show_spinner=False, max_entries=32)
def _per_image_confusion(artifacts: str, run: str, uid: str) -> tuple[np.ndarray, np.ndarray]:
    ids = _per_image(artifacts, run, uid)["id"]
    matrices = open_run(artifacts, run, uid).per_image_confusion()
    return ids.fillna(-1).to_numpy(dtype=np.int64), matrices


def run_metrics(key: StoreKey, run: str) -> dict:
    return _metrics(key.artifacts, run, run_uid(key, run))


def run_history(key: StoreKey, run: str) -> pd.DataFrame:
    """history.csv as numbers (rows without an epoch dropped: empty when there is none)."""
    return _history(key.artifacts, run, run_uid(key, run))


def per_image(key: StoreKey, run: str) -> pd.DataFrame:
    """per_image.csv: id, split, miou, pixel_accuracy, iou_<class> (NaN where absent)."""
    return _per_image(key.artifacts, run, run_uid(key, run))


def confusion(key: StoreKey, run: str) -> np.ndarray:
    return _confusion(key.artifacts, run, run_uid(key, run))


def per_image_confusion(key: StoreKey, run: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, N x K x K counts) in the same order."""
    return _per_image_confusion(key.artifacts, run, run_uid(key, run))


@st.cache_data(show_spinner=False, max_entries=256)
def _miou(artifacts: str, run: str, uid: str, key: str, averaging: str, ids: tuple[int, ...] | None) -> float:
    opened = open_run(artifacts, run, uid)
    which = variant(key)
    if averaging == POOLED and ids is None:
        value = opened.metrics.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan
    class_set = get_class_set(opened.metrics.get("classes"))
    if not has_confusions(opened, which, class_set):
        return math.nan  # stored before its per-image confusions: said where it is shown
    stack = run_confusions(opened, which, class_set)
    if ids is not None:
        rows = {row.get("id"): number for number, row in enumerate(opened.per_image())}
        stack = stack[[rows[i] for i in ids if i in rows]]
    return miou(np.asarray(stack), class_set, which, averaging)


def run_miou(key: StoreKey, run: str, which: str, averaging: str = POOLED,
             ids: tuple[int, ...] | None = None) -> float:
    """The run's ``which`` mIoU ("miou", "miou_official"; ``training.evaluation.variants``) averaged
    ``averaging``, over the images ``ids`` (None: all it evaluated; pooled, then as its metrics.json
    says it) from its per-image confusions: NaN for a run stored before the ones it needs, or whose
    class set is unknown."""
    try:
        return _miou(key.artifacts, run, run_uid(key, run), which, averaging,
                     None if ids is None else tuple(int(i) for i in ids))
    except (ArtifactError, ValueError, KeyError):
        return math.nan


# ---------------------------------------------------------------------------- dataset

@st.cache_data(show_spinner=False)
def data_settings(key: StoreKey) -> DataSettings:
    """The data of the pages: the deployed run's settings if it is whole, else the first whole
    run's, else the first run's that has them, else the defaults."""
    table = runs_table(key)
    deployed = deployment(key)[0]
    names = ([deployed] if deployed in set(table["run"]) else []) + list(table["run"])
    runs = [get_run(name, key.artifacts) for name in names] + list_runs(key.artifacts)
    for run in runs:
        try:
            settings = run.data_settings
        except ArtifactError:
            continue
        return settings if known_class_set(settings.classes) else replace(settings, classes=DataSettings.classes)
    return DataSettings()


@st.cache_resource(show_spinner=False, max_entries=4)
def _open_index(root: str | None, index: str | None, data: tuple) -> tuple[Path, DatasetIndex]:
    """The dataset's root and index (shared, read-only). ``data`` (the key's stamps of the index
    files) reopens an index that was rewritten."""
    opened = DataSettings(root, index).open()
    return opened.root, opened.index


def dataset(key: StoreKey, classes: str | None = None) -> Dataset:
    """The dataset the runs were evaluated on, its labels read in ``classes`` (by default the
    class set of ``data_settings``).

    Raises:
        DatasetError: the dataset cannot be opened (the message names no absolute path).
    """
    settings = data_settings(key)
    try:
        root, index = _open_index(settings.root, settings.index, key.data)
    except DatasetError as error:
        raise DatasetError(readable(error, key)) from None
    return Dataset(root, index, get_class_set(classes or settings.classes))


def known_class_set(classes: str) -> bool:
    return classes in CLASS_SET_NAMES


@st.cache_data(show_spinner=False, max_entries=16)
def _class_shares(root: str, fingerprint: str, split: str, classes: str,
                  labels: tuple[tuple[int, str], ...]) -> pd.DataFrame:
    class_set = get_class_set(classes)
    k = class_set.num_classes

    def shares(label: str) -> np.ndarray:
        try:
            label_ids = read_label_ids(Path(root) / label, check_values=False)
        except DatasetError:
            return np.zeros(k, dtype=np.float32)  # an unreadable label holds no class (the image says why)
        return shares_of(truth_pixels(label_ids, class_set)).astype(np.float32)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        rows = list(pool.map(shares, [label for _, label in labels]))
    frame = pd.DataFrame(rows or np.zeros((0, k), np.float32), columns=list(class_set.names))
    frame.index = [image_id for image_id, _ in labels]
    return frame


def class_shares(key: StoreKey, split: str, classes: str | None = None) -> pd.DataFrame:
    """Each class's share of each image of ``split`` (rows = ids, a column per class of ``classes``:
    its pixels over the image's counted pixels, ``training.evaluation.shares``), counted once per
    split."""
    data = dataset(key, classes)
    labels = tuple((entry.id, entry.label) for entry in data.index.split(split))
    return _class_shares(str(data.root), data.index.fingerprint(), split, data.class_set.name, labels)
