"""Image explorer: one image, its ground truth and the predictions of up to four runs, side by side.

Choose the image (id box, previous / next / random, filters by split and by the classes its
ground truth contains, or the worst images of a run first), then see the photo, the ground
truth, each run's prediction and error map, this image's per-class IoU for every run, a
zoomable picture that tells the true and the predicted class under the cursor (or the confidence,
in the confidence view), a run's confidence with a threshold (``confidence_section``), and run A
against run B pixel by pixel with the images where B got worse (``outcomes_section``).

Each run is shown and scored in its own class set (categories8, cityscapes19): its ground truth,
colours, legend and per-class IoU; runs of different class sets get one of each per class set.

Pictures are shown at display size (``$DASHBOARD_DISPLAY_WIDTH``, ``dashboard.display``): a
2048x1024 frame costs about what a 256x512 one does. The numbers (IoU, shares, wrong pixels) and
the classes under the cursor are the full-size ones; the zoom view loads the full resolution
only when asked to.

The image id and the runs live in the URL (``?id=301&runs=a,b``): a link reproduces the view.
A link may add a region to outline (``&outline=instance:26001`` or ``&outline=box:x0,y0,x1,y1``), and
the error maps can show the boundary band only (``marks_section``).
"""

from __future__ import annotations

import random

import pandas as pd
import streamlit as st

import dashboard.analysis as analysis
import dashboard.app_pages.confidence_section as confidence_section
import dashboard.app_pages.flip_section as flip_section
import dashboard.app_pages.marks_section as marks_section
import dashboard.app_pages.outcomes_section as outcomes_section
import dashboard.confidence as confidence
import dashboard.confidence_pictures as confidence_pictures
import dashboard.imported_runs as imported_runs
import dashboard.pictures as pictures
import dashboard.state as state
import dashboard.store as store
from dashboard.display import PredictionView
from dashboard.hover import hover_figure
from training.data.cityscapes import DatasetError
from training.data.labels import get_class_set
from training.runs.store import ArtifactError
from training.viz import legend_html

SPLITS = ("test", "validation", "train", "all")
BY_ID = ""  # the "order" choice that keeps ids in order (any other value is a run: worst first)
HOVER_VIEWS = ("prediction", "error map", "confidence", "ground truth", "photo")

# Session-state keys: the widgets, and what the URL said when we last wrote it.
ID_KEY, RUNS_KEY = "explorer_id", "explorer_runs"
SPLIT_KEY, CLASSES_KEY, ORDER_KEY = "explorer_split", "explorer_classes", "explorer_order"
CLASS_SET_KEY = "explorer_class_set"
URL_ID, URL_RUNS = "_explorer_url_id", "_explorer_url_runs"

Refs = dict[str, pictures.RunRef | ArtifactError]  # the selected runs as the store holds them now
Predictions = dict[str, dict[str, PredictionView]]  # the predictions that can be shown, by class set, by run


# ---------------------------------------------------------------------------- data

@st.cache_data(show_spinner=False)
def candidate_ids(key, split: str, class_set: str, classes: tuple[str, ...], order_run: str) -> list[int]:
    """Ids of ``split`` whose ground truth (in ``class_set``) holds every class of ``classes``, in
    id order, or (``order_run`` set) only those the run evaluated, its lowest per-image mIoU first."""
    ids = [entry.id for entry in store.dataset(key).index.split(split)]
    presence = store.class_presence(key, split, class_set) if classes else None
    per_image = store.per_image(key, order_run) if order_run in store.run_classes(key) else None
    return analysis.filter_and_rank_ids(ids, classes, presence, per_image)


def _filter_class_set(key) -> str:
    """The class set of the "Ground truth contains" filter: the sidebar's choice, else the data's."""
    return st.session_state.get(CLASS_SET_KEY) or store.data_settings(key).classes


