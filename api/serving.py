"""What the API serves: the deployed run, its model (loaded once per process), its dataset.

A run is known by its identity, ``(name, uid)``: a run deleted and published again under the
same name is another run (another uid), so its model is loaded again and nothing cached for
the old one is served. An image is known by its content, ``image_key``: the dataset's folder
and index fingerprint (a rebuilt index may give an id to another file) and the stamps of the
two files. Every cache key is made of these, never of a name alone.

The model is loaded on first use (or at start with ``WARM_UP``), under a lock, and again only
when another run is served. TensorFlow is imported then, never at import time, so ``/health``,
listing and metadata stay light. The model is the run's model.keras, or the TFLite export that
``deployed.json`` names (``python -m training deploy RUN --export NAME``, or ``EXPORT`` with
``RUN``): the same routes, the same resizing and upsampling (``training.fit.tflite.TFLitePredictor``);
an export is part of the served identity, so nothing the Keras model answered is served for it.
Predictions and whole responses are kept in a least-recently-used cache bounded in bytes;
decoded photos and labels, which every route of an image may need, in a second one (a 2048x1024
photo takes ~30 ms to decode, and 6 MB: the two budgets are kept apart so that a few photos do
not push out hundreds of answers).

A damaged store (a run folder edited by hand, a disk that filled up) is answered with 503 and
what is wrong and how to fix it; ``/`` and ``/health`` explain it too, nothing answers 500.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

import numpy as np
from flask import Flask, current_app

from api.errors import REPAIR_HINT, ApiError, no_deployed_run
from api.paths import ServerPaths
from training.data.cityscapes import REPO_ROOT, DatasetError, check_same_size, read_image, read_label_ids
from training.data.dataset import Dataset, DataSettings
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.data.png import PngError, PngHeader, read_header
from training.files import file_stamp
from training.memory import ByteLRU
from training.runs.deployment import deployed_record
from training.runs.layout import ArtifactError, artifacts_dir
from training.runs.reader import Run, get_run
from training.runs.tflite_exports import EXPORTS, check_export_name, read_export

log = logging.getLogger(__name__)

EXTENSION = "segmentation_serving"
MAX_IMAGE_ID = 999_999_999_999_999_999  # ids are int64 in every client; the spec says so too
DATASET_HINT = "point the server at the run's dataset with SEGAPI_DATA_ROOT (or CITYSCAPES_DATASET)"


@dataclass
class ServedRun(Run):
    """A run as the API serves it: its Keras model, or (``export``) one of its TFLite exports;
    ``export_stamp`` is the stamp of the export's report (an export replaced under its name is
    another model)."""

    export: str | None = None
    export_stamp: tuple | None = None

    @property
    def served_file(self) -> str:
        """The model file served, relative to the run: model.keras or exports/<name>.tflite."""
        return "model.keras" if self.export is None else f"{EXPORTS}/{self.export}.tflite"


def identity(run: Run) -> tuple:
    """What a run is, for caches: its name and its uid (names are reused, uids never), and the
    export served in place of its Keras model, if any."""
    export = getattr(run, "export", None)
    return (run.name, run.uid) if export is None else (run.name, run.uid, export, run.export_stamp)


class Serving:
    """The per-process serving state of one Flask app."""

    def __init__(self, config):
        self.artifacts = artifacts_dir(config.get("ARTIFACTS_DIR"))
        self.pinned_run = config.get("RUN")
        self.pinned_export = config.get("EXPORT")  # with RUN: serve this export of it
        self.data_root = config.get("DATA_ROOT")
        self.paths = ServerPaths((self.artifacts, None), (self.data_root, None), (REPO_ROOT, "."),
                                 (os.environ.get("CITYSCAPES_DATASET"), None))
        self.cache = ByteLRU(config.get("CACHE_BYTES", 256 * 2**20))
        self.inputs = ByteLRU(config.get("INPUT_CACHE_BYTES", 96 * 2**20))
        self._lock = threading.RLock()
        self._inference_lock = threading.Lock()  # one forward pass at a time per process
        self._model = None  # a training.fit.predict.Predictor
        self._model_identity: tuple | None = None
        self._exports: dict = {}  # (identity, report stamp) -> the export's report
        self._load_failure: tuple[tuple, ApiError] | None = None  # (identity and model stamp, the 503)
        self._datasets: dict = {}
        self._configs: dict = {}

    def unavailable(self, problem: Exception | str, title: str = "run unavailable", fix: str = REPAIR_HINT) -> ApiError:
        """A 503 for a damaged store: what is wrong, without the server's paths, and the fix."""
        return ApiError(503, title, f"{self.paths.text(str(problem))}. To fix it, {fix}")

    # ---------------------------------------------------------------- the run and its model

    def run(self, required: bool = True) -> Run | None:
        """The run to serve (``RUN``, else the deployed one), checked whole enough to serve: its
        metrics.json, its config.yaml (input size, class set) and its model.keras (or the export
        served instead, with its report).

        Raises:
            ApiError: 503 when the run cannot be served (what is wrong and the fix), or when
                nothing is deployed and ``required``.
        """
        try:
            if self.pinned_run:
                run, deployed_uid = get_run(self.pinned_run, self.artifacts), None
                run = self._served(run, self.pinned_export)
            else:
                record = deployed_record(self.artifacts)
                if record is None:
                    if required:
                        raise no_deployed_run()
                    return None
                run, deployed_uid = get_run(record["run"], self.artifacts), record.get("uid")
                run = self._served(run, record.get("export"))
            if deployed_uid is not None and run.uid != deployed_uid:
                # a run published under the deployed one's name has never been deployed
                raise ArtifactError(f"run {run.name} was replaced after it was deployed (uid {deployed_uid} "
                                    f"then, {run.uid} now)")
            self._checked(run)
            if run.export is None:
                _ = run.model_path  # present (whether it loads is known when it is loaded)
            else:
                self.export_report(run)  # its report readable and its .tflite there
        except (ArtifactError, OSError) as error:  # OSError: a file that cannot be read (permissions)
            raise self.unavailable(error) from None
        return run

    def _served(self, run: Run, export) -> ServedRun:
        if export is not None and not isinstance(export, str):
            raise ArtifactError("deployed.json names an export that is not a name")
        if export:
            check_export_name(export)
        stamp = None if export is None else file_stamp(run.path / EXPORTS / f"{export}.json")
        return ServedRun(run.name, run.path, export or None, stamp)

    def export_report(self, run: ServedRun) -> dict:
        """The served export's report (read once per report file).

        Raises:
            ArtifactError: the export is missing, or its report or model file is damaged.
        """
        key = identity(run)
        if key not in self._exports:
            self._exports[key] = read_export(run, run.export)
        return self._exports[key]

    def served_model(self, run: ServedRun) -> dict:
        """Which file answers for ``run`` (the model card says it): model.keras, or an export with
        its quantisation, size, latency and scores (from its report)."""
        if run.export is None:
            return {"file": run.served_file, "format": "keras"}
        report = self.export_report(run)
        latency = report.get("latency") or {}
        return {"file": run.served_file, "format": report.get("format", "tflite"), "export": run.export,
                "quantize": report.get("quantize"), "file_bytes": report.get("file_bytes"),
                "latency_ms": latency.get("ms_per_image"), "threads": latency.get("threads"),
                "miou": report.get("miou"), "miou_official": report.get("miou_official"),
                "delta_miou": report.get("delta_miou"),
                "changed_pixels": (report.get("changed_pixels") or {}).get("share")}

    def run_config(self, run: Run) -> dict:
        """The run's resolved config (parsed and checked once per run identity, see ``_checked``)."""
        return self._checked(run)[0]

    def data_settings(self, run: Run | None) -> DataSettings:
        """Where the run's data is and its class set; the defaults when nothing is deployed."""
        return self._checked(run)[1] if run else DataSettings()

    def input_size(self, run: Run) -> tuple[int, int]:
        """``(height, width)`` the run's model takes."""
        return self._checked(run)[2]

    def _checked(self, run: Run) -> tuple[dict, DataSettings, tuple[int, int]]:
        """config.yaml and what serving needs of its data section, once per run identity (YAML
        parsing costs about 5 ms, a third of the API's whole budget per request; a published
        run never changes).

        Raises:
            ArtifactError: config.yaml is missing, damaged, or its data section is not usable
                (or metrics.json is damaged: the identity needs it).
        """
        key = identity(run)
        if key not in self._configs:
            config, size, settings = run.config, run.input_size, run.data_settings
            if not all(path is None or isinstance(path, str) for path in (settings.root, settings.index)):
                raise ArtifactError(f"run {run.name}: config.yaml: data.root and data.index must be paths")
            try:
                get_class_set(settings.classes)
            except ValueError as error:
                raise ArtifactError(f"run {run.name}: config.yaml: {error}") from None
            self.paths.add(settings.root)
            self._configs[key] = (config, settings, size)
        return self._configs[key]

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    @property
    def loaded_run(self) -> str | None:
        return self._model_identity[0] if self._model_identity else None

    def model_loaded_for(self, run: Run) -> bool:
        return self._model_identity == identity(run)

    def model_problem(self, run: Run) -> str | None:
        """Why the run's model could not be loaded, if it was tried and failed."""
        failure = self._load_failure
        return failure[1].detail if failure and failure[0][0] == identity(run) else None

    def predictor(self, run: Run):
        """The run's model, loaded once per process (and again only when another run is served).

        A model that fails to load is not tried again on every request: only once its file
        changes (or another run is served).
        """
        key = identity(run)
        with self._lock:
            if self._model_identity != key:
                served_file = getattr(run, "served_file", "model.keras")
                attempt = (key, file_stamp(run.path / served_file))
                if self._load_failure and self._load_failure[0] == attempt:
                    raise self._load_failure[1]
                self._model, self._model_identity = None, None  # the old model's memory goes first
                try:
                    self._model = _load_predictor(run)
                except Exception as error:  # whatever Keras or TFLite raises, the model cannot be used
                    log.warning("run %s: cannot load %s: %r", run.name, run.path / served_file, error)
                    failure = self.unavailable(f"run {run.name}: {served_file} cannot be loaded "
                                               f"({type(error).__name__})", "model unavailable")
                    self._load_failure = (attempt, failure)
                    raise failure from None
                self._model_identity, self._load_failure = key, None
            return self._model

    def predict(self, run: Run, image: np.ndarray,
                output_size: tuple[int, int] | None = None) -> tuple[np.ndarray, float]:
        """Class indices at ``output_size`` (default: the image's own size), and the milliseconds
        the model took (resize, forward pass, upsampling).

        Only the forward pass holds the inference lock: upsampling a large upload takes longer
        than the model and runs in OpenCV without the GIL, beside other requests' forward passes.
        """
        predictor = self.predictor(run)
        from training.fit.predict import upsample_argmax  # loaded by predictor()

        start = time.perf_counter()
        with self._inference_lock:
            probabilities = predictor.probabilities(image)
        classes = upsample_argmax(probabilities, output_size or image.shape[:2])
        return classes, 1000 * (time.perf_counter() - start)

    # ---------------------------------------------------------------- the dataset

    def dataset(self) -> Dataset:
        """The served run's dataset (the default one when nothing is deployed)."""
        return self.dataset_for(self.run(required=False))

    def dataset_for(self, run: Run | None) -> Dataset:
        """``run``'s dataset; its index is read again when the index file changes."""
        settings = self.data_settings(run)
        try:
            root = settings.resolve_root(self.data_root)
        except DatasetError as error:
            raise self.unavailable(error, "dataset unavailable", DATASET_HINT) from None
        index_file = settings.index_file(root)
        self.paths.add(root)
        self.paths.add(index_file.parent)
        stamp = file_stamp(index_file)
        key = (str(root), str(index_file))
        with self._lock:
            cached = self._datasets.get(key)
            if cached is None or cached[0] != stamp:
                try:
                    index = load_or_build_index(root, settings.index, write=False, report=lambda message: None)
                except DatasetError as error:
                    raise self.unavailable(error, "dataset unavailable", DATASET_HINT) from None
                self._datasets[key] = (stamp, index)
            index = self._datasets[key][1]
        return Dataset(root, index, get_class_set(settings.classes))

    def image_key(self, dataset: Dataset, image_id: int) -> tuple:
        """What an image's answers depend on, for cache keys: the dataset folder, the index's
        fingerprint (another after a rebuild that moved ids), and both files' stamps."""
        entry = dataset.index[image_id]
        return (str(dataset.root), dataset.index.fingerprint(), image_id,
                file_stamp(dataset.root / entry.image), file_stamp(dataset.root / entry.label))

    def photo_header(self, dataset: Dataset, image_id: int, key: tuple) -> PngHeader:
        """The photo's PNG header (its first 33 bytes: size and mode, no pixel decoded)."""
        header = self.cache.get(("header", key))
        if header is None:
            path = dataset.root / dataset.index[image_id].image
            try:
                with open(path, "rb") as stream:
                    header = read_header(stream.read(33))
            except (OSError, PngError) as error:
                raise self._unreadable(DatasetError(f"{path}: not a readable PNG ({error})")) from None
            self.cache.put(("header", key), header, 200)
        return header

    def photo(self, dataset: Dataset, image_id: int, key: tuple) -> np.ndarray:
        """The decoded photo ``(H, W, 3)``, read-only, kept for the other routes of the image."""
        return self._decoded("photo", key, lambda: read_image(dataset.root / dataset.index[image_id].image))

    def label_ids(self, dataset: Dataset, image_id: int, key: tuple) -> np.ndarray:
        """The decoded labelIds ``(H, W)``, read-only, kept for the other routes of the image."""
        return self._decoded("labels", key, lambda: read_label_ids(dataset.root / dataset.index[image_id].label))

    def check_pair(self, dataset: Dataset, image_id: int, label_ids: np.ndarray, shape: tuple) -> None:
        """503 naming the label file when it does not fit its photo (``shape``: the photo's height
        and width), as ``read_pair`` says it."""
        entry = dataset.index[image_id]
        try:
            check_same_size(dataset.root / entry.label, label_ids.shape[:2], shape[:2])
        except DatasetError as error:
            raise self._unreadable(error) from None

    def _decoded(self, kind: str, key: tuple, decode) -> np.ndarray:
        array = self.inputs.get((kind, key))
        if array is None:
            try:
                array = decode()
            except DatasetError as error:
                raise self._unreadable(error) from None
            array.flags.writeable = False  # shared by every request that asks for the image
            self.inputs.put((kind, key), array, array.nbytes)
        return array

    def _unreadable(self, error: DatasetError) -> ApiError:
        return ApiError(503, "image unavailable", self.paths.text(str(error)))

    def warm_up(self) -> None:
        """Load the model and run one prediction, so the first request pays nothing extra. A run
        that cannot be served does not stop the server: /health and / say what is wrong."""
        try:
            run = self.run(required=False)
            if run is not None:
                self.predict(run, np.zeros((*self.input_size(run), 3), np.uint8))
        except ApiError as error:
            log.warning("warm-up: %s", error.detail)


def _load_predictor(run: Run):
    """The run's model, or its export's, behind ``Predictor``'s interface. The one place the API
    reaches the Keras side: TensorFlow loads here, on first use."""
    export = getattr(run, "export", None)
    if export is not None:
        from training.fit.tflite import TFLitePredictor

        return TFLitePredictor.load(run, export)
    from training.fit.predict import Predictor

    return Predictor.load(run)


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Serving(app.config)
    if app.config.get("WARM_UP"):
        app.extensions[EXTENSION].warm_up()


def serving() -> Serving:
    return current_app.extensions[EXTENSION]


def parse_image_id(raw: str, dataset: Dataset) -> int:
    """A path segment as an image id: 400 if it is not a non-negative integer, 404 if unknown."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_IMAGE_ID)):
        raise ApiError(400, "malformed id", f"image ids are non-negative integers, got {raw!r}")
    image_id = int(raw)
    if image_id not in dataset.index:
        raise ApiError(404, "unknown id", f"no image with id {image_id} (ids run from 0 to "
                                          f"{dataset.index.next_id - 1}; see /api/images)")
    return image_id
