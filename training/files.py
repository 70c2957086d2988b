"""Files written atomically, and numbers made fit for JSON and CSV.

A reader sees the old file or the new one, never half of one. JSON has no NaN: every number
that can be NaN (an IoU of a class absent from an image, a mean over nothing) goes through
``finite_or_none`` on its way out, so metrics.json, API answers and CSV cells agree.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to a temporary file in the same folder, fsync it, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def finite_or_none(value, digits: int | None = None) -> float | None:
    """A float, rounded to ``digits`` if given; None for NaN, infinities and None.

    Example::

        >>> finite_or_none(float("nan")) is None, finite_or_none(np.float32(0.25))
        (True, 0.25)
    """
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits) if digits is not None else value


def jsonable(data):
    """``data`` with numpy scalars and arrays as Python values and non-finite floats as None,
    recursively (dicts, lists, tuples)."""
    if isinstance(data, dict):
        return {key: jsonable(item) for key, item in data.items()}
    if isinstance(data, (list, tuple)):
        return [jsonable(item) for item in data]
    if isinstance(data, np.ndarray):
        return jsonable(data.tolist())
    if isinstance(data, (float, np.floating)):
        return finite_or_none(data)
    if isinstance(data, np.integer):
        return int(data)
    if isinstance(data, np.bool_):
        return bool(data)
    return data


def write_json_atomic(path: str | os.PathLike, data) -> Path:
    return write_text_atomic(path, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")
