"""What the models are, as plain data: names, backbones, options, input-size rules.

A config is checked against this module when it is read, long before a model is built, so it
imports neither TensorFlow nor segmentation-models: a typo in a config fails in milliseconds
with the reason, instead of after a minute of TensorFlow start-up.

Backbones are data, as in segmentation-models' ``backbones_factory``: for each, the ImageNet
weight file that segmentation-models (through classification_models, efficientnet or
keras_applications) would fetch into the Keras cache, and how the backbone expects its input
scaled. The file names are copied from those packages' sources.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

MODEL_NAMES = ("simple", "unet", "gridnet", "sm_unet", "sm_fpn", "sm_linknet", "sm_pspnet")
SCRATCH_MODELS = ("simple", "unet", "gridnet")

_CLASSIFICATION_MODELS_URL = "https://github.com/qubvel/classification_models/releases/download/0.0.1/"
_EFFICIENTNET_URL = "https://github.com/Callidior/keras-applications/releases/download/efficientnet/"
_KERAS_APPLICATIONS_URL = "https://github.com/fchollet/deep-learning-models/releases/download/"

# preprocessing: how the backbone wants a [0, 1] image rescaled (the models take [0, 1]):
#   "caffe": x255, RGB->BGR, minus the ImageNet mean (keras_applications vgg16)
#   "tf": to [-1, 1] (keras_applications mobilenet_v2)
#   "torch": minus ImageNet mean, over ImageNet std, on [0, 1] (efficientnet)
#   "raw255": x255 (classification_models ResNets normalise with their own first BatchNorm)
BACKBONES: dict[str, dict[str, str]] = {
    "vgg16": {
        "family": "vgg",
        "weights_file": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "url": _KERAS_APPLICATIONS_URL + "v0.1/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "preprocessing": "caffe",
    },
    "resnet18": {
        "family": "resnet",
        "weights_file": "resnet18_imagenet_1000_no_top.h5",
        "url": _CLASSIFICATION_MODELS_URL + "resnet18_imagenet_1000_no_top.h5",
        "preprocessing": "raw255",
    },
    "resnet34": {
        "family": "resnet",
        "weights_file": "resnet34_imagenet_1000_no_top.h5",
        "url": _CLASSIFICATION_MODELS_URL + "resnet34_imagenet_1000_no_top.h5",
        "preprocessing": "raw255",
    },
    "resnet50": {
        "family": "resnet",
        "weights_file": "resnet50_imagenet_1000_no_top.h5",
        "url": _CLASSIFICATION_MODELS_URL + "resnet50_imagenet_1000_no_top.h5",
        "preprocessing": "raw255",
    },
    # keras_applications picks the file by input size (see mobilenetv2_weights_file); this is
    # the default it falls back to for non-square inputs or sizes outside 96..224.
    "mobilenetv2": {
        "family": "mobilenet",
        "weights_file": "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        "url": "https://github.com/JonathanCMitchell/mobilenet_v2_keras/releases/download/v1.1/"
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        "preprocessing": "tf",
    },
}
for _b in range(4):
    _file = f"efficientnet-b{_b}_weights_tf_dim_ordering_tf_kernels_autoaugment_notop.h5"
    BACKBONES[f"efficientnetb{_b}"] = {
        "family": "efficientnet",
        "weights_file": _file,
        "url": _EFFICIENTNET_URL + _file,
        "preprocessing": "torch",
    }

# Options each model accepts, with defaults. Scratch models are defined in this project;
# the segmentation-models ones are forwarded to the library's constructors.
MODEL_OPTIONS: dict[str, dict[str, Any]] = {
    "simple": {"filters": (64, 128, 256)},
    "unet": {"base_filters": 64, "depth": 4},
    "gridnet": {
        "stream_filters": (16, 32, 64, 128, 256),
        "columns": (3, 3),
        "stream_dropout": 0.1,
    },
    "sm_unet": {
        "encoder_freeze": False,
        "decoder_filters": (256, 128, 64, 32, 16),
        "decoder_block_type": "upsampling",
        "decoder_use_batchnorm": True,
    },
    "sm_fpn": {
        "encoder_freeze": False,
        "pyramid_block_filters": 256,
        "pyramid_use_batchnorm": True,
        "pyramid_aggregation": "concat",
        "pyramid_dropout": None,
    },
    "sm_linknet": {
        "encoder_freeze": False,
        "decoder_filters": (None, None, None, None, 16),
        "decoder_block_type": "upsampling",
        "decoder_use_batchnorm": True,
    },
    "sm_pspnet": {
        "encoder_freeze": False,
        "downsample_factor": 8,
        "psp_conv_filters": 512,
        "psp_pooling_type": "avg",
        "psp_use_batchnorm": True,
        "psp_dropout": None,
    },
}


def keras_cache_dir() -> Path:
    """Where Keras' ``get_file`` keeps downloads (``cache_subdir='models'``), read now, not at import."""
    return Path(os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))) / "models"


def mobilenetv2_weights_file(height: int, width: int) -> str:
    # keras_applications.mobilenet_v2: square inputs of 96..224 get their own file, else 224.
    rows = height if height == width and height in (96, 128, 160, 192, 224) else 224
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"


