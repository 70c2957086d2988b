"""A picture served by Streamlit's own media endpoint (``/media/<hash>.jpg``), as ``st.image``
serves its pictures, for a chart that shows one picture in several places: the browser fetches the
address once and draws it everywhere, where a data URI is sent and decoded once per use.

Streamlit keeps a file while the session's last full run (or a later fragment run) registered it
at its ``coordinates``: the same coordinates with another picture replace it, as an image element
refreshed in place does.
"""

from __future__ import annotations

import streamlit as st
from streamlit import runtime

from dashboard.pictures.drawing import data_uri


def media_url(picture: bytes, mime: str, coordinates: str) -> str:
    """The address the page's browser fetches ``picture`` from (under the server's base path);
    a data URI outside a running Streamlit app (a script calling the page's functions)."""
    if not runtime.exists():
        return data_uri(picture, mime)
    url = runtime.get_instance().media_file_mgr.add(picture, mime, coordinates)
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}{url}" if base and url.startswith("/") else url
