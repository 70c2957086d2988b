"""Pictures of segmentations: error maps, overlays, the legend (numpy only)."""

from __future__ import annotations

import html

import numpy as np

from training.labels import IGNORE_INDEX, ClassSet
from training.metrics import confusion_matrix, iou_per_class
from training.preview import overlay  # noqa: F401  (the one blend, used by the pages)

DIM = 0.3  # correct pixels of an error map: the photo in grey at 30 % brightness


def error_map(photo: np.ndarray, truth: np.ndarray, predicted: np.ndarray, class_set: ClassSet) -> np.ndarray:
    """Where the prediction is wrong, the colour of the TRUE class; correct pixels are the
    photo dimmed to grey; pixels without ground truth (ignored) are black."""
    grey = photo.astype(np.float32).mean(axis=-1, keepdims=True) * DIM
    out = np.repeat(grey, 3, axis=-1).round().astype(np.uint8)
    wrong = (truth != predicted) & (truth != IGNORE_INDEX)
    out[wrong] = class_set.palette()[truth[wrong]]
    out[truth == IGNORE_INDEX] = 0
    return out


def image_iou(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class IoU of one image (NaN for a class absent from both)."""
    return iou_per_class(confusion_matrix(truth, predicted, num_classes, ignore_index=IGNORE_INDEX))


def legend_html(names, colors) -> str:
    """Class names and colours (a class set's, or the API's) as a row of swatches, for
    ``st.markdown(..., unsafe_allow_html=True)``."""
    items = []
    for name, color in zip(names, colors):
        r, g, b = (int(v) for v in color)
        items.append(f'<span style="display:inline-block;margin:0 .8em .2em 0;white-space:nowrap">'
                     f'<span style="display:inline-block;width:.9em;height:.9em;background:rgb({r},{g},{b});'
                     f'border:1px solid #888;vertical-align:middle"></span> {html.escape(name)}</span>')
    return "<div>" + "".join(items) + "</div>"
