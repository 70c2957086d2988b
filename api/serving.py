"""What the API serves: the deployed run, its model (loaded once per process), its dataset.

The model is loaded on first use (or at start with ``WARM_UP``), under a lock, and reloaded
only when ``artifacts/deployed.json`` names another run. TensorFlow is imported then, never at
import time, so ``/health``, listing and metadata stay light. Predictions and whole responses
are kept in a least-recently-used cache bounded in bytes.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import numpy as np
from flask import Flask, current_app

from api.errors import ApiError, no_deployed_run
from training.data.cityscapes import DatasetError
from training.data.dataset import Dataset, DataSettings
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.runs.store import ArtifactError, Run, artifacts_dir, deployed_run, get_run

EXTENSION = "segmentation_serving"
MAX_IMAGE_ID = 999_999_999_999_999_999  # ids are int64 in every client; the spec says so too


class ByteLRU:
    """A thread-safe LRU mapping whose values are evicted past ``max_bytes`` in total."""

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key][0]

    def put(self, key, value, size: int) -> None:
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            if size > self.max_bytes:
                return
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                self._bytes -= self._items.popitem(last=False)[1][1]

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        return self._bytes


class Serving:
    """The per-process serving state of one Flask app."""

    def __init__(self, config):
        self.artifacts = artifacts_dir(config.get("ARTIFACTS_DIR"))
        self.pinned_run = config.get("RUN")
        self.data_root = config.get("DATA_ROOT")
        self.cache = ByteLRU(config.get("CACHE_BYTES", 256 * 2**20))
        self._lock = threading.RLock()
        self._inference_lock = threading.Lock()  # one forward pass at a time per process
        self._model = None  # a training.fit.predict.Predictor
        self._model_run: str | None = None
        self._datasets: dict = {}
        self._configs: dict = {}

    # ---------------------------------------------------------------- the run and its model

    def run(self, required: bool = True) -> Run | None:
        try:
            run = get_run(self.pinned_run, self.artifacts) if self.pinned_run else deployed_run(self.artifacts)
        except ArtifactError as error:
            raise ApiError(503, "run unavailable", str(error)) from None
        if run is None and required:
            raise no_deployed_run()
        return run

    def run_config(self, run: Run) -> dict:
        """The run's resolved config, parsed once: a published run never changes (YAML parsing
        costs about 5 ms, a third of the API's whole budget per request)."""
        key = str(run.path)
        if key not in self._configs:
            try:
                self._configs[key] = run.config
            except ArtifactError as error:
                raise ApiError(503, "run unavailable", str(error)) from None
        return self._configs[key]

    def data_settings(self, run: Run | None) -> DataSettings:
        return DataSettings.from_config(self.run_config(run)) if run else DataSettings()

    def input_size(self, run: Run) -> tuple[int, int]:
        data = self.run_config(run).get("data") or {}
        try:
            return int(data["height"]), int(data["width"])
        except (KeyError, TypeError, ValueError):
            raise ApiError(503, "run unavailable", f"run {run.name}: config.yaml has no data.height "
                                                   "and data.width") from None

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    @property
    def loaded_run(self) -> str | None:
        return self._model_run

    def predictor(self, run: Run):
        """The run's model, loaded once per process (and again only when another run is served)."""
        with self._lock:
            if self._model_run != run.name:
                # The one place the API reaches the Keras side: TensorFlow loads here, on first use.
                from training.fit.predict import Predictor

                try:
                    self._model = Predictor.load(run)
                except (ArtifactError, OSError, ValueError) as error:
                    raise ApiError(503, "model unavailable",
                                   f"run {run.name}: cannot load model.keras ({error})") from None
                self._model_run = run.name
            return self._model

    def predict(self, run: Run, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Class indices at the image's own size, and the milliseconds the model took."""
        predictor = self.predictor(run)
        with self._inference_lock:
            start = time.perf_counter()
            classes = predictor.classes(image)
            return classes, 1000 * (time.perf_counter() - start)

    # ---------------------------------------------------------------- the dataset

    def dataset(self) -> Dataset:
        """The served run's dataset; its index is re-read when the index file changes."""
        settings = self.data_settings(self.run(required=False))
        try:
            root = settings.resolve_root(self.data_root)
        except DatasetError as error:
            raise ApiError(503, "dataset unavailable", str(error)) from None
        index_file = settings.index_file(root)
        stamp = index_file.stat().st_mtime_ns if index_file.exists() else None
        key = (str(root), str(index_file))
        with self._lock:
            cached = self._datasets.get(key)
            if cached is None or cached[0] != stamp:
                try:
                    index = load_or_build_index(root, settings.index, write=False, report=lambda message: None)
                except DatasetError as error:
                    raise ApiError(503, "dataset unavailable", str(error)) from None
                self._datasets[key] = (stamp, index)
            index = self._datasets[key][1]
        return Dataset(root, index, get_class_set(settings.classes))

    def read(self, dataset: Dataset, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """The photo and its labelIds; a damaged file is a 500-free 503 naming it."""
        try:
            return dataset.read(image_id)
        except DatasetError as error:
            raise ApiError(503, "image unavailable", str(error)) from None

    def warm_up(self) -> None:
        """Load the model and run one prediction, so the first request pays nothing extra."""
        run = self.run(required=False)
        if run is not None:
            self.predict(run, np.zeros((*self.input_size(run), 3), np.uint8))


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

