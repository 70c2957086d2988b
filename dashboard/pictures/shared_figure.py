"""A plotly figure that hands its arrays to Streamlit without copying them element by element.

``st.plotly_chart`` turns a figure into a dict with ``Figure.to_dict``, which deep-copies the
figure's data first. A deep copy of a numpy array of strings (plotly keeps the hover names of the
explorer's figures as object arrays) copies every element one Python call at a time: 250,000 names
at 2048x1024, about 0.8 s of a page's first visit. The copy only protects the figure from
``to_dict``'s own in-place step that swaps numeric arrays for their base64 form, so copying the
dicts and lists that hold the arrays, and not the arrays, protects it just as well: the figure
(cached and shown again on the next rerun) is never changed, and the dict sent is the same.

Plotly copies the arrays once more when the figure is made (``BaseFigure.__init__`` deep-copies
each trace's validated properties) and validates string arrays by copying them into object arrays:
for the explorer's two figures about 0.3 s of every new image, at either resolution (their hover
grids are the same size). ``arrays`` hands such arrays to the figure after it is made, as they are:
plotly's JSON of a numpy array is its ``tolist()`` whether validated or not, so what is sent is the
same (``tests/test_shared_figure.py``).
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

import plotly.graph_objects as go
from _plotly_utils.utils import convert_to_base64


def _containers_copied(value: Any) -> Any:
    """``value`` with every dict, list and tuple in it copied, and everything else (arrays, strings,
    numbers) shared."""
    if isinstance(value, dict):
        return {key: _containers_copied(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_containers_copied(item) for item in value)
    return value


class SharedArraysFigure(go.Figure):
    """A ``go.Figure`` whose ``to_dict`` shares its arrays (module docstring); everything else is
    plotly's own. ``arrays``, one dict a trace (in ``data``'s order, fewer allowed), holds trace
    properties set without plotly's validation and copy: numpy arrays of the type plotly takes for
    them (strings or numbers), which the figure shares and never changes."""

    def __init__(self, data=None, layout=None, arrays: list[dict[str, Any]] | None = None, **kwargs):
        super().__init__(data=data, layout=layout, **kwargs)
        for trace, extra in zip(self._data, arrays or (), strict=False):
            trace.update(extra)

    def to_dict(self) -> dict:
        result = {"data": _containers_copied(self._data), "layout": deepcopy(self._layout)}
        frames = deepcopy([frame._props for frame in self._frame_objs])
        if frames:
            result["frames"] = frames
        convert_to_base64(result)
        return result