def _current_candidates() -> list[int]:
    """The candidates for the filter widgets' values (for callbacks, which run before the page)."""
    key = store.store_key()
    return candidate_ids(key, st.session_state.get(SPLIT_KEY, SPLITS[0]), _filter_class_set(key),
                         tuple(st.session_state.get(CLASSES_KEY, ())), st.session_state.get(ORDER_KEY, BY_ID))


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


def filters_ui(key, runs: list[str], class_sets: list[str],
               labels: dict[str, str]) -> tuple[str, str, tuple[str, ...], str]:
    """Sidebar: split, classes present (in a class set of the runs, when they have several),
    order (``labels`` name the runs). Returns (split, class set, classes, order run or BY_ID)."""
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
    order = st.sidebar.selectbox("Order", [BY_ID, *runs], key=ORDER_KEY, on_change=_first_candidate,
                                 format_func=lambda run: f"worst first: {labels.get(run, run)}" if run else "by id",
                                 help="Worst first: the images the run evaluated, "
                                      "lowest per-image mIoU first.")
    return split, class_set, tuple(classes), order


def image_id_ui(key, candidates: list[int]) -> int:
    """Id box, previous / next / random; the id is synchronised with ``?id=``."""
    index = store.dataset(key).index
    default = candidates[0] if candidates else index.entries[0].id
    url_id = state.selected_image_id(default)
    if url_id not in index:
        st.warning(f"There is no image {url_id}; showing image {default}.")
        url_id = default
    if ID_KEY not in st.session_state or url_id != st.session_state.get(URL_ID):
        st.session_state[ID_KEY] = url_id  # first visit, or the URL changed (a link, another page)
    box, previous, following, lucky = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
    box.number_input("Image id", min_value=0, max_value=index.next_id - 1, step=1, key=ID_KEY)
    disabled = not candidates
    previous.button("Previous", on_click=_go, args=(-1,), disabled=disabled, width="stretch")
    following.button("Next", on_click=_go, args=(1,), disabled=disabled, width="stretch")
    lucky.button("Random", on_click=_random, disabled=disabled, width="stretch")
    image_id = int(st.session_state[ID_KEY])
    if image_id not in index:
        st.warning(f"There is no image {image_id} (ids are 0 to {index.next_id - 1}, some may be missing).")
        st.stop()
    if st.query_params.get("id") != str(image_id):
        state.set_image_id(image_id)
    st.session_state[URL_ID] = image_id
    return image_id


def display_ui() -> tuple[float, str]:
    st.sidebar.subheader("Display")
    opacity = st.sidebar.slider("Overlay opacity", 0.0, 1.0, 0.6, 0.05, key="explorer_opacity",
                                help="0 shows the photo, 1 the class colours.")
    view = st.sidebar.radio("Zoom and hover picture", HOVER_VIEWS, key="explorer_hover_view")
    return opacity, view


# ---------------------------------------------------------------------------- showing it

def _label(classes: str, several: bool) -> str:
    return f" ({classes})" if several else ""


