"""Train one config, evaluate it, publish the run: ``python -m training train CONFIG``.

Reads top to bottom: data, model, the per-epoch work folder (checkpoint, best model, history:
what ``--resume`` continues from), fit, then evaluation and the atomic run directory.

A ``kill -9`` at any moment, then ``--resume`` in a new process, publishes the run exactly once:

* ``artifacts/work/<run>/state.json`` is the commit point of an epoch: the epoch's checkpoint
  (and best model) are written under new names, then state.json names them, then the files of
  the previous epoch go. A kill leaves one epoch or the next, never a mix of both.
* Importing this module registers every Keras object a checkpoint holds (the losses, the
  streaming mIoU), so a new process reloads a checkpoint with its optimizer and metrics.
* Before the run directory is renamed into ``runs/``, state.json records the run's uid
  (``"publishing"``). A resumed run that finds the published run with that uid only removes the
  work folder and reports it: a kill between publication and clean-up never publishes twice.
* Staging folders left in ``runs/`` by killed processes are removed when the next run starts.
* One process at a time trains a run of a given name in a store: ``work/.<run>.lock`` is held
  (``flock``) for the whole run; a second one stops at once naming the first one's pid, and a
  killed holder releases it with its death.

With ``train.strategy: multiworker`` each worker has its own work folder and lock
(``work/<run>/worker-<i>``); the chief alone publishes (``training/fit/strategies.py``).

Test hook: the environment variable ``SEGMENTATION_FAULT_AT`` (``training.files.fault_point``)
makes the process kill itself with SIGKILL at one moment (``during_epoch:N``, ``evaluation``, ``before_commit``,
``after_commit``: see ``FAULT_MOMENTS``), so that tests/test_faults.py can
kill a real training process exactly where it means to::

    SEGMENTATION_FAULT_AT=during_epoch:2 python -m training train CONFIG   # dies in epoch 2
    python -m training train CONFIG --resume                               # finishes, publishes once

Unset, as everywhere outside tests, it does nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import time
from pathlib import Path

import keras
import numpy as np

from training.data.cityscapes import resolve_data_root
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.files import LockHeld, exclusive_lock, fault_point, write_json_atomic
from training.fit.augment import build_augmentation
from training.fit.config import dump_config
from training.fit.config_hash import config_hash
from training.fit.keras_metrics import StreamingMeanIoU  # imported here: registers it for checkpoints
from training.fit.latency import measure_latency
from training.fit.predict import evaluate_model
from training.fit.strategies import (
    PEER_TIMEOUT,
    PeerWatchdog,
    Worker,
    build_from_local_batch,
    honour_sigterm,
    make_strategy,
    vector_step_logs,
    worker_of,
)
from training.losses import build_loss  # imported here: registers the losses for checkpoints
from training.models import build_model, count_parameters, load_model
from training.runs.anatomy import stage_anatomy
from training.runs.layout import (
    LATENCY,
    PER_IMAGE_CONFUSION,
    PER_IMAGE_OFFICIAL_CONFUSION,
    ArtifactError,
    artifacts_dir,
)
from training.runs.reader import Run, list_runs
from training.runs.writer import RunWriter, remove_stale_staging

WORK = "work"  # artifacts/work/<run>/: in-progress state, never read by the API or dashboard
STATE = "state.json"

FAULT_MOMENTS = {
    "during_epoch:N": "after the first training batch of epoch N (its checkpoint not yet written)",
    "evaluation": "after the first prediction of the evaluation is staged",
    "before_commit": "the staging folder is complete and its uid recorded, not yet renamed into runs/",
    "after_commit": "the run is published, the work folder not yet removed",
}


def make_batches(config: dict, root: Path, index):
    from training.data.cache import FrameCache
    from training.fit.batches import SegmentationBatches

    data, seed = config["data"], config["train"]["seed"]
    size = (data["height"], data["width"])
    cache = FrameCache(root, data["cache_dir"]) if data["cache"] else None
    common = dict(class_set=data["classes"], size=size, batch_size=data["batch_size"], workers=data["workers"],
                  cache=cache)
    train = SegmentationBatches(root, index.split(data["train_split"]), shuffle=True, seed=seed,
                                augment=build_augmentation(data["augmentation"], size, seed), **common)
    validation = SegmentationBatches(root, index.split(data["validation_split"]), **common)
    return train, validation


def build_compiled_model(config: dict):
    data, model_config = config["data"], config["model"]
    class_set = get_class_set(data["classes"])
    model = build_model(model_config["name"], class_set.num_classes, (data["height"], data["width"], 3),
                        backbone=model_config["backbone"], encoder_weights=model_config["encoder_weights"],
                        **(model_config["options"] or {}))
    optimizer = keras.optimizers.get({"class_name": config["optimizer"]["name"],
                                      "config": {"learning_rate": config["optimizer"]["learning_rate"]}})
    model.compile(optimizer=optimizer, loss=build_loss(config["loss"]["name"], **(config["loss"]["options"] or {})),
                  metrics=[StreamingMeanIoU(class_set.num_classes)])
    return model


# ---------------------------------------------------------------------------- the work folder

class EpochState(keras.callbacks.Callback):
    """After every epoch: checkpoint, best model on validation mIoU, history, then state.json,
    which names the epoch's files (atomically: the commit point of the epoch)."""

    def __init__(self, work: Path, state: dict):
        super().__init__()
        self.work, self.state = work, state
        self.started = time.perf_counter()
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if batch == 0:
            fault_point(f"during_epoch:{self.epoch}")

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        logs = {key: float(value) for key, value in (logs or {}).items()}
        self.state["history"].append({"epoch": done, **logs})
        self.state["train_seconds"] += time.perf_counter() - self.started
        self.started = time.perf_counter()
        self.state.update(epoch=done, checkpoint=f"checkpoint-{done}.keras")
        _save_model_atomic(self.model, self.work / self.state["checkpoint"])
        score = logs.get("val_miou", float("-inf"))
        if score > self.state["best_val_miou"]:
            self.state.update(best_val_miou=score, best_epoch=done, best=f"best-{done}.keras")
            _save_model_atomic(self.model, self.work / self.state["best"])
        write_json_atomic(self.work / STATE, self.state)
        _remove_unnamed_models(self.work, self.state)


