"""The view a URL reproduces: the selected image id, the runs and the way mIoU is averaged live in
``st.query_params``."""

from __future__ import annotations

from collections.abc import Mapping

import streamlit as st

from dashboard.views.intervals import MIOU_EXPLANATION, MIOU_MODES
from dashboard.views.run_names import full_names_text
from training.evaluation.variants import PER_IMAGE, POOLED

MAX_RUNS = 4


def selected_image_id(default: int) -> int:
    """``?id=`` if the URL has one; else the id chosen last in this session (the sidebar's page
    links do not carry query parameters); else ``default``."""
    raw = st.query_params.get("id")
    if raw is not None and raw.isascii() and raw.isdigit():
        return int(raw)
    return int(st.session_state.get("selected_image_id", default))


def set_image_id(image_id: int) -> None:
    st.query_params["id"] = str(int(image_id))
    st.session_state["selected_image_id"] = int(image_id)


def selected_runs(available: list[str], default_count: int = MAX_RUNS, default: list[str] | None = None) -> list[str]:
    """Runs named in ``?runs=a,b`` that exist; without the parameter, the first few of ``default``
    (``views.run_names.default_runs``: the deployed or best run first, then the best others), else
    of ``available``."""
    raw = st.query_params.get("runs")
    if raw is None:
        order = [run for run in (default or []) if run in available] or list(available)
        return order[:default_count]
    return [run for run in raw.split(",") if run in available][:MAX_RUNS]


def set_runs(runs: list[str]) -> None:
    st.query_params["runs"] = ",".join(runs)


RUNS_HELP = "At most four; the URL remembers them."


def runs_help(available: list[str], labels: Mapping[str, str]) -> str:
    """The runs selector's help: what it holds, and each run's full name beside its short one."""
    names = full_names_text(available, labels)
    return RUNS_HELP + (" Full names:\n\n" + names if names else "")


def runs_ui(available: list[str], widget_key: str, url_key: str, container=st,
            labels: dict[str, str] | None = None, default: list[str] | None = None) -> list[str]:
    """A multiselect of up to ``MAX_RUNS`` runs in ``container`` (``st.sidebar``, or the page
    body), synchronised with ``?runs=``, starting (without ``?runs=``) on the first of ``default``
    (``views.run_names.default_runs``); ``labels`` names the runs' chips (their short names: an
    imported run tagged, with its coverage), the values stay run names, the help lists their full
    names.

    ``url_key`` remembers what the URL said when the page last wrote it: only a change of the URL
    (a link, another page) overrides the widget, so the user's own choice survives a rerun.
    """
    url_runs = selected_runs(available, default=default)
    if widget_key not in st.session_state or url_runs != st.session_state.get(url_key):
        st.session_state[widget_key] = url_runs
    labels = labels or {}
    runs = container.multiselect("Runs", available, key=widget_key, max_selections=MAX_RUNS,
                                 format_func=lambda run: labels.get(run, run),
                                 help=runs_help(available, labels))
    if st.query_params.get("runs") != ",".join(runs):
        set_runs(runs)
    st.session_state[url_key] = list(runs)
    return list(runs)


# How every mIoU shown is averaged (``training.evaluation.variants``): pooled over the dataset, or the
# mean of per-image mIoU (``?miou=per-image``).
MIOU_PARAM, MIOU_WIDGET, MIOU_SESSION = "miou", "miou_mode", "_miou_mode"


def _remember_miou_mode(mode: str) -> None:
    """The URL says a per-image mode (absent: pooled, the default, so older links stay as they
    were); the session remembers it for pages reached by the sidebar, whose links drop the URL's
    parameters."""
    st.session_state[MIOU_SESSION] = mode
    if mode == PER_IMAGE:
        st.query_params[MIOU_PARAM] = PER_IMAGE
    elif MIOU_PARAM in st.query_params:
        del st.query_params[MIOU_PARAM]


def _miou_mode_changed() -> None:
    _remember_miou_mode(st.session_state[MIOU_WIDGET])


def miou_mode_ui(container=st) -> str:
    """A switch between the two ways to average mIoU (with the line that says how they differ),
    synchronised with ``?miou=``; returns ``variants.POOLED`` or ``variants.PER_IMAGE``."""
    raw = st.query_params.get(MIOU_PARAM)
    mode = raw if raw in MIOU_MODES else st.session_state.get(MIOU_SESSION, POOLED)
    st.session_state[MIOU_WIDGET] = mode  # the URL (or the session) decides; a click changes it first
    container.radio("mIoU", list(MIOU_MODES), key=MIOU_WIDGET, horizontal=True, on_change=_miou_mode_changed,
                    format_func=MIOU_MODES.get)
    container.caption(MIOU_EXPLANATION)
    _remember_miou_mode(mode)
    return mode
