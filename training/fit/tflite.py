"""A Keras model as a TFLite flat buffer, and the TFLite interpreter behind the Keras model's
interface (``predict_on_batch``), so the project's evaluation and ``Predictor`` run it unchanged.

Conversion is TensorFlow's own (``tf.lite.TFLiteConverter``), built-in TFLite ops only (no
select-TF "flex" ops: a device runtime has none): ``none`` keeps float32, ``float16`` stores the
weights as float16, ``int8`` is full-integer post-training quantisation (weights and activations
int8, uint8 image in, uint8 probabilities out) calibrated on representative images.

The interpreter is ``tf.lite.Interpreter`` of the same TensorFlow: the converter and the kernels
are one version, no other package to pin (``ai-edge-litert`` holds the same runtime; swapping
it in is one line, ``_interpreter``). Its deprecation warning is silenced there, once.

A model that cannot convert raises ``ConversionError`` naming the Keras layer (and its class)
whose ops TFLite lacks, read from the converter's op locations (``functional/<layer>/<op>``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import time
import warnings
from typing import Callable, Iterable

import numpy as np

from training.fit.predict import Predictor
from training.runs.tflite_exports import QUANTIZATIONS, export_model_path

INTERPRETER = "tf.lite.Interpreter"
# An op location in the converter's message: fused["Svd:", "functional_1/odd_one_1/Svd@__inference_..."]
_LOCATION = re.compile(r'fused\["([A-Za-z0-9_]+):", "([^"@]+)@')
_UNSUPPORTED = re.compile(r"'(tf|tfl)\.([A-Za-z0-9_]+)' op (is neither a custom op nor a flex op|"
                          r"is not supported|has no int8|.*not.*quantiz)", re.IGNORECASE)
_CONVERTER_SAYS = re.compile(r"'(tf|tfl)\.[A-Za-z0-9_]+' op [^\n]*")
_OP_LIST = re.compile(r"(?:Custom|Flex|Select TF) ops: ([A-Za-z0-9_, ]+)")


class ConversionError(ValueError):
    """The model cannot be converted to TFLite; the message names the layer and the ops."""


def default_threads() -> int:
    return os.cpu_count() or 1


# ---------------------------------------------------------------------------- conversion

def convert(model, quantize: str = "none",
            representative: Callable[[], Iterable[np.ndarray]] | None = None) -> bytes:
    """The TFLite flat buffer of ``model`` (a Keras model from ``(1, H, W, 3)`` [0, 1] images).

    ``representative()`` yields ``(1, H, W, 3)`` float32 images; int8 needs it (its activations'
    ranges are measured on them).

    Raises:
        ConversionError: the model uses ops TFLite does not have (the message names the layer), or
            an unknown ``quantize``.
    """
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise ConversionError(f"unknown quantisation {quantize!r}; choose one of {', '.join(QUANTIZATIONS)}")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    failures: list[BaseException] = []  # raised while reading the representative images
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        if representative is None:
            raise ConversionError("int8 quantisation needs representative images")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _recorded(representative(), failures)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    try:
        # The converter saves a SavedModel first and prints its signature on stdout, and warns
        # about its own choices: neither is ours to show.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return converter.convert()
    except Exception as error:  # ConverterError, and whatever tracing the model raised
        if failures:  # a calibration image that cannot be read is not the model's fault
            raise failures[0] from None
        raise ConversionError(conversion_problem(model, str(error), quantize)) from None


def _recorded(images: Iterable[np.ndarray], failures: list):
    """``[image]`` for each image (the converter's form), keeping what reading them raised."""
    try:
        for image in images:
            yield [image]
    except Exception as error:
        failures.append(error)
        raise


def conversion_problem(model, message: str, quantize: str = "none") -> str:
    """A message for people from the converter's: which layers (and classes) hold the ops it
    could not convert, which ops, and what the converter said of the first one."""
    ops = sorted({match.group(2) for match in _UNSUPPORTED.finditer(message)}
                 | {op.strip() for match in _OP_LIST.finditer(message) for op in match.group(1).split(",")
                    if op.strip()})
    layers = culprit_layers(model, message)
    where = ", ".join(f"layer {name!r} ({kind})" for name, kind in layers) or "a part of the model we could not name"
    what = f"TensorFlow ops TFLite has no built-in kernel for: {', '.join(ops)}" if ops else \
        "an operation the converter rejects"
    said = _CONVERTER_SAYS.search(message)
    detail = said.group(0) if said else next((line for line in message.splitlines() if "error" in line.lower()),
                                             message[:300]).strip()[:300]
    return (f"cannot convert {model.name} to TFLite ({quantize}): {where} uses {what}. Only built-in TFLite "
            "ops are allowed (a device has no TensorFlow); rewrite that layer with standard Keras layers "
            f"or leave it out. The converter says: {detail}")


def culprit_layers(model, message: str) -> list[tuple[str, str]]:
    """(name, class) of the model's layers named in the op locations of a converter message, in
    the order they appear; nested models' layers included. Keras may suffix a name scope with
    ``_<n>`` (``odd_one_1`` for the layer ``odd_one``)."""
    by_name = {layer.name: type(layer).__name__ for layer in _all_layers(model)}
    found: dict[str, str] = {}
    for match in _LOCATION.finditer(message):
        for part in match.group(2).split("/")[:-1]:  # the last part is the op
            name = part if part in by_name else re.sub(r"_\d+$", "", part)
            if name in by_name and name != model.name and by_name[name] not in ("Functional", "Sequential"):
                found.setdefault(name, by_name[name])
    return list(found.items())


def _all_layers(model) -> list:
    layers = []
    for layer in getattr(model, "layers", []):
        layers.append(layer)
        if hasattr(layer, "layers"):
            layers.extend(_all_layers(layer))
    return layers


# ---------------------------------------------------------------------------- running

def _interpreter(content: bytes, threads: int):
    """The TFLite interpreter of ``content`` with ``threads`` CPU threads, tensors allocated."""
    import tensorflow as tf

    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated ... use ai_edge_litert"
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_content=content, num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


class TFLiteModel:
    """A TFLite model with the Keras call the project's code makes: ``predict_on_batch(images)``
    from ``(N, H, W, 3)`` float [0, 1] images to ``(N, H, W, K)`` float32 probabilities (an int8
    model's input is quantised and its output dequantised with the tensors' own scales).
    Not thread-safe: one call at a time (the API holds its inference lock)."""

    def __init__(self, content: bytes, threads: int | None = None):
        self.threads = threads or default_threads()
        self.interpreter = _interpreter(content, self.threads)
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self.input_dtype = np.dtype(self._input["dtype"]).name
        self.output_dtype = np.dtype(self._output["dtype"]).name

    @classmethod
    def from_file(cls, path, threads: int | None = None) -> TFLiteModel:
        with open(path, "rb") as handle:
            return cls(handle.read(), threads)

    @property
    def size(self) -> tuple[int, int]:
        """``(height, width)`` the model takes."""
        return int(self._input["shape"][1]), int(self._input["shape"][2])

    def predict_on_batch(self, images: np.ndarray) -> np.ndarray:
        return np.stack([self._predict_one(image) for image in np.asarray(images)])

    def _predict_one(self, image: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self._input["index"], _quantised(image[None], self._input))
        self.interpreter.invoke()
        return _dequantised(self.interpreter.get_tensor(self._output["index"]), self._output)[0]


def _quantised(values: np.ndarray, details: dict) -> np.ndarray:
    dtype = np.dtype(details["dtype"])
    if dtype.kind == "f":
        return values.astype(dtype)
    scale, zero_point = details["quantization"]
    limits = np.iinfo(dtype)
    return np.clip(np.rint(values / scale + zero_point), limits.min, limits.max).astype(dtype)


def _dequantised(values: np.ndarray, details: dict) -> np.ndarray:
    if np.dtype(details["dtype"]).kind == "f":
        return values.astype(np.float32)
    scale, zero_point = details["quantization"]
    return ((values.astype(np.float32) - zero_point) * np.float32(scale)).astype(np.float32)


def latency_ms(model, image: np.ndarray, runs: int = 50, warmup: int = 5) -> float:
    """Median milliseconds of ``model.predict_on_batch`` on one ``(H, W, 3)`` float [0, 1] image
    (batch 1), after ``warmup`` calls: a TFLite model's or a Keras model's, measured alike."""
    return latency_stats(model, image, runs, warmup)["median"]


def latency_stats(model, image: np.ndarray, runs: int = 50, warmup: int = 5) -> dict[str, float]:
    """``latency_ms``'s median with the 10th and 90th percentiles of the ``runs`` calls (their
    spread: on a shared machine, load only ever adds time)."""
    batch = np.asarray(image, dtype=np.float32)[None]
    for _ in range(warmup):
        model.predict_on_batch(batch)
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        model.predict_on_batch(batch)
        times.append(1000 * (time.perf_counter() - start))
    return {name: round(float(np.percentile(times, q)), 3) for name, q in (("median", 50), ("p10", 10), ("p90", 90))}


def interpreter_name() -> str:
    import tensorflow as tf

    return f"{INTERPRETER} (TensorFlow {tf.__version__}, its default XNNPACK delegate)"


class TFLitePredictor(Predictor):
    """An export of a published run, ready to segment photos of any size: ``Predictor``'s
    interface (``probabilities`` at the model's size, ``classes`` at any size, the same resizing
    and upsampling), its TFLite model in place of the Keras one.

    Example::

        predictor = TFLitePredictor.load(get_run("unet_scratch_cce-dice_v1_128x256"), "tflite-int8")
        classes = predictor.classes(photo)
    """

    def __init__(self, model: TFLiteModel, size: tuple[int, int], run: str | None = None,
                 export: str | None = None):
        super().__init__(model, size, run)
        self.export = export

    @classmethod
    def load(cls, run, export: str, threads: int | None = None) -> TFLitePredictor:
        model = TFLiteModel.from_file(export_model_path(run, export), threads)
        if model.size != tuple(run.input_size):
            raise ConversionError(f"run {run.name}: exports/{export}.tflite takes {model.size}, "
                                  f"the run {tuple(run.input_size)}")
        return cls(model, run.input_size, run.name, export)
