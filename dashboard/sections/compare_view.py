"""The Image explorer's comparison view: the photo, the ground truth and every chosen run's
prediction (or error map) as large panels, two a row, zoomed and panned together
(``pictures.compare_figure``), with the opacity and the class toggles of the small multiples
(``sections.picture_grid.controls_ui``) applying to every panel, and the cursor telling the true
class and every run's class in any panel.

The default for 1 to 4 runs; the small multiples stay a choice (``?layout=grid``) and take over
for 5 runs or more (``views.compare_panels.chosen_layout``). A fragment, as the small multiples:
its controls rerun it alone.

On a frame wider than the display width the panels show the full-size pictures (a toggle, on by
default), so a zoom shows the frame's own pixels: the photo sent once and a class layer a panel
that the browser blends (``pictures.compare_figure``; measured in ``bench/bench_dashboard.py
--compare-view``); off, the display-size pictures, with the outline and the boundary band of
``sections.marks``.
"""

from __future__ import annotations

import streamlit as st

import dashboard.pictures.compare_figure as compare_figure
import dashboard.pictures.images as pictures
import dashboard.pictures.marks as marks
import dashboard.readers.store as store
import dashboard.sections.picture_grid as pictures_section
import dashboard.views.compare_panels as compare
from dashboard.views.hover_cells import class_name_lookup, hover_grid
from dashboard.views.run_names import NO_CLASS
from training.data.cityscapes import DatasetError
from training.data.labels import get_class_set
from training.evaluation.confusions import wrong_share
from training.runs.layout import ArtifactError
from training.viz import legend_html

LAYOUT_KEY, URL_LAYOUT = "explorer_layout", "_explorer_url_layout"
KIND_KEY, FULL_SIZE_KEY = "explorer_compare_kind", "explorer_compare_full"
CHART_KEY = "explorer_compare_chart"

Note = pictures_section.Note
RunViews = pictures_section.RunViews


# ---------------------------------------------------------------------------- the layout

def layout_ui(runs: int) -> str:
    """The layout of the pictures for ``runs`` runs (``views.compare_panels.LAYOUTS``), a choice
    synchronised with ``?layout=``; 5 runs or more take the small multiples, saying so."""
    raw = st.query_params.get(compare.LAYOUT_PARAM)
    if runs > compare.MAX_RUNS:
        st.caption(f"{runs} runs: small multiples (the side-by-side view takes up to {compare.MAX_RUNS} runs).")
        return compare.SMALL_MULTIPLES
    if LAYOUT_KEY not in st.session_state or raw != st.session_state.get(URL_LAYOUT):
        st.session_state[LAYOUT_KEY] = compare.chosen_layout(raw, runs)  # first visit, or a link
    layout = st.radio("Layout", compare.LAYOUTS, key=LAYOUT_KEY, horizontal=True,
                      help="Side by side: large panels that zoom and pan together (drag a box in any panel). "
                           "Small multiples: every prediction and error map at once, smaller.")
    value = compare.layout_param(layout)
    if value is None:
        st.query_params.pop(compare.LAYOUT_PARAM, None)
    elif st.query_params.get(compare.LAYOUT_PARAM) != value:
        st.query_params[compare.LAYOUT_PARAM] = value
    st.session_state[URL_LAYOUT] = value
    return layout


# ---------------------------------------------------------------------------- the panels

def _wanted(groups: dict[str, list[str]], views: RunViews, refs: dict,
            kind: str) -> list[tuple[str, str, str, pictures.RunRef | None]]:
    """(title, kind, class set, run) of each panel: the photo, each class set's ground truth, each
    run with a prediction that can be shown (titled as the small multiples caption them)."""
    several = len(groups) > 1
    wanted = [("photo", "photo", next(iter(groups)), None)]
    wanted += [("ground truth" + (f" ({classes})" if several else ""), "ground truth", classes, None)
               for classes in groups]
    for classes, runs in groups.items():
        for run in runs:
            view = views[run]
            if isinstance(view, Note):
                continue
            if kind == compare.ERROR_MAP:
                title = f"{run}: errors ({wrong_share(view.confusion):.1%} of pixels wrong)"
            else:
                title = f"{run}: prediction" + (" (imported)" if refs[run].imported else "")
            wanted.append((title, kind, classes, refs[run]))
    return wanted


def _hover(photo, groups: dict[str, list[str]], views: RunViews, labels: dict[str, str], panels: int):
    """(names, template, stride): the true class in each class set and every shown run's class at
    the comparison view's hover cells."""
    several = len(groups) > 1
    lines = []
    for classes in groups:
        class_set = get_class_set(classes)
        lines.append(("true" + (f" ({classes})" if several else ""), photo.hover_truth(class_set),
                      class_name_lookup(class_set.names)))
    for classes, runs in groups.items():
        lookup = class_name_lookup(get_class_set(classes).names, NO_CLASS)
        lines += [(labels.get(run, run), views[run].hover, lookup) for run in runs if not isinstance(views[run], Note)]
    stride = compare.hover_stride(lines[0][1].shape, panels)
    names, template = compare.hover_cells([(label, compare.coarse_cells(cells, stride), lookup)
                                           for label, cells, lookup in lines])
    return names, template, stride