def _save_model_atomic(model, path: Path) -> None:
    temporary = path.with_name(f".{path.stem}.tmp.keras")
    model.save(temporary)
    os.replace(temporary, path)


def _remove_unnamed_models(work: Path, state: dict) -> None:
    """Models of earlier epochs, and temporaries of a killed save: state.json names the others."""
    keep = {state.get("checkpoint"), state.get("best")}
    for path in work.glob("*.keras"):
        if path.name not in keep:
            path.unlink(missing_ok=True)


def _new_state(config: dict) -> dict:
    return {"config": config, "epoch": 0, "checkpoint": None, "best_epoch": 0, "best": None,
            "best_val_miou": float("-inf"), "train_seconds": 0.0, "history": []}


def _load_state(work: Path, config: dict, resume: bool) -> dict | None:
    state_file = work / STATE
    if not resume or not state_file.exists():
        return None
    state = json.loads(state_file.read_text())
    if _what_decides_the_result(state["config"]) != _what_decides_the_result(config):
        raise ValueError(f"--resume: {work} was started with a different config; "
                         "remove it or train under another name")
    if state.get("best_val_miou") is None:  # JSON has no -inf: no best model yet
        state["best_val_miou"] = float("-inf")
    for key, older_name in (("checkpoint", "checkpoint.keras"), ("best", "best.keras")):
        # a work folder of an earlier version: one file name for every epoch
        state.setdefault(key, older_name if (work / older_name).exists() else None)
    return state


# Keys a resumed run may change: none of them changes a single number of the run (batches are
# the same bytes with or without the cache and with any number of loading threads).
RESUME_FREE_KEYS = {"train": ("epochs",), "data": ("cache", "cache_dir", "workers")}


def _what_decides_the_result(config: dict) -> dict:
    kept = dict(config)
    for section, keys in RESUME_FREE_KEYS.items():
        kept[section] = {k: v for k, v in (config.get(section) or {}).items() if k not in keys}
    return kept


def _resumable(state: dict | None, work: Path) -> bool:
    """Whether ``state`` names a checkpoint and every file it names is there (a removal of the
    work folder killed half-way may have taken some)."""
    if state is None or not state.get("checkpoint"):
        return False
    return all((work / state[key]).is_file() for key in ("checkpoint", "best") if state.get(key))


def _remove_work(work: Path) -> None:
    """Remove the work folder, state.json last: a removal killed half-way leaves either the state
    with what it names, or a state that ``_resumable`` rejects, or a state naming the publication."""
    if not work.is_dir():
        return
    for path in work.iterdir():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.name != STATE:
            path.unlink(missing_ok=True)
    (work / STATE).unlink(missing_ok=True)
    shutil.rmtree(work, ignore_errors=True)


def _published(uid: str, root_dir) -> Run | None:
    """The run of the store whose uid is ``uid``, if one was published."""
    for run in list_runs(root_dir):
        try:
            if run.uid == uid:
                return run
        except ArtifactError:
            continue  # a damaged run is not the one we published
    return None


# ---------------------------------------------------------------------------- training

