"""The models trained from scratch: the source's baseline, its U-Net, and GridNet.

All take float images in [0, 1] and end with a softmax over the classes, in float32. Every
layer gets an explicit name built from its position, so two builds of the same model have the
same layer names (weights can be matched by name, summaries can be diffed).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
from keras import layers

from training.models.registry import _as_filters, gridnet_columns

# Keras' default (0.99) leaves the moving statistics far from the batch statistics after the
# few hundred steps of a short schedule on a small dataset, so validation (which uses them)
# lags training badly; 0.9 follows them within a few dozen steps.
BN_MOMENTUM = 0.9

def _softmax_head(x, num_classes: int, kernel_size: int, name: str):
    # float32 even under a mixed-precision policy: the losses and argmax want stable probabilities.
    logits = layers.Conv2D(num_classes, kernel_size, padding="same", name=f"{name}_logits")(x)
    return layers.Activation("softmax", dtype="float32", name=f"{name}_softmax")(logits)


# ---------------------------------------------------------------------------------------------
#  simple: conv stack, then transposed-conv stack
# ---------------------------------------------------------------------------------------------


def build_simple(num_classes: int, input_shape: Sequence[int], filters: Any = (64, 128, 256)) -> keras.Model:
    """The source's baseline: per level a stride-2 conv and a conv, mirrored by transposed convs.

    With the default ``filters=(64, 128, 256)`` and 8 classes it has 2,883,528 parameters, the
    count in the source's table (it is the segmentation model of Chollet's *Deep Learning with
    Python*, 2nd ed., ch. 9, without its ``Rescaling(1/255)``: our images are already in [0, 1]).
    ``filters`` may be an int base width, doubled at each level.
    """
    filters = _as_filters(filters, 3)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    for level, f in enumerate(filters):
        x = layers.Conv2D(f, 3, strides=2, padding="same", activation="relu", name=f"down{level}_conv_s2")(x)
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"down{level}_conv")(x)
    for level, f in reversed(list(enumerate(filters))):
        x = layers.Conv2DTranspose(f, 3, padding="same", activation="relu", name=f"up{level}_tconv")(x)
        x = layers.Conv2DTranspose(f, 3, strides=2, padding="same", activation="relu", name=f"up{level}_tconv_s2")(x)
    outputs = _softmax_head(x, num_classes, 3, "head")
    return keras.Model(inputs, outputs, name="simple")


# ---------------------------------------------------------------------------------------------
#  unet: Ronneberger et al. 2015, with batch norm
# ---------------------------------------------------------------------------------------------


def _double_conv(x, filters: int, name: str):
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn{i}")(x)
        x = layers.Activation("relu", name=f"{name}_relu{i}")(x)
    return x


def build_unet(num_classes: int, input_shape: Sequence[int], base_filters: int = 64, depth: int = 4) -> keras.Model:
    """Classic U-Net: ``depth`` poolings, ``base_filters * 2**level`` filters, conv-BN-ReLU twice.

    Up-sampling is a 2x2 transposed conv followed by batch norm, then concatenation with the
    skip. The convs keep their (redundant before batch norm) bias: that is what the source's
    count of 31,059,592 parameters for 8 classes includes, and this reproduces it.
    """
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x = inputs
    skips = []
    for level in range(depth):
        x = _double_conv(x, base_filters * 2**level, f"enc{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"enc{level}_pool")(x)
    x = _double_conv(x, base_filters * 2**depth, "bridge")
    for level in reversed(range(depth)):
        f = base_filters * 2**level
        x = layers.Conv2DTranspose(f, 2, strides=2, name=f"dec{level}_tconv")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"dec{level}_tconv_bn")(x)
        x = layers.Concatenate(name=f"dec{level}_concat")([x, skips[level]])
        x = _double_conv(x, f, f"dec{level}")
    outputs = _softmax_head(x, num_classes, 1, "head")
    return keras.Model(inputs, outputs, name="unet")


# ---------------------------------------------------------------------------------------------
#  gridnet: Fourure et al., BMVC 2017
# ---------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="training")
class TotalDropout(layers.Layer):
    """Drops a whole residual branch per example with probability ``rate`` (GridNet's "total dropout").

    Ordinary dropout zeroes pixels; this zeroes an entire stream's contribution, so the grid
    cannot rely on a single path from input to output and must use all the streams. Kept
    branches are scaled by ``1 / (1 - rate)`` so that nothing changes at inference, where the
    layer is the identity.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate <= 0.0:
            return inputs
        batch = keras.ops.shape(inputs)[0]
        keep = keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator) >= self.rate
        keep = keras.ops.cast(keep, inputs.dtype)
        return inputs * keep / (1.0 - self.rate)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


