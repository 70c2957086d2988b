"""Gallery: many images of a split at once, as thumbnails (the photo, or a run's prediction over it, or
its error map), sorted and filtered by any number the store has of each image (a run's mIoU or pixel
accuracy, run A minus run B, a class's share of the ground truth, Boundary IoU and missed objects
where a run has its anatomy), filtered by tags, paged; each a click from the Image explorer. The
runs start on the deployed (else the best) run (``views.run_names.default_runs``); the pictures are
of the run whose number sorts the page unless the user chose theirs, and every caption says whose.

The whole view lives in the URL (``?split=test&runs=a,b&mode=overlay&sort=miou:a&order=desc&page=2``),
so a link reproduces it. ``readers.image_numbers`` reads the table (``views.image_table`` shapes it),
``pictures.thumbnails`` draws the pictures (cached in memory and on disk: a page of 2048x1024 frames
costs about what a 256x512 one does once seen).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

import dashboard.pictures.images as pictures
import dashboard.pictures.thumbnails as thumbnails
import dashboard.readers.image_numbers as image_numbers
import dashboard.readers.store as store
import dashboard.readers.tags as tags_store
import dashboard.sections.page as skeleton
import dashboard.state as state
import dashboard.views.image_table as gallery
from dashboard.sections.links import EXPLORER, explorer_url
from dashboard.views.run_names import run_labels, short_names
from dashboard.views.text import plain, plain_list
from training.runs.layout import ArtifactError

PER_ROW = 4
MODE_PARAMS = {"photo": thumbnails.PHOTO, "overlay": thumbnails.OVERLAY, "errors": thumbnails.ERROR_MAP}
NO_FILTER = ""
RUNS_KEY, URL_RUNS = "gallery_runs", "_gallery_url_runs"
# Widget keys, and the URL parameter each one writes.
SPLIT, MODE, PICTURE_RUN = "gallery_split", "gallery_mode", "gallery_picture_run"
SORT, ORDER, FILTER, LOW, HIGH = "gallery_sort", "gallery_order", "gallery_filter", "gallery_min", "gallery_max"
TAGS, SIZE, PAGE, VIEW = "gallery_tags", "gallery_size", "gallery_page", "gallery_view"
PARAMS = {SPLIT: "split", MODE: "mode", PICTURE_RUN: "pictures", SORT: "sort", ORDER: "order", FILTER: "filter",
          LOW: "min", HIGH: "max", TAGS: "tags", SIZE: "size", PAGE: "page", VIEW: "view"}
ORDERS = {"asc": "lowest first", "desc": "highest first"}
VIEWS = {"grid": "thumbnails", "table": "table"}


# ---------------------------------------------------------------------------- the URL

def _from_url(widget: str, allowed, default):
    """The URL's value of ``widget``'s parameter when it is one of ``allowed``, else ``default``."""
    raw = st.query_params.get(PARAMS[widget])
    return raw if raw in allowed else default


def _number_from_url(widget: str) -> float | None:
    try:
        return float(st.query_params.get(PARAMS[widget], ""))
    except ValueError:
        return None


def _write(widget: str, text: str | None) -> None:
    if text in (None, ""):
        st.query_params.pop(PARAMS[widget], None)
    else:
        st.query_params[PARAMS[widget]] = text


def _changed(widget: str, first_page: bool = True) -> None:
    """A widget changed: the URL says so (and a new order or filter starts at page 1; another column
    to filter drops the bounds, which were the other column's)."""
    value = st.session_state[widget]
    if widget == FILTER:
        _write(LOW, None)
        _write(HIGH, None)
    if isinstance(value, list):
        value = ",".join(value)
    _write(widget, None if value is None else (f"{value:g}" if isinstance(value, float) else str(value)))
    if first_page:
        st.query_params.pop(PARAMS[PAGE], None)


def _bound(widget: str, value, first_page: bool = True) -> dict:
    """The URL decides a widget's value on every run; its change is written back by ``_changed``."""
    st.session_state[widget] = value
    return {"key": widget, "on_change": _changed, "args": (widget, first_page)}


def _go(step: int, pages: int) -> None:
    page = min(max(1, int(st.session_state.get(PAGE) or 1) + step), pages)
    _write(PAGE, None if page == 1 else str(page))


# ---------------------------------------------------------------------------- controls

SHORT_NAMES: dict[str, str] = {}  # the runs' short names (this run of the page), set by main()


def _label(column: str, runs: list[str]) -> str:
    """A column's label, its runs by their short names."""
    return gallery.column_label(column, runs, SHORT_NAMES)


def choice_ui(available: list[str], labels: dict[str, str],
              default: list[str] | None = None) -> tuple[str, list[str], str, str | None]:
    """Sidebar: split, runs (``default``: the order they start in), pictures (mode and the run they
    show: the one chosen, else the run of the sort's number, else the first). Returns (split,
    runs, mode, run)."""
    sidebar = st.sidebar
    sidebar.subheader("Images")
    split = sidebar.selectbox("Split", gallery.SPLITS, **_bound(SPLIT, _from_url(SPLIT, gallery.SPLITS, "test")),
                              help="Runs store per-image numbers and predictions for their evaluation split "
                                   "(usually test).")
    runs = state.runs_ui(available, RUNS_KEY, URL_RUNS, sidebar, labels, default)
    mode_param = sidebar.radio("Pictures", list(MODE_PARAMS), format_func=MODE_PARAMS.get, horizontal=True,
                               **_bound(MODE, _from_url(MODE, MODE_PARAMS, "photo"), first_page=False))
    picture_run = None
    if MODE_PARAMS[mode_param] != thumbnails.PHOTO:
        if not runs:
            sidebar.caption("Choose a run to see its predictions.")
        else:
            # Not chosen (no ?pictures=): the run whose number sorts the page, so the pictures are the
            # errors the captions' numbers count; a choice sticks whatever the sort.
            followed = gallery.column_run(st.query_params.get(PARAMS[SORT], ""), runs) or runs[0]
            picture_run = sidebar.selectbox(
                "Pictures of run", runs, format_func=lambda run: labels.get(run, run),
                help="By default the run whose number sorts the page (else the first run); a run chosen "
                     "here stays.", **_bound(PICTURE_RUN, _from_url(PICTURE_RUN, runs, followed), False))
    return split, runs, MODE_PARAMS[mode_param], picture_run


def order_ui(table: pd.DataFrame, runs: list[str], tag_names: list[str]) -> tuple[str, bool, str, float | None,
                                                                                   float | None, list[str]]:
    """Sort column and direction, a range filter on any column, a tag filter. Returns (sort column,
    descending, filter column or NO_FILTER, min, max, tags)."""
    columns = gallery.numeric_columns(table)

    def label(column: str) -> str:
        return _label(column, runs) if column else "no range filter"

    default_sort = next((c for c in columns if c == gallery.run_column("miou", runs[0])), "id") if runs else "id"
    sort_box, order_box, filter_box, low_box, high_box, tags_box = st.columns([3, 2, 3, 2, 2, 3],
                                                                                vertical_alignment="bottom")
    sort = sort_box.selectbox("Sort by", columns, format_func=label, **_bound(SORT, _from_url(SORT, columns,
                                                                                             default_sort)))
    order = order_box.selectbox("Order", list(ORDERS), format_func=ORDERS.get,
                                **_bound(ORDER, _from_url(ORDER, ORDERS, "asc")))
    column = filter_box.selectbox("Filter by", [NO_FILTER, *columns], format_func=label,
                                  **_bound(FILTER, _from_url(FILTER, columns, NO_FILTER)))
    low = high = None
    if column:
        values = pd.to_numeric(table[column], errors="coerce").dropna()
        span = f"values from {values.min():.3g} to {values.max():.3g}" if len(values) else "no values"
        low = low_box.number_input("min", value=None, help=span, **_bound(LOW, _number_from_url(LOW)))
        high = high_box.number_input("max", value=None, help=span, **_bound(HIGH, _number_from_url(HIGH)))
    wanted = [tag for tag in st.query_params.get(PARAMS[TAGS], "").split(",") if tag]
    tags = tags_box.multiselect("Tagged", list(dict.fromkeys([*tag_names, *wanted])), placeholder="any tags",
                                **_bound(TAGS, wanted))
    return sort, order == "desc", column, low, high, tags


def paging_ui(rows: int) -> tuple[int, int, str]:
    """Page size, page number (previous / next), grid or table. Returns (page, size, view)."""
    sizes = [str(size) for size in gallery.PAGE_SIZES]
    size = int(_from_url(SIZE, sizes, str(gallery.DEFAULT_PAGE_SIZE)))
    pages = gallery.page_count(rows, size)
    raw = st.query_params.get(PARAMS[PAGE], "1")
    page = min(max(1, int(raw)), pages) if raw.isascii() and raw.isdigit() else 1
    size_box, page_box, previous, following, view_box = st.columns([2, 2, 1, 1, 2], vertical_alignment="bottom")
    size_box.selectbox("Per page", sizes, **_bound(SIZE, str(size)))
    page_box.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1,
                          **_bound(PAGE, page, first_page=False))
    previous.button("Previous", on_click=_go, args=(-1, pages), disabled=page <= 1, width="stretch")
    following.button("Next", on_click=_go, args=(1, pages), disabled=page >= pages, width="stretch")
    view = view_box.radio("Show", list(VIEWS), format_func=VIEWS.get, horizontal=True,
                          **_bound(VIEW, _from_url(VIEW, VIEWS, "grid"), first_page=False))
    return page, size, view


