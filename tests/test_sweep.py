"""``python -m training sweep``: trial names, a failed trial reported without stopping the others,
``--resume`` running only what is missing, on the local engine and on a real local Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cityscapes_builder import build_tiny_dataset

from training.runs.layout import MAX_RUN_NAME
from training.runs.reader import list_runs
from training.sweep.trials import expand, trial_name

REPO = Path(__file__).resolve().parent.parent
TINY_YAML = """data: {{height: 16, width: 32, batch_size: 4, workers: 1, root: {root}}}
train: {{epochs: 1, patience: 0, seed: {seed}}}
model: {{name: simple, options: {{filters: [4, 8, 16]{extra}}}}}
"""


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return build_tiny_dataset(tmp_path_factory.mktemp("sweep") / "cityscapes")


def write_configs(folder: Path, root: Path, broken: str | None) -> Path:
    folder.mkdir(exist_ok=True)
    for seed, name in enumerate(("tiny_a", "tiny_b", "tiny_c")):
        extra = ", nope: 3" if name == broken else ""  # an option the model does not know: the trial fails
        (folder / f"{name}.yaml").write_text(TINY_YAML.format(root=root, seed=seed, extra=extra))
    (folder / "_base_.yaml").write_text("{}\n")  # a base file is not a trial
    return folder


def sweep(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}
    return subprocess.run([sys.executable, "-m", "training", "sweep", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def uids(artifacts: Path) -> dict[str, str]:
    return {run.name: run.uid for run in list_runs(artifacts)}


def test_trial_names_say_what_differs(root, tmp_path):
    configs = write_configs(tmp_path / "configs", root, broken=None)
    trials = expand([str(configs / "tiny_a.yaml")], ["loss.name=cce,dice", "data.augmentation=none,v2"],
                    ["train.epochs=2"])
    assert [t.name for t in trials] == ["tiny_a__loss-cce__aug-none", "tiny_a__loss-cce__aug-v2",
                                        "tiny_a__loss-dice__aug-none", "tiny_a__loss-dice__aug-v2"]
    assert trials[3].overrides == ("train.epochs=2", "loss.name=dice", "data.augmentation=v2",
                                   "name=tiny_a__loss-dice__aug-v2")
    assert len({t.config_hash for t in trials}) == 4 and all(t.config_hash for t in trials)
    assert [t.name for t in expand([str(configs)])] == ["tiny_a", "tiny_b", "tiny_c"]
    long = trial_name("x" * 120, [("model.options.filters", "[4, 8, 16]")])
    assert len(long) == MAX_RUN_NAME and long != trial_name("x" * 120, [("model.options.filters", "[4, 8]")])
    with pytest.raises(ValueError, match="same run name"):
        expand([str(configs / "tiny_a.yaml"), str(configs / "tiny_a.yaml")])


def check_failure_then_resume(root: Path, tmp_path: Path, *engine: str, names=("tiny_a", "tiny_b", "tiny_c")):
    configs = write_configs(tmp_path / "configs", root, broken="tiny_c")
    for extra in set(("tiny_a", "tiny_b", "tiny_c")) - set(names):
        (configs / f"{extra}.yaml").unlink()
    artifacts = tmp_path / "artifacts"
    first = sweep(str(configs), "--artifacts", str(artifacts), *engine)
    assert first.returncode == 1, first.stderr[-3000:]
    assert "FAILED tiny_c" in first.stdout and "unknown option(s) for simple: nope" in first.stdout
    assert f"{len(names) - 1} published (0 before), 1 failed" in first.stdout
    before = uids(artifacts)
    assert sorted(before) == sorted(names)[:-1]
    assert "| tiny_a |" in first.stdout  # the comparison table of the sweep's runs
    assert "config_hash" in json.loads((artifacts / "runs" / "tiny_a" / "metrics.json").read_text())

    write_configs(configs, root, broken=None)  # fixed
    for extra in set(("tiny_a", "tiny_b", "tiny_c")) - set(names):
        (configs / f"{extra}.yaml").unlink()
    second = sweep(str(configs), "--artifacts", str(artifacts), "--resume", *engine)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"{len(names) - 1} already published, 1 to run" in second.stdout
    after = uids(artifacts)
    assert sorted(after) == sorted(names) and all(after[name] == uid for name, uid in before.items())
    assert "| tiny_c |" in second.stdout


@pytest.mark.slow
def test_local_sweep_reports_a_failed_trial_and_resume_runs_only_it(root, tmp_path):
    check_failure_then_resume(root, tmp_path, names=("tiny_a", "tiny_c"))


@pytest.mark.slow
def test_ray_sweep_on_a_local_ray_reports_a_failed_trial_and_resume_runs_only_it(root, tmp_path):
    pytest.importorskip("ray")
    check_failure_then_resume(root, tmp_path, "--engine", "ray", "--cpus-per-trial", "1")
