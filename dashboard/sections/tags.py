"""The Image explorer's tags and note of the image shown (``training.runs.tags``).

The tags are chips: pick a suggested or used one, or type a new one ("lens flare"), and it is
saved at once; the note is saved when the box loses focus (or Ctrl+Enter). Both are read from
the store on every run, so what another tab (or another analyst) wrote since shows on the next
interaction; a change writes only what the user changed: the tags added or removed since the
widget was drawn (never the whole list, which would undo another tab's tags) and the note.
What the user typed is said back through ``views.text.plain``: the messages are Markdown.
"""

from __future__ import annotations

import streamlit as st

import dashboard.readers.store as store
import dashboard.readers.tags as tags_store
from dashboard.views.text import plain, plain_list
from training.runs.layout import ArtifactError
from training.runs.tags import MAX_NOTE_CHARS

TAGS_WIDGET, NOTE_WIDGET = "explorer_tags", "explorer_note"
FEEDBACK = "_explorer_tags_feedback"  # (kind, message) of the last write, shown once
UNSAVED = "_explorer_note_unsaved"  # (image id, text) of a note that could not be saved: kept in the box


def _changed_tags(key: store.StoreKey, image_id: int, shown: tuple[str, ...]) -> None:
    """Apply the difference between the chips drawn (``shown``) and the chips now."""
    chosen = st.session_state.get(TAGS_WIDGET) or []
    added = [tag for tag in chosen if tag not in shown]
    removed = [tag for tag in shown if tag not in chosen]
    try:
        for tag in added:
            tags_store.add_tag(key, image_id, tag)
        for tag in removed:
            tags_store.remove_tag(key, image_id, tag)
    except (tags_store.TagError, ArtifactError) as error:
        st.session_state[FEEDBACK] = ("error", f"Not saved: {plain(store.readable(error, key))}")
        return
    words = [f"added {plain_list(map(tags_store.normalise_tag, added))}"] if added else []
    words += [f"removed {plain_list(removed)}"] if removed else []
    if words:
        st.session_state[FEEDBACK] = ("success", f"Image {image_id}: {'; '.join(words)}.")


def _changed_note(key: store.StoreKey, image_id: int) -> None:
    text = st.session_state.get(NOTE_WIDGET) or ""
    try:
        mark = tags_store.set_note(key, image_id, text)
    except (tags_store.TagError, ArtifactError) as error:
        st.session_state[FEEDBACK] = ("error", f"Note not saved: {plain(store.readable(error, key))}")
        st.session_state[UNSAVED] = (image_id, text)
        return
    st.session_state.pop(UNSAVED, None)
    saved = "note saved" if mark is not None and mark.note else "note removed"
    st.session_state[FEEDBACK] = ("success", f"Image {image_id}: {saved}.")


def _feedback() -> None:
    kind, message = st.session_state.pop(FEEDBACK, (None, None))
    if kind == "error":
        st.error(message)
    elif kind == "success":
        st.success(message, icon=":material/check:")


def tags_ui(key: store.StoreKey, image_id: int) -> None:
    """Tags (chips) and note of image ``image_id``, saved as soon as they change."""
    st.subheader("Tags and notes")
    problem = tags_store.problem(key)
    if problem:
        st.warning(f"Tags and notes cannot be shown: {problem}")
        return
    mark = tags_store.image_mark(key, image_id)
    shown = mark.tags if mark else ()
    # What the store holds now, not what this session last drew: another tab's writes show.
    st.session_state[TAGS_WIDGET] = list(shown)
    unsaved = st.session_state.get(UNSAVED)
    st.session_state[NOTE_WIDGET] = unsaved[1] if unsaved and unsaved[0] == image_id else (mark.note if mark else "")
    options = list(dict.fromkeys([*shown, *tags_store.all_tags(key)]))
    tags_column, note_column = st.columns([2, 3])
    tags_column.multiselect(
        "Tags", options, key=TAGS_WIDGET, accept_new_options=True, select_all=False, on_change=_changed_tags,
        args=(key, image_id, shown), placeholder="Add a tag, or type a new one",
        help="Saved at once, for this image in every run. Tags are lowercase, at most 40 characters, "
             "without ';'.")
    note_column.text_area(
        "Note", key=NOTE_WIDGET, on_change=_changed_note, args=(key, image_id), height=80,
        max_chars=MAX_NOTE_CHARS, placeholder="What is wrong with this image, or with its label?",
        help="Saved when the box loses focus (or Ctrl+Enter).")
    _feedback()
    if unsaved and unsaved[0] == image_id:
        st.caption("The note in the box is not saved: change it to try again.")
    if mark is not None:
        st.caption(f"Last changed {mark.updated.replace('T', ' ').removesuffix('Z')} UTC · "
                   "[every tagged image](tags)")
