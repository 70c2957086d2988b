"""Training end to end on a tiny dataset: the run directory, interruption and --resume."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from cityscapes_builder import build_tiny_dataset

from training.cli import main
from training.data.cityscapes import read_pair
from training.data.index import load_or_build_index
from training.fit import runner as train_module
from training.fit.config import load_config
from training.runs.store import get_run, list_runs

TINY = ["data.height=16", "data.width=32", "data.batch_size=4", "train.epochs=2", "train.patience=0",
        "model.name=simple", "model.options.filters=[4, 8, 16]", "data.workers=1"]


@pytest.fixture
def tiny(tmp_path):
    root = build_tiny_dataset(tmp_path / "data")
    return root, tmp_path / "artifacts"


def _config(root, *extra):
    return load_config(None, TINY + [f"data.root={root}", "name=tiny_simple", *extra])


def test_a_run_directory_is_complete_and_its_model_reloads(tiny):
    from training.fit.predict import predict_classes
    from training.models import load_model

    root, artifacts = tiny
    config = _config(root)
    run_dir = train_module.train(config, artifacts, verbose=0)
    run = get_run(run_dir.name, artifacts)
    metrics = run.metrics
    for key in ("miou", "miou_official", "iou", "pixel_accuracy", "params", "train_seconds",
                "inference_ms", "dataset", "versions", "val_miou", "loss"):
        assert key in metrics, key
    assert metrics["split"] == "test" and metrics["images"] == 4 and metrics["epochs"] == 2
    assert metrics["dataset"]["fingerprint"] == load_or_build_index(root).fingerprint()
    assert run.config == config
    assert len(run.history()) == 2 and {"loss", "val_loss", "miou", "val_miou"} <= set(run.history()[0])
    per_image = run.per_image()
    assert [row["id"] for row in per_image] == [e.id for e in load_or_build_index(root).split("test")]
    stacked = run.per_image_confusion()
    assert stacked.shape == (4, 8, 8)
    np.testing.assert_array_equal(stacked.sum(0), run.confusion())

    model = load_model(run.model_path)  # a fresh load predicts the stored masks again
    for entry in load_or_build_index(root).split("test"):
        image, labels = read_pair(root, entry.image, entry.label)
        predicted = predict_classes(model, image, (16, 32))
        assert predicted.shape == labels.shape
        np.testing.assert_array_equal(predicted, run.prediction(entry.id))
    assert not (artifacts / "work" / "tiny_simple").exists()  # in-progress state is cleaned up


def test_an_interrupted_run_publishes_nothing_and_resume_continues(tiny, monkeypatch):
    root, artifacts = tiny
    config = _config(root)
    original = train_module.EpochState.on_epoch_end

    def killed_after_first_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt  # as if the process were stopped after the checkpoint

    monkeypatch.setattr(train_module.EpochState, "on_epoch_end", killed_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_module.train(config, artifacts, verbose=0)
    assert list_runs(artifacts) == []
    assert not any((artifacts / "runs").iterdir()) if (artifacts / "runs").exists() else True
    assert (artifacts / "work" / "tiny_simple" / "checkpoint.keras").exists()

    monkeypatch.setattr(train_module.EpochState, "on_epoch_end", original)
    with pytest.raises(ValueError, match="different config"):
        train_module.train(_config(root, "optimizer.learning_rate=0.5"), artifacts, resume=True, verbose=0)
    run_dir = train_module.train(config, artifacts, resume=True, verbose=0)
    run = get_run(run_dir.name, artifacts)
    assert [row["epoch"] for row in run.history()] == [1, 2]  # epoch 1 was not trained again
    assert run.metrics["epochs"] == 2


def test_cli_train_table_deploy_runs(tiny, capsys):
    root, artifacts = tiny
    args = sum((["--set", item] for item in TINY + [f"data.root={root}", "name=cli_run"]), [])
    assert main(["-q", "train", "configs/demo/_base_.yaml", *args, "--artifacts", str(artifacts)]) == 0
    assert "published" in capsys.readouterr().out
    assert main(["table", "--artifacts", str(artifacts), "--format", "csv", "--out", str(artifacts / "t.csv")]) == 0
    assert capsys.readouterr().out.startswith("run,model,backbone")
    evaluation = artifacts / "validation.json"
    assert main(["-q", "evaluate", "cli_run", "--split", "validation", "--artifacts", str(artifacts),
                 "--json", str(evaluation)]) == 0
    assert "split validation" in capsys.readouterr().out
    assert json.loads(evaluation.read_text())["images"] == 2  # the validation split of the tiny set
    assert main(["deploy", "--best", "--artifacts", str(artifacts)]) == 0
    assert main(["runs", "--artifacts", str(artifacts)]) == 0
    assert "* cli_run" in capsys.readouterr().out
    assert main(["deploy", "nope", "--artifacts", str(artifacts)]) == 2
    assert "no run named 'nope'" in capsys.readouterr().err


def test_mirrored_strategy_on_two_logical_cpus(tiny):
    root, artifacts = tiny
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from training.fit.config import load_config
        from training.fit.runner import make_strategy, train
        assert make_strategy("mirrored").num_replicas_in_sync == 2
        config = load_config(None, {TINY!r} + ["data.root={root}", "name=mirrored", "train.strategy=mirrored",
                                               "train.steps_per_epoch=2"])
        print(train(config, {str(artifacts)!r}, verbose=0))
    """)
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert get_run("mirrored", artifacts).metrics["epochs"] == 2
