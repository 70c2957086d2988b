"""Numbers as the pages print them: a value of a damaged file is not a number, and a missing
number reads "-". Pure functions (no Streamlit)."""

from __future__ import annotations

import numpy as np


def as_number(value) -> float:
    """A number of a metrics.json as a float; NaN for null and for anything that is not a number
    (a damaged file may hold a string, a list, ... where a number belongs)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return float("nan")
    return float(value)


def number_text(value, spec: str = ".3f", unit: str = "") -> str:
    """``value`` formatted with ``spec`` (and `` unit``), or "-" when it is missing or not a number."""
    number = as_number(value)
    if np.isnan(number):
        return "-"
    return f"{number:{spec}}" + (f" {unit}" if unit else "")


def symmetric_limit(values: np.ndarray, minimum: float = 0.05, margin: float = 1.25) -> float:
    """An axis half-width that shows every value, centred on zero (``minimum`` when all are NaN)."""
    values = np.asarray(values, dtype=float)
    if np.isnan(values).all():
        return minimum
    return max(minimum, float(np.nanmax(np.abs(values))) * margin)


# How wide a table's column must be to show a cell or a header whole (Streamlit's tables cut what
# does not fit, "params (M" for "params (M)"): about 7 px a character at the tables' 14 px font,
# and the cell's padding.
CHAR_PX, PADDING_PX = 7, 20


def text_width(text) -> int:
    """The pixels a table cell (or header) needs to show ``text`` whole."""
    return CHAR_PX * len(str(text)) + PADDING_PX


def column_width(header: str, texts=(), low: int = 50, high: int = 360) -> int:
    """A column's width in pixels: enough for its header and every one of ``texts`` (the cells as
    shown), within ``low`` and ``high``."""
    return int(min(high, max(low, text_width(header), *(text_width(text) for text in texts))))
