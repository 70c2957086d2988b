"""The Image explorer's confidence section: a run's confidence on the image as a heatmap, and its
prediction with the pixels under a threshold greyed out, with the share of pixels kept.

A fragment: moving the threshold reruns this section only, not the page (whose pictures are
cached anyway, but whose widgets and tables would be drawn again). The share is counted on every
full-size pixel (``training.evaluation.calibration.kept_share``), the pictures are at display size.
"""

from __future__ import annotations

import streamlit as st

import dashboard.pictures.confidence_maps as confidence_pictures
import dashboard.pictures.images as pictures
import dashboard.readers.store as store
import dashboard.views.calibration_tables as confidence
from training.runs.layout import ArtifactError

RUN_KEY, THRESHOLD_KEY = "explorer_confidence_run", "explorer_confidence_threshold"
DEFAULT_THRESHOLD = 0.5


def available_map(image: pictures.ImageRef, run: pictures.RunRef) -> confidence_pictures.ConfidenceView | str:
    """``run``'s confidence view of the image, or why there is none to show (a note for people)."""
    note = confidence_pictures.missing_note(image, run)
    if note:
        return note
    try:
        view = confidence_pictures.confidence_view(image, run)
    except ArtifactError as error:
        return store.readable(error).removeprefix(f"run {run.name}: ")
    return view.problem or view


@st.fragment
def confidence_ui(image: pictures.ImageRef, refs: dict, predictions: dict, opacity: float,
                  labels: dict[str, str]) -> None:
    """``predictions``: the runs' predictions that can be shown, by class set then run (the page's)."""
    st.subheader("Confidence")
    runs = [run for members in predictions.values() for run in members]
    if not runs:
        st.caption("No selected run has a prediction for this image.")
        return
    run = st.selectbox("Confidence of the run", runs, key=RUN_KEY, format_func=lambda name: labels.get(name, name))
    shown = available_map(image, refs[run])
    if isinstance(shown, str):
        st.info(f"{run}: {shown}.")
        return
    threshold = st.slider("Confidence threshold", 0.0, 1.0, DEFAULT_THRESHOLD, 0.01, key=THRESHOLD_KEY,
                          help="The prediction keeps its colours where the model's top softmax probability "
                               "reaches this; below it, the photo shows in grey.")
    share = shown.kept_share(threshold)
    heat, kept, numbers = st.columns([2, 2, 1])
    heat.image(confidence_pictures.heatmap_picture(image, refs[run]), output_format="JPEG", width="stretch",
               caption=f"{run}: confidence")
    kept.image(confidence_pictures.thresholded_picture(image, refs[run], opacity, threshold), output_format="JPEG",
               width="stretch", caption=f"{run}: prediction, grey under {threshold:.2f}")
    numbers.metric("Pixels kept", f"{share:.1%}", help="of all the image's pixels (at full size)")
    numbers.markdown(confidence.colorbar_html(9), unsafe_allow_html=True)
    st.caption(f"{share:.1%} of this image's pixels have a confidence of at least {threshold:.2f} and keep their "
               "class colour; the others are grey, what this threshold would leave unlabelled. Counted on every "
               "pixel at full size; the Calibration page shows how far the confidence can be trusted.")
