"""Files that are not what their names say: a link to ``/dev/zero`` (endless bytes) or a FIFO
(opening it waits for a writer forever) among the predictions, the photos or a run's files.

Each is refused by name, at once, before it is opened: a tool that hangs or eats memory on a
folder filled by hand loses its user's work. Every command runs in a real subprocess under a
timeout, so a hang fails the test instead of stalling the suite.
"""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from cityscapes_builder import image_path, label_path
from PIL import Image

from training.data.cityscapes import DatasetError, read_image
from training.data.index import load_or_build_index
from training.data.png import read_file
from training.runs.layout import ArtifactError
from training.runs.reader import Run

HANG_GUARD_S = 120  # far above the seconds these commands take; a hang ends the test instead


def _kinds():
    return {"a link to /dev/zero": lambda path: path.symlink_to("/dev/zero"), "a FIFO": lambda path: os.mkfifo(path)}


def _run(*args):
    return subprocess.run([sys.executable, "-m", "training", "-q", *args], capture_output=True, text=True,
                          timeout=HANG_GUARD_S)


@pytest.fixture
def predictions(tiny_root, tmp_path):
    """The ground truth of the test split, copied as predictions."""
    pred_dir = tmp_path / "predictions"
    for entry in load_or_build_index(tiny_root).split("test"):
        (pred_dir / entry.city).mkdir(parents=True, exist_ok=True)
        shutil.copy(label_path(tiny_root, "val", entry.stem), pred_dir / entry.city / f"{entry.stem}_pred.png")
    return pred_dir


@pytest.mark.parametrize("kind", list(_kinds()))
def test_a_prediction_that_is_not_a_file_is_named_not_read(kind, tiny_root, predictions):
    victim = sorted(predictions.rglob("*.png"))[0]
    victim.unlink()
    _kinds()[kind](victim)
    completed = _run("evaluate-masks", "--gt-root", str(tiny_root), "--pred-dir", str(predictions))
    assert completed.returncode != 0
    assert victim.name in completed.stderr and "not a regular file" in completed.stderr, completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize("kind", list(_kinds()))
def test_a_photo_that_is_not_a_file_is_named_by_the_check(kind, tiny_root):
    load_or_build_index(tiny_root)
    stem = load_or_build_index(tiny_root).split("test")[0].stem
    victim = image_path(tiny_root, "val", stem)
    victim.unlink()
    _kinds()[kind](victim)
    completed = _run("data", "check", "--data-root", str(tiny_root))
    assert victim.name in completed.stdout + completed.stderr, completed.stdout + completed.stderr
    assert "not a regular file" in completed.stdout + completed.stderr
    assert "Traceback" not in completed.stderr
    with pytest.raises(DatasetError, match="not a regular file"):
        read_image(victim)


def test_a_file_larger_than_any_image_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.png"
    with open(big, "wb") as stream:
        stream.truncate(2048)  # sparse: no bytes written
    assert len(read_file(big, limit=4096)) == 2048
    with pytest.raises(OSError, match="more than any image of ours"):
        read_file(big, limit=1024)


@pytest.mark.parametrize("kind", list(_kinds()))
def test_a_run_file_that_is_not_a_file_is_an_artifact_error(kind, tmp_path):
    run = Run("victim", tmp_path / "victim")
    (run.path / "predictions").mkdir(parents=True)
    Image.fromarray(np.zeros((4, 8), np.uint8)).save(run.path / "predictions" / "1.png")
    assert run.prediction(1).shape == (4, 8)
    for name in ("predictions/2.png", "metrics.json", "history.csv", "confusion.npy"):
        _kinds()[kind](run.path / name)
    with pytest.raises(ArtifactError, match="predictions/2.png is not a regular file"):
        run.prediction(2)
    with pytest.raises(ArtifactError, match="metrics.json is not a regular file"):
        _ = run.metrics
    with pytest.raises(ArtifactError, match="history.csv is not a regular file"):
        run.history()
    with pytest.raises(ArtifactError, match="confusion.npy is not a regular file"):
        run.confusion()
