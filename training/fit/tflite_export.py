"""Export a published run's Keras model to TFLite and measure what the conversion cost:
``python -m training export RUN --format tflite --quantize none|float16|int8``.

Writes ``runs/<run>/exports/<name>.tflite``, its report ``<name>.json`` and its predictions
(``training.runs.tflite_exports``: atomically, the run's own files untouched; an export that
replaces one, ``--replace``, gets files of a new generation, ``<name>@<generation>.tflite``, which
its report names). The report holds:

* the file's size, the quantisation, and for int8 the calibration images: drawn (seeded) from
  the run's training split, never from its evaluation split;
* the latency: median ms of one image (batch 1) through the CPU interpreter, with the number of
  runs, the threads, the input size and the interpreter;
* per-class IoU, both mIoUs and the confusion matrix on the run's evaluation split at
  ground-truth resolution: the project's own ``evaluate_model`` (the same reading, resizing,
  bilinear upsampling of the probabilities and ``Evaluator``), the TFLite model in place of Keras;
* ``delta``: per class, the export's IoU minus the run's (its Keras model's) stored IoU;
* ``changed_pixels``: the share of pixels whose class differs from the run's stored predictions
  (``predictions/<id>.png``), overall and per Keras class.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from training.data.cityscapes import read_image
from training.data.dataset import Dataset
from training.data.resize import resize_image
from training.files import finite_or_none
from training.fit.predict import evaluate_model
from training.fit.tflite import TFLiteModel, convert, interpreter_name, latency_stats
from training.runs.health import require_model
from training.runs.reader import Run, get_run
from training.runs.tflite_exports import FORMATS, ExportWriter, default_export_name
from training.viz import flip_counts

DEFAULT_CALIBRATION_IMAGES = 100
LATENCY_RUNS, LATENCY_WARMUP = 50, 5


def calibration_entries(dataset: Dataset, split: str, count: int, evaluation_split: str, seed: int = 0) -> list:
    """``count`` images of ``split`` (the run's training split), drawn with ``seed``, in id
    order; never an image of the evaluation split."""
    if split == "test" or split == evaluation_split:
        raise ValueError(f"calibration images come from the training split, not {split!r} (the evaluation split)")
    entries = dataset.index.split(split)
    evaluated = {entry.id for entry in dataset.index.split(evaluation_split)}
    entries = [entry for entry in entries if entry.id not in evaluated]
    if not entries or count < 1:
        raise ValueError(f"int8 calibration needs images: the {split!r} split has {len(entries)}, asked {count}")
    chosen = np.random.default_rng(seed).choice(len(entries), size=min(count, len(entries)), replace=False)
    return [entries[i] for i in sorted(chosen)]


def _model_inputs(dataset: Dataset, entries: list, size: tuple[int, int]):
    """A generator function of ``(1, H, W, 3)`` float [0, 1] images at the model's size, read lazily."""
    def generate():
        for entry in entries:
            yield (resize_image(read_image(dataset.root / entry.image), size)[None].astype(np.float32) / 255.0)
    return generate


def _deltas(export: dict, keras: dict) -> dict:
    return {name: (None if value is None or keras.get(name) is None else value - keras[name])
            for name, value in export.items()}


def _difference(a, b) -> float | None:
    return None if a is None or b is None else a - b


class _ChangedPixels:
    """Pixels whose class differs from the run's stored prediction, per Keras class."""

    def __init__(self, run: Run, num_classes: int):
        self.run, self.k = run, num_classes
        self.changed = np.zeros(num_classes, dtype=np.int64)
        self.pixels = np.zeros(num_classes, dtype=np.int64)
        self.images = 0

    def add(self, image_id: int, predicted: np.ndarray) -> None:
        if not (self.run.path / "predictions" / f"{int(image_id)}.png").is_file():
            return  # a run that kept no predictions: nothing to compare
        changed, pixels = flip_counts(self.run.prediction(image_id), predicted, self.k)
        self.changed += changed
        self.pixels += pixels
        self.images += 1

    def summary(self, names) -> dict:
        total = int(self.pixels.sum())
        return {"share": finite_or_none(self.changed.sum() / total) if total else None,
                "pixels": int(self.changed.sum()), "compared_pixels": total, "images": self.images,
                "by_keras_class": {name: finite_or_none(c / p) if p else None
                                   for name, c, p in zip(names, self.changed, self.pixels)}}


def export_tflite(run_name: str, quantize: str = "none", name: str | None = None,
                  calibration_images: int = DEFAULT_CALIBRATION_IMAGES, artifacts: str | os.PathLike | None = None,
                  data_root: str | os.PathLike | None = None, threads: int | None = None,
                  latency_runs: int = LATENCY_RUNS, seed: int = 0, replace: bool = False,
                  format: str = "tflite", progress: bool = True) -> dict:
    """Convert run ``run_name``'s model, evaluate the export, write it; returns its report.

    Raises:
        ArtifactError: the run is damaged or imported, the export exists (without ``replace``),
            or the run's dataset changed.
        ConversionError: the model cannot be converted (the message names the layer).
        ValueError: an unknown format, no calibration images.
    """
    from training.models import load_model

    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    run = get_run(run_name, artifacts)
    require_model(run, "exported")
    name = name or default_export_name(quantize)
    dataset = run.open_dataset(data_root)
    split, size = run.metrics["split"], run.input_size
    calibration = None
    if quantize == "int8":
        train_split = (run.config.get("data") or {}).get("train_split") or "train"
        calibration = calibration_entries(dataset, train_split, calibration_images, split, seed)
    writer = ExportWriter(run, name, replace)
    try:
        report = _export(run, dataset, writer, load_model(run.model_path), quantize, calibration, split, size,
                         threads, latency_runs, progress)
        report.update(name=name, format=format)
        if calibration is not None:
            report["calibration"] = {"split": train_split, "images": len(calibration), "seed": seed,
                                     "ids": [entry.id for entry in calibration]}
        writer.commit(report)  # names the files in the report (``file``, ``predictions``)
    except BaseException:
        writer.abort()
        raise
    return report


def _export(run: Run, dataset: Dataset, writer: ExportWriter, model, quantize: str, calibration, split: str,
            size: tuple[int, int], threads: int | None, latency_runs: int, progress: bool) -> dict:
    started = time.perf_counter()
    content = convert(model, quantize, _model_inputs(dataset, calibration, size) if calibration else None)
    convert_seconds = time.perf_counter() - started
    writer.write_model(content)
    exported = TFLiteModel(content, threads)
    entries = dataset.index.split(split)
    sample = next(_model_inputs(dataset, entries[:1], size)())[0]
    latency = latency_stats(exported, sample, latency_runs, LATENCY_WARMUP)

    class_set, palette = dataset.class_set, dataset.class_set.palette()
    changes = _ChangedPixels(run, class_set.num_classes)

    def on_prediction(image_id: int, predicted: np.ndarray) -> None:
        writer.write_prediction(image_id, predicted, palette)
        changes.add(image_id, predicted)

    started = time.perf_counter()
    result = evaluate_model(exported, dataset.root, entries, class_set, size, on_prediction=on_prediction,
                            progress=progress)
    summary, metrics = result["summary"], run.metrics
    keras = {key: metrics.get(key) for key in ("miou", "miou_official", "pixel_accuracy", "iou", "iou_official",
                                               "inference_ms")}
    return {
        "run": run.name, "run_uid": run.uid, "quantize": quantize,
        "file_bytes": len(content), "keras_file_bytes": run.model_path.stat().st_size,
        "input": {"height": size[0], "width": size[1], "dtype": exported.input_dtype},
        "output_dtype": exported.output_dtype,
        "latency": {"ms_per_image": latency["median"], "statistic": "median", "runs": latency_runs,
                    "p10_ms": latency["p10"], "p90_ms": latency["p90"],
                    "warmup_runs": LATENCY_WARMUP, "threads": exported.threads, "batch": 1,
                    "input_size": list(size), "cpu_count": os.cpu_count(), "interpreter": interpreter_name(),
                    "measures": "predict_on_batch of one image at the model's size: quantise the input, invoke, "
                                "dequantise the output (no resizing, no upsampling)"},
        "calibration": None, "split": split,
        **{key: summary[key] for key in ("images", "pixels", "classes", "class_names", "miou", "miou_official",
                                         "pixel_accuracy", "iou", "iou_official", "confusion_names", "confusion")},
        "evaluation": {"resolution": "ground truth", "upsampling": "bilinear class probabilities, then argmax "
                       "(training.fit.predict, as the run's own evaluation)"},
        "keras": keras,
        "delta": _deltas(summary["iou"], metrics.get("iou") or {}),
        "delta_official": _deltas(summary["iou_official"], metrics.get("iou_official") or {}),
        "delta_miou": _difference(summary["miou"], metrics.get("miou")),
        "delta_miou_official": _difference(summary["miou_official"], metrics.get("miou_official")),
        "changed_pixels": changes.summary(class_set.names),
        "convert_seconds": round(convert_seconds, 2), "evaluate_seconds": round(time.perf_counter() - started, 2),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": _versions(),
    }


def _versions() -> dict:
    import tensorflow as tf

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "numpy": np.__version__}


