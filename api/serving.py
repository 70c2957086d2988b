"""What the API serves: the deployed run, its model (loaded once per process), its dataset.

A run is known by its identity, ``(name, uid)``: a run deleted and published again under the
same name is another run (another uid), so its model is loaded again and nothing cached for
the old one is served. An image is known by its content (``api.image_store``). Every cache key is
made of these, never of a name alone.

The model is loaded on first use (or at start with ``WARM_UP``), under a lock, and again only
when another run is served. TensorFlow is imported then, never at import time, so ``/health``,
listing and metadata stay light. The model is the run's model.keras, or the TFLite export that
``deployed.json`` names (``python -m training deploy RUN --export NAME``, or ``EXPORT`` with
``RUN``): the same routes, the same resizing and upsampling (``training.fit.tflite.TFLitePredictor``);
an export is part of the served identity, so nothing the Keras model answered is served for it.
A model that does not take the input size or give the classes its config.yaml says is not served.
Predictions and whole responses are kept in a least-recently-used cache bounded in bytes.
At most ``MAX_DECODING_UPLOADS`` uploads are decoded at once (``upload_slot``): their decoded
pixels, not their bytes, are what fill a worker's memory.

A damaged store (a run folder edited by hand, a disk that filled up) is answered with 503 and
what is wrong and how to fix it; ``/`` and ``/health`` explain it too, nothing answers 500. With
``DATA_ROOT`` set, the ids and the photos (``files_dataset``) do not depend on the run at all.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from flask import Flask, current_app

from api.errors import REPAIR_HINT, ApiError, no_deployed_run
from api.image_store import ImageStore
from api.paths import ServerPaths
from training.data.cityscapes import REPO_ROOT, DatasetError
from training.data.dataset import Dataset, DataSettings
from training.data.labels import get_class_set
from training.files import file_stamp
from training.memory import ByteLRU
from training.runs.deployment import deployed_record
from training.runs.health import metrics_problems
from training.runs.layout import ArtifactError, artifacts_dir
from training.runs.reader import Run, get_run
from training.runs.tflite_exports import EXPORTS, check_export_name, export_model_path, read_export

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
        self.data_root = config.get("DATA_ROOT") or None
        self.paths = ServerPaths((self.artifacts, None), (self.data_root, None), (REPO_ROOT, "."),
                                 (os.environ.get("CITYSCAPES_DATASET"), None))
        self.cache = ByteLRU(config.get("CACHE_BYTES", 256 * 2**20))
        self.images = ImageStore(self.paths, self.cache, config.get("INPUT_CACHE_BYTES", 96 * 2**20))
        self._lock = threading.RLock()
        self._inference_lock = threading.Lock()  # one forward pass at a time per process
        self._upload_slots = threading.BoundedSemaphore(config.get("MAX_DECODING_UPLOADS", 2))
        self._upload_wait = config.get("UPLOAD_QUEUE_SECONDS", 30)
        self._model = None  # a training.fit.predict.Predictor
        self._model_identity: tuple | None = None
        self._exports: dict = {}  # (identity, report stamp) -> the export's report
        self._load_failure: tuple[tuple, ApiError] | None = None  # (identity and model stamp, the 503)
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
        try:  # a replaced export's file is "<name>@<generation>.tflite": the one its report names
            served = f"{EXPORTS}/{export_model_path(run, run.export).name}"
        except ArtifactError:
            served = run.served_file
        return {"file": served, "format": report.get("format", "tflite"), "export": run.export,
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
                (or metrics.json is damaged, or holds a value of another type than readers take
                it for, ``metrics_problems``).
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
            wrong_types = metrics_problems(run.metrics)  # what the card and the home page format
            if wrong_types:
                raise ArtifactError(f"run {run.name}: {'; '.join(wrong_types)}")
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
                    model = _load_predictor(run)
                except Exception as error:  # whatever Keras or TFLite raises, the model cannot be used
                    log.warning("run %s: cannot load %s: %r", run.name, run.path / served_file, error)
                    failure = self.unavailable(f"run {run.name}: {served_file} cannot be loaded "
                                               f"({type(error).__name__})", "model unavailable")
                    self._load_failure = (attempt, failure)
                    raise failure from None
                classes = get_class_set(self.data_settings(run).classes).num_classes
                misfit = _misfit(model, run, served_file, self.input_size(run), classes)
                if misfit:
                    self._load_failure = (attempt, self.unavailable(misfit))
                    raise self._load_failure[1]
                self._model, self._model_identity, self._load_failure = model, key, None
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

    # ---------------------------------------------------------------- uploads

    @contextmanager
    def upload_slot(self):
        """One of the ``MAX_DECODING_UPLOADS`` slots for decoding an upload, waited for at most
        ``UPLOAD_QUEUE_SECONDS``: 503 with Retry-After when none frees up."""
        if not self._upload_slots.acquire(timeout=self._upload_wait):
            raise ApiError(503, "server busy", "too many uploads are being decoded; send it again shortly",
                           {"Retry-After": "1"})
        try:
            yield
        finally:
            self._upload_slots.release()

    # ---------------------------------------------------------------- the dataset

    def dataset(self) -> Dataset:
        """The served run's dataset (the default one when nothing is deployed)."""
        return self.dataset_for(self.run(required=False))

    def files_dataset(self) -> Dataset:
        """The dataset for the routes that need only its index and files (the ids, the photos):
        with ``DATA_ROOT`` set it is there whatever the run, so a run that cannot be served does not
        keep them from answering."""
        try:
            run = self.run(required=False)
        except ApiError:
            if not self.data_root:
                raise  # the run's config says where its data is
            run = None
        return self.dataset_for(run)

    def dataset_for(self, run: Run | None) -> Dataset:
        """``run``'s dataset; its index is read again when the index file changes."""
        settings = self.data_settings(run)
        try:
            return self.images.open(settings, settings.resolve_root(self.data_root))
        except DatasetError as error:
            raise self.unavailable(error, "dataset unavailable", DATASET_HINT) from None

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
    reaches the Keras side: TensorFlow loads here, on first use, started quietly (no cuInit error
    in the log of a machine without a GPU)."""
    from training.fit.predict import start_tensorflow_quietly

    start_tensorflow_quietly()
    export = getattr(run, "export", None)
    if export is not None:
        from training.fit.tflite import TFLitePredictor

        return TFLitePredictor.load(run, export)
    from training.fit.predict import Predictor

    return Predictor.load(run)


def _misfit(predictor, run: Run, served_file: str, size: tuple[int, int], num_classes: int) -> str | None:
    """Why a loaded Keras model cannot serve ``run`` as its config.yaml says (another input
    ``size``, another number of classes: Keras would fail on every request), or None. A TFLite
    export's size is checked as it loads (``TFLitePredictor.load``)."""
    model = getattr(predictor, "model", None)
    inputs, outputs = getattr(model, "input_shape", None), getattr(model, "output_shape", None)
    if isinstance(inputs, tuple) and len(inputs) == 4 and None not in inputs[1:3] and tuple(inputs[1:3]) != size:
        return (f"run {run.name}: config.yaml says data.height and data.width are {size[0]}x{size[1]}, "
                f"{served_file} takes {inputs[1]}x{inputs[2]}")
    if isinstance(outputs, tuple) and outputs and outputs[-1] not in (None, num_classes):
        return f"run {run.name}: config.yaml's class set has {num_classes} classes, {served_file} gives {outputs[-1]}"
    return None


def init_app(app: Flask) -> None:
    app.extensions[EXTENSION] = Serving(app.config)
    if app.config.get("WARM_UP"):
        app.extensions[EXTENSION].warm_up()


def serving() -> Serving:
    return current_app.extensions[EXTENSION]


def parse_image_id(raw: str, dataset: Dataset) -> int:
    """A path segment as an image id: 400 if it is not a non-negative integer, 404 if unknown (an
    integer of any length: past ``MAX_IMAGE_ID`` it is out of range, not malformed)."""
    if not (raw.isascii() and raw.isdigit()):
        raise ApiError(400, "malformed id", f"image ids are non-negative integers, got {raw!r}")
    image_id = int(raw) if len(raw) <= len(str(MAX_IMAGE_ID)) else None  # int() refuses 4,300 digits
    if image_id is None or image_id not in dataset.index:
        shown = raw if len(raw) <= 40 else f"{raw[:20]}...({len(raw)} digits)"
        raise ApiError(404, "unknown id", f"no image with id {shown} (ids run from 0 to "
                                          f"{dataset.index.next_id - 1}; see /api/images)")
    return image_id
