"""Segmentation models: names, options and size rules (light), builders and loading (TensorFlow).

``MODEL_NAMES``, ``BACKBONES`` and ``validate_model_options`` come from ``registry`` and import
no TensorFlow, so reading a config stays fast. The builders import Keras (and
segmentation-models) only when first called.

Example:
    >>> from training.models import build_model, validate_model_options
    >>> validate_model_options("sm_fpn", 256, 512, backbone="efficientnetb0")
    >>> model = build_model("sm_fpn", 8, (256, 512, 3), backbone="efficientnetb0")
"""

from __future__ import annotations

from typing import Any, Sequence

from training.models.registry import (
    BACKBONES,
    MODEL_NAMES,
    MODEL_OPTIONS,
    SCRATCH_MODELS,
    imagenet_weights_path,
    keras_cache_dir,
    resolve_options,
    size_multiple,
    validate_model_options,
)

__all__ = [
    "BACKBONES",
    "MODEL_NAMES",
    "MODEL_OPTIONS",
    "build_model",
    "count_parameters",
    "imagenet_weights_path",
    "keras_cache_dir",
    "load_model",
    "size_multiple",
    "validate_model_options",
]


def build_model(
    name: str,
    num_classes: int,
    input_shape: Sequence[int] = (256, 512, 3),
    backbone: str | None = None,
    encoder_weights: str | None = None,
    **options: Any,
):
    """A ``keras.Model`` from [0, 1] float images ``(B, H, W, 3)`` to softmax probabilities ``(B, H, W, K)``.

    Args:
        name: one of ``MODEL_NAMES``.
        num_classes: ``K``, the number of output channels.
        input_shape: ``(H, W, 3)``; H and W must be multiples of ``size_multiple(name, **options)``.
        backbone: a key of ``BACKBONES``, for the ``sm_*`` models only.
        encoder_weights: ``None``, ``"imagenet"`` (only from the Keras cache, never downloaded)
            or a path to a ``.h5`` / ``.weights.h5`` file of the backbone; ``sm_*`` only.
        **options: see ``MODEL_OPTIONS[name]`` for names and defaults.

    Raises:
        ValueError: unknown model, backbone or option, or input size the model cannot take.
        FileNotFoundError: ImageNet (or given) weights not on disk; the message says where to put them.
    """
    height, width = int(input_shape[0]), int(input_shape[1])
    validate_model_options(name, height, width, backbone, encoder_weights, **options)
    if name in SCRATCH_MODELS:
        from training.models import scratch

        builder = {"simple": scratch.build_simple, "unet": scratch.build_unet, "gridnet": scratch.build_gridnet}[name]
        return builder(num_classes, input_shape, **resolve_options(name, **options))
    from training.models import pretrained

    return pretrained.build_sm_model(name, num_classes, input_shape, backbone, encoder_weights, **options)


def count_parameters(model) -> int:
    """All weights, trainable or not (batch-norm statistics included), as Keras' summary counts them."""
    return int(model.count_params())


def load_model(path, compile: bool = False):
    """Reload a model saved with ``model.save("....keras")``, in any process.

    Imports the modules that register the custom objects first: this project's layers and
    segmentation-models (which registers efficientnet's ``swish`` and ``FixedDropout``).
    """
    import keras

    from training.models import pretrained, scratch  # noqa: F401  (registration)

    return keras.saving.load_model(str(path), compile=compile)
