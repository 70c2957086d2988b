"""Environment variables that third-party libraries read at import time.

They live here, in one place, and ``training/__init__.py`` applies them before anything else
is imported, so every entry point (CLI, API, dashboard, tests) sees the same settings.
``setdefault`` keeps a value the user exported on purpose.
"""

import os

IMPORT_TIME_SETTINGS = {
    # segmentation-models refuses to import without choosing a framework; Keras 3 ships as tf.keras.
    "SM_FRAMEWORK": "tf.keras",
    "KERAS_BACKEND": "tensorflow",
    # Albumentations checks PyPI for a newer version at import: no network at run time.
    "NO_ALBUMENTATIONS_UPDATE": "1",
    # TensorFlow's C++ INFO/WARNING lines drown the progress bars.
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def apply() -> None:
    for name, value in IMPORT_TIME_SETTINGS.items():
        os.environ.setdefault(name, value)
