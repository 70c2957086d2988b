"""The Image explorer's comparison view as one plotly figure: the photo, the ground truth and each
run's prediction (or error map) as panels, two a row, whose axes all match (``matches="x"`` /
``"y"``): a zoom or a pan in one panel moves every panel, in the browser alone (Streamlit does not
send plotly's zoom back, and needs not).

Each panel stacks its pictures as layout images under a transparent heatmap whose cells tell the
true class and every run's class (``views.compare_panels.hover_cells``). At the image's own
resolution (``full_size``, so that a zoom shows the frame's own pixels) a panel is the photo (or
its dimmed grey, under an error map), served once from Streamlit's media endpoint and shared by
every panel, with a palette PNG of class colours laid over it at the overlay's opacity
(``pictures.layers``): the browser blends what Python blended before, and an image change sends
one photo and a few small PNGs instead of five full-size JPEGs. At display size a panel is the
small multiples' own picture (outline and boundary band included), embedded as a data URI. The
encoded layers are cached like the other pictures (``pictures.images.cache``, bounded in bytes).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import plotly.graph_objects as go

import dashboard.pictures.drawing as display
import dashboard.pictures.images as pictures
import dashboard.pictures.layers as layers
import dashboard.pictures.marks as marks
import dashboard.views.compare_panels as compare
from dashboard.pictures.drawing import data_uri
from dashboard.pictures.media import media_url
from dashboard.pictures.shared_figure import SharedArraysFigure
from dashboard.views.hover_cells import hover_grid
from training.data.labels import get_class_set
from training.viz import dimmed_grey

PANEL_WIDTH = 580  # px a panel is drawn for (two a row on a wide page); the height follows the frame
TITLE_HEIGHT = 26  # px above each panel for its title
LAYER_NUDGE = 1e-6  # px between a panel's layers (see compare_figure)
MEDIA_COORDINATES = "explorer_compare"  # where the shared photos are registered with Streamlit's media
# Layout images are smoothed when scaled; the panels show pixels as they are (as plotly's image traces did).
PIXELATED_CSS = "<style>.st-key-{key} image {{image-rendering: pixelated;}}</style>"


class Layer(NamedTuple):
    """One picture of a panel: where the browser gets it (a URL or a data URI) and its opacity."""

    source: str
    opacity: float


class Panel(NamedTuple):
    """One panel: its title, its pictures bottom first, and how many of the image's pixels one of
    the pictures' pixels stands for (1: full size)."""

    title: str
    layers: tuple[Layer, ...]
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


def _base(image: pictures.ImageRef, loaded: _FullSize, grey: bool) -> bytes:
    """The photo (or its dimmed grey, the ground of an error map) as JPEG, once per image."""
    def compute() -> bytes:
        photo, _ = loaded.pair()
        return display.encode_jpeg(np.repeat(dimmed_grey(photo)[..., None], 3, axis=-1) if grey else photo)

    return pictures.cache().get_or_compute(("compare base", image, grey), compute)


def class_layer_png(image: pictures.ImageRef, loaded: _FullSize, kind: str, classes: str,
                    run: pictures.RunRef | None, shown: tuple[int, ...] | None) -> bytes:
    """The layer of one panel at the image's own size (``pictures.layers``): the ground truth (in
    ``classes``), or with ``run`` its "prediction" or "error map"; ``shown`` the class indices
    painted (None: all)."""
    def compute() -> bytes:
        _, label_ids = loaded.pair()
        class_set = get_class_set(classes)
        truth = class_set.lut[label_ids]
        if kind == "ground truth":
            return layers.class_layer(truth, class_set, shown)
        predicted = loaded.predicted(run)
        if kind == compare.ERROR_MAP:
            return layers.error_layer(truth, predicted, class_set, shown)
        return layers.class_layer(predicted, class_set, shown)

    key = ("compare layer", image, kind, classes, run if kind in compare.PANEL_KINDS else None, shown)
    return pictures.cache().get_or_compute(key, compute)


def full_size_layers(image: pictures.ImageRef, loaded: _FullSize, kind: str, classes: str,
                     run: pictures.RunRef | None, opacity: float, shown: tuple[int, ...] | None) -> tuple[Layer, ...]:
    """A panel's layers at the image's own size: the shared photo (its grey under an error map)
    from the media endpoint, and the panel's class layer over it (at ``opacity``; an error map's
    colours opaque)."""
    grey = kind == compare.ERROR_MAP
    base = Layer(media_url(_base(image, loaded, grey), "image/jpeg",
                           f"{MEDIA_COORDINATES}.{'grey' if grey else 'photo'}"), 1.0)
    if kind == "photo":
        return (base,)
    layer = class_layer_png(image, loaded, kind, classes, run, shown)
    return base, Layer(data_uri(layer, "image/png"), 1.0 if grey else float(opacity))


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
            stack = full_size_layers(image, loaded, kind, classes, run, opacity, shown_of.get(classes))
        else:
            picture, mime = display_picture(image, kind, classes, run, opacity, shown_of.get(classes), marked)
            stack = (Layer(data_uri(picture, mime), 1.0),)
        panels.append(Panel(title, stack, factor))
    return panels


# ---------------------------------------------------------------------------- the figure

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
    traces, layout, titles, arrays, images = [], {}, [], [], []
    for number, panel in enumerate(panels):
        row, column = divmod(number, columns)
        x, y = _axis(number, "x"), _axis(number, "y")
        left, top = column * (panel_w + gap_x), 1 - row * (panel_h + gap_y)
        # The pictures cover the image's pixels edge to edge, whatever their scale (y grows downwards).
        # plotly.js keys a subplot's layout images by their place and size: a layer placed exactly on
        # another is dropped, so each layer sits a millionth of a pixel lower.
        images += [dict(source=layer.source, xref=x, yref=y, x=-0.5, y=-0.5 + depth * LAYER_NUDGE, sizex=width,
                        sizey=height, xanchor="left", yanchor="top", sizing="stretch", layer="below",
                        opacity=layer.opacity) for depth, layer in enumerate(panel.layers)]
        arrays.append({"customdata": names})  # the same names under every panel, handed over as they are
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
        layout, annotations=titles, images=images, margin=dict(l=0, r=0, t=TITLE_HEIGHT, b=0), dragmode="zoom",
        hovermode="closest", height=int(figure_height), meta={"panels": [panel.title for panel in panels]}),
        arrays=arrays)
