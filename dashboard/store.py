"""What the dashboard reads: the run store and the dataset, through cached functions.

Identities, never names alone. A run is read by its ``uid`` (a run replaced under the same name
is another run, with other numbers), an image by the index's fingerprint and its own files (a
rebuilt index may give an id to another file). ``store_key()`` is recomputed on every rerun from
``stat`` calls and a cached read of the runs' configs: it changes when a run is published,
removed, replaced or deployed, when an index file the runs read is rewritten (``python -m
training data index --rebuild``) or ``$CITYSCAPES_DATASET`` changes. The tables of runs are
cached by it; the readers of a run's files by (store, name, uid), so publishing a run leaves the
others' cached tables alone. Photos, labels and predictions are not read here but in
``dashboard.pictures``, which keeps them at display size in a cache bounded in bytes.

A damaged run never reaches a page: ``runs_table`` holds the whole runs (``training.runs.health``),
``damaged_runs`` the others with their reasons. Messages never show an absolute path.
Nothing here imports TensorFlow: everything shown comes from the files a run leaves behind.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import imported_runs
from training.data.cityscapes import DatasetError, read_label_ids
from training.data.dataset import Dataset, DataSettings
from training.data.index import DatasetIndex
from training.data.labels import CLASS_SET_NAMES, get_class_set
from training.files import file_stamp
from training.runs.store import ArtifactError, Run, artifacts_dir, deployed_run, get_run, list_runs, store_version
from training.runs.summary import coverage_text, run_summaries

DEFAULT_API_URL = "http://127.0.0.1:8000"
HOW_TO_TRAIN = ("`make demo` trains the demo model set (about 10 minutes on 2 cores); or train one config: "
                "`python -m training train configs/demo/simple_scratch_cce_v1_128x256.yaml`.")
TRAIN_HINT = "No trained run yet. " + HOW_TO_TRAIN
STORE_NAME, DATA_NAME = "the run store", "the dataset folder"  # what messages say instead of paths


class StoreKey(NamedTuple):
    """Changes whenever what the pages show may have: the store, or an index of the data."""

    artifacts: str
    version: tuple  # training.runs.store.store_version
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


def api_base_url() -> str:
    """``$SEGMENTATION_API_URL``, else ``api_url`` in Streamlit secrets, else the local default."""
    url = os.environ.get("SEGMENTATION_API_URL")
    if not url:
        try:
            url = st.secrets.get("api_url")
        except (FileNotFoundError, KeyError, st.errors.StreamlitSecretNotFoundError):
            url = None
    return (url or DEFAULT_API_URL).rstrip("/")


# ---------------------------------------------------------------------------- runs

LEADERBOARD_COLUMNS = ["run", "uid", "source", "model", "backbone", "loss_name", "augmentation", "size", "params",
                       "train_seconds", "val_miou", "miou", "miou_official", "inference_ms", "split",
                       "classes", "coverage", "deployed"]
TRAINING_TEXT = ("backbone", "loss_name", "augmentation")  # what only a run trained here has


@st.cache_data(show_spinner=False)
def _summaries(key: StoreKey) -> list[dict]:
    """``run_summaries``: a summary per whole run, ``{"run", "error"}`` per damaged one."""
    return run_summaries(Path(key.artifacts))


def _leaderboard_row(summary: dict) -> dict:
    """A run summary as the runs table holds it. An imported run has no training: its training
    columns are empty (not "-", which says a trained run has none, nor "None"); ``coverage`` is
    "60 of 100" for a run scored on part of its split, else ""."""
    source = imported_runs.source(summary["source"])
    imported = source == imported_runs.IMPORTED
    blank = "" if imported else "-"
    row = {**summary, "source": source, "classes": str(summary["classes"]),
           "backbone": summary["backbone"] or blank, "coverage": coverage_text(summary),
           "size": "x".join(map(str, summary["image_size"])) if isinstance(summary["image_size"], list) else blank}
    if imported:
        row.update({column: row[column] or "" for column in TRAINING_TEXT})
    return row


@st.cache_data(show_spinner=False)
def runs_table(key: StoreKey) -> pd.DataFrame:
    """One row per whole run, oldest first: what the leaderboard shows (``uid`` included)."""
    rows = [_leaderboard_row(s) for s in _summaries(key) if "error" not in s]
    table = pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)
    for column in ("params", "train_seconds", "val_miou", "miou", "miou_official", "inference_ms"):
        table[column] = pd.to_numeric(table[column], errors="coerce")  # a damaged number: NaN, shown "-"
    return table


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


def problems_sidebar() -> None:
    """The store's problems in the sidebar (every page but the Overview, which shows them in full)."""
    problems = store_problems(store_key())
    if problems:
        st.sidebar.warning("**Left out: the run store has damage**\n\n" + "\n".join(f"- {p}" for p in problems))


def require_runs() -> pd.DataFrame:
    """The table of whole runs, or an explanation (and the page stops there)."""
    key = store_key()
    table = runs_table(key)
    if table.empty:
        if damaged_runs(key):
            st.info("No run of the store can be shown: every run is damaged (see the damaged runs). "
                    + HOW_TO_TRAIN)
        else:
            st.info(TRAIN_HINT)
        st.stop()
    return table


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
    class set of ``data_settings``). The page stops with an explanation if it is unavailable."""
    settings = data_settings(key)
    try:
        root, index = _open_index(settings.root, settings.index, key.data)
    except DatasetError as error:
        st.error(f"Dataset unavailable: {readable(error, key)}")
        st.stop()
    return Dataset(root, index, get_class_set(classes or settings.classes))


def known_class_set(classes: str) -> bool:
    return classes in CLASS_SET_NAMES


@st.cache_data(show_spinner=False, max_entries=16)
def _class_shares(root: str, fingerprint: str, split: str, classes: str,
                  labels: tuple[tuple[int, str], ...]) -> pd.DataFrame:
    class_set = get_class_set(classes)
    k = class_set.num_classes

    def shares(label: str):
        try:
            label_ids = read_label_ids(Path(root) / label, check_values=False)
        except DatasetError:
            return np.zeros(k, dtype=np.float32)  # an unreadable label holds no class (the image says why)
        # count the 256 labelIds, then fold the counts through the class set: no full-size class map
        # (2048x1024: ~15 ms a label instead of ~45 ms through class_set.lut[label_ids])
        counts = np.bincount(class_set.lut, weights=np.bincount(label_ids.ravel(), minlength=256), minlength=256)
        return (counts[:k] / max(label_ids.size, 1)).astype(np.float32)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        rows = list(pool.map(shares, [label for _, label in labels]))
    frame = pd.DataFrame(rows or np.zeros((0, k), np.float32), columns=list(class_set.names))
    frame.index = [image_id for image_id, _ in labels]
    return frame


def class_shares(key: StoreKey, split: str, classes: str | None = None) -> pd.DataFrame:
    """Each class's share of each image of ``split`` (rows = ids, a column per class of
    ``classes``: its pixels over all the image's pixels, 0 to 1), counted once per split."""
    data = dataset(key, classes)
    labels = tuple((entry.id, entry.label) for entry in data.index.split(split))
    return _class_shares(str(data.root), data.index.fingerprint(), split, data.class_set.name, labels)


def class_presence(key: StoreKey, split: str, classes: str | None = None) -> pd.DataFrame:
    """Which classes of ``classes`` each image of ``split`` contains (rows = ids, a bool column
    per class)."""
    return class_shares(key, split, classes) > 0
