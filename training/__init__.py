"""Street-scene semantic segmentation: data in the Cityscapes layout, metrics, models, runs."""

from training import runtime_env as _runtime_env

_runtime_env.apply()