# ---------------------------------------------------------------------------- showing a page

def caption(row: dict, sort: str, runs: list[str], whose: str = "") -> str:
    """A thumbnail's caption (Markdown): the id, the city, whose pictures (``pictures_text``), the
    sort value, the tags, as typed."""
    text = f"{row['id']} · {plain(row['city'])}" + (f" · {whose}" if whose else "")
    if sort != "id":
        text += f" · {_label(sort, runs)}: {gallery.value_text(row[sort], sort)}"  # run names: safe characters
    return text + (f" · {plain_list(row[gallery.TAGS])}" if row[gallery.TAGS] else "")


def pictures_text(mode: str, run: str | None) -> str:
    """What a thumbnail shows when it is not the photo: "errors of worse", "prediction of worse"."""
    if mode == thumbnails.PHOTO or not run:
        return ""
    return f"{'errors' if mode == thumbnails.ERROR_MAP else 'prediction'} of {SHORT_NAMES.get(run, run)}"


def thumbnail_requests(key, rows: pd.DataFrame, mode: str, picture_run: str | None,
                       warn: bool = True) -> list[thumbnails.Request]:
    """The thumbnails of ``rows`` in ``mode`` (of ``picture_run``'s predictions; its photo when it is
    not a whole run now: ``warn`` says so)."""
    data = store.dataset(key)
    images = [pictures.ImageRef(str(data.root), data.index.fingerprint(), int(image_id), data.index[image_id].image,
                                data.index[image_id].label, thumbnails.THUMBNAIL_WIDTH) for image_id in rows["id"]]
    run_ref = None
    if picture_run and images:
        run_ref = pictures.run_refs(key, [picture_run], images[0])[picture_run]
        if isinstance(run_ref, ArtifactError) and warn:
            st.warning(f"Run {store.readable(run_ref, key).removeprefix('run ')}: showing the photos.")
        if isinstance(run_ref, ArtifactError):
            run_ref = None
    return [thumbnails.request(image, run_ref, mode) for image in images]


