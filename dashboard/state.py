"""The view a URL reproduces: the selected image id and runs live in ``st.query_params``."""

from __future__ import annotations

import streamlit as st

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


def selected_runs(available: list[str], default_count: int = MAX_RUNS) -> list[str]:
    """Runs named in ``?runs=a,b`` that exist; without the parameter, the first few runs."""
    raw = st.query_params.get("runs")
    if raw is None:
        return list(available[:default_count])
    return [run for run in raw.split(",") if run in available][:MAX_RUNS]


def set_runs(runs: list[str]) -> None:
    st.query_params["runs"] = ",".join(runs)


def runs_ui(available: list[str], widget_key: str, url_key: str, container=st,
            labels: dict[str, str] | None = None) -> list[str]:
    """A multiselect of up to ``MAX_RUNS`` runs in ``container`` (``st.sidebar``, or the page
    body), synchronised with ``?runs=``; ``labels`` names the runs' chips (an imported run tagged,
    with its coverage), the values stay run names.

    ``url_key`` remembers what the URL said when the page last wrote it: only a change of the URL
    (a link, another page) overrides the widget, so the user's own choice survives a rerun.
    """
    url_runs = selected_runs(available)
    if widget_key not in st.session_state or url_runs != st.session_state.get(url_key):
        st.session_state[widget_key] = url_runs
    labels = labels or {}
    runs = container.multiselect("Runs", available, key=widget_key, max_selections=MAX_RUNS,
                                 format_func=lambda run: labels.get(run, run),
                                 help="At most four; the URL remembers them.")
    if st.query_params.get("runs") != ",".join(runs):
        set_runs(runs)
    st.session_state[url_key] = list(runs)
    return list(runs)
