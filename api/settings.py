"""The API's settings: their defaults, and the check that refuses to start with a wrong one.

Each setting is ``app.config[NAME]``, set by ``SEGAPI_NAME`` in the environment (read by Flask's
``from_prefixed_env``: JSON where it parses, the text otherwise) or by ``create_app(test_config)``.
A wrong value once made every upload a 500 (``SEGAPI_MAX_CONTENT_LENGTH=abc``) or every image a
503 (``SEGAPI_DATA_ROOT=5``); now it stops the start, with every wrong setting named with its
value. gunicorn's config runs the same check before it starts a worker.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Config

PREFIX = "SEGAPI"
DEFAULTS = {
    "ARTIFACTS_DIR": None,  # the run store; None: $ARTIFACTS_DIR or artifacts/
    "DATA_ROOT": None,  # the dataset; None: the served run's data.root, $CITYSCAPES_DATASET, the embedded one
    "RUN": None,  # serve this run instead of the deployed one
    "EXPORT": None,  # with RUN: serve this TFLite export of it
    "MAX_CONTENT_LENGTH": 16 * 2**20,  # bytes of an upload (413 beyond)
    # Pixels of an upload (413 beyond): a 12 MP phone photo fits; 16 MP decode to 48 MB of RGB.
    "MAX_UPLOAD_PIXELS": 16_000_000,
    # Uploads decoded at once in a process, and how long another waits for its turn (then 503):
    # the decoded pixels, not the bytes, are what fill a worker's memory.
    "MAX_DECODING_UPLOADS": 2,
    "UPLOAD_QUEUE_SECONDS": 30,
    "CACHE_BYTES": 256 * 2**20,  # cached predictions, answers and pictures
    "INPUT_CACHE_BYTES": 96 * 2**20,  # decoded photos and labels
    "WARM_UP": False,  # load the model and predict once when the app is created
}


class SettingsError(ValueError):
    """One or more settings are wrong; the message names each with its value."""


def _whole(minimum: int):
    def check(value) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
            return None
        return f"not a whole number of at least {minimum}"
    return check


def _seconds(value) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < float("inf"):
        return None
    return "not a number of seconds (0 or more)"


def _name(value) -> str | None:
    return None if value is None or (isinstance(value, str) and value.strip()) else "not a name"


def _flag(value) -> str | None:
    return None if isinstance(value, bool) else "not true or false"


def _folder(must_exist: bool):
    def check(value) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, (str, os.PathLike)):
            return "not a folder"
        path = Path(value)
        if path.is_dir() or (not must_exist and not path.exists()):
            return None
        return "not a folder"
    return check


CHECKS = {
    # A store that does not exist yet is empty (nothing deployed); a dataset must be there.
    "ARTIFACTS_DIR": _folder(must_exist=False),
    "DATA_ROOT": _folder(must_exist=True),
    "RUN": _name,
    "EXPORT": _name,
    "MAX_CONTENT_LENGTH": _whole(1),
    "MAX_UPLOAD_PIXELS": _whole(1),
    "MAX_DECODING_UPLOADS": _whole(1),
    "UPLOAD_QUEUE_SECONDS": _seconds,
    "CACHE_BYTES": _whole(0),
    "INPUT_CACHE_BYTES": _whole(0),
    "WARM_UP": _flag,
}


def check_settings(config) -> None:
    """Raise SettingsError naming every wrong setting of ``config`` (an app's, or any mapping)."""
    problems = [f"{PREFIX}_{key}={config.get(key)!r}: {problem}" for key, check in CHECKS.items()
                if (problem := check(config.get(key)))]
    if problems:
        raise SettingsError("the API cannot start with these settings: " + "; ".join(problems))


def environment_problem() -> str | None:
    """What is wrong with the ``SEGAPI_*`` variables of this process (as ``create_app`` reads
    them), or None: gunicorn's config asks before it starts a worker."""
    config = Config(os.getcwd())
    config.from_mapping(DEFAULTS)
    config.from_prefixed_env(PREFIX)
    try:
        check_settings(config)
    except SettingsError as error:
        return str(error)
    return None
