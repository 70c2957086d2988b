"""Encoder-decoder models from segmentation-models (Unet, FPN, Linknet, PSPNet) on its backbones.

Three things are added around the library:

- the backbone's input scaling is a layer inside the model (``BackbonePreprocessing``), so every
  model of the project takes the same [0, 1] images and a saved ``.keras`` file needs nothing else;
- ImageNet weights are never downloaded: the file must already be in the Keras cache, else a
  ``FileNotFoundError`` names it at once. The library is always called with
  ``encoder_weights=None`` and the weights are loaded here, from the cached file or from a
  user's file, into a standalone copy of the backbone, then copied layer by layer into the model;
- names are deterministic: the library's model is rebuilt under a fixed name.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any, Sequence

import keras
from keras.src.utils import naming  # the rule Keras uses to name unnamed layers

from training.models.registry import BACKBONES, imagenet_weights_path

# The library prints its framework on import; CLI and API output is not the place for it.
# It needs SM_FRAMEWORK (set by training/__init__) and registers efficientnet's objects.
with contextlib.redirect_stdout(io.StringIO()):
    import segmentation_models as sm

SM_CONSTRUCTORS = {
    "sm_unet": sm.Unet,
    "sm_fpn": sm.FPN,
    "sm_linknet": sm.Linknet,
    "sm_pspnet": sm.PSPNet,
}

# keras_applications.imagenet_utils, mode "caffe" (BGR means) and "torch" (RGB mean and std)
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="training")
class BackbonePreprocessing(keras.layers.Layer):
    """Maps a [0, 1] RGB image to what an ImageNet backbone was trained on (see registry modes)."""

    MODES = ("caffe", "tf", "torch", "raw255")

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"unknown preprocessing mode {mode!r}; known: {', '.join(self.MODES)}")
        self.mode = mode

    def call(self, inputs):
        ops = keras.ops
        if self.mode == "raw255":
            return inputs * 255.0
        if self.mode == "tf":
            return inputs * 2.0 - 1.0
        if self.mode == "torch":
            return (inputs - ops.array(_TORCH_MEAN, inputs.dtype)) / ops.array(_TORCH_STD, inputs.dtype)
        bgr = ops.flip(inputs, axis=-1) * 255.0
        return bgr - ops.array(_CAFFE_BGR_MEAN, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def build_sm_model(
    name: str,
    num_classes: int,
    input_shape: Sequence[int],
    backbone: str,
    encoder_weights: str | None = None,
    **options: Any,
) -> keras.Model:
    """``name`` is a key of ``SM_CONSTRUCTORS``; ``options`` go to its constructor as they are."""
    input_shape = tuple(int(d) for d in input_shape)
    weights_file = _encoder_weights_file(backbone, encoder_weights, input_shape)  # fail before building
    core = SM_CONSTRUCTORS[name](
        backbone,
        input_shape=input_shape,
        classes=num_classes,
        activation="softmax",
        encoder_weights=None,
        **options,
    )
    if weights_file is not None:
        _load_encoder_weights(core, backbone, input_shape, weights_file)
    _rename_auto_named_layers(core)
    # The library's Model gets an auto-numbered name ("functional_3"): rebuild it under a fixed one.
    core = keras.Model(core.input, core.output, name=f"{name}_{backbone}_core")

    inputs = keras.Input(shape=input_shape, name="image")
    x = BackbonePreprocessing(BACKBONES[backbone]["preprocessing"], name="preprocessing")(inputs)
    outputs = keras.layers.Activation("linear", dtype="float32", name="probabilities")(core(x))
    return keras.Model(inputs, outputs, name=f"{name}_{backbone}")


def _rename_auto_named_layers(model: keras.Model) -> None:
    """Give the library's unnamed layers names that do not depend on what was built before.

    Keras numbers unnamed layers with a process-wide counter ("add_7"), so the same model built
    twice would differ in name; they become ``auto_<kind>_<index in this model>``.
    """
    counts: dict[str, int] = {}
    for layer in model.layers:
        kind = naming.to_snake_case(type(layer).__name__)
        if re.fullmatch(rf"{kind}(_\d+)?", layer.name):
            index = counts[kind] = counts.get(kind, -1) + 1
            layer.name = f"auto_{kind}_{index}"


def _encoder_weights_file(backbone: str, encoder_weights: str | None, input_shape: tuple) -> Path | None:
    if encoder_weights is None:
        return None
    if encoder_weights == "imagenet":
        return imagenet_weights_path(backbone, input_shape[0], input_shape[1])
    path = Path(encoder_weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"encoder weights file not found: {path}")
    return path


def _load_encoder_weights(model: keras.Model, backbone: str, input_shape: tuple, path: Path) -> None:
    """Load ``path`` into a standalone backbone, then copy its weights into ``model`` by layer name.

    segmentation-models builds the decoder on the backbone's own layers, so every backbone
    layer is in ``model`` under the same name. Going through a standalone copy keeps the
    weight file's format (legacy Keras 2 ``.h5`` or Keras 3 ``.weights.h5``) Keras' business.
    """
    encoder = sm.Backbones.get_backbone(
        backbone,
        input_shape=input_shape,
        weights=None,
        include_top=False,
        **_sm_submodules(),
    )
    encoder.load_weights(str(path))
    for layer in encoder.layers:
        if layer.weights:
            model.get_layer(layer.name).set_weights(layer.get_weights())


def _sm_submodules() -> dict[str, Any]:
    # What segmentation-models' ``inject_global_submodules`` passes to the backbone constructors:
    # tf.keras' namespaces, whose ``backend`` still has the Keras 2 helpers (``int_shape``...).
    return {
        "backend": sm._KERAS_BACKEND,
        "layers": sm._KERAS_LAYERS,
        "models": sm._KERAS_MODELS,
        "utils": sm._KERAS_UTILS,
    }
