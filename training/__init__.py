"""Street-scene semantic segmentation: data in the Cityscapes layout, metrics, models, runs.

Two sides (docs/design.md; the layers are import-linter contracts in pyproject.toml):

* the TensorFlow-free core, which the API and the dashboard use: ``files``, ``data``,
  ``evaluation``, ``runs``, ``viz``;
* the Keras side, which trains and predicts: ``models``, ``losses``, ``fit``; and ``cli``.

Importing any module of the package first sets the environment variables that libraries read
at import time (``runtime_env``), so every entry point sees the same settings.
"""

from training import runtime_env as _runtime_env

_runtime_env.apply()
