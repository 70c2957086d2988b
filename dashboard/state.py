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
