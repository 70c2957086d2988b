"""Training end to end on a tiny dataset: the run directory, interruption and --resume."""

import json
import re
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
from training.runs.reader import get_run, list_runs

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
    work = artifacts / "work" / "tiny_simple"
    state = json.loads((work / "state.json").read_text())
    assert state["epoch"] == 1 and state["checkpoint"] == "checkpoint-1.keras"
    assert sorted(p.name for p in work.iterdir()) == ["best-1.keras", "checkpoint-1.keras", "state.json"]

    monkeypatch.setattr(train_module.EpochState, "on_epoch_end", original)
    with pytest.raises(ValueError, match="different config"):
        train_module.train(_config(root, "optimizer.learning_rate=0.5"), artifacts, resume=True, verbose=0)
    # Keys that change no number (the frame cache, loading threads) may differ on resume.
    run_dir = train_module.train(_config(root, "data.cache=false", "data.workers=1"), artifacts, resume=True,
                                 verbose=0)
    run = get_run(run_dir.name, artifacts)
    assert [row["epoch"] for row in run.history()] == [1, 2]  # epoch 1 was not trained again
    assert run.metrics["epochs"] == 2


def test_cli_train_table_deploy_runs(tiny, capsys):
    root, artifacts = tiny
    args = sum((["--set", item] for item in TINY + [f"data.root={root}", "name=cli_run"]), [])
    assert main(["-q", "train", "configs/demo/_base_.yaml", *args, "--artifacts", str(artifacts)]) == 0
    assert "published" in capsys.readouterr().out
    assert main(["table", "--artifacts", str(artifacts), "--format", "csv", "--out", str(artifacts / "t.csv")]) == 0
    assert capsys.readouterr().out.startswith("run,source,model,backbone")
    evaluation = artifacts / "validation.json"
    assert main(["-q", "evaluate", "cli_run", "--split", "validation", "--artifacts", str(artifacts),
                 "--json", str(evaluation)]) == 0
    printed = capsys.readouterr().out
    assert "split validation" in printed and "ECE (15 bins)" in printed
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


class KilledAt(BaseException):
    """Stands for a SIGKILL at one of the runner's fault points (tests/test_faults.py kills for real)."""


def _kill_at(monkeypatch, moment):
    def fault_point(at):
        if at == moment:
            raise KilledAt(at)

    monkeypatch.setattr(train_module, "fault_point", fault_point)


def test_after_publication_resume_reports_the_run_and_a_fresh_start_trains_anew(tiny, monkeypatch):
    root, artifacts = tiny
    config = _config(root, "train.epochs=1")
    _kill_at(monkeypatch, "after_commit")
    with pytest.raises(KilledAt):
        train_module.train(config, artifacts, verbose=0)
    work = artifacts / "work" / "tiny_simple"
    published = get_run("tiny_simple", artifacts)
    left_state = (work / "state.json").read_text()
    assert json.loads(left_state)["publishing"] == published.uid

    for path in work.glob("*.keras"):  # as a kill half-way through the clean-up leaves it (state.json goes last)
        path.unlink()
    monkeypatch.setattr(train_module, "make_batches", None)  # must not even load the data again
    assert train_module.train(config, artifacts, resume=True, verbose=0) == published.path
    assert [run.name for run in list_runs(artifacts)] == ["tiny_simple"] and not work.exists()

    monkeypatch.undo()
    work.mkdir(parents=True)
    (work / "state.json").write_text(left_state)
    # without --resume a leftover work folder is discarded and the config trained again, as ever
    assert train_module.train(config, artifacts, verbose=0).name == "tiny_simple-2"
    assert not work.exists()


