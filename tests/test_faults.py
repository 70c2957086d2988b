"""``kill -9`` of a real training process at chosen moments, then ``--resume`` in a new process.

Every case launches ``python -m training train`` with the test hook ``SEGMENTATION_FAULT_AT``
(``training.files.fault_point``; the training's moments are ``training.fit.runner.FAULT_MOMENTS``),
which makes the process SIGKILL itself at one moment, then checks what it left: nothing
half-written in ``runs/``; a staging folder of the dead process is removed by the next run; and
``--resume``, in a new process, publishes exactly one whole run (no ``-2``) without training the
finished epochs again. The store's other commits: tests/test_faults_commits.py.

5 to 15 s per process on 2 shared cores (6 s of it importing TensorFlow): keep the cases few.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cityscapes_builder import build_tiny_dataset

from training.data.index import load_or_build_index
from training.files import FAULT_ENV
from training.runs.health import inspect_run
from training.runs.layout import STAGING_PREFIX
from training.runs.reader import get_run
from training.runs.writer import RunWriter

REPO = Path(__file__).resolve().parents[1]
NAME = "tiny"
TEST_IMAGES = 4  # the official val split of build_tiny_dataset: our "test" split
TINY = ["data.height=16", "data.width=32", "data.batch_size=4", "train.epochs=2", "train.patience=0",
        "model.name=simple", "model.options.filters=[4, 8, 16]", "data.workers=1", f"name={NAME}"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = build_tiny_dataset(tmp_path_factory.mktemp("faults") / "cityscapes")
    load_or_build_index(root)  # once, before any training process
    return root


@dataclass
class Process:
    pid: int
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def train_process(root: Path, artifacts: Path, *flags: str, fault: str | None = None) -> Process:
    """``python -m training -q train`` of the tiny config in a new process, to its end."""
    env = {key: value for key, value in os.environ.items() if key != FAULT_ENV}
    if fault:
        env[FAULT_ENV] = fault
    settings = [arg for item in TINY + [f"data.root={root}"] for arg in ("--set", item)]
    command = [sys.executable, "-m", "training", "-q", "train", "configs/demo/_base_.yaml", *settings,
               "--artifacts", str(artifacts), *flags]
    started = time.monotonic()
    with subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    return Process(process.pid, process.returncode, stdout, stderr, time.monotonic() - started)


def entries(artifacts: Path) -> tuple[list[str], list[str]]:
    """Names of the run folders and of the staging folders in ``runs/``."""
    runs = artifacts / "runs"
    names = sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []
    return ([n for n in names if not n.startswith(".")], [n for n in names if n.startswith(STAGING_PREFIX)])


def work_state(artifacts: Path) -> dict:
    return json.loads((artifacts / "work" / NAME / "state.json").read_text())


# What each kill leaves: (runs published, staging folders left, epochs in state.json)
KILLS = {
    "during_epoch:2": ([], 0, 1),  # epoch 1 checkpointed, epoch 2 half trained
    "evaluation": ([], 1, 2),  # training done, the first prediction staged
    "before_commit": ([], 1, 2),  # the staging folder complete, its uid recorded, not renamed
    "after_commit": ([NAME], 0, 2),  # published, the work folder not yet removed
}


@pytest.mark.parametrize("moment", KILLS)
def test_a_killed_run_resumes_in_a_new_process_and_publishes_once(dataset, tmp_path, moment, record_property):
    artifacts = tmp_path / "artifacts"
    killed = train_process(dataset, artifacts, fault=moment)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]

    published, staging_left, epochs = KILLS[moment]
    runs, staging = entries(artifacts)
    assert runs == published and len(staging) == staging_left
    assert all(inspect_run(get_run(run, artifacts)).ok for run in runs)  # nothing half-written in runs/
    assert staging == [f"{STAGING_PREFIX}{NAME}-{killed.pid}"] * staging_left  # the dead process's
    state = work_state(artifacts)
    assert state["epoch"] == epochs
    published_uid = state.get("publishing")
    if moment == "after_commit":
        assert get_run(NAME, artifacts).uid == published_uid
        metrics_stamp = (get_run(NAME, artifacts).path / "metrics.json").stat().st_mtime_ns

    resumed = train_process(dataset, artifacts, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert entries(artifacts) == ([NAME], [])  # one run, no "-2"; the dead process's staging is gone
    run = get_run(NAME, artifacts)
    assert inspect_run(run).ok
    assert len(list((run.path / "predictions").glob("*.png"))) == TEST_IMAGES
    assert [row["epoch"] for row in run.history()] == [1, 2]
    assert run.history()[0]["loss"] == state["history"][0]["loss"]  # epoch 1 was not trained again
    assert run.metrics["epochs"] == 2 and not (artifacts / "work" / NAME).exists()
    if moment == "after_commit":  # reported, not published again
        assert run.uid == published_uid
        assert (run.path / "metrics.json").stat().st_mtime_ns == metrics_stamp
    assert f"published {run.path}" in resumed.stdout
    record_property("seconds", {"kill": round(killed.seconds, 1), "resume": round(resumed.seconds, 1)})
    print(f"{moment}: killed after {killed.seconds:.1f} s, resumed and published in {resumed.seconds:.1f} s")


def test_staging_of_dead_processes_is_removed_never_that_of_a_live_one(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runs = tmp_path / "runs"
    for name in (f"{STAGING_PREFIX}old-run-{dead.pid}", f"{STAGING_PREFIX}busy-{os.getpid()}",
                 f"{STAGING_PREFIX}other-user-1", f"{STAGING_PREFIX}odd-name"):
        (runs / name / "predictions").mkdir(parents=True)
    writer = RunWriter("next", tmp_path)
    left = sorted(p.name for p in runs.iterdir())
    # the dead pid's folder is gone; ours (alive), pid 1's (alive, maybe another user's) and a
    # name without a pid stay
    assert left == sorted([f"{STAGING_PREFIX}busy-{os.getpid()}", f"{STAGING_PREFIX}other-user-1",
                           f"{STAGING_PREFIX}odd-name", writer.staging.name])
