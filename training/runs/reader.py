"""Reading the run store: a published run (``Run``), the list of runs, and the store's version.

Every accessor names the run and the file when it is missing or damaged (``ArtifactError``); the
layout is ``training.runs.layout``'s. No TensorFlow here: the API and the dashboard read runs
through this module.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import yaml

from training.data.cityscapes import MAX_IMAGE_PIXELS
from training.data.dataset import Dataset, DataSettings
from training.data.png import PngError, read_png
from training.files import file_stamp
from training.runs.layout import (
    ANATOMY,
    DEPLOYED,
    LATENCY,
    PER_IMAGE_CONFUSION,
    PER_IMAGE_OFFICIAL_CONFUSION,
    RUN_NAME,
    RUNS,
    ArtifactError,
    artifacts_dir,
    check_run_name,
)


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

    def open_dataset(self, data_root: str | os.PathLike | None = None) -> Dataset:
        """The run's dataset (at ``data_root`` if it moved), refused when its index gives the run's
        image ids to other files than the run was evaluated on (the fingerprint in metrics.json).

        Raises:
            ArtifactError: the index changed since the run's evaluation.
            DatasetError: the dataset cannot be read.
        """
        dataset = self.data_settings.open(data_root)
        recorded = (self.metrics.get("dataset") or {}).get("fingerprint")
        if recorded and recorded != dataset.index.fingerprint():
            raise ArtifactError(f"run {self.name} was evaluated on another index of the data than "
                                f"{dataset.root} holds now (fingerprint {recorded}, now "
                                f"{dataset.index.fingerprint()}): its image ids would name other files")
        return dataset

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
        """N x K x K counts, in per_image.csv order (all classes)."""
        return self._confusion_stack(PER_IMAGE_CONFUSION, mmap)

    @property
    def has_official_confusion(self) -> bool:
        """Whether the run stored its per-image confusions under the official rules (runs
        evaluated before them have none: ``python -m training rescore RUN`` adds them)."""
        return (self.path / PER_IMAGE_OFFICIAL_CONFUSION).is_file()

    def per_image_official_confusion(self, mmap: bool = False) -> np.ndarray:
        """N x K x K counts under the official rules, in per_image.csv order."""
        return self._confusion_stack(PER_IMAGE_OFFICIAL_CONFUSION, mmap)

    def _confusion_stack(self, filename: str, mmap: bool) -> np.ndarray:
        matrices = self._array(filename, mmap)
        if matrices.ndim != 3 or matrices.shape[1] != matrices.shape[2] or matrices.dtype.kind not in "iuf":
            raise ArtifactError(f"run {self.name}: {filename} holds {matrices.dtype} "
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
        return self._png(f"predictions/{int(image_id)}.png", ("P", "L"), "a class-index PNG")

    def _png(self, filename: str, modes: tuple[str, ...], what: str) -> np.ndarray:
        """The pixels of the run's PNG ``filename``, which must be of one of ``modes``."""
        try:
            header, values = read_png(self._file(filename), MAX_IMAGE_PIXELS)
        except (OSError, PngError) as exc:
            raise ArtifactError(f"run {self.name}: {filename} is not a readable PNG "
                                f"({type(exc).__name__})") from None
        if header.mode not in modes:
            raise ArtifactError(f"run {self.name}: {filename} is {header.mode}, not {what}")
        return values

    def has_confidence(self, image_id: int) -> bool:
        """Whether the run stored a confidence map for ``image_id`` (runs evaluated before
        confidence maps, and imported runs, have none)."""
        return (self.path / f"confidence/{int(image_id)}.png").is_file()

    def confidence(self, image_id: int) -> np.ndarray:
        """``(H, W)`` float32 top probability of each pixel (1/255 steps) for ``image_id``;
        ArtifactError naming the file when it is missing or not a grey PNG."""
        levels = self._png(f"confidence/{int(image_id)}.png", ("L",), "a grey confidence map")
        return levels.astype(np.float32) / 255.0

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


def read_json_file(path: Path) -> object:
    """The JSON value in ``path``; ArtifactError naming the file for anything that keeps it from
    being read (missing, unreadable, not UTF-8, not JSON)."""
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{path.name} is not readable JSON ({error})") from None


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


