"""Tags and notes: every image an analyst marked, how many carry each tag, and a CSV of them.

Filter by tags (images with any of them, or all of them) and by words of the notes; each row
opens the image in the explorer, where its tags and note are changed. The filter lives in the URL
(``?tag=reflection&tag=border&match=all&q=tree``), so a link shows the same list, and the CSV
download holds the rows shown. Images are named by city and stem in the store: one the dataset
index no longer holds keeps its mark and is listed without an id (nor a link).
"""

from __future__ import annotations

import streamlit as st

import dashboard.readers.store as store
import dashboard.readers.tags as tags_store
import dashboard.sections.page as page
from dashboard.views.tags_table import ALL, ANY, filter_marks, marks_frame, tag_counts

TAG_PARAM, MATCH_PARAM, TEXT_PARAM = "tag", "match", "q"
TAGS_WIDGET, MATCH_WIDGET, TEXT_WIDGET = "tags_page_tags", "tags_page_match", "tags_page_text"
# The list's columns at widths that show a whole cell: "2026-12-04 05:07:29" and "explorer ↗" were cut.
TABLE_COLUMNS = {
    "id": st.column_config.NumberColumn("image id", format="%d", width=70),
    "city": st.column_config.TextColumn("city", width=90),
    "stem": st.column_config.TextColumn("stem", width=190),
    "tags": st.column_config.TextColumn("tags", width=160),
    "note": st.column_config.TextColumn("note", width=220),
    "updated": st.column_config.TextColumn("updated (UTC)", width=160, help="When the tags or the note last changed"),
    "open": st.column_config.LinkColumn("open", display_text="explorer ↗", width=95,
                                        help="The image in the Image explorer, where its tags and note are changed")}


def _from_url(used: list[str]) -> None:
    """The widgets start from the URL (a link) the first time the page is drawn in a session."""
    if TAGS_WIDGET not in st.session_state:
        st.session_state[TAGS_WIDGET] = [tag for tag in st.query_params.get_all(TAG_PARAM) if tag in used]
        st.session_state[MATCH_WIDGET] = ALL if st.query_params.get(MATCH_PARAM) == ALL else ANY
        st.session_state[TEXT_WIDGET] = st.query_params.get(TEXT_PARAM, "")
    st.session_state[TAGS_WIDGET] = [tag for tag in st.session_state[TAGS_WIDGET] if tag in used]


def _to_url(tags: list[str], match: str, text: str) -> None:
    for name, value in ((TAG_PARAM, tags), (MATCH_PARAM, match if match == ALL else ""), (TEXT_PARAM, text)):
        if value:
            st.query_params[name] = value
        else:
            st.query_params.pop(name, None)


def filters_ui(used: list[str]) -> tuple[list[str], str, str]:
    _from_url(used)
    tags_column, match_column, text_column = st.columns([3, 1, 2], vertical_alignment="bottom")
    tags = tags_column.multiselect("Tags", used, key=TAGS_WIDGET, placeholder="Every tagged or noted image")
    match = match_column.radio("Images with", (ANY, ALL), key=MATCH_WIDGET, horizontal=True,
                               format_func=lambda choice: f"{choice} of them")
    text = text_column.text_input("Notes containing", key=TEXT_WIDGET, placeholder="words of the note")
    _to_url(tags, match, text.strip())
    return tags, match, text


def main() -> None:
    st.title("Tags and notes")
    st.caption("Images marked in the Image explorer (tags such as *ground truth wrong*, *reflection*, "
               "*small object*, *border*, and a note). Marks belong to the image, whatever the run.")
    key = store.store_key()
    problem = tags_store.problem(key)
    if problem:
        st.error(f"Tags and notes cannot be read: {problem}")
        st.stop()
    page.dataset(key)  # the marks name images by (city, stem); the index gives them their ids
    rows = tags_store.marks_by_id(key)
    if not rows:
        st.info("No image is tagged or noted yet: open one in the Image explorer and give it a tag.")
        st.stop()
    counts = tag_counts(rows)
    tags, match, text = filters_ui(list(counts["tag"]))
    shown = filter_marks(rows, tags, match, text)
    listed, side = st.columns([4, 1])
    with listed:
        st.dataframe(marks_frame(shown), hide_index=True, width="stretch", key="tags_table",
                     column_config=TABLE_COLUMNS)
        st.caption(f"{len(shown):,} of {len(rows):,} marked images" + (
            f"; {len(rows) - sum(image_id is not None for image_id, _ in rows)} not in the dataset index "
            "(no id)" if any(image_id is None for image_id, _ in rows) else ""))
        st.download_button(f"Download CSV ({len(shown):,} rows)", tags_store.csv_text(key, shown),
                           file_name="tags.csv", mime="text/csv", icon=":material/download:",
                           disabled=not shown, on_click="ignore")
    with side:
        st.dataframe(counts, hide_index=True, width="stretch", key="tags_counts", column_config={
            "images": st.column_config.NumberColumn("images", format="%d")})


main()
