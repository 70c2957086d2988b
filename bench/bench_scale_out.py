"""Beyond one process: multi-worker training and sweeps, timed on this machine.

- multi-worker: the demo's simple config for one epoch, trained by one worker (the default
  strategy) and by two worker processes on localhost (``train.strategy: multiworker``,
  ``TF_CONFIG`` with two ports); the epoch's time from the published run (``train_seconds``) and
  the whole command's wall time. On one machine two workers share its cores: the point is that it
  works and what the collectives cost, not a speed-up;
- sweeps: the 4 demo configs at one epoch, ``sweep --engine local`` (one trial after another)
  against ``--engine ray`` (a local Ray, 1 CPU a trial), each into an empty run store; and the
  start of a local Ray alone (``ray.init`` to ready, then shut down).

Writes ``bench/results/scale_out.json``. No asserts.

    .venv/bin/python bench/bench_scale_out.py [--data-root data/cityscapes-synthetic] [--skip-sweeps]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.results_file import write_results  # noqa: E402

CONFIGS = REPO / "configs" / "demo"
SIMPLE = CONFIGS / "simple_scratch_cce_v1_128x256.yaml"
TIMEOUT_S = 1800  # a bound, not a measurement


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _train_command(artifacts: Path, data_root: Path, *sets: str) -> list[str]:
    command = [sys.executable, "-m", "training", "-q", "train", str(SIMPLE), "--artifacts", str(artifacts)]
    for override in (f"data.root={data_root}", "train.epochs=1", "name=scale_out", *sets):
        command += ["--set", override]
    return command


def _published(artifacts: Path) -> dict:
    runs = sorted((artifacts / "runs").glob("*/metrics.json"))
    if len(runs) != 1:
        raise RuntimeError(f"expected one published run in {artifacts}, found {len(runs)}")
    return json.loads(runs[0].read_text())


def one_worker(data_root: Path) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        artifacts = Path(folder)
        started = time.perf_counter()
        subprocess.run(_train_command(artifacts, data_root), cwd=REPO, check=True, capture_output=True,
                       timeout=TIMEOUT_S)
        wall = time.perf_counter() - started
        metrics = _published(artifacts)
    return {"workers": 1, "strategy": "default", "epoch_s": metrics["train_seconds"] / metrics["epochs"],
            "wall_s": wall}


def two_workers(data_root: Path) -> dict:
    ports = _free_ports(2)
    with tempfile.TemporaryDirectory() as folder:
        artifacts = Path(folder)
        processes, started = [], time.perf_counter()
        for index in range(2):
            tf_config = {"cluster": {"worker": [f"localhost:{port}" for port in ports]},
                         "task": {"type": "worker", "index": index}}
            processes.append(subprocess.Popen(
                _train_command(artifacts, data_root, "train.strategy=multiworker"), cwd=REPO,
                env={**os.environ, "TF_CONFIG": json.dumps(tf_config)},
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        errors = [process.communicate(timeout=TIMEOUT_S)[1] for process in processes]
        wall = time.perf_counter() - started
        for process, error in zip(processes, errors, strict=True):
            if process.returncode:
                raise RuntimeError(f"a worker failed ({process.returncode}): {error.strip()[-500:]}")
        metrics = _published(artifacts)
    return {"workers": 2, "strategy": "multiworker", "epoch_s": metrics["train_seconds"] / metrics["epochs"],
            "wall_s": wall}


def sweep(engine: str) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "training", "-q", "sweep", str(CONFIGS), "--set", "train.epochs=1",
                   "--engine", engine, "--artifacts", folder]
        if engine == "ray":
            command += ["--cpus-per-trial", "1"]
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=TIMEOUT_S)
        wall = time.perf_counter() - started
        published = len(list(Path(folder).glob("runs/*/metrics.json")))
    return {"engine": engine, "trials": published, "wall_s": wall}


def ray_start() -> float:
    """Seconds from ``ray.init()`` (a new local Ray) to ready, in a fresh process."""
    code = ("import time, ray; t = time.perf_counter(); ray.init(include_dashboard=False, "
            "log_to_driver=False); print(time.perf_counter() - t); ray.shutdown()")
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=REPO / "data" / "cityscapes-synthetic")
    parser.add_argument("--skip-sweeps", action="store_true", help="only the multi-worker training")
    args = parser.parse_args()
    if not (args.data_root / "segmentation_index.csv").is_file():
        raise SystemExit(f"{args.data_root}: no indexed dataset (make data)")
    training = [one_worker(args.data_root), two_workers(args.data_root)]
    for row in training:
        print(f"{row['workers']} worker(s): {row['epoch_s']:.1f} s an epoch, {row['wall_s']:.1f} s in all", flush=True)
    sweeps = [] if args.skip_sweeps else [sweep("local"), sweep("ray")]
    for row in sweeps:
        print(f"sweep --engine {row['engine']}: {row['trials']} runs in {row['wall_s']:.1f} s", flush=True)
    start = None if args.skip_sweeps else ray_start()
    if start is not None:
        print(f"a local Ray starts in {start:.1f} s")
    write_results("scale_out", {"cpus": os.cpu_count(), "config": SIMPLE.name, "epochs": 1,
                                "training": training, "sweeps": sweeps, "ray_start_s": start})


if __name__ == "__main__":
    main()
