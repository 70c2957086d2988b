"""A run's embedded exports (TFLite files made by ``python -m training export``): writing them
atomically, reading them without TensorFlow, and deploying one.

    artifacts/runs/<run>/exports/<name>.json                     the report (see ``training.fit.tflite_export``):
                                                                 it names the two below
    artifacts/runs/<run>/exports/<stem>.tflite                   the converted model
    artifacts/runs/<run>/exports/<stem>/predictions/<id>.png     its class-index masks of the run's
                                                                 evaluation split (palette PNGs, as the run's)

``<stem>`` is the export's name, or ``<name>@<generation>`` for the files of an export that
replaced one holding the name (``--replace``; ``@`` is in no export name). An export exists when its
report does, and it is the export its report names: readers find the model and the predictions
through the report (``export_model_path``, ``export_prediction``), and a report written before it
named its predictions means ``<name>/predictions``.

Publishing is one rename: the model and the predictions are staged in a hidden folder
``exports/.staging-<name>-<pid>``, moved into ``exports/`` under a stem no report names, then the
report is renamed over the old one (the switch), and only then the files the report no longer
names are removed. At every instant the old export or the new one is whole; a kill leaves at most
files no report names (removed by the next export of the name) and a staging folder (removed by
the next export once its process is gone). The steps are fault points (``EXPORT_FAULTS``). Nothing
of the run itself is ever written: its uid, numbers and predictions stay those of its Keras model.

The dashboard draws flip maps from the stored predictions and the API serves an export that
``training.runs.deployment.deploy_export`` names; neither needs TensorFlow to read what is here.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

import numpy as np

from training.data.cityscapes import MAX_IMAGE_PIXELS
from training.data.png import PngError, read_png
from training.files import fault_point, file_stamp, fsync_directory, fsync_tree, write_json_atomic
from training.runs.layout import RUN_NAME, ArtifactError
from training.runs.reader import Run
from training.runs.writer import process_alive, write_class_png

EXPORTS, STAGING_PREFIX = "exports", ".staging-"
GENERATION = "@"  # <name>@<generation>: the files of one export of the name; "@" is in no export name
PREDICTIONS = "predictions"
# The commit's steps, where a test kills the process (``training.files.fault_point``): staged and
# flushed; the new predictions in exports/ (no report names them yet); the new model too; the new
# report renamed over the old one (the old files still there); the first old file removed.
EXPORT_FAULTS = ("export:staged", "export:predictions_placed", "export:model_placed", "export:switched",
                 "export:collecting")
QUANTIZATIONS = ("none", "float16", "int8")
FORMATS = ("tflite",)
# What every report holds (tests/test_export_tflite.py checks an int8 report has each).
REPORT_FIELDS = ("run", "run_uid", "name", "format", "quantize", "file", "file_bytes", "keras_file_bytes",
                 "latency", "calibration", "split", "images", "classes", "class_names", "miou", "miou_official",
                 "pixel_accuracy", "iou", "iou_official", "confusion", "keras", "delta", "delta_official",
                 "delta_miou", "delta_miou_official", "changed_pixels", "created", "versions", "predictions")


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
    report = _report(run, name)
    model = exports_dir(run) / _files_named(name, report)[0]
    if not model.is_file():
        raise ArtifactError(f"run {run.name}: missing {EXPORTS}/{model.name} (its report is there)")
    return report


def _report(run: Run, name: str) -> dict:
    """Export ``name``'s report as it is, checked to name files of its own."""
    check_export_name(name)
    report_file = exports_dir(run) / f"{name}.json"
    if not report_file.is_file():
        known = ", ".join(export_names(run)) or "none (python -m training export RUN --format tflite)"
        raise ArtifactError(f"run {run.name} has no export {name!r}; its exports: {known}")
    try:
        report = json.loads(report_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"run {run.name}: {EXPORTS}/{name}.json is not valid JSON ({error})") from None
    if not isinstance(report, dict) or not isinstance(report.get("iou"), dict):
        raise ArtifactError(f"run {run.name}: {EXPORTS}/{name}.json is not an export report")
    try:
        _files_named(name, report)
    except ValueError as error:
        raise ArtifactError(f"run {run.name}: {EXPORTS}/{name}.json {error}") from None
    return report


def _files_named(name: str, report: dict) -> tuple[str, str]:
    """(model file, predictions folder) that ``report`` of export ``name`` names, relative to
    exports/; ValueError when it names files of no generation of ``name``."""
    model, predictions = report.get("file", f"{name}.tflite"), report.get(PREDICTIONS, f"{name}/{PREDICTIONS}")
    if not (isinstance(model, str) and model.endswith(".tflite") and _own_stem(name, model[:-len(".tflite")])):
        raise ValueError(f"names the model file {model!r}, not one of export {name!r}")
    stem, _, leaf = predictions.partition("/") if isinstance(predictions, str) else ("", "", "")
    if leaf != PREDICTIONS or not _own_stem(name, stem):
        raise ValueError(f"names the predictions {predictions!r}, not those of export {name!r}")
    return model, predictions


