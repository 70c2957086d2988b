"""The Image explorer's pictures: the photo, the ground truth in each class set of the runs, each
run's prediction and error map, laid out for the number of runs (``views.picture_grid``), with
the overlay opacity and the "Show classes" toggles above them.

A fragment: moving the opacity or toggling a class reruns this section only (the pictures are
cached by image, run, opacity and shown classes; the rest of the page is not drawn again). The
toggles live in the URL (``?show=human,object``; absent: every class), so a link shows the same
classes. The per-class IoU table below keeps every class: it is the image's numbers, not a picture.
The page first asks ``run_views`` for each run's prediction, or the note that says why it has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import pandas as pd
import streamlit as st

import dashboard.pictures.images as pictures
import dashboard.pictures.marks as marks
import dashboard.readers.store as store
import dashboard.views.picture_grid as grid
import dashboard.views.shown_classes as shown_classes_view
from dashboard.pictures.drawing import PredictionView
from training.data.labels import get_class_set
from training.evaluation.confusions import wrong_share
from training.runs.layout import ArtifactError
from training.viz import legend_html

OPACITY_KEY, SHOW_KEY, URL_SHOW = "explorer_opacity", "explorer_show", "_explorer_url_show"
DEFAULT_OPACITY = 0.6


class Note(NamedTuple):
    """Why a run's prediction is not shown: ``level`` "info" (no prediction for this image) or
    "warning" (damaged, another index...), and the text."""

    level: str
    text: str


RunViews = dict[str, PredictionView | Note]  # every selected run: its prediction, or why none is shown
Predictions = dict[str, dict[str, PredictionView]]  # the predictions that can be shown, by class set, by run


# ---------------------------------------------------------------------------- the runs' predictions

def run_views(key, image: pictures.ImageRef, refs: dict, runs: list[str],
              table: pd.DataFrame) -> RunViews:
    """Each run's prediction for the image (computed once, cached at display size), or the note
    that says why it cannot be shown."""
    image_id = image.image_id
    rows = table.set_index("run")
    entry_split = store.dataset(key).index[image_id].split
    views: RunViews = {}
    for run in runs:
        ref = refs[run]
        try:
            if isinstance(ref, ArtifactError):
                raise ref  # not a whole run now: said as a damaged file is
            predicted = pictures.prediction_view(image, ref)
        except ArtifactError as error:
            views[run] = Note("warning", f"Run {store.readable(error, key).removeprefix('run ')}")
            continue
        if predicted is None:
            views[run] = Note("info", _no_prediction_note(run, rows.loc[run], image_id, entry_split))
        elif predicted.problem:
            views[run] = Note("warning", f"Run {run}: {predicted.problem}.")
        else:
            views[run] = predicted
    return views


def shown_predictions(groups: dict[str, list[str]], views: RunViews) -> Predictions:
    """The predictions that can be shown, by class set then run."""
    return {classes: {run: views[run] for run in members if not isinstance(views[run], Note)}
            for classes, members in groups.items()}


def index_notes(image: pictures.ImageRef, refs: dict, predictions: Predictions) -> None:
    """A warning for each run evaluated on another index of the dataset (its ids may name other images)."""
    for run in (run for members in predictions.values() for run in members):
        if not refs[run].same_index:
            st.warning(f"{run} was evaluated on another index of the dataset: its image {image.image_id} "
                       "may be another picture than this one.")


def caption(photo, predictions: Predictions) -> str:
    """The line under the pictures: what the error maps' colours mean, the display size, black pixels."""
    return ("Error maps: wrong pixels in the colour of the true class, correct ones dimmed, "
            "ignored ones black." + _size_note(photo) + _no_class_note(predictions))


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



# ---------------------------------------------------------------------------- the controls

def opacity() -> float:
    """The overlay opacity the section's slider holds (for the sections drawn after it)."""
    return float(st.session_state.get(OPACITY_KEY, DEFAULT_OPACITY))


def shown_classes(names: Sequence[str]) -> tuple[int, ...] | None:
    """The indices in ``names`` (one class set's) of the classes the toggles show (None: all)."""
    return shown_classes_view.shown_indices(names, st.session_state.get(SHOW_KEY, names))


def _all_names(groups: dict[str, list[str]]) -> list[str]:
    return list(dict.fromkeys(name for classes in groups for name in get_class_set(classes).names))