def imagenet_weights_path(backbone: str, height: int = 224, width: int = 224) -> Path:
    """The cached ImageNet file for ``backbone``; raises ``FileNotFoundError`` if it is not there.

    Nothing is ever downloaded: the project runs without network, and a download that hangs
    would look like a frozen training run.
    """
    info = _backbone_info(backbone)
    name = mobilenetv2_weights_file(height, width) if backbone == "mobilenetv2" else info["weights_file"]
    path = keras_cache_dir() / name
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights for {backbone} are not in the Keras cache: put {name} at {path} "
            f"(download it once from {info['url'].rsplit('/', 1)[0]}/{name} on a machine with "
            "network, or set KERAS_HOME), or use encoder_weights=None or a weights file path"
        )
    return path


def _backbone_info(backbone: str) -> Mapping[str, str]:
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; known: {', '.join(BACKBONES)}")
    return BACKBONES[backbone]


def size_multiple(name: str, **options: Any) -> int:
    """The number height and width must be multiples of, from the model's downsamplings."""
    opts = {**MODEL_OPTIONS[name], **options}
    if name == "simple":
        return 2 ** len(_as_filters(opts["filters"], 3))
    if name == "unet":
        return 2 ** int(opts["depth"])
    if name == "gridnet":
        return 2 ** (len(opts["stream_filters"]) - 1)
    if name == "sm_pspnet":
        # segmentation_models.models.pspnet.check_input_shape: 6 pooled bins at the PSP level
        return 6 * int(opts["downsample_factor"])
    return 32  # five stride-2 stages in every backbone, skips concatenated or added


def _as_filters(filters: Any, levels: int) -> tuple[int, ...]:
    # An int is a base width doubled at each level, the way the source scaled its models.
    if isinstance(filters, int):
        return tuple(filters * 2**i for i in range(levels))
    return tuple(int(f) for f in filters)


def resolve_options(name: str, **options: Any) -> dict[str, Any]:
    """Defaults overridden by ``options``; unknown option names raise ``ValueError``."""
    allowed = MODEL_OPTIONS[name]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown option(s) for {name}: {', '.join(unknown)}; known: {', '.join(allowed) or 'none'}"
        )
    return {**allowed, **options}


def validate_model_options(
    name: str,
    height: int,
    width: int,
    backbone: str | None = None,
    encoder_weights: str | None = None,
    **options: Any,
) -> None:
    """Raise ``ValueError`` with the reason if this model cannot be built; return ``None`` if it can.

    Example:
        >>> validate_model_options("sm_fpn", 100, 256, backbone="resnet18")
        Traceback (most recent call last):
        ...
        ValueError: sm_fpn needs height and width divisible by 32; got 100x256
    """
    if name not in MODEL_NAMES:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
    opts = resolve_options(name, **options)
    if name in SCRATCH_MODELS:
        if backbone is not None or encoder_weights is not None:
            raise ValueError(
                f"{name} is trained from scratch: it takes no backbone or encoder_weights "
                f"(got backbone={backbone!r}, encoder_weights={encoder_weights!r})"
            )
        _validate_scratch_options(name, opts)
    else:
        if backbone is None:
            raise ValueError(f"{name} needs a backbone; known: {', '.join(BACKBONES)}")
        _backbone_info(backbone)
        if encoder_weights not in (None, "imagenet") and not str(encoder_weights).endswith((".h5", ".hdf5")):
            raise ValueError(
                f"encoder_weights must be None, 'imagenet' or a path to a .h5/.weights.h5 file; "
                f"got {encoder_weights!r}"
            )
        if name == "sm_pspnet" and opts["downsample_factor"] not in (4, 8, 16):
            raise ValueError(f"sm_pspnet downsample_factor must be 4, 8 or 16; got {opts['downsample_factor']!r}")
    multiple = size_multiple(name, **options)
    if height <= 0 or width <= 0 or height % multiple or width % multiple:
        raise ValueError(f"{name} needs height and width divisible by {multiple}; got {height}x{width}")


def _validate_scratch_options(name: str, opts: Mapping[str, Any]) -> None:
    if name == "simple":
        filters = _as_filters(opts["filters"], 3)
        if not filters or min(filters) < 1:
            raise ValueError(f"simple filters must be positive; got {opts['filters']!r}")
    elif name == "unet":
        if int(opts["base_filters"]) < 1 or int(opts["depth"]) < 1:
            raise ValueError(f"unet base_filters and depth must be positive; got {dict(opts)}")
    elif name == "gridnet":
        streams = tuple(opts["stream_filters"])
        if len(streams) < 2 or min(streams) < 1:
            raise ValueError(f"gridnet needs at least 2 streams of positive width; got {streams!r}")
        down, up = gridnet_columns(opts["columns"])
        if down < 1 or up < 1:
            raise ValueError(f"gridnet needs at least one down and one up column; got {opts['columns']!r}")
        if not 0.0 <= float(opts["stream_dropout"]) < 1.0:
            raise ValueError(f"gridnet stream_dropout must be in [0, 1); got {opts['stream_dropout']!r}")


def gridnet_columns(columns: Any) -> tuple[int, int]:
    """``(down, up)`` column counts: an int is the total, split in two equal halves."""
    if isinstance(columns, int):
        if columns % 2:
            raise ValueError(f"gridnet columns must be even (half down, half up); got {columns}")
        return columns // 2, columns // 2
    down, up = columns
    return int(down), int(up)