def format_export(report: dict) -> str:
    """What ``python -m training export`` prints: size, latency, both mIoUs against Keras, the
    pixels changed, the per-class deltas, and where the files are."""
    latency, changed, keras = report["latency"], report["changed_pixels"], report["keras"]
    height, width = latency["input_size"]
    lines = [
        f"{report['file']}: {report['file_bytes'] / 1e6:.2f} MB ({report['quantize']}; Keras "
        f"{report['keras_file_bytes'] / 1e6:.2f} MB), {latency['ms_per_image']:.2f} ms/image (median of "
        f"{latency['runs']}, {latency['threads']} threads, {height}x{width}, batch 1)",
        f"{report['split']} mIoU {_number(report['miou'])} (Keras {_number(keras['miou'])}), official-compatible "
        f"{_number(report['miou_official'])} (Keras {_number(keras['miou_official'])}); class changed on "
        + ("n/a" if changed["share"] is None else f"{100 * changed['share']:.2f} %") + " of the pixels",
        "per class, IoU export - Keras: " + ", ".join(f"{name} {_number(delta, '+.3f')}"
                                                     for name, delta in report["delta"].items()),
        f"wrote exports/{report['file']} and exports/{report['name']}.json of run {report['run']}",
    ]
    return "\n".join(lines)


def _number(value, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)
