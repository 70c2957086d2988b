"""A run's embedded exports (TFLite files made by ``python -m training export``): writing them
atomically, reading them without TensorFlow, and deploying one.

    artifacts/runs/<run>/exports/<name>.tflite                 the converted model
    artifacts/runs/<run>/exports/<name>.json                   its report (see ``training.fit.tflite_export``)
    artifacts/runs/<run>/exports/<name>/predictions/<id>.png   its class-index masks of the run's
                                                               evaluation split (palette PNGs, as the run's)

An export exists when its report does: the report is renamed into place last, after the model and
the predictions, from a hidden staging folder ``exports/.staging-<name>-<pid>`` that a failure
removes (and that the next export removes once its process is gone). Nothing of the run itself is
ever written: its uid, numbers and predictions stay those of its Keras model.

The dashboard draws flip maps from the stored predictions and the API serves an export that
``training.runs.deployment.deploy_export`` names; neither needs TensorFlow to read what is here.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from training.data.cityscapes import MAX_IMAGE_PIXELS
from training.data.png import PngError, read_png
from training.files import file_stamp, fsync_directory, fsync_tree, write_json_atomic
from training.runs.layout import RUN_NAME, ArtifactError
from training.runs.reader import Run
from training.runs.writer import process_alive, write_class_png

EXPORTS, STAGING_PREFIX = "exports", ".staging-"
QUANTIZATIONS = ("none", "float16", "int8")
FORMATS = ("tflite",)
# What every report holds (tests/test_export_tflite.py checks an int8 report has each).
REPORT_FIELDS = ("run", "run_uid", "name", "format", "quantize", "file", "file_bytes", "keras_file_bytes",
                 "latency", "calibration", "split", "images", "classes", "class_names", "miou", "miou_official",
                 "pixel_accuracy", "iou", "iou_official", "confusion", "keras", "delta", "delta_official",
                 "delta_miou", "delta_miou_official", "changed_pixels", "created", "versions")


def default_export_name(quantize: str) -> str:
    """``tflite-float32``, ``tflite-float16`` or ``tflite-int8``."""
    return f"tflite-{'float32' if quantize == 'none' else quantize}"


def check_export_name(name: str) -> str:
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name) or name.startswith(STAGING_PREFIX):
        raise ArtifactError(f"{name!r} is not an export name (letters, digits, '_', '-', '.'; at most 128)")
    return name


def exports_dir(run: Run) -> Path:
    return run.path / EXPORTS


# ---------------------------------------------------------------------------- reading

def export_names(run: Run) -> list[str]:
    """The run's exports (those with a report), by name."""
    folder = exports_dir(run)
    if not folder.is_dir():
        return []
    return sorted(path.stem for path in folder.glob("*.json")
                  if not path.name.startswith(".") and RUN_NAME.fullmatch(path.stem))


def exports_version(run: Run) -> tuple:
    """A cache key of the run's exports, from ``stat`` calls only: it changes when one is added,
    replaced or removed."""
    folder = exports_dir(run)
    return tuple((name, file_stamp(folder / f"{name}.json")) for name in export_names(run))


def read_export(run: Run, name: str) -> dict:
    """The report of export ``name`` of ``run``; ArtifactError naming the file when the export is
    missing or its report or model file is damaged."""
    check_export_name(name)
    report_file = exports_dir(run) / f"{name}.json"
    if not report_file.is_file():
        known = ", ".join(export_names(run)) or "none (python -m training export RUN --format tflite)"
        raise ArtifactError(f"run {run.name} has no export {name!r}; its exports: {known}")
    try:
        report = json.loads(report_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"run {run.name}: exports/{name}.json is not valid JSON ({error})") from None
    if not isinstance(report, dict) or not isinstance(report.get("iou"), dict):
        raise ArtifactError(f"run {run.name}: exports/{name}.json is not an export report")
    if not export_model_path(run, name).is_file():
        raise ArtifactError(f"run {run.name}: missing exports/{name}.tflite (its report is there)")
    return report


def export_model_path(run: Run, name: str) -> Path:
    return exports_dir(run) / f"{check_export_name(name)}.tflite"


