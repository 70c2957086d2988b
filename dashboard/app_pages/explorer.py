"""Image explorer: one image, its ground truth and the predictions of up to four runs, side by side.

Choose the image (id box, previous / next / random, filters by split and by the classes its
ground truth contains, each on at least a share of the image, or the worst images of a run
first), then see the photo, the ground truth and each run's prediction (or error map) as large
panels that zoom and pan together (``sections.compare_view``, the default for 1 to 4 runs), or as
small multiples with every prediction and error map (``sections.picture_grid``: laid out for the
number of runs; ``?layout=grid``), both with the overlay opacity and the classes shown, the
analyst's tags and note of the image (``sections.tags``, stored in the run store's
``tags.sqlite``), this image's per-class IoU for every run, a zoomable picture that tells the true and the
predicted class under the cursor (or the confidence, in the confidence view; ``sections.zoom``), a
run's confidence with a threshold (``sections.confidence``), and run A against run B pixel by pixel
with the images where B got worse (``sections.outcomes``). The pictures, the zoom view and the
confidence are fragments: their own controls rerun them alone.

Each run is shown and scored in its own class set (categories8, cityscapes19): its ground truth,
colours, legend and per-class IoU; runs of different class sets get one of each per class set.
Selectors name runs by their short names (``views.run_names.short_names``), captions in full.

Pictures are shown at display size (``$DASHBOARD_DISPLAY_WIDTH``, ``pictures.drawing``): a
2048x1024 frame costs about what a 256x512 one does. The numbers (IoU, shares, wrong pixels) and
the classes under the cursor are the full-size ones; the zoom view loads the full resolution
only when asked to.

The image id, the runs, the classes shown and the filter's share live in the URL
(``?id=301&runs=a,b&show=human,vehicle&min_share=2``): a link reproduces the view. A link may add
a region to outline (``&outline=instance:26001`` or ``&outline=box:x0,y0,x1,y1``), and the error
maps can show the boundary band only (``sections.marks``).
"""

from __future__ import annotations

import random

import streamlit as st

import dashboard.pictures.images as pictures
import dashboard.readers.report as report_reader
import dashboard.readers.store as store
import dashboard.sections.compare_view as compare_section
import dashboard.sections.confidence as confidence_section
import dashboard.sections.flips as flip_section
import dashboard.sections.marks as marks_section
import dashboard.sections.outcomes as outcomes_section
import dashboard.sections.page as page
import dashboard.sections.picture_grid as pictures_section
import dashboard.sections.tags as tags_section
import dashboard.sections.zoom as zoom_section
import dashboard.state as state
import dashboard.views.image_filter as image_filter
from dashboard.views.compare_panels import SIDE_BY_SIDE
from dashboard.views.per_class import image_frame
from dashboard.views.run_names import group_by_class_set
from training.data.cityscapes import DatasetError
from training.data.labels import get_class_set
from training.evaluation.confusions import image_table

SPLITS = ("test", "validation", "train", "all")
BY_ID = ""  # the "order" choice that keeps ids in order (any other value is a run: worst first)

# Session-state keys: the widgets, and what the URL said when we last wrote it.
ID_KEY, RUNS_KEY = "explorer_id", "explorer_runs"
SPLIT_KEY, CLASSES_KEY, ORDER_KEY = "explorer_split", "explorer_classes", "explorer_order"
CLASS_SET_KEY = "explorer_class_set"
URL_ID, URL_RUNS = "_explorer_url_id", "_explorer_url_runs"
MISSING_KEY = "_explorer_missing_id"  # an id typed that names no image, to say so once
# "Ground truth contains" counts a class where it covers at least this percent of the image (?min_share=):
# on the demo dataset 1 % keeps about 40 % of the images with human and object, any pixel 99 %.
MIN_SHARE_KEY, URL_MIN_SHARE, MIN_SHARE_PARAM, DEFAULT_MIN_SHARE = (
    "explorer_min_share", "_explorer_url_min_share", "min_share", 1.0)

Predictions = pictures_section.Predictions  # the predictions that can be shown, by class set, by run


# ---------------------------------------------------------------------------- data

