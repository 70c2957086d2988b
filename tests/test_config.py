"""Configs: defaults <- base files <- experiment file <- --set; unknown keys rejected."""

from pathlib import Path

import pytest

from training.fit.config import CONFIG_DIR, DEFAULTS, ConfigError, dump_config, load_config, parse_override

SHIPPED = sorted(p for p in CONFIG_DIR.rglob("*.yaml") if not p.name.startswith("_"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_alone_are_valid():
    config = load_config()
    assert config["data"] == DEFAULTS["data"] and config["name"] == "run"


def test_an_experiment_overrides_only_what_differs(tmp_path):
    _write(tmp_path / "base.yaml", "data: {height: 64, width: 128}\ntrain: {epochs: 3}\n")
    experiment = _write(tmp_path / "unet_small.yaml",
                        "_base_: base.yaml\nmodel: {name: unet, options: {base_filters: 8}}\ntrain: {epochs: 4}\n")
    config = load_config(experiment, ["optimizer.learning_rate=0.01", "data.augmentation=v1"])
    assert config["name"] == "unet_small"
    assert (config["data"]["height"], config["data"]["width"]) == (64, 128)  # from the base
    assert config["train"]["epochs"] == 4  # the experiment wins over its base
    assert config["train"]["patience"] == DEFAULTS["train"]["patience"]  # defaults fill the rest
    assert config["model"]["options"] == {"base_filters": 8}
    assert config["optimizer"]["learning_rate"] == 0.01 and config["data"]["augmentation"] == "v1"
    assert load_config(experiment, []) != config
    reloaded = _write(tmp_path / "resolved.yaml", dump_config(config))
    assert load_config(reloaded) == config  # the saved config rebuilds the run


@pytest.mark.parametrize("text, message", [
    ("data: {heigth: 64}", "Unknown config key: data.heigth"),
    ("trian: {epochs: 2}", "Unknown config key: trian"),
    ("data: 5", "data must be a mapping"),
    ("data: {classes: coco}", "data.classes: 'coco' is not one of categories8, cityscapes19"),
    ("data: {augmentation: v3}", "data.augmentation"),
    ("train: {epochs: 0}", "train.epochs: expected a positive integer"),
    ("optimizer: {learning_rate: -1}", "optimizer.learning_rate"),
    ("loss: {name: focal}", "loss.name: 'focal' is not one of"),
    ("model: {name: sm_fpn, backbone: resnet18}\ndata: {height: 100, width: 256}", "32"),
    ("model: {name: transformer}", "transformer"),
    ("train: {strategy: tpu}", "train.strategy"),
    ("name: ../escape", "name:"),
    ("data: {cache: maybe}", "data.cache: expected true or false"),
    ("data: {cache_dir: 5}", "data.cache_dir"),
    ("loss: {name: cce, options: {weights: [1]}}", "loss.options of cce: "),
    ("loss: {name: cce, options: {class_weights: [1, 2]}}", "loss.options.class_weights: 2 weights for the 8 classes"),
    ("loss: {name: cce_dice, options: {cce_class_weights: {people: 3}}}", "unknown class people; the classes"),
    ("loss: {name: cce, options: {class_weights: {human: 0}}}", "expected positive finite numbers"),
    ("loss: {name: cce, options: 3}", "loss.options: expected a mapping"),
])
def test_bad_configs_are_rejected_with_the_reason(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_config(_write(tmp_path / "bad.yaml", text))


def test_class_weights_by_name_resolve_to_one_weight_per_class(tmp_path):
    path = _write(tmp_path / "weighted.yaml",
                  "loss: {name: cce_dice, options: {cce_class_weights: {human: 4, object: 3}}}")
    config = load_config(path)
    assert config["loss"]["options"] == {"cce_class_weights": [1, 1, 1, 3, 1, 1, 4, 1]}  # categories8 order
    reloaded = _write(tmp_path / "resolved.yaml", dump_config(config))
    assert load_config(reloaded) == config
    nineteen = load_config(None, ["data.classes=cityscapes19", "loss.options={class_weights: {person: 2}}"])
    weights = nineteen["loss"]["options"]["class_weights"]
    assert len(weights) == 19 and weights[11] == 2 and sum(weights) == 20  # person is trainId 11


def test_override_syntax():
    assert parse_override("model.options.base_filters=16") == {"model": {"options": {"base_filters": 16}}}
    assert parse_override("model.backbone=null") == {"model": {"backbone": None}}
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("epochs")
    with pytest.raises(ConfigError, match="Unknown config key: train.epoch"):
        load_config(None, ["train.epoch=3"])
    for text in ("model.name=!!python/object:os.system x", "data.height=[unclosed"):  # a ConfigError naming it
        with pytest.raises(ConfigError, match=r"--set .* is not plain YAML"):
            parse_override(text)


def test_base_loops_and_missing_files(tmp_path):
    _write(tmp_path / "a.yaml", "_base_: b.yaml\n")
    _write(tmp_path / "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(ConfigError, match="loops"):
        load_config(tmp_path / "a.yaml")
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(CONFIG_DIR)))
def test_every_shipped_config_is_valid_and_named_for_what_it_is(path):
    config = load_config(path)
    name = path.stem
    assert config["model"]["name"].replace("_", "") in name.replace("_", "")
    assert config["loss"]["name"].replace("soft_iou", "softiou").replace("_", "-") in name.split("_")
    assert f"{config['data']['height']}x{config['data']['width']}" in name
    assert config["data"]["augmentation"] in name.split("_")


def test_the_source_table_and_the_research_configs_are_shipped():
    names = {p.stem for p in SHIPPED}
    assert sum(1 for n in names if n[:2].isdigit()) == 12
    assert {"gridnet_scratch_lovasz_scale_128x256", "gridnet_scratch_lovasz-step_scale_128x256"} <= names
