"""``train.strategy``: ``mirrored`` on two logical CPUs, and ``multiworker`` with two real worker
processes on localhost (TF_CONFIG, CPU collectives): one run published by the chief, a killed
worker stopping its peer with a clear message, ``--resume`` on both, a lone worker stopping."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from api_fixtures import TINY
from cityscapes_builder import build_tiny_dataset

from training.runs.reader import list_runs

REPO = Path(__file__).resolve().parent.parent
PEER_TIMEOUT = 10  # seconds (SEGMENTATION_PEER_TIMEOUT): the first step may take twice that


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return build_tiny_dataset(tmp_path_factory.mktemp("strategies") / "cityscapes")


def files_of(run_dir: Path) -> set[str]:
    return {str(path.relative_to(run_dir)) for path in run_dir.rglob("*")}


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def worker(index: int, ports: list[int], root: Path, artifacts: Path, *sets: str, resume: bool = False,
           fault: str | None = None, name: str = "duo") -> subprocess.Popen:
    tf_config = {"cluster": {"worker": [f"localhost:{port}" for port in ports]},
                 "task": {"type": "worker", "index": index}}
    env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "SEGMENTATION_PEER_TIMEOUT": str(PEER_TIMEOUT)}
    env.pop("SEGMENTATION_FAULT_AT", None)
    if fault:
        env["SEGMENTATION_FAULT_AT"] = fault
    overrides = [*TINY, f"data.root={root}", f"name={name}", "train.strategy=multiworker", *sets]
    command = [sys.executable, "-m", "training", "-q", "train", str(REPO / "configs" / "demo" / "_base_.yaml"),
               "--artifacts", str(artifacts)] + (["--resume"] if resume else [])
    for override in overrides:
        command += ["--set", override]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(processes: list[subprocess.Popen], timeout: float = 240) -> list[tuple[int, str, str]]:
    results = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            pytest.fail(f"worker did not end within {timeout} s: {err[-2000:]}")
        results.append((process.returncode, out, err))
    return results


@pytest.fixture(scope="module")
def single_run_files(root, tmp_path_factory) -> set[str]:
    """The files of a single-device run of the same tiny config."""
    from training.fit import runner
    from training.fit.config import load_config

    artifacts = tmp_path_factory.mktemp("single")
    config = load_config(REPO / "configs" / "demo" / "_base_.yaml", [*TINY, f"data.root={root}", "name=single"])
    return files_of(runner.train(config, artifacts, verbose=0))


@pytest.mark.slow
def test_mirrored_on_two_logical_cpus_publishes_a_whole_run(root, tmp_path, single_run_files):
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from training.fit.config import load_config
        from training.fit.runner import train
        config = load_config({str(REPO / "configs" / "demo" / "_base_.yaml")!r},
                             {TINY!r} + ["data.root={root}", "name=mirrored", "train.strategy=mirrored"])
        print("published", train(config, {str(tmp_path)!r}, verbose=2))
    """)
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "training on 2 replicas (mirrored)" in completed.stdout
    assert files_of(tmp_path / "runs" / "mirrored") == single_run_files


@pytest.mark.slow
def test_two_workers_publish_one_run_by_the_chief(root, tmp_path, single_run_files):
    ports = free_ports(2)
    results = finish([worker(index, ports, root, tmp_path) for index in (0, 1)])
    for status, _, err in results:
        assert status == 0, err[-3000:]
    runs = list((tmp_path / "runs").iterdir())
    assert [run.name for run in runs] == ["duo"]  # one run, no staging folder of the other worker
    assert files_of(runs[0]) == single_run_files
    assert "published" in results[0][1] and "published" not in results[1][1]
    assert "the chief publishes" in results[1][1] or results[1][1] == ""
    assert not (tmp_path / "work" / "duo").exists()  # both workers' folders removed


@pytest.mark.slow
def test_a_killed_worker_stops_its_peer_and_both_resume(root, tmp_path):
    ports = free_ports(2)
    epochs = "train.epochs=2"
    chief = worker(0, ports, root, tmp_path, epochs)
    other = worker(1, ports, root, tmp_path, epochs, fault="during_epoch:2")
    (chief_status, _, chief_err), (other_status, _, _) = finish([chief, other], timeout=4 * PEER_TIMEOUT + 180)
    assert other_status == -9  # SIGKILL at its fault point
    assert chief_status != 0
    assert "worker 0 of 2" in chief_err or "lost its peers" in chief_err, chief_err[-2000:]
    assert "--resume" in chief_err
    states = [json.loads((tmp_path / "work" / "duo" / f"worker-{i}" / "state.json").read_text()) for i in (0, 1)]
    assert [state["epoch"] for state in states] == [1, 1]  # each worker's own checkpoint of epoch 1
    assert list_runs(tmp_path) == []

    ports = free_ports(2)
    results = finish([worker(index, ports, root, tmp_path, epochs, resume=True) for index in (0, 1)])
    for status, _, err in results:
        assert status == 0, err[-3000:]
    runs = list_runs(tmp_path)
    assert [run.name for run in runs] == ["duo"] and runs[0].metrics["epochs"] == 2
    assert len((runs[0].path / "history.csv").read_text().splitlines()) == 1 + 2  # header, epochs 1 and 2
    assert not (tmp_path / "work" / "duo").exists()


@pytest.mark.slow
def test_a_lone_worker_stops_with_a_clear_message(root, tmp_path):
    process = worker(0, free_ports(2), root, tmp_path)  # its peer never starts
    (status, _, err), = finish([process], timeout=2 * PEER_TIMEOUT + 90)
    assert status == -9
    assert "worker 0 of 2 (run duo): no training step ended" in err and "peer never started" in err
    assert not (tmp_path / "runs").exists() or list_runs(tmp_path) == []