@st.cache_data(show_spinner=False)
def candidate_ids(key, split: str, class_set: str, classes: tuple[str, ...], order_run: str,
                  min_share: float = 0.0) -> list[int]:
    """Ids of ``split`` whose ground truth (in ``class_set``) holds every class of ``classes`` (each
    on at least ``min_share`` of the image), in id order, or (``order_run`` set) only those the run
    evaluated, its lowest per-image mIoU first."""
    ids = [entry.id for entry in store.dataset(key).index.split(split)]
    shares = store.class_shares(key, split, class_set) if classes else None
    per_image = store.per_image(key, order_run) if order_run in store.run_classes(key) else None
    return image_filter.filter_and_rank_ids(ids, classes, shares, per_image, min_share)


def _min_share() -> float:
    """The filter's minimum share of the image (0 to 1), from its percent box."""
    return float(st.session_state.get(MIN_SHARE_KEY, DEFAULT_MIN_SHARE)) / 100


def _filter_class_set(key) -> str:
    """The class set of the "Ground truth contains" filter: the sidebar's choice, else the data's."""
    return st.session_state.get(CLASS_SET_KEY) or store.data_settings(key).classes


def _current_candidates() -> list[int]:
    """The candidates for the filter widgets' values (for callbacks, which run before the page)."""
    key = store.store_key()
    return candidate_ids(key, st.session_state.get(SPLIT_KEY, SPLITS[0]), _filter_class_set(key),
                         tuple(st.session_state.get(CLASSES_KEY, ())), st.session_state.get(ORDER_KEY, BY_ID),
                         _min_share())


# ---------------------------------------------------------------------------- choosing the view

def _go(step: int) -> None:
    """Previous (-1) / next (+1) among the candidates, wrapping around."""
    ids = _current_candidates()
    if not ids:
        return
    current = st.session_state.get(ID_KEY)
    if current in ids:
        st.session_state[ID_KEY] = ids[(ids.index(current) + step) % len(ids)]
    else:
        st.session_state[ID_KEY] = ids[0] if step > 0 else ids[-1]


def _open_image(image_id: int) -> None:
    """A button of a list of images (the sections') shows that image."""
    st.session_state[ID_KEY] = int(image_id)


def _random() -> None:
    ids = [i for i in _current_candidates() if i != st.session_state.get(ID_KEY)]
    if ids:
        st.session_state[ID_KEY] = random.choice(ids)


def _first_candidate() -> None:
    """A filter or the order changed: show the first image it gives (the worst, when ranked)."""
    ids = _current_candidates()
    if ids:
        st.session_state[ID_KEY] = ids[0]


def _class_set_changed() -> None:
    st.session_state[CLASSES_KEY] = []  # the names of another class set
    _first_candidate()


def _min_share_ui() -> float:
    """The class filter's "at least x % of the image", synchronised with ``?min_share=`` (percent)."""
    raw = st.query_params.get(MIN_SHARE_PARAM)
    if MIN_SHARE_KEY not in st.session_state or raw != st.session_state.get(URL_MIN_SHARE):
        st.session_state[MIN_SHARE_KEY] = _percent(raw)  # first visit, or a link
    percent = st.sidebar.number_input(
        "... each on at least (% of the image)", 0.0, 100.0, step=0.5, key=MIN_SHARE_KEY, format="%.1f",
        on_change=_first_candidate,
        help="A class counts as present where it covers at least this share of the image's pixels (0: any "
             "pixel): a few stray pixels of a class do not make an image of it.")
    value = None if percent == DEFAULT_MIN_SHARE else f"{percent:g}"
    if value is None:
        st.query_params.pop(MIN_SHARE_PARAM, None)
    elif st.query_params.get(MIN_SHARE_PARAM) != value:
        st.query_params[MIN_SHARE_PARAM] = value
    st.session_state[URL_MIN_SHARE] = value
    return percent / 100


