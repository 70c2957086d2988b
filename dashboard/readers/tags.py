"""Tags and notes for the pages: ``training.runs.tags`` read by image id, and its writers.

The store names an image by (city, stem); the pages by its id in the dataset index
(``dashboard.readers.store.dataset(key).index``). An image the index does not hold (a tag written under
another dataset) keeps its mark but has no id: the Tags page lists it without a link.

The marks are cached by the store's ``version()`` (a counter every write bumps, a millisecond to
read): a write from another tab or process shows on the next rerun, and a rerun without one reads
a single row (every mark of 3,475 images takes 10 to 20 ms). Readers never raise for a damaged
file: they return nothing, and ``problem`` says why (pages show it once). Writers raise
``ArtifactError`` or ``TagError`` (a bad tag), both with messages fit for people.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType

import streamlit as st

import dashboard.readers.store as store
from training.data.index import DatasetIndex
from training.runs.layout import ArtifactError
from training.runs.tags import SUGGESTED_TAGS, ImageMark, TagError, TagStore, marks_csv, normalise_tag

__all__ = ["ImageMark", "TagError", "SUGGESTED_TAGS", "normalise_tag", "image_tags", "image_mark", "all_tags",
           "marks_by_id", "problem", "image_ids", "add_tag", "remove_tag", "set_note", "csv_text", "version"]


def _store(key: store.StoreKey) -> TagStore:
    return TagStore(key.artifacts)


@st.cache_data(show_spinner=False, max_entries=4)
def _names_to_ids(fingerprint: str, _index: DatasetIndex) -> dict[tuple[str, str], int]:
    """(city, stem) -> id of every indexed image (``fingerprint`` names the index)."""
    return {(entry.city, entry.stem): entry.id for entry in _index.entries}


def image_ids(key: store.StoreKey) -> dict[tuple[str, str], int]:
    """(city, stem) -> image id in the pages' dataset (the page stops if there is none)."""
    index = store.dataset(key).index
    return _names_to_ids(index.fingerprint(), index)


@st.cache_resource(show_spinner=False, max_entries=4)
def _cached_marks(artifacts: str, version: str) -> Mapping[tuple[str, str], ImageMark]:
    """Shared by the sessions, read-only. A write between reading ``version`` and the marks
    caches the newer marks under the older version: harmless, the next rerun sees a new version."""
    return MappingProxyType(TagStore(artifacts).marks())


def _marks(key: store.StoreKey) -> Mapping[tuple[str, str], ImageMark]:
    try:
        return _cached_marks(key.artifacts, _store(key).version())
    except ArtifactError:
        return {}  # ``problem`` says why


def problem(key: store.StoreKey) -> str | None:
    """Why the tags cannot be read (a damaged tags.sqlite), None when they can."""
    try:
        _store(key).version()
    except ArtifactError as error:
        return store.readable(error, key)
    return None


def version(key: store.StoreKey) -> str:
    """Changes with every write to the tags ("" when they cannot be read)."""
    try:
        return _store(key).version()
    except ArtifactError:
        return ""


def marks_by_id(key: store.StoreKey) -> list[tuple[int | None, ImageMark]]:
    """Every mark with its image id (None when the index has no such image), by id."""
    ids = image_ids(key)
    rows = [(ids.get(name), mark) for name, mark in _marks(key).items()]
    return sorted(rows, key=lambda row: (row[0] is None, row[0] or 0, row[1].city, row[1].stem))


def image_tags(key: store.StoreKey) -> dict[int, tuple[str, ...]]:
    """Image id -> its tags, for every indexed image that has a tag."""
    ids = image_ids(key)
    return {ids[name]: mark.tags for name, mark in _marks(key).items() if mark.tags and name in ids}


def _name(key: store.StoreKey, image_id: int) -> tuple[str, str]:
    entry = store.dataset(key).index[int(image_id)]
    return entry.city, entry.stem


def image_mark(key: store.StoreKey, image_id: int) -> ImageMark | None:
    """The mark of image ``image_id``; None when it has none (or the tags cannot be read)."""
    try:
        return _store(key).mark(*_name(key, image_id))
    except ArtifactError:
        return None


def all_tags(key: store.StoreKey) -> list[str]:
    """The tags in use, most used first (then by name), then the suggested ones not in use."""
    counts = Counter(tag for mark in _marks(key).values() for tag in mark.tags)
    used = sorted(counts, key=lambda tag: (-counts[tag], tag))
    return used + [tag for tag in SUGGESTED_TAGS if tag not in counts]


def csv_text(key: store.StoreKey, marks: list[tuple[int | None, ImageMark]] | None = None) -> str:
    """``marks`` (by default all) as CSV: image_id, city, stem, tags, note, updated."""
    rows = marks_by_id(key) if marks is None else marks
    ids = {(mark.city, mark.stem): image_id for image_id, mark in rows if image_id is not None}
    return marks_csv([mark for _, mark in rows], ids)


# ---------------------------------------------------------------------------- writing

def add_tag(key: store.StoreKey, image_id: int, tag: str) -> ImageMark | None:
    """Give image ``image_id`` the tag (normalised); raises TagError or ArtifactError."""
    return _store(key).add_tag(*_name(key, image_id), tag)


def remove_tag(key: store.StoreKey, image_id: int, tag: str) -> ImageMark | None:
    return _store(key).remove_tag(*_name(key, image_id), tag)


def set_note(key: store.StoreKey, image_id: int, note: str) -> ImageMark | None:
    """Replace the image's note (an empty note removes it)."""
    return _store(key).set_note(*_name(key, image_id), note)
