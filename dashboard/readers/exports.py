"""What the pages read of runs' embedded exports (``training.runs.tflite_exports``), cached: their
reports (an image's flip map is ``dashboard.pictures.flips``'s).

As in ``dashboard.store``, a run is read by its uid; its exports by the stamps of their reports
(``exports_version``: ``stat`` calls on every rerun), so a new or replaced export shows at once
and a replaced run never shows another's exports. No TensorFlow: reports and predictions are files.
"""

from __future__ import annotations

import streamlit as st

import dashboard.readers.store as store
from training.runs.layout import ArtifactError
from training.runs.tflite_exports import (
    QUANTIZATIONS,
    exports_version,
    read_export,
)

EXPORT_COMMAND = "python -m training export RUN --format tflite --quantize int8"


def version(key: store.StoreKey, run: str) -> tuple:
    """The cache key of ``run``'s exports now (empty when it has none or is not whole)."""
    try:
        return exports_version(store.open_run(key.artifacts, run, store.run_uid(key, run)))
    except ArtifactError:
        return ()


@st.cache_data(show_spinner=False, max_entries=64)
def _reports(artifacts: str, run: str, uid: str, exports: tuple) -> tuple[dict[str, dict], dict[str, str]]:
    opened = store.open_run(artifacts, run, uid)
    reports, problems = {}, {}
    for name, _ in exports:
        try:
            reports[name] = read_export(opened, name)
        except ArtifactError as error:
            problems[name] = str(error).removeprefix(f"run {run}: ")
    return reports, problems


def reports(key: store.StoreKey, run: str) -> tuple[dict[str, dict], dict[str, str]]:
    """(export name -> report, export name -> why it cannot be shown): float32, float16, int8,
    then any other, each by name."""
    exports = version(key, run)
    if not exports:
        return {}, {}
    found, problems = _reports(key.artifacts, run, store.run_uid(key, run), exports)
    order = sorted(found, key=lambda name: (_QUANTIZATION_ORDER.get(found[name].get("quantize"), 3), name))
    return {name: found[name] for name in order}, {name: store.readable(p, key) for name, p in problems.items()}


_QUANTIZATION_ORDER = {quantize: number for number, quantize in enumerate(QUANTIZATIONS)}


def runs_with_exports(key: store.StoreKey, runs: list[str]) -> list[str]:
    return [run for run in runs if version(key, run)]
