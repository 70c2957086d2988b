"""The Tags and notes page's list as tables: marks filtered by tags and words of their notes, images
per tag, the rows shown. Plain functions (no Streamlit)."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from training.runs.tags import TAG_SEPARATOR, ImageMark

ANY, ALL = "any", "all"
Rows = list[tuple[int | None, ImageMark]]


def filter_marks(rows: Rows, tags: list[str], match: str, text: str) -> Rows:
    """The rows with ``tags`` (any of them, or all when ``match`` is ALL; no tag: every row)
    whose note holds every word of ``text`` (case ignored)."""
    wanted = set(tags)
    words = text.lower().split()

    def kept(mark: ImageMark) -> bool:
        has = wanted & set(mark.tags)
        tagged = not wanted or (has == wanted if match == ALL else bool(has))
        return tagged and all(word in mark.note.lower() for word in words)

    return [(image_id, mark) for image_id, mark in rows if kept(mark)]


def tag_counts(rows: Rows) -> pd.DataFrame:
    """Images per tag, most first."""
    counts = Counter(tag for _, mark in rows for tag in mark.tags)
    ordered = sorted(counts, key=lambda tag: (-counts[tag], tag))
    return pd.DataFrame({"tag": ordered, "images": [counts[tag] for tag in ordered]})


def marks_frame(rows: Rows) -> pd.DataFrame:
    """One row per mark: image id (None: not in the index), city, stem, tags, note, when, a link."""
    return pd.DataFrame({
        "id": pd.array([image_id for image_id, _ in rows], dtype="Int64"),
        "city": [mark.city for _, mark in rows],
        "stem": [mark.stem for _, mark in rows],
        "tags": [TAG_SEPARATOR.join(mark.tags) for _, mark in rows],
        "note": [mark.note for _, mark in rows],
        "updated": [mark.updated.replace("T", " ").removesuffix("Z") for _, mark in rows],
        "open": [None if image_id is None else f"explorer?id={image_id}" for image_id, _ in rows]})