def _bilinear(probabilities: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, K) -> (H, W, K), bilinear with half-pixel centres (as tf.image.resize), in float64."""
    def axis(out_size, in_size):
        source = np.clip((np.arange(out_size) + 0.5) * in_size / out_size - 0.5, 0, in_size - 1)
        lower = np.floor(source).astype(int)
        return lower, np.minimum(lower + 1, in_size - 1), source - lower

    (top, bottom, dy), (left, right, dx) = axis(size[0], probabilities.shape[0]), axis(size[1], probabilities.shape[1])
    p = probabilities.astype(np.float64)
    rows = p[top] * (1 - dy)[:, None, None] + p[bottom] * dy[:, None, None]
    return rows[:, left] * (1 - dx)[None, :, None] + rows[:, right] * dx[None, :, None]


def test_predictions_are_stored_at_the_ground_truths_size(tmp_path):
    """Trained at 16x32 on 32x64 images: predictions/<id>.png are 32x64, the argmax of the
    model's probabilities upsampled bilinearly (not the small argmax enlarged)."""
    from training.data.resize import resize_image
    from training.models import load_model

    root = build_tiny_dataset(tmp_path / "data", height=32, width=64)
    artifacts = tmp_path / "artifacts"
    run = get_run(train_module.train(_config(root, "optimizer.learning_rate=0.02"), artifacts, verbose=0).name,
                  artifacts)
    model = load_model(run.model_path)
    compared = differs_from_enlarged = 0
    for entry in load_or_build_index(root).split("test"):
        image, labels = read_pair(root, entry.image, entry.label)
        assert labels.shape == (32, 64)
        small = model.predict_on_batch(resize_image(image, (16, 32))[None].astype(np.float32) / 255.0)[0]
        probabilities = _bilinear(small, (32, 64))
        stored = run.prediction(entry.id)
        assert stored.shape == (32, 64)
        top2 = np.sort(probabilities, axis=-1)[..., -2:]
        clear = top2[..., 1] - top2[..., 0] > 1e-4  # float32 vs float64 may break near-ties only
        np.testing.assert_array_equal(stored[clear], probabilities.argmax(-1)[clear])
        compared += int(clear.sum())
        assert run.has_confidence(entry.id)  # round(255 x top probability), at the same size
        np.testing.assert_allclose(run.confidence(entry.id), probabilities.max(-1), atol=0.5 / 255 + 1e-5)
        enlarged = np.repeat(np.repeat(small.argmax(-1), 2, axis=0), 2, axis=1)
        differs_from_enlarged += int((probabilities.argmax(-1) != enlarged).sum())
    assert compared > 0.95 * 4 * 32 * 64
    calibration = run.metrics["calibration"]
    assert calibration["bins"] == 15 and calibration["pixels"] == run.metrics["pixels"]
    assert 0 <= calibration["ece"] <= 1 and sum(calibration["count"]) == calibration["pixels"]
    assert differs_from_enlarged > 0  # the comparison can tell the two ways apart


HOLD_THE_LOCK = """
import sys
from training.files import exclusive_lock
with exclusive_lock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()  # until the test kills this process
"""


def test_a_second_training_of_a_run_being_trained_stops_naming_the_first(tiny, capsys):
    """Two ``train`` of one config shared ``work/<run>`` and the second died on the first's files:
    ``work/.<run>.lock`` is now held for the whole run (here by a real process, as a training
    holds it), the second stops at once naming the holder, and the holder's death releases it."""
    root, artifacts = tiny
    lock = artifacts / "work" / ".tiny_simple.lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(lock)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        args = sum((["--set", item] for item in TINY + [f"data.root={root}", "name=tiny_simple"]), [])
        assert main(["-q", "train", "configs/demo/_base_.yaml", *args, "--artifacts", str(artifacts)]) == 2
        error = capsys.readouterr().err
        assert f"run tiny_simple is being trained by process {holder.pid}" in error, error
        assert not (artifacts / "work" / "tiny_simple").exists() and list_runs(artifacts) == []
    finally:
        holder.kill()  # SIGKILL: no clean-up of its own, the kernel releases the lock
        holder.wait()
        holder.stdout.close()
        holder.stdin.close()
    run_dir = train_module.train(_config(root, "train.epochs=1"), artifacts, verbose=0)
    assert run_dir.name == "tiny_simple" and lock.exists()  # the lock file stays: see exclusive_lock


@pytest.mark.parametrize("weights, message", [
    ("{object: .nan}", "class weights are finite numbers >= 0; got object: nan"),
    ("{human: .inf}", "got human: inf"),
    ("{flat: -1}", "got flat: -1"),
    ("[0, 0, 0, 0, 0, 0, 0, 0]", "every class weight is 0"),
])
def test_class_weights_that_train_nothing_are_refused(weights, message):
    """A NaN weight made every loss NaN (shown as 0.0) and the run was published all the same."""
    from training.fit.config import ConfigError

    for option in ("cce", "cce_dice"):
        key = "class_weights" if option == "cce" else "cce_class_weights"
        with pytest.raises(ConfigError, match=f"loss.options.{key}: .*{re.escape(message)}"):
            load_config(None, [f"loss.name={option}", f"loss.options={{{key}: {weights}}}"])
