"""The Image explorer's comparison view as one plotly figure: the photo, the ground truth and each
run's prediction (or error map) as panels, two a row, whose axes all match (``matches="x"`` /
``"y"``): a zoom or a pan in one panel moves every panel, in the browser alone (Streamlit does not
send plotly's zoom back, and needs not).

Each panel embeds its picture (``go.Image(source=...)``, a data URI: nothing fetched) under a
transparent heatmap whose cells tell the true class and every run's class
(``views.compare_panels.hover_cells``). The pictures are at the image's own resolution when asked
(``full_size``), so a zoom shows the frame's own pixels, or at display size, the pictures the small
multiples show (outline and boundary band included). Full-size pictures are drawn from one
decoding of the image and of each prediction, encoded as PNG where they are class colours only (an
error map; an overlay at opacity 1), so their colours are exact, else as JPEG, and cached like
the other pictures (``pictures.images.cache``, bounded in bytes).
"""

from __future__ import annotations

import base64
from typing import NamedTuple

import numpy as np
import plotly.graph_objects as go

import dashboard.pictures.drawing as display
import dashboard.pictures.images as pictures
import dashboard.pictures.marks as marks
import dashboard.views.compare_panels as compare
from dashboard.pictures.shared_figure import SharedArraysFigure
from dashboard.views.hover_cells import hover_grid
from training.data.labels import get_class_set
from training.viz import error_map, overlay

PANEL_WIDTH = 580  # px a panel is drawn for (two a row on a wide page); the height follows the frame
TITLE_HEIGHT = 26  # px above each panel for its title


class Panel(NamedTuple):
    """One panel: its title, its picture (encoded bytes, MIME type) and how many of the image's
    pixels one of the picture's pixels stands for (1: full size)."""

    title: str
    picture: bytes
    mime: str
    scale: int


# ---------------------------------------------------------------------------- the pictures

class _FullSize:
    """The image's full-size photo and labelIds, and the runs' predictions, each from the decoded
    files' cache (``pictures.images.full_size_pair``), when a panel not in the cache first needs it."""

    def __init__(self, image: pictures.ImageRef):
        self.image = image

    def pair(self) -> tuple[np.ndarray, np.ndarray]:
        return pictures.full_size_pair(self.image)

    def predicted(self, run: pictures.RunRef) -> np.ndarray:
        return pictures.full_size_prediction(self.image, run)


def _encoded(picture: np.ndarray, exact: bool) -> tuple[bytes, str]:
    if exact:
        return display.encode_png(picture), "image/png"
    return display.encode_jpeg(picture), "image/jpeg"


def _kept(painted: np.ndarray, photo: np.ndarray, classes: np.ndarray, shown) -> np.ndarray:
    return painted if shown is None else display.keep_classes(painted, photo, classes, shown)


def full_size_picture(image: pictures.ImageRef, loaded: _FullSize, kind: str, classes: str,
                      run: pictures.RunRef | None, opacity: float,
                      shown: tuple[int, ...] | None) -> tuple[bytes, str]:
    """(encoded picture, MIME type) of one panel at the image's own size: ``kind`` "photo",
    "ground truth" (in ``classes``), or with ``run`` "prediction" or "error map"; ``shown`` the
    class indices painted (None: all)."""
    def compute() -> tuple[bytes, str]:
        photo, label_ids = loaded.pair()
        class_set = get_class_set(classes)
        if kind == "photo":
            return _encoded(photo, False)
        truth = class_set.lut[label_ids]
        if kind == "ground truth":
            return _encoded(_kept(overlay(photo, class_set.colorize(truth), opacity), photo, truth, shown),
                            opacity >= 1 and shown is None)
        predicted = loaded.predicted(run)
        if kind == compare.ERROR_MAP:
            picture = error_map(photo, truth, predicted, class_set)
            if shown is not None:
                picture = display.keep_errors(picture, photo, truth, predicted, shown)
            return _encoded(picture, True)
        return _encoded(_kept(overlay(photo, class_set.colorize(predicted), opacity), photo, predicted, shown),
                        opacity >= 1 and shown is None)

    key = ("compare", image, kind, classes, run if kind in compare.PANEL_KINDS else None, opacity, shown)
    return pictures.cache().get_or_compute(key, compute)


def display_picture(image: pictures.ImageRef, kind: str, classes: str, run: pictures.RunRef | None,
                    opacity: float, shown: tuple[int, ...] | None, marked: marks.Marks) -> tuple[bytes, str]:
    """(encoded picture, MIME type) of one panel at display size: the small multiples' own picture
    (with its outline and boundary band)."""
    if kind == "photo":
        return pictures.photo_view(image).jpeg, "image/jpeg"
    if kind == "ground truth":
        return marks.truth_picture(image, classes, opacity, marked, shown), "image/jpeg"
    if kind == compare.ERROR_MAP:
        return marks.error_picture(image, run, marked, shown), "image/png"
    return marks.prediction_picture(image, run, opacity, marked, shown), "image/jpeg"


