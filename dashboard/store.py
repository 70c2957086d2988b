"""What the dashboard reads: the run store and the dataset, through cached functions.

Every reader takes ``key = store_key()`` as its first argument: the key changes when a run is
published, removed or deployed (or the data root changes), so ``st.cache_data`` serves repeated
reruns from memory and a new run appears without restarting the app. Nothing here imports
TensorFlow: everything shown comes from the files a run leaves behind.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from training.data.cityscapes import DatasetError, read_label_ids
from training.data.dataset import Dataset, DataSettings
from training.runs.store import ArtifactError, artifacts_dir, deployed_run, get_run, list_runs, store_version
from training.runs.summary import run_summaries

DEFAULT_API_URL = "http://127.0.0.1:8000"
TRAIN_HINT = ("No trained run yet. `make demo` trains the demo model set (about 10 minutes on 2 cores); "
              "or train one config: "
              "`python -m training train configs/demo/simple_scratch_cce_v1_128x256.yaml`.")


def store_key() -> tuple:
    """Cheap to compute on every rerun; changes whenever the store or the data root does."""
    artifacts = artifacts_dir()
    return str(artifacts), store_version(artifacts), os.environ.get("CITYSCAPES_DATASET", "")


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

LEADERBOARD_COLUMNS = ["run", "model", "backbone", "loss_name", "augmentation", "size", "params",
                       "train_seconds", "val_miou", "miou", "miou_official", "inference_ms", "split",
                       "classes", "deployed"]


@st.cache_data(show_spinner=False)
def runs_table(key) -> pd.DataFrame:
    """One row per readable run, oldest first: what the leaderboard shows."""
    rows = [{**s, "backbone": s["backbone"] or "-", "size": "x".join(str(v) for v in s["image_size"] or [])}
            for s in run_summaries(Path(key[0])) if "error" not in s]
    return pd.DataFrame(rows, columns=LEADERBOARD_COLUMNS)


def require_runs() -> pd.DataFrame:
    """The runs table, or an explanation of how to train one (and the page stops there)."""
    table = runs_table(store_key())
    if table.empty:
        st.info(TRAIN_HINT)
        st.stop()
    return table


@st.cache_data(show_spinner=False)
def run_metrics(key, run: str) -> dict:
    return get_run(run, key[0]).metrics


@st.cache_data(show_spinner=False)
def run_config(key, run: str) -> dict:
    return get_run(run, key[0]).config


@st.cache_data(show_spinner=False)
def run_history(key, run: str) -> pd.DataFrame:
    return pd.DataFrame(get_run(run, key[0]).history())


@st.cache_data(show_spinner=False)
def per_image(key, run: str) -> pd.DataFrame:
    """per_image.csv: id, split, miou, pixel_accuracy, iou_<class> (NaN where absent)."""
    table = pd.DataFrame(get_run(run, key[0]).per_image())
    for column in table.columns:
        if column != "split":  # empty cells (a class absent from an image) become NaN
            table[column] = pd.to_numeric(table[column], errors="coerce")
    return table


@st.cache_data(show_spinner=False)
def confusion(key, run: str) -> np.ndarray:
    return get_run(run, key[0]).confusion()


@st.cache_data(show_spinner=False)
def per_image_confusion(key, run: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, N x K x K counts) in the same order."""
    run_obj = get_run(run, key[0])
    ids = np.array([int(row["id"]) for row in run_obj.per_image()], dtype=np.int64)
    return ids, run_obj.per_image_confusion()


@st.cache_data(show_spinner=False, max_entries=512)
def prediction(key, run: str, image_id: int) -> np.ndarray | None:
    """The class indices a run predicted for an image; None if it did not evaluate that image."""
    try:
        return get_run(run, key[0]).prediction(int(image_id))
    except ArtifactError:
        return None


# ---------------------------------------------------------------------------- dataset

def _data_settings(key) -> DataSettings:
    """The data of the runs: the deployed run's settings, else the first readable run's."""
    artifacts = Path(key[0])
    try:
        runs = [deployed_run(artifacts)] + list_runs(artifacts)
    except ArtifactError:
        runs = list_runs(artifacts)
    for run in runs:
        if run is None:
            continue
        try:
            return run.data_settings
        except ArtifactError:
            continue
    return DataSettings()


@st.cache_resource(show_spinner=False)
def dataset(key) -> Dataset:
    """The dataset the runs were evaluated on (shared, read-only)."""
    try:
        return _data_settings(key).open()
    except DatasetError as error:
        st.error(f"Dataset unavailable: {error}")
        st.stop()


@st.cache_data(show_spinner=False, max_entries=128)
def photo_and_truth(key, image_id: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo (H, W, 3) and its ground truth as class indices (``IGNORE_INDEX``: no label)."""
    data = dataset(key)
    photo, label_ids = data.read(int(image_id))
    return photo, data.truth(label_ids)


@st.cache_data(show_spinner=False)
def class_presence(key, split: str) -> pd.DataFrame:
    """Which classes each image of ``split`` contains (rows = ids, one bool column per class)."""
    data = dataset(key)
    entries = data.index.split(split)
    k = data.class_set.num_classes

    def present(entry):
        classes = data.class_set.lut[read_label_ids(data.root / entry.label, check_values=False)]
        return np.bincount(classes.ravel(), minlength=256)[:k] > 0

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        rows = list(pool.map(present, entries))
    frame = pd.DataFrame(rows or np.zeros((0, k), bool), columns=list(data.class_set.names))
    frame.index = [e.id for e in entries]
    return frame


def classes_present(key, image_id: int) -> list[str]:
    data = dataset(key)
    _, truth = photo_and_truth(key, image_id)
    return [data.class_set.names[c] for c in np.unique(truth) if c < data.class_set.num_classes]