def has_export_prediction(run: Run, name: str, image_id: int) -> bool:
    return (exports_dir(run) / name / "predictions" / f"{int(image_id)}.png").is_file()


def export_prediction(run: Run, name: str, image_id: int) -> np.ndarray:
    """The class-index mask export ``name`` predicted for ``image_id`` (at ground-truth size)."""
    filename = f"exports/{check_export_name(name)}/predictions/{int(image_id)}.png"
    try:
        header, classes = read_png(run.path / filename, MAX_IMAGE_PIXELS)
    except FileNotFoundError:
        raise ArtifactError(f"run {run.name}: missing {filename}") from None
    except (OSError, PngError) as error:
        raise ArtifactError(f"run {run.name}: {filename} is not a readable PNG ({type(error).__name__})") from None
    if header.mode not in ("P", "L"):
        raise ArtifactError(f"run {run.name}: {filename} is {header.mode}, not a class-index PNG")
    return classes


# ---------------------------------------------------------------------------- writing

def remove_stale_export_staging(folder: Path) -> None:
    """Staging folders of exports whose process is gone (killed while exporting)."""
    for path in folder.glob(f"{STAGING_PREFIX}*") if folder.is_dir() else ():
        pid = path.name.rpartition("-")[2]
        if path.is_dir() and pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


class ExportWriter:
    """Stage an export's model, predictions and report, then publish them with ``commit``.

    Example::

        writer = ExportWriter(run, "tflite-int8")
        writer.write_model(content)
        writer.write_prediction(12, classes, palette)
        writer.commit(report)          # or writer.abort() on failure
    """

    def __init__(self, run: Run, name: str, replace: bool = False):
        self.run, self.name, self.replace = run, check_export_name(name), replace
        self.folder = exports_dir(run)
        if not replace and (self.folder / f"{name}.json").exists():
            raise ArtifactError(f"run {run.name} already has an export {name!r}: choose another --name, "
                                "or --replace it")
        self.folder.mkdir(exist_ok=True)
        remove_stale_export_staging(self.folder)
        self.staging = self.folder / f"{STAGING_PREFIX}{name}-{os.getpid()}"
        shutil.rmtree(self.staging, ignore_errors=True)
        (self.staging / name / "predictions").mkdir(parents=True)

    def model_path(self) -> Path:
        return self.staging / f"{self.name}.tflite"

    def write_model(self, content: bytes) -> None:
        self.model_path().write_bytes(content)

    def write_prediction(self, image_id: int, classes: np.ndarray, palette: np.ndarray) -> None:
        write_class_png(self.staging / self.name / "predictions" / f"{int(image_id)}.png", classes, palette)

    def commit(self, report: dict) -> Path:
        """Write the report, then rename the predictions, the model and the report (last: the
        export exists from then on) into ``exports/``. Returns the report's path."""
        write_json_atomic(self.staging / f"{self.name}.json", report)
        fsync_tree(self.staging)
        items = (self.name, f"{self.name}.tflite", f"{self.name}.json")
        old = self.staging / ".replaced"
        old.mkdir()
        if (self.folder / f"{self.name}.json").exists() and not self.replace:
            raise ArtifactError(f"run {self.run.name}: an export {self.name!r} appeared meanwhile")
        for item in reversed(items):  # the old report first: the old export is gone at once
            if (self.folder / item).exists():  # (or files a killed commit left without a report)
                os.replace(self.folder / item, old / item)
        moved = []
        try:
            for item in items:
                os.replace(self.staging / item, self.folder / item)
                moved.append(item)
        except BaseException:
            for item in reversed(moved):  # no half export: what was moved goes back, the old one returns
                os.replace(self.folder / item, self.staging / item)
            for item in items:
                if (old / item).exists():
                    os.replace(old / item, self.folder / item)
            raise
        fsync_directory(self.folder)
        shutil.rmtree(self.staging, ignore_errors=True)
        return self.folder / f"{self.name}.json"

    def abort(self) -> None:
        """Remove what was staged (and ``exports/`` itself if this export was to be its first)."""
        shutil.rmtree(self.staging, ignore_errors=True)
        try:
            self.folder.rmdir()
        except OSError:
            pass  # it holds other exports
