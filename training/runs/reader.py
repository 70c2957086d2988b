"""Reading the run store: a published run (``Run``), the list of runs, and the store's version.

Every accessor reads its file through ``training.runs.run_files``, so any failure (missing, not a
regular file, too large, cut short, not UTF-8, another format or container, a value of another
type or shape) is an ``ArtifactError`` naming the run and the file; the layout is
``training.runs.layout``'s. No TensorFlow here: the API and the dashboard read runs through this
module.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from training.data.dataset import Dataset, DataSettings
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
from training.runs.run_files import read_array, read_bytes, read_document, read_png, read_rows

MAX_INPUT_SIDE = 8192  # a model's input side in pixels (Cityscapes' own frames are 2048 wide)
ANATOMY_FILES = {"instances": "instances.csv", "per_image": "per_image_anatomy.csv", "frame": "frame_errors.npy"}


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

    def _where(self, filename: str) -> str:
        return f"run {self.name}: {filename}"

    def _document(self, filename: str, format_name: str = "JSON") -> dict:
        """A JSON or YAML file of the run holding an object."""
        return read_document(self._file(filename), self._where(filename), format_name, dict)

    @cached_property
    def metrics(self) -> dict:
        return self._document("metrics.json")

    @cached_property
    def config(self) -> dict:
        """The resolved config the run was trained with (parsed once per ``Run``)."""
        return self._document("config.yaml", "YAML")

    @cached_property
    def uid(self) -> str:
        """The run's identity: the uid stamped at publication; for a run published before uids, a
        hash of its metrics.json and config.yaml. Caches key on it, never on the name alone."""
        stamped = self.metrics.get("uid")
        if isinstance(stamped, str) and stamped:
            return stamped
        digest = hashlib.sha256(read_bytes(self._file("metrics.json"), self._where("metrics.json")))
        if (self.path / "config.yaml").exists():
            digest.update(read_bytes(self.path / "config.yaml", self._where("config.yaml")))
        return "content-" + digest.hexdigest()[:24]

    @property
    def data_settings(self) -> DataSettings:
        """Where the run's data is and which classes it predicts (config.yaml's ``data``)."""
        try:
            return DataSettings.from_config(self.config)
        except ValueError as error:
            raise ArtifactError(f"run {self.name}: config.yaml: {error}") from None

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
        """``(height, width)`` the model takes: whole numbers within 1..``MAX_INPUT_SIDE``."""
        data = self.config.get("data")
        size = [data.get(side) for side in ("height", "width")] if isinstance(data, dict) else [None, None]
        if not all(isinstance(side, int) and not isinstance(side, bool) for side in size):
            raise ArtifactError(f"run {self.name}: config.yaml has no data.height and data.width in whole pixels")
        if not all(1 <= side <= MAX_INPUT_SIDE for side in size):
            raise ArtifactError(f"run {self.name}: config.yaml: data.height and data.width are {size[0]}x{size[1]}, "
                                f"not within 1..{MAX_INPUT_SIDE}")
        return size[0], size[1]

    @property
    def model_path(self) -> Path:
        return self._file("model.keras")

    def _array(self, filename: str, mmap: bool = False) -> np.ndarray:
        return read_array(self._file(filename), self._where(filename), mmap)

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
        return read_rows(self._file(filename), self._where(filename))

    def prediction_path(self, image_id: int) -> Path:
        return self._file(f"predictions/{int(image_id)}.png")

    def prediction(self, image_id: int) -> np.ndarray:
        """The class-index mask the run predicted for ``image_id``; ArtifactError naming the
        file (relative to the run) when it is missing or not a single-channel PNG."""
        return self._png(f"predictions/{int(image_id)}.png", ("P", "L"), "a class-index PNG")

    def _png(self, filename: str, modes: tuple[str, ...], what: str) -> np.ndarray:
        """The pixels of the run's PNG ``filename``, which must be of one of ``modes``."""
        return read_png(self._file(filename), self._where(filename), modes, what)

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
        return self._document(ANATOMY)

    def latency(self) -> dict | None:
        """latency.json: the model's measured time per image and its conditions
        (``training.runs.latency``); None for a run that has none (imported, or trained before it)."""
        if not (self.path / LATENCY).is_file():
            return None
        return self._document(LATENCY)

    def anatomy_file(self, kind: str) -> str:
        """The file of the anatomy's ``kind`` ("instances", "per_image", "frame"): the one anatomy.json
        names (an anatomy computed again names new files, so that anatomy.json switches from one
        whole anatomy to the other at once), else the default name."""
        default = ANATOMY_FILES[kind]
        try:
            named = (self.anatomy().get("files") or {}).get(kind) if self.has_anatomy else None
        except (ArtifactError, AttributeError):
            named = None
        return named if isinstance(named, str) and _anatomy_name(named, default) else default

    def instances(self) -> list[dict]:
        """instances.csv: one row per object (id, instance, label, class, pixels, box, recall, missed)."""
        return self._csv(self.anatomy_file("instances"))

    def per_image_anatomy(self) -> list[dict]:
        """per_image_anatomy.csv: id, boundary_miou, objects, missed."""
        return self._csv(self.anatomy_file("per_image"))

    def frame_errors(self) -> np.ndarray:
        """``(2, rows, columns)`` counts per cell of the frame grid: pixels counted, pixels wrong."""
        filename = self.anatomy_file("frame")
        counts = self._array(filename)
        if counts.ndim != 3 or counts.shape[0] != 2 or counts.dtype.kind not in "iu":
            raise ArtifactError(f"run {self.name}: {filename} holds {counts.dtype} {counts.shape}, "
                                "not (2, rows, columns) counts")
        return counts


def _anatomy_name(name: str, default: str) -> bool:
    """Whether ``name`` is the default anatomy file name or a generation of it (``instances-<hex>.csv``)."""
    stem, _, suffix = default.rpartition(".")
    head, _, generation = name.rpartition(".")[0].rpartition("-")
    return name == default or (head == stem and name.endswith("." + suffix) and generation.isalnum()
                               and "/" not in name)


def read_json_file(path: Path) -> object:
    """The JSON value in ``path``; ArtifactError naming the file for anything that keeps it from
    being read (missing, unreadable, not UTF-8, not JSON)."""
    return read_document(path, path.name, "JSON", object)


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