def _write_show(names: list[str]) -> None:
    value = shown_classes_view.shown_param(st.session_state.get(SHOW_KEY, names), names)
    if value is None:
        st.query_params.pop(shown_classes_view.SHOW_PARAM, None)
    else:
        st.query_params[shown_classes_view.SHOW_PARAM] = value


def controls_ui(groups: dict[str, list[str]]) -> None:
    """The opacity slider and the class toggles (in the classes of every class set shown), the
    toggles synchronised with ``?show=``."""
    names = _all_names(groups)
    raw = st.query_params.get(shown_classes_view.SHOW_PARAM)
    if SHOW_KEY not in st.session_state or raw != st.session_state.get(URL_SHOW):
        st.session_state[SHOW_KEY] = shown_classes_view.parse_shown(raw, names)  # first visit, or a link
    else:  # runs of another class set may have been chosen: keep what these options have
        st.session_state[SHOW_KEY] = [name for name in st.session_state[SHOW_KEY] if name in names]
    slider, toggles = st.columns([1, 4], vertical_alignment="bottom")
    slider.slider("Overlay opacity", 0.0, 1.0, DEFAULT_OPACITY, 0.05, key=OPACITY_KEY,
                  help="0 shows the photo, 1 the class colours.")
    toggles.pills("Show classes", names, selection_mode="multi", key=SHOW_KEY,
                  help="Only these classes are painted in the ground truth and the predictions (the photo "
                       "elsewhere); the error maps keep the errors whose true or predicted class is one of "
                       "them. The per-class table keeps every class. The URL remembers them.")
    _write_show(names)
    st.session_state[URL_SHOW] = st.query_params.get(shown_classes_view.SHOW_PARAM)


def _label(classes: str, several: bool) -> str:
    return f" ({classes})" if several else ""


def _draw(cell: grid.Cell, column, image: pictures.ImageRef, refs: dict, views: RunViews, several: bool,
          marks_now: marks.Marks) -> None:
    """One picture of the grid in ``column``: a run without a picture says why in its prediction's place."""
    alpha = opacity()
    if cell.kind == grid.PHOTO:
        column.image(pictures.photo_view(image).jpeg, caption="photo", width="stretch", output_format="JPEG")
        return
    if cell.kind == grid.TRUTH:
        shown = shown_classes(get_class_set(cell.of).names)
        column.image(marks.truth_picture(image, cell.of, alpha, marks_now, shown), output_format="JPEG",
                     caption="ground truth" + _label(cell.of, several), width="stretch")
        return
    run, view = cell.of, views[cell.of]  # captions name runs in full (the selectors, short)
    if isinstance(view, Note):
        if cell.kind == grid.PREDICTION:
            (column.info if view.level == "info" else column.warning)(view.text)
        return
    ref = refs[run]
    shown = shown_classes(get_class_set(ref.classes).names)
    if cell.kind == grid.PREDICTION:
        tag = " (imported)" if ref.imported else ""
        column.image(marks.prediction_picture(image, ref, alpha, marks_now, shown), output_format="JPEG",
                     caption=f"{run}: prediction{tag}", width="stretch")
    else:
        column.image(marks.error_picture(image, ref, marks_now, shown), output_format="PNG", width="stretch",
                     caption=f"{run}: errors ({wrong_share(view.confusion):.1%} of pixels wrong)")


@st.fragment
def pictures_ui(image: pictures.ImageRef, refs: dict, groups: dict[str, list[str]], views: RunViews,
                marks_now: marks.Marks, notes: str) -> None:
    """The controls, the legends and the grid of pictures, then ``notes`` (the page's caption)."""
    controls_ui(groups)
    several = len(groups) > 1
    for classes in groups:
        class_set = get_class_set(classes)
        st.markdown((f"**{classes}** " if several else "") + legend_html(class_set.names, class_set.colors),
                    unsafe_allow_html=True)
    runs = [run for members in groups.values() for run in members]
    for row in grid.picture_grid(list(groups), runs):
        for column, cell in zip(st.columns(len(row)), row, strict=True):
            if cell is not None:
                _draw(cell, column, image, refs, views, several, marks_now)
    if not runs:
        st.info("Choose runs in the sidebar to see their predictions.")
        return
    if not st.session_state.get(SHOW_KEY):
        notes += " No class is chosen in Show classes: the pictures show the photo only."
    st.caption(notes)
