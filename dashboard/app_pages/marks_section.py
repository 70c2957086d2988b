"""The Image explorer's marks: the region a link asks it to outline (``?outline=``) and the
boundary-band view of the error maps.

A link names an image and a region of it: ``?id=12&outline=instance:26001`` (an object of the
ground truth: the Error anatomy page's missed objects) or ``?id=12&outline=box:x0,y0,x1,y1`` (a
rectangle, ``x1`` and ``y1`` exclusive). The outline belongs to that image: when the user moves
to another one, it is dropped from the URL (an instance id names another object in another
image). A session remembers which image an outline came with (``ANCHOR``); pages that open the
explorer with an outline in the same session say so with ``open_in_explorer``.

The band view (a toggle in the sidebar) keeps the error maps' colours within ``d`` pixels of a
contour of the ground truth or of the run's prediction, where Boundary IoU scores, dims the rest,
and says how many of each run's wrong pixels lie there.
"""

from __future__ import annotations

import streamlit as st

import dashboard.anatomy_store as anatomy_store
import dashboard.mark_pictures as mark_pictures
import dashboard.outline as outline
import dashboard.pictures as pictures
import dashboard.state as state
import dashboard.store as store
from training.data.cityscapes import DatasetError
from training.runs.store import ArtifactError

BAND_KEY = "explorer_boundary_band"
ANCHOR = "_explorer_outline_anchor"  # (the ?outline= value, the image id it came with)
EXPLORER = "app_pages/explorer.py"

Marks, NO_MARKS = mark_pictures.Marks, mark_pictures.NO_MARKS
truth_picture = mark_pictures.truth_picture
prediction_picture = mark_pictures.prediction_picture
error_picture = mark_pictures.error_picture


def explorer_url(image_id: int, runs: list[str], wanted: outline.Outline | None = None) -> str:
    """A link to the explorer (relative to the app) showing ``image_id`` with ``runs`` and the outline."""
    params = [f"id={int(image_id)}"] + ([f"runs={','.join(runs)}"] if runs else [])
    if wanted is not None:
        params.append(f"{outline.OUTLINE_PARAM}={wanted.param}")
    return "explorer?" + "&".join(params)


def open_in_explorer(image_id: int, runs: list[str], wanted: outline.Outline | None = None) -> None:
    """Switch to the explorer (in this tab) on ``image_id`` with ``runs``, the region outlined."""
    state.set_image_id(int(image_id))
    state.set_runs(list(runs))
    if wanted is None:
        st.query_params.pop(outline.OUTLINE_PARAM, None)
        st.session_state.pop(ANCHOR, None)
    else:
        st.query_params[outline.OUTLINE_PARAM] = wanted.param
        st.session_state[ANCHOR] = (wanted.param, int(image_id))
    st.switch_page(EXPLORER, query_params=st.query_params.to_dict())


def _clear_outline() -> None:
    st.query_params.pop(outline.OUTLINE_PARAM, None)
    st.session_state.pop(ANCHOR, None)


def wanted_outline(image_id: int) -> outline.Outline | str | None:
    """The outline the URL asks for on this image (None: none, or it was another image's), or
    why it cannot be read."""
    raw = st.query_params.get(outline.OUTLINE_PARAM)
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
        return outline.parse_outline(raw)
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
        found = mark_pictures.region(image, wanted) if isinstance(wanted, outline.Outline) else None
        if found is not None and found.pixels is not None:
            note.caption(f"Outlined in white on the ground truth, predictions and error maps: {found.text}.")
        else:
            note.warning(f"Nothing outlined: {found.text if found is not None else wanted}.")
            wanted = None
        clear.button("Clear the outline", key="explorer_clear_outline", on_click=_clear_outline, width="stretch")
    ratios = tuple((run, ratio) for run in refs if not isinstance(refs[run], ArtifactError)
                   for ratio in [anatomy_store.boundary_ratio(key, run)] if ratio is not None)
    return Marks(wanted if isinstance(wanted, outline.Outline) else None, band, ratios)


def band_text(run: str, counts: outline.BandCounts) -> str:
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
