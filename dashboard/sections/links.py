"""Links into the Image explorer: a URL that opens an image with some runs, a region outlined and
only some classes painted (``?id=12&runs=a,b&outline=box:x0,y0,x1,y1&show=human,vehicle``), and a
switch to it from another page in this tab.

The outline belongs to the image it came with: the explorer remembers that image in the session
(``ANCHOR``), so moving to another image drops the outline (an instance id names another object in
another image).
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

import dashboard.state as state
from dashboard.views.regions import OUTLINE_PARAM, Outline
from dashboard.views.shown_classes import SHOW_PARAM

EXPLORER = "app_pages/explorer.py"
ANCHOR = "_explorer_outline_anchor"  # (the ?outline= value, the image id it came with)


def _shown_param(shown: Sequence[str]) -> str:
    return ",".join(dict.fromkeys(shown))


def explorer_url(image_id: int, runs: list[str], wanted: Outline | None = None,
                 shown: Sequence[str] | None = None) -> str:
    """A link to the explorer (relative to the app) showing ``image_id`` with ``runs``, the outline,
    and only the classes ``shown`` painted (None: as the explorer's toggles are)."""
    params = [f"id={int(image_id)}"] + ([f"runs={','.join(runs)}"] if runs else [])
    if wanted is not None:
        params.append(f"{OUTLINE_PARAM}={wanted.param}")
    if shown is not None:
        params.append(f"{SHOW_PARAM}={_shown_param(shown)}")
    return "explorer?" + "&".join(params)


def open_in_explorer(image_id: int, runs: list[str], wanted: Outline | None = None,
                     shown: Sequence[str] | None = None) -> None:
    """Switch to the explorer (in this tab) on ``image_id`` with ``runs``, the region outlined, only
    the classes ``shown`` painted (None: as the explorer's toggles are)."""
    state.set_image_id(int(image_id))
    state.set_runs(list(runs))
    if shown is not None:
        st.query_params[SHOW_PARAM] = _shown_param(shown)
    if wanted is None:
        st.query_params.pop(OUTLINE_PARAM, None)
        st.session_state.pop(ANCHOR, None)
    else:
        st.query_params[OUTLINE_PARAM] = wanted.param
        st.session_state[ANCHOR] = (wanted.param, int(image_id))
    st.switch_page(EXPLORER, query_params=st.query_params.to_dict())