def _notes_ui(groups: dict[str, list[str]], views: RunViews) -> None:
    """Why a chosen run has no panel (no prediction for this image, a damaged file)."""
    for run in (run for runs in groups.values() for run in runs):
        view = views[run]
        if isinstance(view, Note):
            (st.info if view.level == "info" else st.warning)(view.text)


def _caption(photo, groups, views, kind: str, full_size: bool, stride: int, marked: marks.Marks) -> str:
    height, width = photo.shape
    _, _, step_y, step_x = hover_grid(height, width)
    text = ("Drag a box in any panel to zoom: every panel follows (double-click to reset, the toolbar pans). "
            f"The cursor tells the true class and each run's class, read at one pixel of every "
            f"{step_x * stride}x{step_y * stride} block (the Zoom and hover view below reads finer).")
    if kind == compare.ERROR_MAP:
        text += " Error maps: wrong pixels in the colour of the true class, correct ones dimmed, ignored ones black."
    if full_size and photo.factor > 1:
        text += f" Pictures at the image's own size ({width}x{height})"
        if marked.outline is not None or marked.band:
            text += "; the outline and the boundary band are drawn at display size: turn Full resolution off"
        text += "."
    elif photo.factor > 1:
        text += (f" Shown at {width // photo.factor}x{height // photo.factor} (the image is {width}x{height}): "
                 "turn Full resolution on to zoom into its own pixels.")
    black = [run for runs in groups.values() for run in runs
             if not isinstance(views[run], Note) and views[run].no_class]
    if black:
        text += (f" Black in the prediction of {', '.join(black)}: the imported prediction names no class of "
                 "the set there.")
    if not st.session_state.get(pictures_section.SHOW_KEY):
        text += " No class is chosen in Show classes: the pictures show the photo only."
    return text


@st.fragment
def compare_ui(image: pictures.ImageRef, refs: dict, groups: dict[str, list[str]], views: RunViews,
               marked: marks.Marks, labels: dict[str, str]) -> None:
    """The controls (opacity, classes shown, what the runs' panels show, full resolution), the
    legends, the notes of runs without a panel, and the figure of panels zoomed together."""
    pictures_section.controls_ui(groups)
    photo = pictures.photo_view(image)
    kind_column, size_column = st.columns([3, 2], vertical_alignment="bottom")
    kind = kind_column.radio("Run panels show", compare.PANEL_KINDS, key=KIND_KEY, horizontal=True)
    full_size = marked.outline is None and not marked.band  # at display size 1, exact PNGs unless marked
    if photo.factor > 1:
        height, width = photo.shape
        full_size = size_column.toggle(f"Full resolution ({width}x{height})", value=True, key=FULL_SIZE_KEY,
                                       help="Embed the pictures at the image's own size, so that a zoom shows "
                                            "its own pixels (more to send for each image).")
    several = len(groups) > 1
    for number, classes in enumerate(groups):
        class_set = get_class_set(classes)
        # the panels' style rides with the first legend: an st.html of its own loads two more scripts
        style = compare_figure.PIXELATED_CSS.format(key=CHART_KEY) if number == 0 else ""
        st.markdown(style + (f"**{classes}** " if several else "") + legend_html(class_set.names, class_set.colors),
                    unsafe_allow_html=True)
    _notes_ui(groups, views)
    wanted = _wanted(groups, views, refs, kind)
    shown_of = {classes: pictures_section.shown_classes(get_class_set(classes).names) for classes in groups}
    opacity = pictures_section.opacity()
    try:
        panels = compare_figure.panel_pictures(image, wanted, opacity, shown_of, full_size, marked)
    except (ArtifactError, DatasetError) as error:
        st.warning(f"The full-size pictures cannot be read ({store.readable(error, None, image.root)}): "
                   "shown at display size.")
        panels = compare_figure.panel_pictures(image, wanted, opacity, shown_of, False, marked)
    names, template, stride = _hover(photo, groups, views, labels, len(panels))
    figure = compare_figure.compare_figure(panels, photo.shape, names, template, stride)
    st.plotly_chart(figure, width="stretch", key=CHART_KEY, config={"displaylogo": False, "scrollZoom": True})
    if not any(runs for runs in groups.values()):
        st.info("Choose runs in the sidebar to see their predictions.")
    st.caption(_caption(photo, groups, views, kind, full_size, stride, marked))
