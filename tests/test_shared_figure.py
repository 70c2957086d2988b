"""``SharedArraysFigure``: Streamlit gets the same figure as from plotly's own ``to_dict``, without
the element-by-element copy of its string arrays, and the figure is never changed by it (it is
cached and shown again)."""

from __future__ import annotations

import json

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from dashboard.pictures.shared_figure import SharedArraysFigure


def _traces():
    names = np.array([["road", "car"], ["sky", "person"]]).astype(str)
    return [go.Image(source="data:image/png;base64,AAAA", x0=0.5, dx=2, hoverinfo="skip"),
            go.Heatmap(z=np.arange(4, dtype=np.uint8).reshape(2, 2), customdata=np.stack([names, names], axis=-1),
                       hovertemplate="true: %{customdata[0]}<extra></extra>", x0=1.5, dx=4, opacity=0,
                       colorscale=[[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]]),
            go.Scatter(x=np.linspace(0, 1, 5), y=[0.1, 0.2, 0.3, 0.4, 0.5], marker=dict(size=[1, 2, 3, 4, 5]))]


def _layout():
    return dict(xaxis=dict(range=[-0.5, 3.5]), annotations=[dict(text="a", x=0, y=1)], meta={"panels": ["a"]})


def test_the_dict_sent_is_plotlys_own_and_the_figure_stays_as_it_was():
    plotly_figure, shared = go.Figure(_traces(), _layout()), SharedArraysFigure(_traces(), _layout())
    expected = json.loads(pio.to_json(plotly_figure.to_dict(), validate=False))
    before = pio.to_json(shared, validate=False)
    for _ in range(2):  # shown twice: the in-place base64 step never reached the figure's own arrays
        assert json.loads(pio.to_json(shared.to_dict(), validate=False)) == expected
    assert pio.to_json(shared, validate=False) == before
    assert isinstance(shared.data[1].z, np.ndarray) and shared.data[1].z.dtype == np.uint8
    assert "bdata" in json.dumps(expected["data"][1]["z"])  # the numeric arrays did go as base64


def test_the_data_is_never_deep_copied(monkeypatch):
    import dashboard.pictures.shared_figure as shared_figure

    copied = []
    real = shared_figure.deepcopy
    monkeypatch.setattr(shared_figure, "deepcopy", lambda value: copied.append(value) or real(value))
    shared = SharedArraysFigure(_traces(), _layout())
    sent = shared.to_dict()
    assert all(value is not shared._data for value in copied) and len(copied) == 2  # the layout, the frames
    assert sent["data"][2]["marker"] is not shared._data[2]["marker"]  # its containers are copies
    assert sent["data"][2]["marker"]["size"] == [1, 2, 3, 4, 5]


def test_arrays_handed_over_unvalidated_send_what_validated_ones_do():
    """The hover names given as ``arrays`` (not validated, not copied) make the same JSON as the
    same names set through plotly's validators, for numpy string and object arrays alike."""
    names = np.array([["road", "car"], ["sky", "person"]]).astype(str)
    for cells in (np.stack([names, names], axis=-1), names.astype(object)):
        traces = _traces()
        validated = go.Figure([traces[0], go.Heatmap(traces[1], customdata=cells), traces[2]], _layout())
        shared = SharedArraysFigure(_traces(), _layout(), arrays=[{}, {"customdata": cells}])
        assert json.loads(pio.to_json(shared, validate=False)) == json.loads(pio.to_json(validated, validate=False))
        assert shared._data[1]["customdata"] is cells  # shared, not copied
