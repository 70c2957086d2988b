"""The Image explorer's marks: the region a link asks it to outline (``?outline=``) and the
boundary-band view of the error maps.

A link names an image and a region of it: ``?id=12&outline=instance:26001`` (an object of the
ground truth: the Error anatomy page's missed objects) or ``?id=12&outline=box:x0,y0,x1,y1`` (a
rectangle, ``x1`` and ``y1`` exclusive). The outline belongs to that image: when the user moves
to another one, it is dropped from the URL (an instance id names another object in another
image). A session remembers which image an outline came with (``links.ANCHOR``); pages that open
the explorer with an outline in the same session say so with ``links.open_in_explorer``.

The band view (a toggle in the sidebar) keeps the error maps' colours within ``d`` pixels of a
contour of the ground truth or of the run's prediction, where Boundary IoU scores, dims the rest,
and says how many of each run's wrong pixels lie there.
"""

from __future__ import annotations

import streamlit as st

import dashboard.pictures.images as pictures
import dashboard.pictures.marks as mark_pictures
import dashboard.readers.anatomy as anatomy_store
import dashboard.readers.store as store
from dashboard.pictures.marks import Marks
from dashboard.sections.links import ANCHOR
from dashboard.views.regions import OUTLINE_PARAM, Outline, parse_outline
from training.data.cityscapes import DatasetError
from training.evaluation.boundary import BandCounts
from training.runs.layout import ArtifactError

BAND_KEY = "explorer_boundary_band"


def _clear_outline() -> None:
    st.query_params.pop(OUTLINE_PARAM, None)
    st.session_state.pop(ANCHOR, None)


def wanted_outline(image_id: int) -> Outline | str | None:
    """The outline the URL asks for on this image (None: none, or it was another image's), or
    why it cannot be read."""
    raw = st.query_params.get(OUTLINE_PARAM)
    if raw is None:
        st.session_state.pop(ANCHOR, None)
        return None
    anchor = st.session_state.get(ANCHOR)
    if anchor is None or anchor[0] != raw:
        st.session_state[ANCHOR] = (raw, int(image_id))  # a link: the image it opened is the outline's
    elif anchor[1] != int(image_id):  # the user moved on: the outline named a region of another image
        _clear_outline()
        return None
    try:
        return parse_outline(raw)
    except ValueError as error:
        return str(error)


def marks_ui(key: store.StoreKey, image: pictures.ImageRef, refs: dict) -> Marks:
    """The sidebar's band toggle and the outline's caption (with a button that clears it)."""
    band = st.sidebar.toggle("Error maps: boundary band only", key=BAND_KEY,
                             help="Keep the error maps' colours within d pixels of a contour of the ground truth "
                                  "or of the prediction (where Boundary IoU scores), dim the rest.")
    wanted = wanted_outline(image.image_id)
    if wanted is not None:
        note, clear = st.columns([5, 1], vertical_alignment="center")
        found = mark_pictures.region(image, wanted) if isinstance(wanted, Outline) else None
        if found is not None and found.pixels is not None:
            note.caption(f"Outlined in white on the ground truth, predictions and error maps: {found.text}.")
        else:
            note.warning(f"Nothing outlined: {found.text if found is not None else wanted}.")
            wanted = None
        clear.button("Clear the outline", key="explorer_clear_outline", on_click=_clear_outline, width="stretch")
    ratios = tuple((run, ratio) for run in refs if not isinstance(refs[run], ArtifactError)
                   for ratio in [anatomy_store.boundary_ratio(key, run)] if ratio is not None)
    return Marks(wanted if isinstance(wanted, Outline) else None, band, ratios)


def band_text(run: str, counts: BandCounts) -> str:
    if not counts.wrong:
        return f"{run}: no wrong pixel"
    return f"{run}: {counts.in_band:,} of its {counts.wrong:,} wrong pixels ({counts.share:.1%})"


def band_ui(image: pictures.ImageRef, refs: dict, predictions: dict, marks: Marks) -> None:
    """Under the error maps, in the band view: each run's wrong pixels in the band, at full size."""
    if not marks.band:
        return
    runs = [run for members in predictions.values() for run in members]
    if not runs:
        return
    lines, widths = [], set()
    for run in runs:
        try:
            counts = mark_pictures.band(image, refs[run], marks.ratio(run)).counts
        except (ArtifactError, DatasetError) as error:
            lines.append(f"{run}: no band ({store.readable(error).removeprefix(f'run {run}: ')})")
            continue
        widths.add(counts.width)
        lines.append(band_text(run, counts))
    width = " or ".join(f"{d} px" for d in sorted(widths)) or "d"
    st.caption(f"Boundary band: within {width} of a contour of the ground truth or of the run's prediction "
               "(where Boundary IoU scores; outside it the error maps are dimmed). In the band: "
               + "; ".join(lines) + ". Counted at full size.")