def train(config: dict, root_dir: str | os.PathLike | None = None, resume: bool = False,
          verbose: int = 1) -> Path | None:
    """Train, evaluate and publish one run; returns its directory under ``artifacts/runs/``
    (None in a multi-worker run's other workers: the chief publishes).

    ``resume``: continue from ``artifacts/work/<name>/`` if a run of the same config left it
    there; without it, a leftover work folder is discarded and training starts over.

    With ``train.strategy: multiworker`` every worker calls this (``training/fit/strategies.py``):
    worker ``i`` keeps its state in ``work/<name>/worker-<i>/`` under the lock
    ``work/.<name>.worker-<i>.lock`` (so the workers of one machine may share a store), and only
    the chief evaluates and publishes; another worker returns its work folder once trained.

    Raises:
        ArtifactError: another process is training a run of this name in this store (the
            work folder is its alone until it ends or dies).
        PeerLost: a collective of a multi-worker run failed or timed out (a peer died).
    """
    worker = worker_of(config["train"]["strategy"])
    work = artifacts_dir(root_dir) / WORK / config["name"]
    if worker.folder:
        work = work / worker.folder
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(exclusive_lock(_lock_path(config["name"], work, worker)))
        except LockHeld as other:
            raise ArtifactError(f"run {config['name']} is being trained by process {other.pid} in this store "
                                f"(lock {other.path}): wait for it to end, or train under another name") from None
        return _train(config, work, root_dir, resume, verbose, worker)


def _lock_path(name: str, work: Path, worker: Worker) -> Path:
    """``work/.<run>.lock`` (``work/.<run>.worker-<i>.lock`` for a worker of several), beside the
    work folders: those are removed after publication, and a lock file must outlive them
    (``exclusive_lock``); a run name never starts with a dot."""
    suffix = f".{worker.folder}" if worker.folder else ""
    return work.parents[1 if worker.folder else 0] / f".{name}{suffix}.lock"


class PeerLost(ConnectionError):
    """A collective of a multi-worker run failed: a peer died, or did not answer in time."""


def _train(config: dict, work: Path, root_dir, resume: bool, verbose: int, worker: Worker) -> Path | None:
    name, data = config["name"], config["data"]
    if worker.chief:
        remove_stale_staging(root_dir)
    state = _load_state(work, config, resume)
    if state is not None and state.get("publishing"):
        published = _published(state["publishing"], root_dir)
        if published is not None:  # killed after publication, before the clean-up
            _remove_work(work)
            if verbose:
                print(f"{name} was already published as {published.name}; removed {work}")
            return published.path

    keras.utils.set_random_seed(config["train"]["seed"])
    root = resolve_data_root(data["root"])
    index = load_or_build_index(root, data["index"])
    train_batches, validation_batches = make_batches(config, root, index)
    resumable = _resumable(state, work)
    if not resumable:
        if state is not None and verbose:
            print(f"{work} lacks the files its state.json names: training {name} from the start")
        _remove_work(work)
        work.mkdir(parents=True)
        state = _new_state(config)
    state["config"] = config
    train_batches.set_epoch(state["epoch"])  # the order and augmentations an uninterrupted run sees

    model = None
    if config["train"]["epochs"] > state["epoch"]:
        # Only a run that still trains starts the strategy: a chief resumed after the last epoch
        # publishes alone, with no peer to wait for.
        watchdog = PeerWatchdog(worker, PEER_TIMEOUT, name).start() if worker.count > 1 else None
        try:
            model = _fit(config, state, work, train_batches, validation_batches, resumable, verbose, watchdog)
        finally:
            if watchdog is not None:
                watchdog.stop()
    if not worker.chief:
        _remove_work(work)  # the chief publishes; this worker's part is done
        with contextlib.suppress(OSError):  # the run's folder, once every worker's is gone
            work.parent.rmdir()
        if verbose:
            print(f"worker {worker.index} of {worker.count} trained {name}; the chief publishes it")
        return None
    kept = state.get("best") or state.get("checkpoint")
    best = load_model(work / kept) if kept else model  # never the distributed model: evaluation is local
    run_dir = publish(config, best, state, work, root, index, root_dir, verbose)
    fault_point("after_commit")
    _remove_work(work)
    if worker.folder:
        with contextlib.suppress(OSError):  # the other workers' folders, if any are left, stay
            work.parent.rmdir()
    return run_dir