def grid_ui(key, rows: pd.DataFrame, runs: list[str], mode: str, picture_run: str | None, sort: str) -> None:
    """The page's thumbnails, ``PER_ROW`` a row, each with its caption and a link to the explorer."""
    data = store.dataset(key)
    records = rows.to_dict("records")
    requests = thumbnail_requests(key, rows, mode, picture_run)
    with st.spinner("Drawing the thumbnails..."):
        made = thumbnails.thumbnails(requests, key.artifacts)
    for start in range(0, len(records), PER_ROW):
        for column, row, thumbnail, wanted in zip(st.columns(PER_ROW), records[start:start + PER_ROW],
                                                  made[start:start + PER_ROW], requests[start:start + PER_ROW],
                                                  strict=False):
            link = explorer_url(row["id"], runs)
            if thumbnail.jpeg is None:
                column.warning(f"Image {row['id']} cannot be read: {store.readable(thumbnail.note, key, data.root)}")
            else:
                whose = pictures_text(wanted.mode, picture_run)
                column.image(thumbnail.jpeg, caption=caption(row, sort, runs, whose), width="stretch",
                             output_format="JPEG", link=link)
                if thumbnail.note:
                    column.caption(store.readable(thumbnail.note, key, data.root))
            column.page_link(EXPLORER, label=f"Open {row['id']} in the explorer", icon=":material/open_in_new:",
                             query_params={"id": str(row["id"]), **({"runs": ",".join(runs)} if runs else {})})


