"""The run store: the only module that writes or reads ``artifacts/``.

    artifacts/runs/<run>/config.yaml           resolved config
    artifacts/runs/<run>/model.keras           the trained model
    artifacts/runs/<run>/history.csv           per-epoch loss and metrics
    artifacts/runs/<run>/metrics.json          the numbers of the run (see ``RunWriter.finish``)
    artifacts/runs/<run>/confusion.npy         K x K int64, rows = ground truth
    artifacts/runs/<run>/per_image.csv         id, split, mIoU, pixel accuracy, per-class IoU
    artifacts/runs/<run>/per_image_confusion.npy   N x K x K, rows in per_image.csv order
    artifacts/runs/<run>/predictions/<id>.png  class-index masks of the evaluated split
                                               (255: no class, only in imported runs)
    artifacts/runs/<run>/confidence/<id>.png   round(255 x top softmax probability), grey
    artifacts/runs/<run>/anatomy.json, instances.csv, per_image_anatomy.csv, frame_errors.npy
                                               error anatomy (``training.runs.anatomy``)
    artifacts/runs/<run>/latency.json          time per image and how it was measured
                                               (``training.runs.latency``)
    artifacts/deployed.json                    which run the API serves

A run imported from another tool's predictions (``training.runs.imported``) has the same files
but no model.keras, and ``"source": "imported"`` in metrics.json.

A run directory appears only when complete: everything is written into a hidden staging
folder which is renamed into place at the end, so a killed run leaves nothing half-written in
``runs/``. No TensorFlow here: the API and the dashboard read runs through this module.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from training.data.cityscapes import MAX_IMAGE_PIXELS, REPO_ROOT
from training.data.dataset import DataSettings
from training.data.png import PngError, read_png
from training.files import file_stamp, fsync_directory, fsync_tree, write_json_atomic

DEFAULT_ARTIFACTS = REPO_ROOT / "artifacts"
RUNS, STAGING_PREFIX, DEPLOYED = "runs", ".staging-", "deployed.json"
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
RUN_FILES = ("config.yaml", "model.keras", "history.csv", "metrics.json", "confusion.npy", "per_image.csv")
ANATOMY = "anatomy.json"  # error anatomy (training.runs.anatomy); runs evaluated before it have none
LATENCY = "latency.json"  # measured latency and its conditions (training.runs.latency); rewritten by benchmark
IMPORTED = "imported"  # metrics.json "source" of a run made from another tool's predictions: no model


class ArtifactError(Exception):
    """A missing or damaged run; the message names the run and the file."""


def artifacts_dir(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$ARTIFACTS_DIR``, else ``artifacts/`` in the repository."""
    return Path(path or os.environ.get("ARTIFACTS_DIR") or DEFAULT_ARTIFACTS)


def check_run_name(name: str) -> str:
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name):
        raise ArtifactError(f"{name!r} is not a run name (letters, digits, '_', '-', '.'; at most 128)")
    return name


# ---------------------------------------------------------------------------- writing

