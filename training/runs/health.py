"""Which runs of a store can be shown, and why the others cannot.

A store copied by hand, a disk that filled up, a run folder edited by a person: readers must
show every run that is whole and list the others with the reason, never crash on them.
``inspect_run`` reads what the dashboard and the API rely on (cheaply: the big arrays are
memory-mapped to check their shapes) and names each problem with the file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from training.data.labels import CLASS_SET_NAMES
from training.runs.layout import IMPORTED, PER_IMAGE_OFFICIAL_CONFUSION, ArtifactError, artifacts_dir
from training.runs.reader import Run, list_runs

# What every published run must hold for the dashboard and the API to show it.
REQUIRED_METRICS = ("classes", "split", "iou")
# What metrics.json's keys must hold where present: readers format and compare them as such.
NUMBER_METRICS = ("miou", "miou_official", "pixel_accuracy", "train_miou", "val_miou", "loss", "val_loss",
                  "inference_ms", "train_seconds", "params", "epochs", "best_epoch", "images", "pixels")
TEXT_METRICS = ("run", "created", "split", "source", "model", "backbone", "encoder_weights", "loss_name",
                "augmentation", "uid")


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


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shown(value) -> str:
    return repr(value)[:40]


def metrics_problems(metrics: dict) -> list[str]:
    """What in metrics.json is not of the type readers take it for ("metrics.json: miou is 'high',
    not a number"); absent keys are no problem here (``REQUIRED_METRICS`` says which must be)."""
    problems = []
    classes = metrics.get("classes")
    if "classes" in metrics and classes not in CLASS_SET_NAMES:
        problems.append(f"metrics.json: classes is {_shown(classes)}, not one of {', '.join(CLASS_SET_NAMES)}")
    for key in NUMBER_METRICS:
        if metrics.get(key) is not None and not _is_number(metrics[key]):
            problems.append(f"metrics.json: {key} is {_shown(metrics[key])}, not a number")
    for key in TEXT_METRICS:
        if metrics.get(key) is not None and not isinstance(metrics[key], str):
            problems.append(f"metrics.json: {key} is {_shown(metrics[key])}, not a text")
    for key in ("iou", "iou_official"):
        table = metrics.get(key)
        if key in metrics and not (isinstance(table, dict)
                                   and all(v is None or _is_number(v) for v in table.values())):
            problems.append(f"metrics.json: {key} is {_shown(table)}, not a number (or null) per class")
    size = metrics.get("image_size")
    if size is not None and not (isinstance(size, list) and len(size) == 2
                                 and all(isinstance(v, int) and not isinstance(v, bool) for v in size)):
        problems.append(f"metrics.json: image_size is {_shown(size)}, not [height, width]")
    for key in ("coverage", "calibration", "dataset", "versions"):
        if metrics.get(key) is not None and not isinstance(metrics[key], dict):
            problems.append(f"metrics.json: {key} is {_shown(metrics[key])}, not an object")
    for key in ("class_names", "confusion_names"):
        names = metrics.get(key)
        if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            problems.append(f"metrics.json: {key} is {_shown(names)}, not a list of names")
    return problems


def inspect_run(run: Run) -> RunHealth:
    """Every problem of ``run`` that would keep a reader from showing it."""
    problems: list[str] = []
    metrics = _check(problems, lambda: run.metrics)
    if metrics is not None:
        missing = [key for key in REQUIRED_METRICS if key not in metrics]
        if missing:
            problems.append(f"metrics.json lacks {', '.join(missing)}")
        problems.extend(metrics_problems(metrics))
        if metrics.get("source") != IMPORTED and not (run.path / "model.keras").exists():
            problems.append("missing model.keras")
    config = _check(problems, lambda: run.config)
    if config is not None:
        _check(problems, lambda: run.data_settings)
        data = config.get("data")
        if isinstance(data, dict) and ("height" in data or "width" in data):  # older test runs have none
            _check(problems, lambda: run.input_size)
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