def _fit(config: dict, state: dict, work: Path, train_batches, validation_batches, resumable: bool,
         verbose: int, watchdog: PeerWatchdog | None):
    """Build (or reload) the model under the config's strategy and fit the remaining epochs."""
    import tensorflow as tf

    strategy_name = config["train"]["strategy"]
    if watchdog is not None:
        honour_sigterm()
    strategy = make_strategy(strategy_name)
    if watchdog is not None:
        honour_sigterm()  # again, once TensorFlow started its cluster runtime: our disposition wins
    with strategy.scope():
        if resumable:
            model = load_model(work / state["checkpoint"], compile=True)  # optimizer state included
        else:
            model = build_compiled_model(config)
    if verbose:
        if resumable:
            print(f"resuming {config['name']} after epoch {state['epoch']}")
        if strategy.num_replicas_in_sync > 1:
            print(f"training on {strategy.num_replicas_in_sync} replicas ({strategy_name}); "
                  f"global batch {config['data']['batch_size']}")
    if strategy_name != "default":
        build_from_local_batch(model, strategy)
    if strategy_name == "multiworker":
        vector_step_logs(model)
    callbacks = [EpochState(work, state),
                 keras.callbacks.EarlyStopping("val_miou", mode="max", patience=config["train"]["patience"])
                 if config["train"]["patience"] else keras.callbacks.Callback()]
    if watchdog is not None:
        callbacks.append(watchdog)
    try:
        model.fit(train_batches, validation_data=validation_batches, epochs=config["train"]["epochs"],
                  initial_epoch=state["epoch"], steps_per_epoch=config["train"]["steps_per_epoch"],
                  callbacks=callbacks, verbose=verbose)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.AbortedError, tf.errors.InternalError) as error:
        if strategy_name != "multiworker":
            raise
        tasks = sorted(set(re.findall(r"/job:\w+/replica:\d+/task:\d+", str(error))))
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        what = f"{', '.join(tasks)} crashed or is unreachable" if tasks else (lines[-1][:300] if lines else "")
        raise PeerLost(f"run {config['name']}: worker lost its peers after epoch {state['epoch']}: {what} "
                       f"({type(error).__name__}); start every worker again with --resume") from None
    return model


# ---------------------------------------------------------------------------- publication

def _versions() -> dict:
    import segmentation_models
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "segmentation_models": segmentation_models.__version__, "numpy": np.__version__}


def publish(config: dict, model, state: dict, work: Path, root: Path, index, root_dir=None,
            verbose: int = 1) -> Path:
    """Evaluate ``model`` on the evaluation split, measure its latency in a step of its own (after
    the evaluation: nothing else of ours runs meanwhile), and write the run directory atomically;
    the run's uid goes into ``work``'s state.json before the run appears in ``runs/``."""
    class_set = get_class_set(config["data"]["classes"])
    split = config["evaluation"]["split"]
    size = (config["data"]["height"], config["data"]["width"])
    writer = RunWriter(config["name"], root_dir)
    palette = class_set.palette()

    def stage_prediction(image_id: int, classes: np.ndarray) -> None:
        writer.write_prediction(image_id, classes, palette)
        fault_point("evaluation")

    try:
        save = config["evaluation"]["save_predictions"]
        result = evaluate_model(model, root, index.split(split), class_set, size,
                                on_prediction=stage_prediction if save else None, progress=bool(verbose),
                                on_confidence=writer.write_confidence if save else None)
        latency = measure_latency(model, size)  # latency.json; metrics.json keeps its median as before
        best = next((h for h in state["history"] if h["epoch"] == state["best_epoch"]), {})
        metrics = {
            "run": config["name"], "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "split": split,
            **{k: v for k, v in result["summary"].items() if k != "confusion"},
            "source": "trained", "coverage": {"images": len(result["per_image"]),
                                              "split_images": len(result["per_image"])},
            "model": config["model"]["name"], "backbone": config["model"]["backbone"],
            "encoder_weights": config["model"]["encoder_weights"], "loss_name": config["loss"]["name"],
            "augmentation": config["data"]["augmentation"], "image_size": list(size),
            "params": count_parameters(model), "train_seconds": round(state["train_seconds"], 2),
            "epochs": state["epoch"], "best_epoch": state["best_epoch"],
            "loss": best.get("loss"), "val_loss": best.get("val_loss"),
            "train_miou": best.get("miou"), "val_miou": best.get("val_miou"),
            "inference_ms": latency["median_ms"],
            "calibration": result["calibration"],
            "dataset": {"root": str(root), "fingerprint": index.fingerprint(), "images": len(index)},
            "versions": _versions(),
            "config_hash": config_hash(config),  # what sweep --resume compares
        }
        model.save(writer.path("model.keras"))
        writer.write_text("config.yaml", dump_config(config))
        writer.write_csv("history.csv", state["history"])
        writer.write_json("metrics.json", metrics)
        writer.write_json(LATENCY, latency)
        writer.write_array("confusion.npy", result["confusion"])
        writer.write_array(PER_IMAGE_CONFUSION, result["per_image_confusion"])
        writer.write_array(PER_IMAGE_OFFICIAL_CONFUSION, result["per_image_official_confusion"])
        writer.write_csv("per_image.csv", result["per_image"])
        stage_anatomy(writer, result["anatomy"], split)
        state["publishing"] = writer.uid
        write_json_atomic(work / STATE, state)
        fault_point("before_commit")
        return writer.commit()
    except BaseException:
        writer.abort()
        raise