class RunWriter:
    """Stage a run's files, then publish them all at once with ``commit()``.

    The staging folder is ``runs/.staging-<name>-<pid>``: a process killed before its commit
    leaves it behind, and the next ``RunWriter`` (or training run) of the store removes it once
    that process no longer runs (``remove_stale_staging``).

    Example::

        writer = RunWriter("fpn_effb0", artifacts)
        model.save(writer.path("model.keras"))
        writer.write_prediction(12, mask, palette)
        final_dir = writer.commit()
    """

    def __init__(self, name: str, root: str | os.PathLike | None = None):
        self.name = check_run_name(name)
        self.uid = uuid.uuid4().hex  # the run's identity: names can be reused, uids never
        self.runs = artifacts_dir(root) / RUNS
        self.runs.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(root)
        self.staging = self.runs / f"{STAGING_PREFIX}{name}-{os.getpid()}"
        if self.staging.exists():
            shutil.rmtree(self.staging)
        (self.staging / "predictions").mkdir(parents=True)
        (self.staging / "confidence").mkdir()

    def path(self, filename: str) -> Path:
        return self.staging / filename

    def write_text(self, filename: str, text: str) -> None:
        self.path(filename).write_text(text)

    def write_json(self, filename: str, data) -> None:
        write_json_atomic(self.path(filename), data)

    def write_array(self, filename: str, array: np.ndarray) -> None:
        np.save(self.path(filename), array)

    def write_csv(self, filename: str, rows: list[dict]) -> None:
        self.write_text(filename, csv_text(rows))

    def write_prediction(self, image_id: int, classes: np.ndarray, palette: np.ndarray) -> None:
        write_class_png(self.path(f"predictions/{int(image_id)}.png"), classes, palette)

    def write_confidence(self, image_id: int, confidence: np.ndarray) -> None:
        """A uint8 ``round(255 x top probability)`` map as a grey PNG."""
        Image.fromarray(confidence, mode="L").save(self.path(f"confidence/{int(image_id)}.png"), compress_level=3)

    def commit(self) -> Path:
        """Stamp metrics.json with the run's ``uid``, then rename the staging folder to
        ``runs/<name>`` (``<name>-2``, ... if taken: a published run is never replaced).

        Every staged file is flushed to disk before the rename and ``runs/`` after it, so a
        crash of the machine cannot leave a published run with empty files."""
        if not self.path("metrics.json").exists():
            raise ArtifactError(f"run {self.name}: cannot publish, missing metrics.json")
        metrics = json.loads(self.path("metrics.json").read_text())
        required = [f for f in RUN_FILES if f != "model.keras" or metrics.get("source") != IMPORTED]
        missing = [f for f in required if not self.path(f).exists()]
        if missing:
            raise ArtifactError(f"run {self.name}: cannot publish, missing {', '.join(missing)}")
        self.write_json("metrics.json", {**metrics, "uid": self.uid})
        fsync_tree(self.staging)
        target, suffix = self.runs / self.name, 2
        while target.exists():
            target, suffix = self.runs / f"{self.name}-{suffix}", suffix + 1
        os.replace(self.staging, target)
        fsync_directory(self.runs)
        return target

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def write_class_png(path: Path, classes: np.ndarray, palette: np.ndarray) -> None:
    """A class-index mask as a palette PNG: values are class indices, viewers show colours."""
    image = Image.fromarray(classes.astype(np.uint8), mode="P")
    image.putpalette(palette.reshape(-1).tolist())
    # zlib level 3: a 2048x1024 mask in ~8 ms instead of ~50 ms at the default 6, ~1.5x the bytes.
    image.save(path, compress_level=3)


def csv_text(rows: list[dict], columns: tuple[str, ...] | None = None) -> str:
    """Rows as CSV text (the header alone when ``columns`` are given and there are no rows)."""
    buffer = io.StringIO()
    fieldnames = list(columns) if columns else list(rows[0]) if rows else []
    if fieldnames:
        writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def _staging_pid(folder: Path) -> int | None:
    """The pid of ``.staging-<name>-<pid>``; None for any other name."""
    if not folder.name.startswith(STAGING_PREFIX):
        return None
    pid = folder.name.rpartition("-")[2]
    return int(pid) if pid.isdigit() and int(pid) > 0 else None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def remove_stale_staging(root: str | os.PathLike | None = None) -> list[Path]:
    """Remove the staging folders left by processes that no longer run (killed while staging
    a run); never one of a live process. Returns the folders removed.

    Pids are those of this machine: a store shared by several machines must not be published to
    from more than one of them at a time.
    """
    runs = artifacts_dir(root) / RUNS
    stale = [folder for folder in (runs.iterdir() if runs.is_dir() else ())
             if folder.is_dir() and (pid := _staging_pid(folder)) is not None and not process_alive(pid)]
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)  # another process may be removing it too
    return stale


# ---------------------------------------------------------------------------- reading

