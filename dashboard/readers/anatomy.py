"""Cached reads of the runs' error anatomy (``anatomy.json``, ``instances.csv``, ``frame_errors.npy``).

Keyed like ``dashboard.readers.store``'s readers: by (store, name, uid), so a run replaced under its name
is read again, and by the stamp of the run's anatomy.json that ``store_version`` holds: a run
given its anatomy (``python -m training anatomy RUN``, which writes anatomy.json last) keeps its
uid, and is read again without touching the other runs' cached files. Each reader returns the
value or the reason it cannot be shown (a message naming the file, never a path): a damaged file
is a note for its run, never an exception on a page, and its other files are still shown.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st

import dashboard.readers.store as store
import dashboard.views.anatomy_tables as anatomy
from dashboard.views.numbers import as_number
from training.evaluation.anatomy_report import check_frame_counts
from training.runs.layout import ANATOMY, RUNS, ArtifactError, artifacts_dir


class Read(NamedTuple):
    """A file of a run read for a page: ``value``, or ``problem`` (why not; then value is None)."""

    value: object = None
    problem: str | None = None


def _read(artifacts: str, run: str, uid: str, reader) -> Read:
    """``reader(run)``, or why it cannot be shown (a returned value: st.cache_data never caches an
    exception)."""
    try:
        return Read(reader(store.open_run(artifacts, run, uid)))
    except (ArtifactError, ValueError, OSError) as error:  # ValueError: AnatomyProblem, undecodable text
        message = store.readable(error, store.StoreKey(artifacts, (), ()))
        return Read(problem=message.removeprefix(f"run {run}: "))


@st.cache_data(show_spinner=False, max_entries=256)
def _document(artifacts: str, run: str, uid: str, stamp: tuple) -> Read:
    return _read(artifacts, run, uid, lambda opened: anatomy.check_document(opened.anatomy()))


@st.cache_data(show_spinner=False, max_entries=64)
def _instances(artifacts: str, run: str, uid: str, stamp: tuple) -> Read:
    return _read(artifacts, run, uid, lambda opened: anatomy.instances_frame(opened.instances()))


@st.cache_data(show_spinner=False, max_entries=64)
def _frame_errors(artifacts: str, run: str, uid: str, stamp: tuple) -> Read:
    return _read(artifacts, run, uid, lambda opened: check_frame_counts(opened.frame_errors()))


def _run_stamp(key: store.StoreKey, run: str) -> tuple:
    """The run's entry of ``store_version`` (its name, metrics.json's and anatomy.json's stamps)."""
    stamps = key.version[0] if key.version else ()
    return next((tuple(entry) for entry in stamps if entry and entry[0] == run), (run,))


def _args(key: store.StoreKey, run: str) -> tuple:
    return key.artifacts, run, store.run_uid(key, run), _run_stamp(key, run)


def has_anatomy(key: store.StoreKey, run: str) -> bool:
    """Whether the run has its anatomy.json (runs evaluated before it existed have none): a
    ``stat``, as ``Run.has_anatomy`` does, without reading the run's metrics.json again."""
    return (artifacts_dir(key.artifacts) / RUNS / run / ANATOMY).is_file()


def document(key: store.StoreKey, run: str) -> Read:
    """anatomy.json (a dict), or why it cannot be shown."""
    return _document(*_args(key, run))


def instances(key: store.StoreKey, run: str) -> Read:
    """instances.csv as a DataFrame (``anatomy.instances_frame``), or why it cannot be shown."""
    return _instances(*_args(key, run))


def frame_errors(key: store.StoreKey, run: str) -> Read:
    """frame_errors.npy as ``(2, rows, columns)`` int64 counts, or why it cannot be shown."""
    return _frame_errors(*_args(key, run))


def boundary_ratio(key: store.StoreKey, run: str) -> float | None:
    """The ratio the run's Boundary IoU was computed with (None: no readable anatomy.json)."""
    if not has_anatomy(key, run):
        return None
    read = document(key, run)
    ratio = as_number(read.value.get("boundary_ratio")) if read.problem is None else float("nan")
    return None if np.isnan(ratio) or ratio <= 0 else ratio
