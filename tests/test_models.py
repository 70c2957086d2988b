"""Models: registry and size rules without TensorFlow, one training step per family, GridNet's
total dropout, encoder weights (never downloaded), and save / reload in a fresh process."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.models import (
    BACKBONES,
    MODEL_NAMES,
    build_model,
    count_parameters,
    load_model,
    validate_model_options,
)

REPO = Path(__file__).resolve().parents[1]
NUM_CLASSES = 5

# Tiny versions of the scratch models: the same code paths, a few hundred parameters per layer.
TINY_SCRATCH = {
    "simple": {"filters": 4},
    "unet": {"base_filters": 4},
    "gridnet": {"stream_filters": (4, 8, 16), "columns": (2, 2)},
}


def _batch(height, width, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((batch, height, width, 3), dtype=np.float32)
    masks = rng.integers(0, NUM_CLASSES, (batch, height, width), dtype=np.uint8)
    return images, masks


def _train_step_and_check(model, height, width, run_eagerly=True):
    # Eager: tracing a backbone's training step takes 7-20 s on 2 cores, running it eagerly ~1 s.
    images, masks = _batch(height, width)
    model.compile("adam", "sparse_categorical_crossentropy", run_eagerly=run_eagerly)
    loss = model.train_on_batch(images, masks)
    assert np.isfinite(loss)
    probs = np.asarray(model(images, training=False))
    assert probs.shape == (2, height, width, NUM_CLASSES)
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-4)


# ---------------------------------------------------------------------------------------------
#  registry: light and strict
# ---------------------------------------------------------------------------------------------


def test_registry_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "from training.models import validate_model_options, MODEL_NAMES, BACKBONES\n"
        "validate_model_options('sm_fpn', 256, 512, backbone='efficientnetb0')\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'segmentation_models') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_backbone_registry_names_cache_files():
    for name in ("vgg16", "resnet18", "resnet34", "mobilenetv2") + tuple(f"efficientnetb{i}" for i in range(4)):
        assert BACKBONES[name]["weights_file"].endswith(".h5")
    assert BACKBONES["efficientnetb3"]["weights_file"] == (
        "efficientnet-b3_weights_tf_dim_ordering_tf_kernels_autoaugment_notop.h5"
    )
    assert set(MODEL_NAMES) == {"simple", "unet", "gridnet", "sm_unet", "sm_fpn", "sm_linknet", "sm_pspnet"}


@pytest.mark.parametrize(
    "name, height, width, kwargs, reason",
    [
        ("simple", 64, 40, {}, None),
        ("simple", 64, 36, {}, "divisible by 8; got 64x36"),
        ("unet", 48, 64, {}, None),
        ("unet", 40, 64, {}, "divisible by 16; got 40x64"),
        ("unet", 40, 64, {"depth": 3}, None),
        ("gridnet", 400, 400, {}, None),
        ("gridnet", 400, 200, {}, "divisible by 16; got 400x200"),
        ("gridnet", 36, 36, {"stream_filters": (8, 16, 32)}, None),
        ("sm_unet", 256, 512, {"backbone": "resnet34"}, None),
        ("sm_fpn", 100, 256, {"backbone": "resnet18"}, "sm_fpn needs height and width divisible by 32; got 100x256"),
        ("sm_linknet", 64, 48, {"backbone": "efficientnetb0"}, "divisible by 32; got 64x48"),
        ("sm_pspnet", 96, 96, {"backbone": "resnet18"}, None),
        ("sm_pspnet", 64, 64, {"backbone": "resnet18"}, "divisible by 48; got 64x64"),
        ("sm_pspnet", 64, 64, {"backbone": "resnet18", "downsample_factor": 4}, "divisible by 24; got 64x64"),
    ],
)
def test_size_rules(name, height, width, kwargs, reason):
    if reason is None:
        validate_model_options(name, height, width, **kwargs)
    else:
        with pytest.raises(ValueError, match=reason):
            validate_model_options(name, height, width, **kwargs)


@pytest.mark.parametrize(
    "name, kwargs, reason",
    [
        ("segformer", {}, "unknown model 'segformer'; known: simple, unet, gridnet"),
        ("sm_unet", {"backbone": "resnet999"}, "unknown backbone 'resnet999'; known: vgg16, resnet18"),
        ("sm_unet", {}, "sm_unet needs a backbone"),
        ("unet", {"backbone": "resnet18"}, "trained from scratch"),
        ("unet", {"base_filter": 8}, "unknown option.*base_filter; known: base_filters"),
        ("sm_fpn", {"backbone": "resnet18", "encoder_weights": "imagenet21k"}, "encoder_weights must be"),
        ("gridnet", {"stream_dropout": 1.0}, r"stream_dropout must be in \[0, 1\)"),
    ],
)
def test_invalid_options(name, kwargs, reason):
    with pytest.raises(ValueError, match=reason):
        validate_model_options(name, 64, 64, **kwargs)


# ---------------------------------------------------------------------------------------------
#  every family builds and trains one step
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["simple", "unet", "gridnet"])
def test_scratch_model_trains_one_step(name):
    model = build_model(name, NUM_CLASSES, (32, 64, 3), **TINY_SCRATCH[name])
    _train_step_and_check(model, 32, 64, run_eagerly=name != "simple")  # one traced step too


def test_scratch_names_are_deterministic():
    first = build_model("gridnet", NUM_CLASSES, (16, 16, 3), **TINY_SCRATCH["gridnet"])
    second = build_model("gridnet", NUM_CLASSES, (16, 16, 3), **TINY_SCRATCH["gridnet"])
    assert [layer.name for layer in first.layers] == [layer.name for layer in second.layers]
    assert count_parameters(first) == count_parameters(second) > 0


def test_sm_names_are_deterministic():
    def names():
        core = build_model("sm_unet", NUM_CLASSES, (32, 32, 3), backbone="resnet18").get_layer("sm_unet_resnet18_core")
        return [layer.name for layer in core.layers]

    first = names()
    assert first == names()
    assert "auto_add_0" in first  # the library leaves its residual additions unnamed


@pytest.mark.parametrize(
    "name, backbone, size",
    [
        ("sm_unet", "resnet18", 64),
        ("sm_fpn", "mobilenetv2", 64),
        ("sm_linknet", "resnet18", 64),
        ("sm_unet", "efficientnetb0", 64),
        ("sm_fpn", "efficientnetb0", 64),
        ("sm_linknet", "efficientnetb0", 64),
        ("sm_pspnet", "resnet18", 48),
    ],
)
def test_sm_model_trains_one_step(name, backbone, size):
    model = build_model(name, NUM_CLASSES, (size, size, 3), backbone=backbone)
    assert model.name == f"{name}_{backbone}"
    _train_step_and_check(model, size, size)


# ---------------------------------------------------------------------------------------------
#  GridNet's total dropout: whole streams, training only
# ---------------------------------------------------------------------------------------------


def test_total_dropout_only_in_training():
    model = build_model("gridnet", NUM_CLASSES, (16, 32, 3), stream_filters=(4, 8), columns=(2, 2), stream_dropout=0.9)
    images, _ = _batch(16, 32, batch=4)
    first = np.asarray(model(images, training=False))
    np.testing.assert_array_equal(first, np.asarray(model(images, training=False)))
    trained = [np.asarray(model(images, training=True)) for _ in range(3)]
    assert any(not np.allclose(t, first) for t in trained)


def test_total_dropout_zeroes_whole_examples():
    from training.models.scratch import TotalDropout

    layer = TotalDropout(0.5, seed=1)
    x = np.ones((64, 4, 4, 3), dtype=np.float32)
    dropped = np.asarray(layer(x, training=True))
    per_example = dropped.reshape(64, -1)
    zeroed = (per_example == 0).all(axis=1)
    kept = np.isclose(per_example, 2.0).all(axis=1)  # kept streams are scaled by 1 / (1 - rate)
    assert (zeroed | kept).all() and 10 < zeroed.sum() < 54
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


# ---------------------------------------------------------------------------------------------
#  encoder weights: from the Keras cache or a file, never downloaded
# ---------------------------------------------------------------------------------------------


def test_missing_imagenet_weights_fail_fast_naming_the_file(tmp_path, monkeypatch):
    import keras

    from training.models import pretrained

    def must_not_run(*args, **kwargs):
        raise AssertionError("called before the missing weights were reported")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    # fast = before anything is built or fetched: no model constructed, no download tried
    monkeypatch.setattr(pretrained, "SM_CONSTRUCTORS", dict.fromkeys(pretrained.SM_CONSTRUCTORS, must_not_run))
    monkeypatch.setattr(keras.utils, "get_file", must_not_run)
    with pytest.raises(FileNotFoundError) as error:
        build_model("sm_fpn", NUM_CLASSES, (64, 64, 3), backbone="efficientnetb0", encoder_weights="imagenet")
    assert not any(tmp_path.rglob("*"))  # nothing written to the cache either
    message = str(error.value)
    assert "efficientnet-b0_weights_tf_dim_ordering_tf_kernels_autoaugment_notop.h5" in message
    assert str(tmp_path / "models") in message


def _saved_backbone(backbone, size, path):
    """A backbone with recognisable weights, saved as the Keras 2 ``.h5`` files in the cache are."""
    import h5py
    import segmentation_models as sm
    from keras.src.legacy.saving import legacy_h5_format

    from training.models.pretrained import _sm_submodules

    encoder = sm.Backbones.get_backbone(
        backbone, input_shape=(size, size, 3), weights=None, include_top=False, **_sm_submodules()
    )
    for i, layer in enumerate(encoder.layers):
        if layer.weights and "bn" not in layer.name:
            layer.set_weights([np.full(w.shape, 0.001 * (i + 1), np.float32) for w in layer.get_weights()])
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, encoder)
    return encoder


def test_imagenet_weights_load_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = tmp_path / "models" / BACKBONES["resnet18"]["weights_file"]
    encoder = _saved_backbone("resnet18", 64, cached)
    model = build_model("sm_linknet", NUM_CLASSES, (64, 64, 3), backbone="resnet18", encoder_weights="imagenet")
    core = model.get_layer("sm_linknet_resnet18_core")
    for name in ("conv0", "stage4_unit2_conv2"):
        np.testing.assert_array_equal(core.get_layer(name).get_weights()[0], encoder.get_layer(name).get_weights()[0])


def test_encoder_weights_from_a_file_and_freeze(tmp_path):
    path = tmp_path / "encoder.weights.h5"
    import segmentation_models as sm

    from training.models.pretrained import _sm_submodules

    encoder = sm.Backbones.get_backbone(
        "mobilenetv2", input_shape=(64, 64, 3), weights=None, include_top=False, **_sm_submodules()
    )
    encoder.save_weights(str(path))
    model = build_model(
        "sm_unet", NUM_CLASSES, (64, 64, 3), backbone="mobilenetv2", encoder_weights=str(path), encoder_freeze=True
    )
    core = model.get_layer("sm_unet_mobilenetv2_core")
    np.testing.assert_array_equal(core.get_layer("Conv1").get_weights()[0], encoder.get_layer("Conv1").get_weights()[0])
    assert not core.get_layer("Conv1").trainable


# ---------------------------------------------------------------------------------------------
#  save / reload in a fresh process
# ---------------------------------------------------------------------------------------------


def test_saved_models_reload_in_a_fresh_process(tmp_path):
    images, _ = _batch(64, 64, batch=1)
    np.save(tmp_path / "images.npy", images)
    expected = {}
    for key, model in {
        "gridnet": build_model("gridnet", NUM_CLASSES, (64, 64, 3), **TINY_SCRATCH["gridnet"]),
        "linknet": build_model("sm_linknet", NUM_CLASSES, (64, 64, 3), backbone="resnet18"),
        "effnet": build_model("sm_fpn", NUM_CLASSES, (64, 64, 3), backbone="efficientnetb0"),
    }.items():
        model.save(tmp_path / f"{key}.keras")
        expected[key] = np.asarray(model(images, training=False))
    code = (
        "import json, sys, numpy as np\n"
        "from training.models import load_model\n"
        "x = np.load(sys.argv[1] + '/images.npy')\n"
        "out = {k: np.asarray(load_model(f'{sys.argv[1]}/{k}.keras')(x, training=False)).tolist()\n"
        "       for k in ('gridnet', 'linknet', 'effnet')}\n"
        "print(json.dumps(out))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, text=True, check=True
    )
    reloaded = json.loads(run.stdout.strip().splitlines()[-1])
    for key, probs in expected.items():
        np.testing.assert_allclose(np.asarray(reloaded[key], dtype=np.float32), probs, atol=1e-6)


def test_load_model_in_process(tmp_path):
    model = build_model("simple", NUM_CLASSES, (32, 32, 3), **TINY_SCRATCH["simple"])
    model.save(tmp_path / "simple.keras")
    images, _ = _batch(32, 32)
    np.testing.assert_array_equal(np.asarray(load_model(tmp_path / "simple.keras")(images)), np.asarray(model(images)))