def _own_stem(name: str, stem: str) -> bool:
    """Whether ``stem`` is ``name`` or ``name@<generation>`` (letters and digits)."""
    generation = stem.removeprefix(f"{name}{GENERATION}")
    return stem == name or (generation != stem and generation.isalnum() and generation.isascii())


def export_model_path(run: Run, name: str) -> Path:
    """The model file export ``name``'s report names; ArtifactError as ``read_export``."""
    return exports_dir(run) / _files_named(name, _report(run, name))[0]


def _predictions(run: Run, name: str) -> str:
    return _files_named(name, _report(run, name))[1]


def has_export_prediction(run: Run, name: str, image_id: int) -> bool:
    try:
        folder = _predictions(run, name)
    except ArtifactError:
        return False
    return (exports_dir(run) / folder / f"{int(image_id)}.png").is_file()


def export_prediction(run: Run, name: str, image_id: int) -> np.ndarray:
    """The class-index mask export ``name`` predicted for ``image_id`` (at ground-truth size)."""
    filename = f"{EXPORTS}/{_predictions(run, name)}/{int(image_id)}.png"
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
        # The export's own name while no report holds it (a first export), else a new generation:
        # the files of the export it replaces stay whole until the report switches.
        held = _named_stems(self.folder, name)
        self.stem = name if name not in held else f"{name}{GENERATION}{secrets.token_hex(6)}"
        (self.staging / self.stem / PREDICTIONS).mkdir(parents=True)

    def model_path(self) -> Path:
        return self.staging / f"{self.stem}.tflite"

    def write_model(self, content: bytes) -> None:
        self.model_path().write_bytes(content)

    def write_prediction(self, image_id: int, classes: np.ndarray, palette: np.ndarray) -> None:
        write_class_png(self.staging / self.stem / PREDICTIONS / f"{int(image_id)}.png", classes, palette)

    def commit(self, report: dict) -> Path:
        """Name the staged files in ``report`` (its ``file`` and ``predictions``), move them into
        ``exports/``, rename the report over the export's old one (the switch), then remove the
        files no report names. Returns the report's path."""
        report.update(file=f"{self.stem}.tflite", predictions=f"{self.stem}/{PREDICTIONS}")
        write_json_atomic(self.staging / f"{self.name}.json", report)
        fsync_tree(self.staging)
        if (self.folder / f"{self.name}.json").exists() and not self.replace:
            raise ArtifactError(f"run {self.run.name}: an export {self.name!r} appeared meanwhile")
        fault_point("export:staged")
        placed = []
        try:
            for item, moment in ((self.stem, "export:predictions_placed"),
                                 (f"{self.stem}.tflite", "export:model_placed")):
                _remove(self.folder / item)  # what a killed commit left under this stem: no report names it
                os.replace(self.staging / item, self.folder / item)
                placed.append(self.folder / item)
                fault_point(moment)
            fsync_directory(self.folder)  # the files are in place before a report can name them
            os.replace(self.staging / f"{self.name}.json", self.folder / f"{self.name}.json")
        except BaseException:
            for path in placed:  # named by no report: the old export is still the one there
                _remove(path)
            raise
        fault_point("export:switched")
        fsync_directory(self.folder)
        remove_unnamed_files(self.folder, self.name)
        shutil.rmtree(self.staging, ignore_errors=True)
        return self.folder / f"{self.name}.json"

    def abort(self) -> None:
        """Remove what was staged (and ``exports/`` itself if this export was to be its first)."""
        shutil.rmtree(self.staging, ignore_errors=True)
        try:
            self.folder.rmdir()
        except OSError:
            pass  # it holds other exports


def _named_stems(folder: Path, name: str) -> set[str]:
    """The stems the report of export ``name`` names (none without a readable report)."""
    try:
        report = json.loads((folder / f"{name}.json").read_text())
        if not isinstance(report, dict):
            return set()
        model, predictions = _files_named(name, report)
    except (OSError, UnicodeDecodeError, ValueError):  # JSONDecodeError is a ValueError
        return set()
    return {model.removesuffix(".tflite"), predictions.partition("/")[0]}


def remove_unnamed_files(folder: Path, name: str) -> list[Path]:
    """Remove the files of export ``name`` its report does not name (those of the export it
    replaced, or placed by a commit killed before its switch); nothing without a readable report.
    Returns what was removed."""
    named = _named_stems(folder, name)
    if not named:
        return []
    removed = []
    for path in sorted(folder.iterdir()):
        stem = path.name.removesuffix(".tflite") if path.is_file() else path.name
        if (path.is_dir() or path.suffix == ".tflite") and _own_stem(name, stem) and stem not in named:
            _remove(path)
            removed.append(path)
            fault_point("export:collecting")
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
