"""Where the trials run: one after another on this machine (``local``) or on a Ray cluster (``ray``).

Either way a trial is the same subprocess, ``python -m training train ...``, run in the repository
folder (on every node of a Ray cluster: the repository at the same path), publishing into the
``--artifacts`` store (on a cluster: a shared file system). Ray is imported here only, when the
ray engine runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from training.sweep.trials import Trial

REPOSITORY = Path(__file__).resolve().parents[2]
ERROR_LINES = 5  # the last lines of a failed trial's stderr shown in the report


@dataclass
class Outcome:
    """How a trial ended: ``run`` is the published run's directory; ``error`` the last lines of
    stderr of a failed one; ``skipped`` when --resume found it published."""

    trial: Trial
    seconds: float = 0.0
    run: str | None = None
    error: str | None = None
    skipped: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def run_command(command: list[str], cwd: str, env: dict) -> tuple[int, str, str, float]:
    """Run one trial's command; returns (status, stdout, stderr, seconds). Only the standard library:
    Ray ships this function to its workers."""
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    return completed.returncode, completed.stdout, completed.stderr, time.perf_counter() - started


def outcome_of(trial: Trial, status: int, stdout: str, stderr: str, seconds: float) -> Outcome:
    published = [line.removeprefix("published ").strip() for line in stdout.splitlines()
                 if line.startswith("published ")]
    if status == 0 and published:
        return Outcome(trial, seconds, run=published[-1])
    lines = [line for line in stderr.splitlines() if line.strip() and not _noise(line)]
    tail = "\n".join(lines[-ERROR_LINES:]) or f"exit status {status}"
    return Outcome(trial, seconds, error=tail)


def _noise(line: str) -> bool:
    """TensorFlow's start-up logging, not the trial's error."""
    return line[:5] in ("W0000", "I0000", "E0000") or line.startswith(("WARNING: All log", "To enable the"))


def trial_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), env.get("PYTHONPATH")]))
    return env


def run_local(trials: list[Trial], artifacts: str | None, report: Callable[[Outcome | None, Trial | None], None]
              ) -> list[Outcome]:
    """One trial after another, in this machine's Python."""
    outcomes = []
    for trial in trials:
        report(None, trial)
        outcome = outcome_of(trial, *run_command(trial.command(sys.executable, artifacts), str(REPOSITORY),
                                                 trial_env()))
        outcomes.append(outcome)
        report(outcome, None)
    return outcomes


def run_ray(trials: list[Trial], artifacts: str | None, report: Callable[[Outcome | None, Trial | None], None],
            address: str | None = None, cpus_per_trial: float = 1, gpus_per_trial: float = 0) -> list[Outcome]:
    """Every trial as a Ray task (``cpus_per_trial``/``gpus_per_trial`` of a node each), on the
    cluster at ``address``, or on a local Ray started with this machine's cores."""
    import ray

    started = time.perf_counter()
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    print(f"ray started in {time.perf_counter() - started:.1f} s: {ray.cluster_resources().get('CPU', 0):g} CPUs, "
          f"{ray.cluster_resources().get('GPU', 0):g} GPUs", flush=True)
    try:
        task = ray.remote(run_command).options(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)
        env = {key: value for key, value in trial_env().items() if not key.startswith("RAY_")}
        pending = {}
        for trial in trials:
            # the driver's interpreter and folders: the same paths on every node
            pending[task.remote(trial.command(sys.executable, artifacts), str(REPOSITORY), env)] = trial
            report(None, trial)
        outcomes = {}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            trial = pending.pop(done[0])
            try:
                outcome = outcome_of(trial, *ray.get(done[0]))
            except ray.exceptions.RayError as error:  # the task itself died (a node lost...)
                outcome = Outcome(trial, error=f"ray: {str(error).strip().splitlines()[-1]}")
            outcomes[trial.name] = outcome
            report(outcome, None)
        return [outcomes[trial.name] for trial in trials]
    finally:
        ray.shutdown()