def panel_pictures(image: pictures.ImageRef, wanted: list[tuple[str, str, str, pictures.RunRef | None]],
                   opacity: float, shown_of: dict[str, tuple[int, ...] | None], full_size: bool,
                   marked: marks.Marks) -> list[Panel]:
    """The panels ``wanted`` names, each ``(title, kind, class set, run or None)``, at full size or at
    display size; ``shown_of`` gives each class set's shown classes.

    Raises:
        ArtifactError, DatasetError: a file cannot be read (at full size: decoded here unless cached).
    """
    factor = 1 if full_size else pictures.photo_view(image).factor
    loaded, panels = _FullSize(image), []
    for title, kind, classes, run in wanted:
        if full_size:
            picture, mime = full_size_picture(image, loaded, kind, classes, run, opacity, shown_of.get(classes))
        else:
            picture, mime = display_picture(image, kind, classes, run, opacity, shown_of.get(classes), marked)
        panels.append(Panel(title, picture, mime, factor))
    return panels


# ---------------------------------------------------------------------------- the figure

def data_uri(picture: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(picture).decode("ascii")


def _axis(number: int, letter: str) -> str:
    """The name of panel ``number``'s axis in a trace ("x", "x2", ...)."""
    return letter if number == 0 else f"{letter}{number + 1}"


def compare_figure(panels: list[Panel], shape: tuple[int, int], names: np.ndarray, template: str, stride: int,
                   columns: int = compare.COLUMNS) -> go.Figure:
    """The panels, ``columns`` a row, on axes that all match, each under a transparent heatmap
    whose cells tell ``names`` through ``template`` (``views.compare_panels.hover_cells``; the
    cells of ``hover_grid(*shape)`` taken every ``stride``-th, ``views.compare_panels.coarse_cells``).
    The axes count the image's own pixels (y down); ``layout.meta["panels"]`` lists the titles.

    Built in one go (traces, then one layout): each ``update_*`` of a plotly figure copies its
    arrays again (three times the time, for the hover names), and the names are handed over
    unvalidated (``SharedArraysFigure``'s ``arrays``)."""
    height, width = shape
    rows = compare.panel_rows(len(panels), columns)
    _, _, step_y, step_x = hover_grid(height, width)
    cell_y, cell_x = step_y * stride, step_x * stride
    panel_height = PANEL_WIDTH * height / max(width, 1)
    figure_height = rows * (panel_height + TITLE_HEIGHT) + 10
    gap_x, gap_y = 0.01, TITLE_HEIGHT / figure_height
    panel_w, panel_h = (1 - gap_x * (columns - 1)) / columns, (1 - gap_y * (rows - 1)) / rows
    transparent = [[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]]
    zeros = np.zeros(names.shape[:2], dtype=np.uint8)
    traces, layout, titles, arrays = [], {}, [], []
    for number, panel in enumerate(panels):
        row, column = divmod(number, columns)
        x, y = _axis(number, "x"), _axis(number, "y")
        left, top = column * (panel_w + gap_x), 1 - row * (panel_h + gap_y)
        centre = (panel.scale - 1) / 2  # the centre of the picture's first pixel, in the image's pixels
        traces.append(go.Image(source=data_uri(panel.picture, panel.mime), x0=centre, dx=panel.scale, y0=centre,
                               dy=panel.scale, hoverinfo="skip", name=panel.title, xaxis=x, yaxis=y))
        arrays += [{}, {"customdata": names}]  # the same names under every panel, handed over as they are
        traces.append(go.Heatmap(z=zeros, x0=(cell_x - 1) / 2, dx=cell_x, y0=(cell_y - 1) / 2, dy=cell_y,
                                 hovertemplate=template + "<br>x %{x:.0f}, y %{y:.0f}<extra></extra>",
                                 colorscale=transparent, showscale=False, opacity=0, name=panel.title,
                                 xaxis=x, yaxis=y))
        common = dict(showticklabels=False, ticks="", showgrid=False, zeroline=False, constrain="domain")
        layout[x.replace("x", "xaxis")] = dict(common, domain=[left, left + panel_w], range=[-0.5, width - 0.5],
                                               anchor=y, **({"matches": "x"} if number else {}))
        layout[y.replace("y", "yaxis")] = dict(common, domain=[top - panel_h, top], range=[height - 0.5, -0.5],
                                               anchor=x, **({"matches": "y"} if number else {"scaleanchor": "x"}))
        titles.append(dict(text=panel.title, x=left + panel_w / 2, y=top, xref="paper", yref="paper",
                           xanchor="center", yanchor="bottom", showarrow=False, font=dict(size=13)))
    return SharedArraysFigure(data=traces, layout=dict(
        layout, annotations=titles, margin=dict(l=0, r=0, t=TITLE_HEIGHT, b=0), dragmode="zoom",
        hovermode="closest", height=int(figure_height), meta={"panels": [panel.title for panel in panels]}),
        arrays=arrays)
