"""The start every page shares: the run store read, the page stopped with an explanation when there is
nothing to show, its title, and the runs chosen for it (``?runs=``); and the store's damage in the
sidebar of every page but the Overview (which lists it in full)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

import dashboard.readers.store as store
import dashboard.state as state
from dashboard.views.run_names import default_runs, run_labels
from training.data.cityscapes import DatasetError
from training.data.dataset import Dataset


@dataclass(frozen=True)
class Page:
    """What a page starts from: the store's key, its whole runs (``readers.store.runs_table``), the
    runs chosen (empty when the page chooses none) and how selectors name every run."""

    key: store.StoreKey
    table: pd.DataFrame
    runs: list[str]
    labels: dict[str, str]

    @property
    def available(self) -> list[str]:
        return list(self.table["run"])


def require_runs(key: store.StoreKey) -> pd.DataFrame:
    """The table of whole runs, or an explanation (and the page stops there)."""
    table = store.runs_table(key)
    if table.empty:
        if store.damaged_runs(key):
            st.info("No run of the store can be shown: every run is damaged (see the damaged runs). "
                    + store.HOW_TO_TRAIN)
        else:
            st.info(store.TRAIN_HINT)
        st.stop()
    return table


def start(title: str, intro: str | None = None, runs_key: str | None = None, url_key: str | None = None,
          container=st, with_classes: bool = False, at_least: int = 1) -> Page:
    """Read the store (stop with an explanation when it has no whole run), show the title and
    ``intro``, and, given ``runs_key`` (the widget's) and ``url_key`` (what the URL said), the runs
    chooser synchronised with ``?runs=`` in ``container``; stop with a note when fewer than
    ``at_least`` runs are chosen."""
    key = store.store_key()
    table = require_runs(key)
    st.title(title)
    if intro:
        st.markdown(intro)
    runs: list[str] = []
    if runs_key is not None:
        runs = state.runs_ui(list(table["run"]), runs_key, url_key, container,
                             run_labels(table, with_classes=with_classes, short=True), default_order(key, table))
        if len(runs) < at_least:
            st.info("Choose at least one run." if at_least == 1 else f"Choose at least {at_least} runs.")
            st.stop()
    return Page(key, table, runs, run_labels(table, short=True))


def default_order(key: store.StoreKey, table: pd.DataFrame) -> list[str]:
    """The runs in the order a page starts on them (``views.run_names.default_runs``): the deployed
    run, else the best on official test mIoU; then the best others."""
    return default_runs(table, store.deployment(key)[0])


def dataset(key: store.StoreKey, classes: str | None = None) -> Dataset:
    """``readers.store.dataset``, or the page stops with what is wrong with the dataset."""
    try:
        return store.dataset(key, classes)
    except DatasetError as error:
        st.error(f"Dataset unavailable: {error}")
        st.stop()


def problems_sidebar() -> None:
    """The store's problems in the sidebar (every page but the Overview, which shows them in full)."""
    problems = store.store_problems(store.store_key())
    if problems:
        st.sidebar.warning("**Left out: the run store has damage**\n\n" + "\n".join(f"- {p}" for p in problems))
