"""What the Drive page reads: the dataset's sequences, the runs' predictions of them and their
temporal consistency (``training.runs.sequences``), and the videos rendered from them.

A run's predictions of a sequence are known by the run's uid and the stamp of the sequence's
temporal.json (written last, renamed into place with its folder): predicting a sequence again
changes what is read, and which video is shown. Videos are rendered on demand
(``training.viz_video.render_video``) into ``<artifacts>/.videos/<hash>.mp4`` and kept there: a
second viewer of the same drive, runs and settings waits for nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st

import dashboard.readers.store as store
from dashboard.views.drives import video_key
from training.data.cityscapes import read_image
from training.data.labels import get_class_set
from training.data.sequences import sequences_path_for
from training.files import file_stamp
from training.runs.layout import ArtifactError
from training.runs.reader import get_run
from training.runs.sequences import (
    TEMPORAL,
    SequencePredictions,
    dataset_sequences,
    overall_temporal_consistency,
    read_sequence_temporal,
    read_temporal,
    sequence_dir,
    sequence_names,
    sequence_prediction,
)

VIDEOS = ".videos"  # under the run store
VIDEO_WIDTH = 1024


# ---------------------------------------------------------------------------- the dataset's sequences

def sequences(key: store.StoreKey) -> tuple[list, list[str]]:
    """The sequences of the pages' dataset (``store.dataset``) and the problems found with them."""
    dataset = store.dataset(key)
    index_file = store.data_settings(key).index_file(dataset.root)
    stamps = (file_stamp(sequences_path_for(index_file)), file_stamp(dataset.root / "leftImg8bit_sequence"),
              file_stamp(dataset.root / "leftImg8bit" / "demoVideo"))
    return _sequences(str(dataset.root), str(index_file), dataset.index.fingerprint(), stamps, key)


@st.cache_data(show_spinner=False, max_entries=8)
def _sequences(root: str, index_file: str, fingerprint: str, stamps: tuple, _key: store.StoreKey):
    dataset = store.dataset(_key)
    return dataset_sequences(Path(root), Path(index_file), dataset.index)


# ---------------------------------------------------------------------------- a run's predictions

def _stamp(key: store.StoreKey, run: str, name: str) -> tuple | None:
    try:
        return file_stamp(sequence_dir(get_run(run, key.artifacts), name) / TEMPORAL)
    except ArtifactError:
        return None


def runs_with(key: store.StoreKey, runs: list[str], name: str) -> list[str]:
    """Those of ``runs`` that have predictions of sequence ``name`` (in their order)."""
    return [run for run in runs if _stamp(key, run, name) is not None]


def temporal(key: store.StoreKey, run: str, name: str) -> dict:
    """The run's temporal.json of sequence ``name``; ArtifactError naming the file when damaged."""
    return _temporal(key.artifacts, run, store.run_uid(key, run), name, _stamp(key, run, name))


@st.cache_data(show_spinner=False, max_entries=128)
def _temporal(artifacts: str, run: str, uid: str, name: str, stamp: tuple | None) -> dict:
    return read_sequence_temporal(store.open_run(artifacts, run, uid), name)


def temporal_consistency(key: store.StoreKey, run: str) -> float | None:
    """The run's temporal consistency over every sequence it predicted (pairs-weighted, for the
    leaderboard's TC column); None when it predicted none or its files are damaged."""
    try:
        opened = store.open_run(key.artifacts, run, store.run_uid(key, run))
        stamps = tuple((name, file_stamp(sequence_dir(opened, name) / TEMPORAL)) for name in sequence_names(opened))
        return _overall(key.artifacts, run, opened.uid, stamps)
    except ArtifactError:
        return None


@st.cache_data(show_spinner=False, max_entries=256)
def _overall(artifacts: str, run: str, uid: str, stamps: tuple) -> float | None:
    return overall_temporal_consistency(read_temporal(store.open_run(artifacts, run, uid)))


def frame_prediction(key: store.StoreKey, run: str, name: str, frame: int) -> np.ndarray:
    """``(H, W)`` class indices the run predicted for one frame of sequence ``name``."""
    return _frame_prediction(key.artifacts, run, store.run_uid(key, run), name, int(frame), _stamp(key, run, name))


@st.cache_data(show_spinner=False, max_entries=64)
def _frame_prediction(artifacts: str, run: str, uid: str, name: str, frame: int, stamp: tuple | None) -> np.ndarray:
    return sequence_prediction(store.open_run(artifacts, run, uid), name, frame)


@st.cache_data(show_spinner=False, max_entries=32)
def frame_photo(path: str, stamp: tuple | None) -> np.ndarray:
    """A frame's photo ``(H, W, 3)`` (``DatasetError`` naming the file when it cannot be read)."""
    return read_image(path)


# ---------------------------------------------------------------------------- the video

def video_path(key: store.StoreKey, sequence, runs: list[str], fps: float, layout: str,
               width: int = VIDEO_WIDTH) -> Path:
    """Where the video of ``sequence`` with ``runs`` is (or will be) kept."""
    identities = [(run, store.run_uid(key, run), _stamp(key, run, sequence.name)) for run in runs]
    return Path(key.artifacts) / VIDEOS / f"{video_key(sequence.name, identities, fps, layout, width)}.mp4"


def render(key: store.StoreKey, sequence, runs: list[str], classes: str, fps: float, layout: str,
           progress: Callable[[int, int], None] | None = None, width: int = VIDEO_WIDTH) -> Path:
    """The video of ``sequence`` with ``runs`` side by side: the one kept on disk, else rendered now
    (``progress(done, total)`` after each frame).

    Raises:
        ArtifactError: a run's prediction of a frame is missing or damaged (named).
        DatasetError: a photo cannot be read (named).
    """
    from training.viz_video import render_video

    out = video_path(key, sequence, runs, fps, layout, width)
    if out.is_file():
        return out
    dataset = store.dataset(key)
    predictions = {run: SequencePredictions(store.open_run(key.artifacts, run, store.run_uid(key, run)), sequence.name,
                                     sequence.frame_numbers) for run in runs}
    render_video(sequence.frame_paths(dataset.root), predictions, get_class_set(classes), out, fps, layout, width,
                 progress=progress)
    return out
