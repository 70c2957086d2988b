"""Experiment configs: defaults here, small YAML overrides in ``configs/``, ``--set`` last.

A config file sets only what differs from its base (``_base_: other.yaml``, relative to the
file; default: the defaults below), as mmsegmentation and nanoGPT do. Unknown keys are rejected
with their full path. The resolved config is saved beside every trained model, and is all it
takes to rebuild the run.

    python -m training train configs/demo/smlinknet_resnet18_dice_v1_128x256.yaml --set train.epochs=3
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import yaml

from training.data.index import SELECTABLE_SPLITS
from training.data.labels import CLASS_SET_NAMES, get_class_set
from training.fit.augment import AUGMENTATIONS

DEFAULTS: dict = {
    "name": None,  # run name; default: the config file's name
    "data": {
        "root": None,  # default: $CITYSCAPES_DATASET, else the embedded dataset
        "index": None,
        "classes": "categories8",
        "height": 128,
        "width": 256,
        "augmentation": "none",
        "batch_size": 8,
        "workers": 2,
        "train_split": "train",
        "validation_split": "validation",
        # The frames at training size, decoded once (training/data/cache.py); changes speed only.
        "cache": True,
        "cache_dir": None,  # default: <root>/.cache/training, else ~/.cache for a read-only dataset
    },
    "model": {
        "name": "simple",
        "backbone": None,
        "encoder_weights": None,  # None, "imagenet" (only from the Keras cache) or a file
        "options": {},  # model-specific, checked by the model registry
    },
    # options: keyword arguments of the loss (training/losses), checked by building it. Class
    # weights (cce: class_weights, cce_dice: cce_class_weights) are a list of one number per
    # class or a mapping {class name: weight} whose missing classes weigh 1.
    "loss": {"name": "cce", "options": {}},
    "optimizer": {"name": "adam", "learning_rate": 1e-3},
    "train": {
        "epochs": 20,
        "patience": 5,  # early stopping on validation mIoU
        "seed": 0,
        "strategy": "default",  # default | mirrored | multiworker (TF_CONFIG)
        "steps_per_epoch": None,  # None: the whole split
    },
    "evaluation": {"split": "test", "save_predictions": True},
}
FREE_FORM = {("model", "options"), ("loss", "options")}
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
STRATEGIES = ("default", "mirrored", "multiworker")
CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


class ConfigError(ValueError):
    """A config that cannot be run; the message names the key or file."""


def _merge(base: dict, override: dict, path: tuple = ()) -> dict:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        where = path + (key,)
        if key not in base:
            raise ConfigError(f"Unknown config key: {'.'.join(where)}")
        if isinstance(base[key], dict) and where not in FREE_FORM:
            if not isinstance(value, dict):
                raise ConfigError(f"config key {'.'.join(where)} must be a mapping, got {value!r}")
            merged[key] = _merge(base[key], value, where)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config is a mapping of keys, got {type(data).__name__}")
    return data


def _layers(path: Path, seen: tuple = ()) -> list[dict]:
    """The chain of files from the furthest base to ``path``."""
    if path.resolve() in seen:
        raise ConfigError(f"{path}: _base_ chain loops back on itself")
    data = _read_yaml(path)
    base = data.pop("_base_", None)
    below = _layers((path.parent / base), seen + (path.resolve(),)) if base else []
    return below + [data]


def parse_override(text: str) -> dict:
    """``"model.backbone=resnet34"`` -> ``{"model": {"backbone": "resnet34"}}`` (YAML values)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value, got {text!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        problem = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConfigError(f"--set {text!r}: the value is not plain YAML ({problem})") from None
    nested: dict = value
    for part in reversed(key.strip().split(".")):
        nested = {part: nested}
    return nested


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> dict:
    """Resolve defaults <- base files <- ``path`` <- ``overrides``, then validate."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        for layer in _layers(Path(path)):
            config = _merge(config, layer)
    for override in overrides:
        config = _merge(config, parse_override(override))
    if not config["name"]:
        config["name"] = Path(path).stem if path else "run"
    config["loss"]["options"] = resolve_class_weights(config["loss"]["options"], config["data"]["classes"])
    validate(config)
    return config


def _is_class_weights(option: str) -> bool:
    return option == "class_weights" or option.endswith("_class_weights")


def resolve_class_weights(options, class_set_name: str):
    """Loss options with every ``{class name: weight}`` of a ``*class_weights`` key turned into
    one weight per class (1 for the classes not named), in the class set's order.

    The mapping reads better in a config (``{object: 3, human: 4}``); the list is what the loss
    takes and what the resolved config saves. Anything else is left for ``validate`` to judge.
    """
    if not isinstance(options, dict) or class_set_name not in CLASS_SET_NAMES:
        return options  # validate names what is wrong
    names = get_class_set(class_set_name).names
    resolved = dict(options)
    for option, weights in options.items():
        if not (_is_class_weights(option) and isinstance(weights, dict)):
            continue
        unknown = sorted(set(map(str, weights)) - set(names))
        if unknown:
            raise ConfigError(f"loss.options.{option}: unknown class {', '.join(unknown)}; "
                              f"the classes of {class_set_name} are {', '.join(names)}")
        listed = [weights.get(name, 1.0) for name in names]
        resolved[option] = [float(w) if isinstance(w, (int, float)) and not isinstance(w, bool) else w
                            for w in listed]  # anything else: the loss names it
    return resolved


def _choice(config: dict, dotted: str, choices) -> None:
    section, key = dotted.split(".")
    if config[section][key] not in choices:
        raise ConfigError(f"{dotted}: {config[section][key]!r} is not one of {', '.join(map(str, choices))}")


def _positive_int(config: dict, dotted: str, allow_none: bool = False) -> None:
    section, key = dotted.split(".")
    value = config[section][key]
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{dotted}: expected a positive integer, got {value!r}")


def validate(config: dict) -> None:
    """Raise ``ConfigError`` naming the first key that cannot work, with the reason."""
    from training.models import validate_model_options
    from training.runs.layout import ArtifactError, check_run_name

    try:
        check_run_name(str(config["name"]))
    except ArtifactError as error:
        raise ConfigError(f"name: {error}") from None
    _choice(config, "data.classes", CLASS_SET_NAMES)
    _choice(config, "data.augmentation", AUGMENTATIONS)
    for key in ("data.train_split", "data.validation_split", "evaluation.split"):
        _choice(config, key, SELECTABLE_SPLITS)
    for key in ("data.height", "data.width", "data.batch_size", "data.workers", "train.epochs"):
        _positive_int(config, key)
    _positive_int(config, "train.steps_per_epoch", allow_none=True)
    if not isinstance(config["data"]["cache"], bool):
        raise ConfigError(f"data.cache: expected true or false, got {config['data']['cache']!r}")
    if config["data"]["cache_dir"] is not None and not isinstance(config["data"]["cache_dir"], str):
        raise ConfigError(f"data.cache_dir: expected a folder or null, got {config['data']['cache_dir']!r}")
    if not isinstance(config["train"]["patience"], int) or config["train"]["patience"] < 0:
        raise ConfigError(f"train.patience: expected an integer >= 0, got {config['train']['patience']!r}")
    _choice(config, "optimizer.name", OPTIMIZERS)
    _choice(config, "train.strategy", STRATEGIES)
    rate = config["optimizer"]["learning_rate"]
    if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate <= 0:
        raise ConfigError(f"optimizer.learning_rate: expected a positive number, got {rate!r}")
    model = config["model"]
    try:
        validate_model_options(model["name"], config["data"]["height"], config["data"]["width"],
                               backbone=model["backbone"], encoder_weights=model["encoder_weights"],
                               **(model["options"] or {}))
    except (ValueError, TypeError) as error:
        raise ConfigError(f"model: {error}") from None
    from training.losses import LOSSES  # here, not at import: it pulls in TensorFlow

    if config["loss"]["name"] not in LOSSES:
        raise ConfigError(f"loss.name: {config['loss']['name']!r} is not one of {', '.join(LOSSES)}")
    _validate_loss_options(config)


def _validate_loss_options(config: dict) -> None:
    """Build the loss once (an unknown or bad option fails here, not after the data is loaded)
    and check that every list of class weights has one weight per class."""
    from training.losses import build_loss

    options = config["loss"]["options"] or {}
    if not isinstance(options, dict):
        raise ConfigError(f"loss.options: expected a mapping, got {options!r}")
    names = get_class_set(config["data"]["classes"]).names
    for option, weights in options.items():
        if not (_is_class_weights(option) and isinstance(weights, list)):
            continue
        if len(weights) != len(names):
            raise ConfigError(f"loss.options.{option}: {len(weights)} weights for the {len(names)} classes "
                              f"of {config['data']['classes']}")
        _check_weights(option, weights, names)
    try:
        build_loss(config["loss"]["name"], **options)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"loss.options of {config['loss']['name']}: {error}") from None


def _check_weights(option: str, weights: list, names: list[str]) -> None:
    """Every class weight a finite number >= 0, and not all 0: a NaN (``.nan`` in YAML) or an
    infinity makes every loss NaN, which trains nothing and publishes a run all the same."""
    bad = [f"{name}: {weight!r}" for name, weight in zip(names, weights)
           if isinstance(weight, bool) or not isinstance(weight, (int, float))
           or not math.isfinite(weight) or weight < 0]
    if bad:
        raise ConfigError(f"loss.options.{option}: class weights are finite numbers >= 0; got {', '.join(bad)}")
    if not any(weights):
        raise ConfigError(f"loss.options.{option}: every class weight is 0, so no pixel would count")


def dump_config(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
