"""What the dashboard reads: the run store and the dataset, through cached functions.

Every reader takes ``key = store_key()`` as its first argument: the key changes when a run is
published, removed or deployed (or the data root changes), so ``st.cache_data`` serves repeated
reruns from memory and a new run appears without restarting the app. Nothing here imports
TensorFlow: everything shown comes from the files a run leaves behind.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import yaml

from training.artifacts import ArtifactError, artifacts_dir, deployed_run, get_run, list_runs, store_version
from training.cityscapes import DatasetError, read_label_ids, read_pair, resolve_data_root
from training.index import DatasetIndex, load_or_build_index
from training.labels import ClassSet, get_class_set

DEFAULT_API_URL = "http://127.0.0.1:8000"
TRAIN_HINT = ("No trained run yet. `make demo` trains the demo model set (about 10 minutes on 2 cores); "
              "or train one config: `python -m training train configs/demo/simple_scratch_cce_v1_128x256.yaml`.")


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

@st.cache_data(show_spinner=False)
def runs_table(key) -> pd.DataFrame:
    """One row per run, oldest first: what the leaderboard shows."""
    artifacts = Path(key[0])
    try:
        deployed = deployed_run(artifacts)
    except ArtifactError:
        deployed = None
    rows = []
    for run in list_runs(artifacts):
        try:
            m = run.metrics
        except ArtifactError:
            continue
        rows.append({
            "run": run.name, "model": m.get("model"), "backbone": m.get("backbone") or "-",
            "loss": m.get("loss_name"), "augmentation": m.get("augmentation"),
            "size": "x".join(str(v) for v in m.get("image_size", [])), "params": m.get("params"),
            "train_seconds": m.get("train_seconds"), "val_miou": m.get("val_miou"),
            "miou": m.get("miou"), "miou_official": m.get("miou_official"),
            "inference_ms": m.get("inference_ms"), "split": m.get("split"), "classes": m.get("classes"),
            "deployed": bool(deployed and deployed.name == run.name),
        })
    columns = ["run", "model", "backbone", "loss", "augmentation", "size", "params", "train_seconds",
               "val_miou", "miou", "miou_official", "inference_ms", "split", "classes", "deployed"]
    return pd.DataFrame(rows, columns=columns)


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
    return yaml.safe_load(get_run(run, key[0]).config_text)


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

@dataclass(frozen=True)
class Dataset:
    root: Path
    index: DatasetIndex
    class_set: ClassSet


def _data_settings(key) -> tuple[str | None, str | None, str]:
    """Data root, index file and class set of the runs (the deployed one first)."""
    artifacts = Path(key[0])
    try:
        runs = [deployed_run(artifacts)] + list_runs(artifacts)
    except ArtifactError:
        runs = list_runs(artifacts)
    for run in runs:
        if run is None:
            continue
        try:
            data = yaml.safe_load(run.config_text)["data"]
        except (ArtifactError, yaml.YAMLError, KeyError, TypeError):
            continue
        if data.get("root") and not Path(data["root"]).is_dir():
            continue  # trained elsewhere: fall back to $CITYSCAPES_DATASET / the embedded data
        return data.get("root"), data.get("index"), data.get("classes", "categories8")
    return None, None, "categories8"


@st.cache_resource(show_spinner=False)
def dataset(key) -> Dataset:
    """The dataset the runs were evaluated on (shared, read-only)."""
    root_setting, index_file, classes = _data_settings(key)
    try:
        root = resolve_data_root(root_setting)
        index = load_or_build_index(root, index_file, write=False, report=lambda message: None)
    except DatasetError as error:
        st.error(f"Dataset unavailable: {error}")
        st.stop()
    return Dataset(root, index, get_class_set(classes))


@st.cache_data(show_spinner=False, max_entries=128)
def photo_and_truth(key, image_id: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo (H, W, 3) and its ground truth as class indices (255 = ignore)."""
    data = dataset(key)
    entry = data.index[int(image_id)]
    photo, label_ids = read_pair(data.root, entry.image, entry.label)
    return photo, data.class_set.lut[label_ids]


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
