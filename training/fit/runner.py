"""Train one config, evaluate it, publish the run: ``python -m training train CONFIG``.

Reads top to bottom: data, model, the per-epoch work folder (checkpoint, best model, history:
what ``--resume`` continues from), fit, then evaluation and the atomic run directory.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
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
from training.fit.predict import evaluate_model, inference_ms_per_image
from training.runs.store import RunWriter, artifacts_dir

WORK = "work"  # artifacts/work/<run>/: in-progress state, never read by the API or dashboard


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
    from training.fit.batches import SegmentationBatches

    data, seed = config["data"], config["train"]["seed"]
    size = (data["height"], data["width"])
    common = dict(class_set=data["classes"], size=size, batch_size=data["batch_size"], workers=data["workers"])
    train = SegmentationBatches(root, index.split(data["train_split"]), shuffle=True, seed=seed,
                                augment=build_augmentation(data["augmentation"], size, seed), **common)
    validation = SegmentationBatches(root, index.split(data["validation_split"]), **common)
    return train, validation


def build_compiled_model(config: dict):
    from training.fit.keras_metrics import StreamingMeanIoU
    from training.losses import build_loss
    from training.models import build_model

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


class EpochState(keras.callbacks.Callback):
    """After every epoch: checkpoint, best model on validation mIoU, history, state (atomically)."""

    def __init__(self, work: Path, state: dict):
        super().__init__()
        self.work, self.state = work, state
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = {key: float(value) for key, value in (logs or {}).items()}
        self.state["history"].append({"epoch": epoch + 1, **logs})
        self.state["train_seconds"] += time.perf_counter() - self.started
        self.started = time.perf_counter()
        _save_model_atomic(self.model, self.work / "checkpoint.keras")
        score = logs.get("val_miou", float("-inf"))
        if score > self.state["best_val_miou"]:
            self.state.update(best_val_miou=score, best_epoch=epoch + 1)
            _save_model_atomic(self.model, self.work / "best.keras")
        self.state["epoch"] = epoch + 1
        write_json_atomic(self.work / "state.json", self.state)


def _save_model_atomic(model, path: Path) -> None:
    temporary = path.with_name(f".{path.stem}.tmp.keras")
    model.save(temporary)
    os.replace(temporary, path)


def _load_state(work: Path, config: dict, resume: bool) -> dict | None:
    state_file = work / "state.json"
    if not resume or not state_file.exists():
        return None
    state = json.loads(state_file.read_text())
    saved, wanted = dict(state["config"]), dict(config)
    saved["train"] = {**saved["train"], "epochs": None}
    wanted["train"] = {**wanted["train"], "epochs": None}
    if saved != wanted:
        raise ValueError(f"--resume: {work} was started with a different config; "
                         "remove it or train under another name")
    return state


def train(config: dict, root_dir: str | os.PathLike | None = None, resume: bool = False,
          verbose: int = 1) -> Path:
    """Train, evaluate and publish one run; returns its directory under ``artifacts/runs/``."""
    from training.models import load_model

    name, data = config["name"], config["data"]
    keras.utils.set_random_seed(config["train"]["seed"])
    root = resolve_data_root(data["root"])
    index = load_or_build_index(root, data["index"])
    train_batches, validation_batches = make_batches(config, root, index)
    work = artifacts_dir(root_dir) / WORK / name
    state = _load_state(work, config, resume)
    if state is None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        state = {"config": config, "epoch": 0, "best_epoch": 0, "best_val_miou": float("-inf"),
                 "train_seconds": 0.0, "history": []}
        with make_strategy(config["train"]["strategy"]).scope():
            model = build_compiled_model(config)
    else:
        model = load_model(work / "checkpoint.keras", compile=True)  # optimizer state included
        if verbose:
            print(f"resuming {name} after epoch {state['epoch']}")
    state["config"] = config

    remaining = config["train"]["epochs"] - state["epoch"]
    if remaining > 0:
        callbacks = [EpochState(work, state),
                     keras.callbacks.EarlyStopping("val_miou", mode="max", patience=config["train"]["patience"])
                     if config["train"]["patience"] else keras.callbacks.Callback()]
        model.fit(train_batches, validation_data=validation_batches, epochs=config["train"]["epochs"],
                  initial_epoch=state["epoch"], steps_per_epoch=config["train"]["steps_per_epoch"],
                  callbacks=callbacks, verbose=verbose)
    best = load_model(work / "best.keras") if (work / "best.keras").exists() else model
    run_dir = publish(config, best, state, root, index, root_dir, verbose)
    shutil.rmtree(work, ignore_errors=True)
    return run_dir


def _versions() -> dict:
    import segmentation_models
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "segmentation_models": segmentation_models.__version__, "numpy": np.__version__}


def publish(config: dict, model, state: dict, root: Path, index, root_dir=None, verbose: int = 1) -> Path:
    """Evaluate ``model`` on the evaluation split and write the run directory atomically."""
    from training.models import count_parameters

    class_set = get_class_set(config["data"]["classes"])
    split = config["evaluation"]["split"]
    size = (config["data"]["height"], config["data"]["width"])
    writer = RunWriter(config["name"], root_dir)
    try:
        save = config["evaluation"]["save_predictions"]
        palette = class_set.palette()
        result = evaluate_model(model, root, index.split(split), class_set, size,
                                on_prediction=(lambda i, m: writer.write_prediction(i, m, palette)) if save else None,
                                progress=bool(verbose))
        best = next((h for h in state["history"] if h["epoch"] == state["best_epoch"]), {})
        metrics = {
            "run": config["name"], "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "split": split,
            **{k: v for k, v in result["summary"].items() if k != "confusion"},
            "model": config["model"]["name"], "backbone": config["model"]["backbone"],
            "encoder_weights": config["model"]["encoder_weights"], "loss_name": config["loss"]["name"],
            "augmentation": config["data"]["augmentation"], "image_size": list(size),
            "params": count_parameters(model), "train_seconds": round(state["train_seconds"], 2),
            "epochs": state["epoch"], "best_epoch": state["best_epoch"],
            "loss": best.get("loss"), "val_loss": best.get("val_loss"),
            "train_miou": best.get("miou"), "val_miou": best.get("val_miou"),
            "inference_ms": inference_ms_per_image(model, size),
            "dataset": {"root": str(root), "fingerprint": index.fingerprint(), "images": len(index)},
            "versions": _versions(),
        }
        model.save(writer.path("model.keras"))
        writer.write_text("config.yaml", dump_config(config))
        writer.write_csv("history.csv", state["history"])
        writer.write_json("metrics.json", metrics)
        writer.write_array("confusion.npy", result["confusion"])
        writer.write_array("per_image_confusion.npy", result["per_image_confusion"])
        writer.write_csv("per_image.csv", result["per_image"])
        return writer.commit()
    except BaseException:
        writer.abort()
        raise
