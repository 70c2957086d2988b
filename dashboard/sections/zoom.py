"""The Image explorer's zoom-and-hover picture: one picture (photo, ground truth, a run's prediction,
error map or confidence) under a grid whose cells tell the true and the predicted class (and the
confidence) under the cursor, at display size or, asked for, at the image's own resolution. A
fragment: its choices rerun it alone; it takes the opacity and the shown classes of the pictures
above (``sections.picture_grid``)."""

from __future__ import annotations

import streamlit as st

import dashboard.pictures.confidence_maps as confidence_pictures
import dashboard.pictures.images as pictures
import dashboard.sections.confidence as confidence_section
import dashboard.sections.picture_grid as pictures_section
import dashboard.views.calibration_tables as confidence
from dashboard.pictures.hover import hover_figure
from training.data.labels import get_class_set
from training.runs.layout import ArtifactError

HOVER_VIEWS = ("prediction", "error map", "confidence", "ground truth", "photo")
HOVER_VIEW_KEY = "explorer_hover_view"
HOVER_OPEN_KEY = "explorer_hover_open"

Refs = dict[str, pictures.RunRef | ArtifactError]  # the selected runs as the store holds them now
Predictions = pictures_section.Predictions  # the predictions that can be shown, by class set, by run


@st.fragment
def hover_ui(image: pictures.ImageRef, refs: Refs, predictions: Predictions, default_classes: str,
             labels: dict[str, str], on_demand: bool = False) -> None:
    """The zoomable picture that tells the classes under the cursor (a fragment: its choices
    rerun it alone; it takes the opacity and the shown classes of the pictures above).

    ``on_demand``: drawn only once asked for (under the side-by-side view, which already zooms every
    panel together and tells each run's class under the cursor: drawing both sent every image's
    hover grid twice, about 0.8 MB per image change)."""
    st.subheader("Zoom and hover")
    if on_demand and not st.toggle("One picture with its confidence under the cursor", key=HOVER_OPEN_KEY,
                                   help="A single picture (photo, ground truth, a run's prediction, error map or "
                                        "confidence) whose cursor tells the true and the predicted class and the "
                                        "confidence. The side-by-side view above zooms every panel together."):
        return
    classes_of = {run: classes for classes, runs in predictions.items() for run in runs}
    choice, which, resolution = st.columns([3, 2, 2], vertical_alignment="bottom")
    view = choice.radio("Zoom and hover picture", HOVER_VIEWS, key=HOVER_VIEW_KEY, horizontal=True)
    run = None
    if classes_of:
        run = which.selectbox("Run under the cursor", list(classes_of), key="explorer_hover_run",
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
        full_size = resolution.toggle(f"Full resolution ({width}x{height})", key="explorer_zoom_full",
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
        picture, mime = pictures.zoom_picture(image, refs[run] if predicted else None, classes, view,
                                              pictures_section.opacity(), full_size,
                                              pictures_section.shown_classes(class_set.names))
    title = f"image {image.image_id}: {view}" + (f" ({run})" if run and view not in ("photo", "ground truth") else "")
    figure = hover_figure(picture, mime, 1 if full_size else photo.factor, photo.shape, photo.hover_truth(class_set),
                          None if predicted is None else predicted.hover, class_set.names, title, notes)
    st.plotly_chart(figure, width="stretch", config={"displaylogo": False}, key="explorer_hover_chart")
    st.caption("Drag to zoom, double-click to reset; the cursor tells the true and the predicted class"
               + (f" (in {classes})." if len(predictions) > 1 else "."))