def images_ui(key, image: pictures.ImageRef, refs: Refs, groups: dict[str, list[str]], table: pd.DataFrame,
              opacity: float, marks: marks_section.Marks = marks_section.NO_MARKS) -> Predictions:
    """Photo and the ground truth in each class set of the runs, then each run's prediction and
    error map in its own class set, all at display size. Returns the predictions that can be
    shown, by class set then run."""
    image_id = image.image_id
    photo = pictures.photo_view(image)
    runs = [run for members in groups.values() for run in members]
    several = len(groups) > 1
    for classes in groups:
        class_set = get_class_set(classes)
        st.markdown((f"**{classes}** " if several else "") + legend_html(class_set.names, class_set.colors),
                    unsafe_allow_html=True)
    top = st.columns(max(2, 1 + len(groups), len(runs)))
    top[0].image(photo.jpeg, caption="photo", width="stretch", output_format="JPEG")
    for column, classes in zip(top[1:], groups, strict=False):
        column.image(marks_section.truth_picture(image, classes, opacity, marks), output_format="JPEG",
                     caption="ground truth" + _label(classes, several), width="stretch")
    predictions: Predictions = {classes: {} for classes in groups}
    if not runs:
        st.info("Choose runs in the sidebar to see their predictions.")
        return predictions
    rows = table.set_index("run")
    entry_split = store.dataset(key).index[image_id].split
    prediction_row, error_row = st.columns(max(2, len(runs))), st.columns(max(2, len(runs)))
    # the rows are as wide as the photo and ground-truth row (two columns at least), so pictures line up
    cells = [(classes, run) for classes, members in groups.items() for run in members]
    for column, errors, (classes, run) in zip(prediction_row, error_row, cells, strict=False):
        ref = refs[run]
        try:
            if isinstance(ref, ArtifactError):
                raise ref  # not a whole run now: said as a damaged file is
            predicted = pictures.prediction_view(image, ref)
        except ArtifactError as error:
            column.warning(f"Run {store.readable(error, key).removeprefix('run ')}")
            continue
        if predicted is None:
            column.info(_no_prediction_note(run, rows.loc[run], image_id, entry_split))
            continue
        if predicted.problem:
            column.warning(f"Run {run}: {predicted.problem}.")
            continue
        if not ref.same_index:
            column.warning(f"{run} was evaluated on another index of the dataset: its image {image_id} "
                           "may be another picture than this one.")
        predictions[classes][run] = predicted
        tag = " (imported)" if ref.imported else ""
        column.image(marks_section.prediction_picture(image, ref, opacity, marks), output_format="JPEG",
                     caption=f"{run}: prediction{tag}", width="stretch")
        errors.image(marks_section.error_picture(image, ref, marks), output_format="PNG", width="stretch",
                     caption=f"{run}: errors ({analysis.wrong_share(predicted.confusion):.1%} of pixels wrong)")
    st.caption("Error maps: wrong pixels in the colour of the true class, correct ones dimmed, "
               "ignored ones black." + _size_note(photo) + _no_class_note(predictions))
    return predictions


def _no_prediction_note(run: str, row: pd.Series, image_id: int, image_split: str) -> str:
    """Why a run has no prediction for the image: a partial import left it out, or the run
    evaluated another split."""
    split = row["split"] or "test"
    if row["coverage"] and image_split == split:
        return f"Run {run}: image {image_id} is not in this import: it covers {row['coverage']} {split} images."
    return f"Run {run} evaluated the {split} split only: no prediction for image {image_id}."


def _no_class_note(predictions: Predictions) -> str:
    """Where an imported prediction names no class of its set (255), its picture is black."""
    runs = [run for members in predictions.values() for run, view in members.items() if view.no_class]
    if not runs:
        return ""
    return (f" Black in the prediction of {', '.join(runs)}: the imported prediction names no class of the set "
            "there (counted wrong wherever the ground truth has a class).")


def _size_note(photo) -> str:
    if photo.factor == 1:
        return ""
    height, width = photo.shape
    return (f" Shown at {width // photo.factor}x{height // photo.factor} (the image is {width}x{height}): "
            f"each pixel shows the class of one pixel of every {photo.factor}x{photo.factor} block; "
            "the numbers count every pixel.")


def iou_ui(predictions: Predictions) -> None:
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
        frame = analysis.iou_table({run: view.confusion for run, view in runs.items()},
                                   get_class_set(classes).names)
        config = {run: st.column_config.NumberColumn(run, format="%.3f") for run in runs}
        config["share of image"] = st.column_config.NumberColumn("share of image (truth)", format="percent")
        st.dataframe(frame, column_config=config, width="stretch", placeholder="")
    st.caption("IoU of this image alone (empty: the class is neither in the ground truth nor predicted)"
               + ("; each class set against the ground truth in its own classes." if several else "."))


