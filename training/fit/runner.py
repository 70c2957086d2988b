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

Test hook: the environment variable ``SEGMENTATION_FAULT_AT`` makes the process kill itself
with SIGKILL at one moment (``during_epoch:N``, ``evaluation``, ``before_commit``,
``after_commit``: see ``FAULT_MOMENTS``), so that tests/test_faults.py can
kill a real training process exactly where it means to::

    SEGMENTATION_FAULT_AT=during_epoch:2 python -m training train CONFIG   # dies in epoch 2
    python -m training train CONFIG --resume                               # finishes, publishes once

Unset, as everywhere outside tests, it does nothing.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import time
from pathlib import Path

import keras
import numpy as np

from training.data.cityscapes import resolve_data_root
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.files import write_json_atomic
from training.fit.augment import build_augmentation
from training.fit.config import dump_config
from training.fit.keras_metrics import StreamingMeanIoU  # imported here: registers it for checkpoints
from training.fit.latency import measure_latency
from training.fit.predict import evaluate_model
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

FAULT_ENV = "SEGMENTATION_FAULT_AT"
FAULT_MOMENTS = {
    "during_epoch:N": "after the first training batch of epoch N (its checkpoint not yet written)",
    "evaluation": "after the first prediction of the evaluation is staged",
    "before_commit": "the staging folder is complete and its uid recorded, not yet renamed into runs/",
    "after_commit": "the run is published, the work folder not yet removed",
}


def fault_point(moment: str) -> None:
    """Test hook: SIGKILL this process if ``$SEGMENTATION_FAULT_AT`` names ``moment``."""
    if os.environ.get(FAULT_ENV) == moment:
        os.kill(os.getpid(), signal.SIGKILL)


def make_strategy(name: str):
    """The ``tf.distribute`` strategy named in the config."""
    import tensorflow as tf

    if name == "mirrored":
        # Every GPU; on a machine without one, every logical CPU device (one unless configured).
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("train.strategy multiworker needs TF_CONFIG describing the cluster "
                             "(see tf.distribute.MultiWorkerMirroredStrategy)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


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
          verbose: int = 1) -> Path:
    """Train, evaluate and publish one run; returns its directory under ``artifacts/runs/``.

    ``resume``: continue from ``artifacts/work/<name>/`` if a run of the same config left it
    there; without it, a leftover work folder is discarded and training starts over.
    """
    name, data = config["name"], config["data"]
    remove_stale_staging(root_dir)
    work = artifacts_dir(root_dir) / WORK / name
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
    if _resumable(state, work):
        model = load_model(work / state["checkpoint"], compile=True)  # optimizer state included
        if verbose:
            print(f"resuming {name} after epoch {state['epoch']}")
    else:
        if state is not None and verbose:
            print(f"{work} lacks the files its state.json names: training {name} from the start")
        _remove_work(work)
        work.mkdir(parents=True)
        state = _new_state(config)
        with make_strategy(config["train"]["strategy"]).scope():
            model = build_compiled_model(config)
    state["config"] = config
    train_batches.set_epoch(state["epoch"])  # the order and augmentations an uninterrupted run sees

    if config["train"]["epochs"] > state["epoch"]:
        callbacks = [EpochState(work, state),
                     keras.callbacks.EarlyStopping("val_miou", mode="max", patience=config["train"]["patience"])
                     if config["train"]["patience"] else keras.callbacks.Callback()]
        model.fit(train_batches, validation_data=validation_batches, epochs=config["train"]["epochs"],
                  initial_epoch=state["epoch"], steps_per_epoch=config["train"]["steps_per_epoch"],
                  callbacks=callbacks, verbose=verbose)
    best = load_model(work / state["best"]) if state.get("best") else model
    run_dir = publish(config, best, state, work, root, index, root_dir, verbose)
    fault_point("after_commit")
    _remove_work(work)
    return run_dir


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
