"""A sweep from start to end: expand the trials, skip those already published (--resume), run the
rest on an engine, report progress, and show the comparison table of the sweep's runs."""

from __future__ import annotations

import time
from pathlib import Path

from training.runs.layout import ArtifactError
from training.runs.reader import list_runs
from training.runs.summary import run_summary, table_rows, to_markdown
from training.sweep.engines import Outcome, run_local, run_ray
from training.sweep.trials import Trial, expand

ENGINES = ("local", "ray")


def published_hashes(artifacts) -> dict[str, Path]:
    """``config_hash`` -> run directory of every readable run of the store that has one."""
    found = {}
    for run in list_runs(artifacts):
        try:
            digest = run.metrics.get("config_hash")
        except ArtifactError:
            continue
        if digest:
            found.setdefault(digest, run.path)
    return found


class Progress:
    """Prints one line per start and end: trials done / running / failed, with times."""

    def __init__(self, total: int, skipped: int, out=print):
        self.total, self.done, self.running, self.failed = total, skipped, 0, 0
        self.started, self.out = time.perf_counter(), out

    def __call__(self, outcome: Outcome | None, starting: Trial | None) -> None:
        if starting is not None:
            self.running += 1
            what = f"started {starting.name}"
        else:
            self.running -= 1
            if outcome.ok:
                self.done += 1
                what = f"done {outcome.trial.name} in {outcome.seconds:.1f} s"
            else:
                self.failed += 1
                what = f"FAILED {outcome.trial.name} after {outcome.seconds:.1f} s:\n    " + \
                    outcome.error.replace("\n", "\n    ")
        self.out(f"[{time.perf_counter() - self.started:7.1f} s] {self.done}/{self.total} done, "
                 f"{self.running} running or queued, {self.failed} failed: {what}", flush=True)


def run_sweep(inputs: list[str], grids: list[str] = (), overrides: list[str] = (), engine: str = "local",
              artifacts=None, resume: bool = False, address: str | None = None, cpus_per_trial: float = 1,
              gpus_per_trial: float = 0, out=print) -> list[Outcome]:
    """Run the sweep; returns one outcome per trial, in trial order."""
    if engine not in ENGINES:
        raise ValueError(f"--engine {engine!r}: one of {', '.join(ENGINES)}")
    trials = expand(inputs, list(grids), list(overrides))
    skipped = []
    if resume:
        published = published_hashes(artifacts)
        skipped = [Outcome(t, run=str(published[t.config_hash]), skipped=True)
                   for t in trials if t.config_hash in published]
    names = {outcome.trial.name for outcome in skipped}
    todo = [trial for trial in trials if trial.name not in names]
    out(f"sweep: {len(trials)} trials, {len(skipped)} already published, {len(todo)} to run ({engine})", flush=True)
    for outcome in skipped:
        out(f"  skipped {outcome.trial.name}: published as {Path(outcome.run).name}", flush=True)
    report = Progress(len(trials), len(skipped), out)
    started = time.perf_counter()
    if not todo:
        ran = []
    elif engine == "ray":
        ran = run_ray(todo, artifacts, report, address, cpus_per_trial, gpus_per_trial)
    else:
        ran = run_local(todo, artifacts, report)
    by_name = {outcome.trial.name: outcome for outcome in skipped + ran}
    outcomes = [by_name[trial.name] for trial in trials]
    failed = [outcome for outcome in outcomes if not outcome.ok]
    out(f"sweep ended in {time.perf_counter() - started:.1f} s: {len(outcomes) - len(failed)} published "
        f"({len(skipped)} before), {len(failed)} failed", flush=True)
    for outcome in failed:
        out(f"  failed {outcome.trial.name}: {outcome.error.splitlines()[-1]}", flush=True)
    out(comparison_table(outcomes), flush=True)
    return outcomes


def comparison_table(outcomes: list[Outcome]) -> str:
    """The run table (``training.runs.summary``) of the sweep's published runs."""
    from training.runs.reader import Run

    summaries = []
    for outcome in outcomes:
        if outcome.run:
            try:
                summaries.append(run_summary(Run(Path(outcome.run).name, Path(outcome.run))))
            except ArtifactError as error:
                summaries.append({"run": Path(outcome.run).name, "error": str(error)})
    return to_markdown(table_rows(summaries)) if summaries else "(no run published)"