@dataclass
class Run:
    """A published run, read lazily; every accessor names the file when it is missing."""

    name: str
    path: Path

    def _file(self, filename: str) -> Path:
        path = self.path / filename
        if not path.exists():
            raise ArtifactError(f"run {self.name}: missing {filename}")
        return path

    def _document(self, filename: str, parse, errors, expected: type, format_name: str, kind: str):
        """``parse`` of a text file of the run, which must give an ``expected``; ArtifactError
        naming the run and the file otherwise."""
        try:
            value = parse(self._file(filename).read_text())
        except errors as exc:
            raise ArtifactError(f"run {self.name}: {filename} is not valid {format_name} ({exc})") from None
        if not isinstance(value, expected):
            raise ArtifactError(f"run {self.name}: {filename} holds a {type(value).__name__}, not {kind}")
        return value

    @cached_property
    def metrics(self) -> dict:
        return self._document("metrics.json", json.loads, json.JSONDecodeError, dict, "JSON", "an object")

    @cached_property
    def config(self) -> dict:
        """The resolved config the run was trained with (parsed once per ``Run``)."""
        return self._document("config.yaml", yaml.safe_load, yaml.YAMLError, dict, "YAML", "a mapping")

    @cached_property
    def uid(self) -> str:
        """The run's identity: the uid stamped at publication; for a run published before uids, a
        hash of its metrics.json and config.yaml. Caches key on it, never on the name alone."""
        stamped = self.metrics.get("uid")
        if isinstance(stamped, str) and stamped:
            return stamped
        digest = hashlib.sha256(self._file("metrics.json").read_bytes())
        config = self.path / "config.yaml"
        if config.exists():
            digest.update(config.read_bytes())
        return "content-" + digest.hexdigest()[:24]

    @property
    def data_settings(self) -> DataSettings:
        """Where the run's data is and which classes it predicts."""
        return DataSettings.from_config(self.config)

    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` the model takes."""
        try:
            return int(self.config["data"]["height"]), int(self.config["data"]["width"])
        except (KeyError, TypeError, ValueError):
            raise ArtifactError(f"run {self.name}: config.yaml has no data.height and data.width") from None

    @property
    def model_path(self) -> Path:
        return self._file("model.keras")

    def _array(self, filename: str, mmap: bool = False) -> np.ndarray:
        try:
            return np.load(self._file(filename), allow_pickle=False, mmap_mode="r" if mmap else None)
        except (ValueError, OSError, EOFError) as exc:
            raise ArtifactError(f"run {self.name}: {filename} is not a numpy array file ({exc})") from None

    def confusion(self) -> np.ndarray:
        """K x K counts, rows = ground truth."""
        matrix = self._array("confusion.npy")
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.dtype.kind not in "iuf":
            raise ArtifactError(f"run {self.name}: confusion.npy holds {matrix.dtype} {matrix.shape}, "
                                "not a square matrix of counts")
        return matrix

    def per_image_confusion(self, mmap: bool = False) -> np.ndarray:
        """N x K x K counts, in per_image.csv order."""
        matrices = self._array("per_image_confusion.npy", mmap)
        if matrices.ndim != 3 or matrices.shape[1] != matrices.shape[2] or matrices.dtype.kind not in "iuf":
            raise ArtifactError(f"run {self.name}: per_image_confusion.npy holds {matrices.dtype} "
                                f"{matrices.shape}, not N square matrices of counts")
        return matrices

    def history(self) -> list[dict]:
        return self._csv("history.csv")

    def per_image(self) -> list[dict]:
        return self._csv("per_image.csv")

    def _csv(self, filename: str) -> list[dict]:
        try:
            return _read_csv(self._file(filename))
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ArtifactError(f"run {self.name}: {filename} is not a readable CSV ({exc})") from None

    def prediction_path(self, image_id: int) -> Path:
        return self._file(f"predictions/{int(image_id)}.png")

    def prediction(self, image_id: int) -> np.ndarray:
        """The class-index mask the run predicted for ``image_id``; ArtifactError naming the
        file (relative to the run) when it is missing or not a single-channel PNG."""
        filename = f"predictions/{int(image_id)}.png"
        try:
            header, classes = read_png(self.prediction_path(image_id), MAX_IMAGE_PIXELS)
        except (OSError, PngError) as exc:
            raise ArtifactError(f"run {self.name}: {filename} is not a readable PNG "
                                f"({type(exc).__name__})") from None
        if header.mode not in ("P", "L"):
            raise ArtifactError(f"run {self.name}: {filename} is {header.mode}, not a class-index PNG")
        return classes


    def has_confidence(self, image_id: int) -> bool:
        """Whether the run stored a confidence map for ``image_id`` (runs evaluated before
        confidence maps, and imported runs, have none)."""
        return (self.path / f"confidence/{int(image_id)}.png").is_file()

    def confidence(self, image_id: int) -> np.ndarray:
        """``(H, W)`` float32 top probability of each pixel (1/255 steps) for ``image_id``;
        ArtifactError naming the file when it is missing or not a grey PNG."""
        filename = f"confidence/{int(image_id)}.png"
        try:
            header, values = read_png(self._file(filename), MAX_IMAGE_PIXELS)
        except (OSError, PngError) as exc:
            raise ArtifactError(f"run {self.name}: {filename} is not a readable PNG "
                                f"({type(exc).__name__})") from None
        if header.mode != "L":
            raise ArtifactError(f"run {self.name}: {filename} is {header.mode}, not a grey confidence map")
        return values.astype(np.float32) / 255.0

    @property
    def has_anatomy(self) -> bool:
        """Whether the run has its error anatomy (runs evaluated before it have none until
        ``python -m training anatomy RUN``)."""
        return (self.path / ANATOMY).is_file()

    def anatomy(self) -> dict:
        """anatomy.json: Boundary IoU, iIoU, settings (``training.evaluation.anatomy``)."""
        return self._document(ANATOMY, json.loads, json.JSONDecodeError, dict, "JSON", "an object")

    def latency(self) -> dict | None:
        """latency.json: the model's measured time per image and its conditions
        (``training.runs.latency``); None for a run that has none (imported, or trained before it)."""
        if not (self.path / LATENCY).is_file():
            return None
        return self._document(LATENCY, json.loads, json.JSONDecodeError, dict, "JSON", "an object")

    def instances(self) -> list[dict]:
        """instances.csv: one row per object (id, instance, label, class, pixels, box, recall, missed)."""
        return self._csv("instances.csv")

    def per_image_anatomy(self) -> list[dict]:
        """per_image_anatomy.csv: id, boundary_miou, objects, missed."""
        return self._csv("per_image_anatomy.csv")

    def frame_errors(self) -> np.ndarray:
        """``(2, rows, columns)`` counts per cell of the frame grid: pixels counted, pixels wrong."""
        counts = self._array("frame_errors.npy")
        if counts.ndim != 3 or counts.shape[0] != 2 or counts.dtype.kind not in "iu":
            raise ArtifactError(f"run {self.name}: frame_errors.npy holds {counts.dtype} {counts.shape}, "
                                "not (2, rows, columns) counts")
        return counts


def _read_csv(path: Path) -> list[dict]:
    def number(text: str):
        try:
            value = float(text)
        except ValueError:
            return text
        return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value

    with path.open(newline="") as handle:
        return [{key: number(value) for key, value in row.items()} for row in csv.DictReader(handle)]


def list_runs(root: str | os.PathLike | None = None) -> list[Run]:
    """Every run folder, oldest first, whole or not (``training.runs.health`` tells which);
    staging folders are not runs."""
    runs = artifacts_dir(root) / RUNS
    if not runs.is_dir():
        return []
    found = [Run(p.name, p) for p in runs.iterdir()
             if p.is_dir() and not p.name.startswith(".") and RUN_NAME.fullmatch(p.name)]
    return sorted(found, key=lambda run: (run.path.stat().st_mtime, run.name))


def get_run(name: str, root: str | os.PathLike | None = None) -> Run:
    check_run_name(name)
    path = artifacts_dir(root) / RUNS / name
    if not path.is_dir():
        known = ", ".join(r.name for r in list_runs(root)) or "none yet (python -m training train CONFIG)"
        raise ArtifactError(f"no run named {name!r} in {artifacts_dir(root)}; runs: {known}")
    return Run(name, path)


def store_version(root: str | os.PathLike | None = None) -> tuple:
    """A cache key for readers, from ``stat`` calls only: it changes whenever a run is published,
    removed, replaced under the same name (a new metrics.json), given its anatomy, re-measured
    (latency.json) or deployed."""
    base = artifacts_dir(root)
    runs = base / RUNS
    names = sorted(p.name for p in runs.iterdir() if not p.name.startswith(".")) if runs.is_dir() else []
    stamps = tuple((name, *(file_stamp(runs / name / filename) for filename in ("metrics.json", ANATOMY, LATENCY)))
                   for name in names)
    return stamps, file_stamp(base / DEPLOYED)


# ---------------------------------------------------------------------------- deployment

def deploy(name: str, root: str | os.PathLike | None = None) -> dict:
    """Make ``name`` the run the API serves (``artifacts/deployed.json``, written atomically)."""
    from training.runs.health import inspect_run

    run = get_run(name, root)
    health = inspect_run(run)
    if not health.ok:
        raise ArtifactError(f"run {run.name} cannot be deployed: {health.reason}")
    if run.metrics.get("source") == IMPORTED:
        raise ArtifactError(f"run {run.name} holds imported predictions, not a model: the API serves "
                            "models trained here (python -m training train CONFIG, then deploy that run)")
    record = {"run": run.name, "uid": run.uid,
              "deployed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "miou_test": run.metrics.get("miou"), "classes": run.metrics.get("classes")}
    write_json_atomic(artifacts_dir(root) / DEPLOYED, record)
    return record


def best_run(root: str | os.PathLike | None = None, key: str = "val_miou") -> Run:
    """The run with the highest ``key``; validation by default, never the test split (no leakage)."""
    scored = []
    for run in list_runs(root):
        try:
            score = run.metrics.get(key)
        except ArtifactError:
            continue  # a damaged run is never deployed
        if isinstance(score, (int, float)) and not isinstance(score, bool) and (run.path / "model.keras").exists():
            scored.append((score, run))
    if not scored:
        raise ArtifactError(f"no run in {artifacts_dir(root)} has a {key}: train one first")
    return max(scored, key=lambda pair: pair[0])[1]


def deployed_record(root: str | os.PathLike | None = None) -> dict | None:
    """What ``deployed.json`` says (``run``, ``uid``, ...), or None when nothing is deployed.

    Raises:
        ArtifactError: deployed.json is damaged (not an object naming a run).
    """
    path = artifacts_dir(root) / DEPLOYED
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("run"), str):
        raise ArtifactError(f"{DEPLOYED} is damaged; redeploy with `python -m training deploy RUN`")
    return record


def deployed_run(root: str | os.PathLike | None = None) -> Run | None:
    """The deployed run, or None when nothing is deployed."""
    record = deployed_record(root)
    return None if record is None else get_run(record["run"], root)