def _bn_relu_conv(x, filters: int, name: str, strides: int = 1, transpose: bool = False):
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    x = layers.Activation("relu", name=f"{name}_relu")(x)
    conv = layers.Conv2DTranspose if transpose else layers.Conv2D
    return conv(filters, 3, strides=strides, padding="same", name=f"{name}_conv")(x)


def _lateral_block(x, filters: int, rate: float, name: str):
    branch = _bn_relu_conv(x, filters, f"{name}_a")
    branch = _bn_relu_conv(branch, filters, f"{name}_b")
    branch = TotalDropout(rate, name=f"{name}_drop")(branch)
    return layers.Add(name=f"{name}_add")([x, branch])


def _down_block(x, filters: int, name: str):
    x = _bn_relu_conv(x, filters, f"{name}_a", strides=2)
    return _bn_relu_conv(x, filters, f"{name}_b")


def _up_block(x, filters: int, name: str):
    x = _bn_relu_conv(x, filters, f"{name}_a", strides=2, transpose=True)
    return _bn_relu_conv(x, filters, f"{name}_b")


def build_gridnet(
    num_classes: int,
    input_shape: Sequence[int],
    stream_filters: Sequence[int] = (16, 32, 64, 128, 256),
    columns: Any = (3, 3),
    stream_dropout: float = 0.1,
) -> keras.Model:
    """GridNet: rows are streams at resolutions 1, 1/2, 1/4, ...; columns of residual blocks.

    Node ``(row r, column c)`` sums the lateral residual block from ``(r, c-1)`` and, in the
    down half, a stride-2 block from ``(r-1, c)``; in the up half, a transposed-conv block from
    ``(r+1, c)``. The first column has no lateral input, and the first row of the first column
    is the stem. The result is read from row 0 of the last column. Names: ``r{row}c{col}``.
    """
    down, up = gridnet_columns(columns)
    streams = len(stream_filters)
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    stem = layers.Conv2D(stream_filters[0], 3, padding="same", name="stem_conv")(inputs)

    grid: list[Any] = [None] * streams  # the current column, one tensor per row
    for col in range(down + up):
        lateral = [
            _lateral_block(grid[r], stream_filters[r], stream_dropout, f"r{r}c{col}_lat") if col else None
            for r in range(streams)
        ]
        rows = range(streams) if col < down else reversed(range(streams))
        for r in rows:
            if col < down:
                vertical = stem if r == 0 and col == 0 else (
                    _down_block(grid[r - 1], stream_filters[r], f"r{r}c{col}_down") if r else None
                )
            else:
                vertical = _up_block(grid[r + 1], stream_filters[r], f"r{r}c{col}_up") if r < streams - 1 else None
            parts = [t for t in (lateral[r], vertical) if t is not None]
            grid[r] = parts[0] if len(parts) == 1 else layers.Add(name=f"r{r}c{col}_sum")(parts)

    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="head_bn")(grid[0])
    x = layers.Activation("relu", name="head_relu")(x)
    outputs = _softmax_head(x, num_classes, 3, "head")
    return keras.Model(inputs, outputs, name="gridnet")
