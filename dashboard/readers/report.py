"""The report to send (``training.report``) for the pages' download buttons, built only when asked.

A page passes ``lambda: report_file(...)`` to ``st.download_button`` (Streamlit runs the callable
when the button is clicked, in another thread, and sends what it returns), so showing a page costs
nothing. The file is cached by what it shows: the runs by uid, the images, the tags' version and
the store's key (a run published, replaced or re-tagged makes a new report); at most a few, a
report being 5 to 15 MB. A report that cannot be made (a run damaged since the page was drawn, a
dataset gone) is still a file: one page saying why, in the store's words (no absolute path).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import streamlit as st

import dashboard.readers.store as store
import dashboard.readers.tags as tags
from training.data.cityscapes import DatasetError
from training.report import build_report
from training.runs.layout import ArtifactError

MIME = "text/html"


@st.cache_data(show_spinner=False, max_entries=3)
def _report(artifacts: str, runs: tuple[tuple[str, str], ...], ids: tuple[int, ...] | None, tags_version: str,
            data: tuple) -> bytes:
    """``runs`` are (name, uid): a run replaced under its name is another report; ``tags_version``
    and ``data`` (the store key's dataset stamps) only key the cache."""
    return build_report([name for name, _ in runs], None if ids is None else list(ids), root=artifacts).encode()


def report_file(key: store.StoreKey, runs: Sequence[str], ids: Sequence[int] | None) -> bytes:
    """The report of ``runs`` (the first is the reference) on the images ``ids`` (None: the first
    run's worst), as the bytes of an HTML file; never raises (a failure is a page that says why)."""
    try:
        named = tuple((run, store.run_uid(key, run)) for run in runs)
        return _report(key.artifacts, named, None if ids is None else tuple(int(i) for i in ids),
                       tags.version(key), key.data)
    except (ArtifactError, DatasetError, ValueError, KeyError, OSError) as error:
        message = html.escape(store.readable(error, key))
        return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>No report</title></head>"
                f"<body><h1>The report could not be made</h1><p>{message}</p></body></html>\n").encode()


def file_name(runs: Sequence[str], ids: Sequence[int] | None) -> str:
    """``report_<first run>[_image<id>].html``."""
    image = f"_image{int(ids[0])}" if ids is not None and len(ids) == 1 else ""
    return f"report_{runs[0] if runs else 'runs'}{image}.html"