def _percent(raw: str | None) -> float:
    """``?min_share=`` as a percent in 0-100 (the default when absent or not a number)."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return DEFAULT_MIN_SHARE
    return min(100.0, max(0.0, value)) if value == value else DEFAULT_MIN_SHARE


def filters_ui(key, runs: list[str], class_sets: list[str],
               labels: dict[str, str]) -> tuple[str, str, tuple[str, ...], str, float]:
    """Sidebar: split, classes present (in a class set of the runs, when they have several) and
    the share of the image each must cover, order (``labels`` name the runs). Returns (split,
    class set, classes, order run or BY_ID, minimum share 0 to 1)."""
    st.sidebar.subheader("Images")
    split = st.sidebar.selectbox("Split", SPLITS, key=SPLIT_KEY, on_change=_first_candidate,
                                 help="Runs store predictions for their evaluation split (usually test).")
    class_set = _filter_class_set(key)
    if class_set not in class_sets:
        class_set = class_sets[0]
        st.session_state.pop(CLASS_SET_KEY, None)
    if len(class_sets) > 1:
        class_set = st.sidebar.selectbox("Class set", class_sets, key=CLASS_SET_KEY, on_change=_class_set_changed,
                                         help="The runs predict different class sets: the filter below "
                                              "names the classes of this one.")
    classes = st.sidebar.multiselect("Ground truth contains", get_class_set(class_set).names, key=CLASSES_KEY,
                                     on_change=_first_candidate, placeholder="any classes")
    min_share = _min_share_ui()
    order = st.sidebar.selectbox("Order", [BY_ID, *runs], key=ORDER_KEY, on_change=_first_candidate,
                                 format_func=lambda run: f"worst first: {labels.get(run, run)}" if run else "by id",
                                 help="Worst first: the images the run evaluated, "
                                      "lowest per-image mIoU first.")
    if classes:
        shares = store.class_shares(key, split, class_set)
        count = len(image_filter.filter_and_rank_ids(list(shares.index), classes, shares, None, min_share))
        st.sidebar.caption(image_filter.filter_summary(count, len(shares), split, classes, min_share))
    return split, class_set, tuple(classes), order, min_share


def missing_id_text(image_id: int, last: int, shown: int | None) -> str:
    """What the page says of an id that names no image: the range of ids, and the image shown instead."""
    text = f"There is no image {image_id}: ids run from 0 to {last}"
    if 0 <= image_id <= last:
        text += " (some are missing)"
    return text + (f"; showing image {shown}." if shown is not None else ".")


def _id_typed() -> None:
    """An id typed that names no image goes back to the image shown, and the page says so (the box
    has no maximum, so that the server hears an id out of range instead of the box turning red)."""
    index = store.dataset(store.store_key()).index
    typed = st.session_state.get(ID_KEY)
    if typed is None or int(typed) not in index:
        shown = st.session_state.get(URL_ID)
        st.session_state[MISSING_KEY] = None if typed is None else int(typed)
        st.session_state[ID_KEY] = shown if shown in index else index.entries[0].id


def image_id_ui(key, candidates: list[int]) -> int:
    """Id box (its label gives the range of ids), previous / next / random; the id is synchronised
    with ``?id=``. An id that names no image, typed or in a link, is said with the image shown instead."""
    index = store.dataset(key).index
    last = index.next_id - 1
    default = candidates[0] if candidates else index.entries[0].id
    url_id = state.selected_image_id(default)
    if url_id not in index:
        st.warning(missing_id_text(url_id, last, default))
        url_id = default
    if ID_KEY not in st.session_state or url_id != st.session_state.get(URL_ID):
        st.session_state[ID_KEY] = url_id  # first visit, or the URL changed (a link, another page)
    missing = st.session_state.pop(MISSING_KEY, None)
    box, previous, following, lucky = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
    box.number_input(f"Image id (0 to {last})", min_value=0, step=1, key=ID_KEY, on_change=_id_typed)
    disabled = not candidates
    # The arrow keys page through the images (Streamlit ignores them while a text box has the focus).
    previous.button("Previous", on_click=_go, args=(-1,), disabled=disabled, width="stretch", shortcut="Left",
                    help="The previous image (left arrow key)")
    following.button("Next", on_click=_go, args=(1,), disabled=disabled, width="stretch", shortcut="Right",
                     help="The next image (right arrow key)")
    lucky.button("Random", on_click=_random, disabled=disabled, width="stretch")
    image_id = int(st.session_state[ID_KEY])
    if missing is not None:
        st.warning(missing_id_text(missing, last, image_id))
    if image_id not in index:
        st.warning(missing_id_text(image_id, last, None))
        st.stop()
    if st.query_params.get("id") != str(image_id):
        state.set_image_id(image_id)
    st.session_state[URL_ID] = image_id
    return image_id


# ---------------------------------------------------------------------------- showing it

def iou_ui(predictions: Predictions, labels: dict[str, str]) -> None:
    """This image's per-class IoU for every run (every class, whatever the pictures show), the
    shares in one format ("8.5%"), empty cells where a class has no IoU."""
    st.subheader("This image, per class")
    if not any(predictions.values()):
        st.caption("No selected run has a prediction for this image.")
        return
    several = len(predictions) > 1
    for classes, runs in predictions.items():
        if not runs:
            continue
        if several:
            st.markdown(f"**{classes}**: {', '.join(runs)}")
        class_set = get_class_set(classes)
        frame = image_frame(image_table({run: view.confusion for run, view in runs.items()}, class_set.num_classes),
                            class_set.names)
        frame["share of image"] = frame["share of image"] * 100
        config = {run: st.column_config.NumberColumn(labels.get(run, run), help=run, format="%.3f") for run in runs}
        config["share of image"] = st.column_config.NumberColumn("share of image (truth)", format="%.1f%%")
        st.dataframe(frame, column_config=config, width="stretch", placeholder="")
    st.caption("IoU of this image alone (empty: the class is neither in the ground truth nor predicted), "
               "every class whatever the pictures show"
               + ("; each class set against the ground truth in its own classes." if several else "."))


def report_ui(key, runs: list[str], image_id: int) -> None:
    """A report to send (one HTML file, offline): these runs on this image, made only when clicked."""
    if runs:
        st.download_button(
            "Download a report", data=lambda: report_reader.report_file(key, runs, [image_id]),
            file_name=report_reader.file_name(runs, [image_id]), mime=report_reader.MIME, on_click="ignore",
            key="explorer_report", help="One HTML file that opens offline in any browser: the runs' leaderboard, "
            "each against the first, this image (photo, ground truth, predictions, IoU per class, tags and note) "
            "and the confusion matrices.")


def main() -> None:
    started = page.start("Image explorer", runs_key=RUNS_KEY, url_key=URL_RUNS, container=st.sidebar, at_least=0)
    key, table, labels, available = started.key, started.table, started.labels, started.available
    data = page.dataset(key)
    classes_of = store.run_classes(key)
    unknown = [run for run in started.runs if not store.known_class_set(classes_of[run])]
    for run in unknown:
        st.warning(f"Run {run} predicts the class set {classes_of[run]!r}, which this dashboard does not know.")
    runs = [run for run in started.runs if run not in unknown]
    class_sets = list(dict.fromkeys([data.class_set.name, *(classes_of[run] for run in available
                                                             if store.known_class_set(classes_of[run]))]))
    split, filter_set, classes, order, min_share = filters_ui(key, available, class_sets, labels)

    candidates = candidate_ids(key, split, filter_set, classes, order, min_share)
    image_id = image_id_ui(key, candidates)
    entry = data.index[image_id]
    st.caption(f"Image {image_id} · {entry.split} · {entry.city} · {entry.stem} — "
               f"{image_filter.position_text(image_id, candidates, split, classes, order)}")

    image = pictures.image_ref(key, image_id)
    refs = pictures.run_refs(key, runs, image)
    try:
        photo = pictures.photo_view(image)
    except DatasetError as error:
        st.error(f"Image {image_id} cannot be read: {store.readable(error, key, data.root)}")
        st.stop()
    groups = group_by_class_set(runs, classes_of) or {data.class_set.name: []}
    marks = marks_section.marks_ui(key, image, refs)  # ?outline=, the boundary band
    views = pictures_section.run_views(key, image, refs, runs, table)
    predictions = pictures_section.shown_predictions(groups, views)
    pictures_section.index_notes(image, refs, predictions)
    side_by_side = compare_section.layout_ui(len(runs)) == SIDE_BY_SIDE
    if side_by_side:  # large panels zoomed together (1-4 runs)
        compare_section.compare_ui(image, refs, groups, views, marks, labels)
    else:
        pictures_section.pictures_ui(image, refs, groups, views, marks, pictures_section.caption(photo, predictions))
    marks_section.band_ui(image, refs, predictions, marks)
    tags_section.tags_ui(key, image_id)  # below the pictures: what the analyst saw in them
    iou_ui(predictions, labels)
    report_ui(key, runs, image_id)
    zoom_section.hover_ui(image, refs, predictions, next(iter(groups)), labels, on_demand=side_by_side)
    confidence_section.confidence_ui(image, refs, predictions, pictures_section.opacity(), labels)
    flip_section.flip_ui(image, refs, predictions, labels)
    outcomes_section.outcomes_ui(key, image, refs, labels, _open_image)


main()