def hover_ui(image: pictures.ImageRef, refs: Refs, predictions: Predictions, default_classes: str,
             opacity: float, view: str, labels: dict[str, str]) -> None:
    st.subheader("Zoom and hover")
    classes_of = {run: classes for classes, runs in predictions.items() for run in runs}
    run = None
    if classes_of:
        run = st.selectbox("Run under the cursor", list(classes_of), key="explorer_hover_run",
                           format_func=lambda name: labels.get(name, name))
    classes = classes_of.get(run, default_classes)
    class_set = get_class_set(classes)
    photo = pictures.photo_view(image)
    predicted = predictions[classes][run] if run else None
    if view not in ("photo", "ground truth") and predicted is None:
        view = "ground truth"
    full_size = False
    if photo.factor > 1:
        height, width = photo.shape
        full_size = st.toggle(f"Full resolution ({width}x{height})", key="explorer_zoom_full",
                              help="Load the picture at the image's own size, to zoom into single pixels "
                                   "(slower: the files are decoded again).")
    notes = None
    if view == "confidence":  # needs the run's map of this image: else its prediction, saying why
        shown = confidence_section.available_map(image, refs[run])
        if isinstance(shown, str):
            st.caption(f"{run}: {shown}; the picture shows its prediction.")
            view = "prediction"
        else:
            notes = confidence.hover_notes(shown.hover)
    if view == "confidence":
        picture, mime = confidence_pictures.zoom_picture(image, refs[run], full_size)
    else:
        picture, mime = pictures.zoom_picture(image, refs[run] if predicted else None, classes, view, opacity,
                                              full_size)
    title = f"image {image.image_id}: {view}" + (f" ({run})" if run and view not in ("photo", "ground truth") else "")
    figure = hover_figure(picture, mime, 1 if full_size else photo.factor, photo.shape, photo.hover_truth(class_set),
                          None if predicted is None else predicted.hover, class_set.names, title, notes)
    st.plotly_chart(figure, width="stretch", config={"displaylogo": False}, key="explorer_hover_chart")
    st.caption("Drag to zoom, double-click to reset; the cursor tells the true and the predicted class"
               + (f" (in {classes})." if len(predictions) > 1 else "."))


def main() -> None:
    table = store.require_runs()
    key = store.store_key()
    data = store.dataset(key)
    available = list(table["run"])
    classes_of = store.run_classes(key)
    st.title("Image explorer")

    labels = imported_runs.run_labels(table)
    runs = state.runs_ui(available, RUNS_KEY, URL_RUNS, st.sidebar, labels)
    unknown = [run for run in runs if not store.known_class_set(classes_of[run])]
    for run in unknown:
        st.warning(f"Run {run} predicts the class set {classes_of[run]!r}, which this dashboard does not know.")
    runs = [run for run in runs if run not in unknown]
    class_sets = list(dict.fromkeys([data.class_set.name, *(classes_of[run] for run in available
                                                             if store.known_class_set(classes_of[run]))]))
    split, filter_set, classes, order = filters_ui(key, available, class_sets, labels)
    opacity, view = display_ui()

    candidates = candidate_ids(key, split, filter_set, classes, order)
    image_id = image_id_ui(key, candidates)
    entry = data.index[image_id]
    st.caption(f"Image {image_id} · {entry.split} · {entry.city} · {entry.stem} — "
               f"{analysis.position_text(image_id, candidates, split, classes, order)}")

    image = pictures.image_ref(key, image_id)
    refs = pictures.run_refs(key, runs, image)
    try:
        pictures.photo_view(image)
    except DatasetError as error:
        st.error(f"Image {image_id} cannot be read: {store.readable(error, key, data.root)}")
        st.stop()
    groups = analysis.group_by_class_set(runs, classes_of) or {data.class_set.name: []}
    marks = marks_section.marks_ui(key, image, refs)  # ?outline=, the boundary band
    predictions = images_ui(key, image, refs, groups, table, opacity, marks)
    marks_section.band_ui(image, refs, predictions, marks)
    iou_ui(predictions)
    hover_ui(image, refs, predictions, next(iter(groups)), opacity, view, labels)
    confidence_section.confidence_ui(image, refs, predictions, opacity, labels)
    flip_section.flip_ui(image, refs, predictions, labels)
    outcomes_section.outcomes_ui(key, image, refs, labels, _open_image)


main()
