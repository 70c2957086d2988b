"""Which runs of a store can be shown, and why the others cannot.

A store copied by hand, a disk that filled up, a run folder edited by a person: readers must
show every run that is whole and list the others with the reason, never crash on them.
``inspect_run`` reads what the dashboard and the API rely on (cheaply: the big arrays are
memory-mapped to check their shapes) and names each problem with the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from training.runs.layout import IMPORTED, PER_IMAGE_OFFICIAL_CONFUSION, ArtifactError, artifacts_dir
from training.runs.reader import Run, list_runs

# What every published run must hold for the dashboard and the API to show it.
REQUIRED_METRICS = ("classes", "split", "iou")


@dataclass(frozen=True)
class RunHealth:
    """A run and the problems that keep it from being shown (none: it is whole)."""

    run: Run
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def reason(self) -> str:
        return "; ".join(self.problems)


def _check(problems: list[str], read) -> object | None:
    """``read()``, or None with its ArtifactError added to ``problems``."""
    try:
        return read()
    except ArtifactError as error:
        problems.append(_without_run_prefix(str(error)))
        return None


def _without_run_prefix(message: str) -> str:
    """"run x: missing y" -> "missing y": the run is named once, by whoever shows the health."""
    head, separator, rest = message.partition(": ")
    return rest if separator and head.startswith("run ") else message


def inspect_run(run: Run) -> RunHealth:
    """Every problem of ``run`` that would keep a reader from showing it."""
    problems: list[str] = []
    metrics = _check(problems, lambda: run.metrics)
    if metrics is not None:
        missing = [key for key in REQUIRED_METRICS if key not in metrics]
        if missing:
            problems.append(f"metrics.json lacks {', '.join(missing)}")
        if metrics.get("source") != IMPORTED and not (run.path / "model.keras").exists():
            problems.append("missing model.keras")
    _check(problems, lambda: run.config)
    confusion = _check(problems, run.confusion)
    rows = _check(problems, run.per_image)
    _check(problems, run.history)
    matrices = _check(problems, lambda: run.per_image_confusion(mmap=True))
    if rows is not None and rows and "id" not in rows[0]:
        problems.append("per_image.csv has no id column")
    if matrices is not None and rows is not None and len(matrices) != len(rows):
        problems.append(f"per_image_confusion.npy has {len(matrices)} images, per_image.csv {len(rows)}")
    if matrices is not None and confusion is not None and matrices.shape[1:] != confusion.shape:
        problems.append(f"per_image_confusion.npy is {matrices.shape[1]}x{matrices.shape[2]} per image, "
                        f"confusion.npy {confusion.shape[0]}x{confusion.shape[1]}")
    if run.has_official_confusion:  # runs evaluated before it have none, and are whole
        official = _check(problems, lambda: run.per_image_official_confusion(mmap=True))
        if official is not None and matrices is not None and official.shape != matrices.shape:
            problems.append(f"{PER_IMAGE_OFFICIAL_CONFUSION} holds {official.shape}, per_image_confusion.npy "
                            f"{matrices.shape}")
    if not (run.path / "predictions").is_dir():
        problems.append("missing predictions/")
    return RunHealth(run, tuple(problems))


def require_model(run: Run, doing: str) -> Run:
    """``run`` when it is whole and holds a model (what deploying, exporting or timing it needs);
    ArtifactError saying why it cannot be ``doing`` ("deployed", "exported"...) otherwise."""
    health = inspect_run(run)
    if not health.ok:
        raise ArtifactError(f"run {run.name} cannot be {doing}: {health.reason}")
    if run.metrics.get("source") == IMPORTED:
        raise ArtifactError(f"run {run.name} cannot be {doing}: it holds imported predictions, not a model "
                            "(python -m training train CONFIG makes a run with one)")
    return run


def inspect_store(root: str | os.PathLike | None = None) -> list[RunHealth]:
    """``inspect_run`` of every run folder of the store, oldest first."""
    return [inspect_run(run) for run in list_runs(artifacts_dir(root))]