def table_ui(rows: pd.DataFrame, runs: list[str]) -> None:
    shown = rows.assign(tags=[", ".join(tags) for tags in rows[gallery.TAGS]],
                        open=[explorer_url(image_id, runs) for image_id in rows["id"]])
    config = {column: st.column_config.NumberColumn(_label(column, runs), format="%.3f")
              for column in gallery.numeric_columns(rows) if column != "id"}
    config.update({"id": st.column_config.NumberColumn("id", format="%d"),
                   "open": st.column_config.LinkColumn("open", display_text="explorer ↗")})
    st.dataframe(shown, column_config=config, hide_index=True, width="stretch", placeholder="-", key="gallery_table")


def main() -> None:
    started = skeleton.start("Gallery")
    key, table = started.key, started.table
    skeleton.dataset(key)
    labels = run_labels(table, short=True)
    SHORT_NAMES.update(short_names(list(table["run"])))
    split, runs, mode, picture_run = choice_ui(list(table["run"]), labels, skeleton.default_order(key, table))
    made = image_numbers.gallery_table(key, split, runs)
    for note in made.notes:
        st.warning(note)
    tags_problem = tags_store.problem(key)
    if tags_problem:
        st.warning(f"Tags left out: {tags_problem}")
    rows = gallery.with_tags(made.table, tags_store.image_tags(key))
    if rows.empty:
        st.info(f"The {split} split has no image.")
        st.stop()
    numbers = [c for c in gallery.numeric_columns(rows) if c.startswith("miou:")]
    if runs and not rows[numbers].notna().any().any():
        st.info(f"No chosen run has per-image numbers for the {split} split (runs evaluate their own split, "
                "usually test): the images are shown by id.")
    sort, descending, column, low, high, wanted_tags = order_ui(rows, runs, tags_store.all_tags(key))
    rows = gallery.filter_tags(gallery.filter_range(rows, column, low, high) if column else rows, wanted_tags)
    rows = gallery.sort_rows(rows, sort, descending)
    page, size, view = paging_ui(len(rows))
    shown, page, pages = gallery.page_of(rows, page, size)
    st.caption(f"Page {page} of {pages}: {len(rows):,} images of the {split} split"
               + (f" (of {len(made.table):,})" if len(rows) != len(made.table) else "")
               + f", by {_label(sort, runs)}, {ORDERS['desc' if descending else 'asc']}"
               + (f"; class shares from {made.share_run}'s evaluation" if made.share_run else "") + ".")
    if shown.empty:
        st.info("No image matches the filters.")
    elif view == "table":
        table_ui(rows, runs)
    else:
        grid_ui(key, shown, runs, mode, picture_run, sort)
        if page < pages:  # drawn while this one is looked at
            following = gallery.page_of(rows, page + 1, size)[0]
            thumbnails.prefetch(thumbnail_requests(key, following, mode, picture_run, warn=False), key.artifacts)


main()
