"""Model evaluation and training throughput on a GPU machine, for the figures beside the 2-core ones.

The project never needs a GPU; when one is lent, this script measures what it changes. It runs
where TensorFlow may be missing (a GPU machine's image without it, a wheel too large to carry):
the demo's scratch models are plain Keras 3 layers, so they load and train under any Keras
backend, and ``KERAS_BACKEND`` says which (``jax`` on the machine we were lent; ``tensorflow``
elsewhere). Each figure names the backend it was measured under. For each run folder given:

* **model evaluation** (``training.fit.predict.evaluate_model``: read, model, upsampling,
  anatomy, confidence maps, calibration) over generated validation images at 256x512 and
  2048x1024: images per second, with the threads per stage it used;
* **forward pass**: ms per image at the model's own size (batch 1 and batch 32) and at the full
  1024x2048 input (the same weights in a model built at that size: the models are fully
  convolutional);
* **training**: images per second of ``train_on_batch`` (Adam, sparse cross-entropy: the
  project's losses are TensorFlow functions) at the run's size, 512x1024 and 1024x2048, after
  the first (compiling) step.

    KERAS_BACKEND=jax python bench/bench_gpu.py artifacts/runs/simple_scratch_cce_v1_128x256 ...

Writes ``bench/results/gpu.json`` (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import training  # noqa: E402,F401  (the environment variables, before Keras)
from bench.results_file import write_results  # noqa: E402

RESOLUTIONS = {"demo": (256, 512), "full": (1024, 2048)}
TRAIN_SIZES = ("own", "512x1024", "1024x2048")  # own: the run's own size
FORWARD_BATCH = 32


def timed(call, repeats: int) -> float:
    """Median seconds of ``call()`` over ``repeats`` calls, after one untimed call (compilation)."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def device_text() -> str:
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return f"jax {jax.__version__}: " + ", ".join(str(d.device_kind) for d in jax.devices())
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        return f"tensorflow {tf.__version__}: " + (", ".join(g.name for g in gpus) or "CPU")
    return backend


def load_run_model(run_dir: Path):
    """The run's model.keras and its config, with the scratch layers registered (no TensorFlow)."""
    import keras
    import yaml

    from training.models import scratch  # noqa: F401  (registration of the custom layers)

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    return keras.saving.load_model(str(run_dir / "model.keras"), compile=False), config


def same_model_at(model, config: dict, size: tuple[int, int]):
    """The run's architecture built at ``size`` with the run's weights."""
    from training.data.labels import get_class_set
    from training.models import build_model

    classes = get_class_set(config["data"]["classes"]).num_classes
    rebuilt = build_model(config["model"]["name"], classes, (*size, 3), **(config["model"]["options"] or {}))
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def forward(model, config: dict, repeats: int) -> dict:
    size = (config["data"]["height"], config["data"]["width"])
    rng = np.random.default_rng(0)
    one = rng.random((1, *size, 3), dtype=np.float32)
    batch = rng.random((FORWARD_BATCH, *size, 3), dtype=np.float32)
    full = same_model_at(model, config, RESOLUTIONS["full"])
    big = rng.random((1, *RESOLUTIONS["full"], 3), dtype=np.float32)
    return {"model_size": f"{size[0]}x{size[1]}",
            "ms_batch_1": 1000 * timed(lambda: np.asarray(model.predict_on_batch(one)), repeats),
            f"ms_per_image_batch_{FORWARD_BATCH}": 1000 * timed(lambda: np.asarray(model.predict_on_batch(batch)),
                                                                 repeats) / FORWARD_BATCH,
            "ms_batch_1_at_1024x2048": 1000 * timed(lambda: np.asarray(full.predict_on_batch(big)), repeats)}


def training_rates(config: dict, steps: int, batch: int, sizes: list[str]) -> list[dict]:
    import keras

    from training.data.labels import get_class_set
    from training.models import build_model

    classes = get_class_set(config["data"]["classes"]).num_classes
    rows = []
    for text in sizes:
        own = (config["data"]["height"], config["data"]["width"])
        size = own if text == "own" else tuple(int(n) for n in text.split("x"))
        model = build_model(config["model"]["name"], classes, (*size, 3), **(config["model"]["options"] or {}))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=keras.losses.SparseCategoricalCrossentropy())
        rng = np.random.default_rng(0)
        x = rng.random((batch, *size, 3), dtype=np.float32)
        y = rng.integers(0, classes, (batch, *size)).astype(np.int32)
        start = time.perf_counter()
        model.train_on_batch(x, y)
        first = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(steps):
            loss = model.train_on_batch(x, y)
        float(np.asarray(loss if np.ndim(loss) == 0 else loss[0]))  # the last step has finished
        rows.append({"size": f"{size[0]}x{size[1]}", "batch": batch, "first_step_s": round(first, 2),
                     "images_per_s": round(steps * batch / (time.perf_counter() - start), 1)})
        print(f"  train {rows[-1]}", flush=True)
    return rows


def evaluation_rates(model, config: dict, roots: dict[str, Path]) -> dict:
    from training.data.index import load_or_build_index
    from training.data.labels import get_class_set
    from training.fit.predict import evaluate_model, model_evaluation_threads

    class_set = get_class_set(config["data"]["classes"])
    size = (config["data"]["height"], config["data"]["width"])
    rates = {}
    for name, root in roots.items():
        entries = list(load_or_build_index(root, report=lambda message: None).entries)  # all generated as val
        evaluate_model(model, root, entries[:2], class_set, size, progress=False)  # compile, warm caches
        start = time.perf_counter()
        evaluate_model(model, root, entries, class_set, size, progress=False,
                       on_confidence=lambda image_id, levels: None)
        seconds = time.perf_counter() - start
        rates[name] = {"images": len(entries), "images_per_s": round(len(entries) / seconds, 1),
                       "threads_per_stage": model_evaluation_threads()}
        print(f"  evaluate {name}: {rates[name]}", flush=True)
    return rates


def make_datasets(folder: Path, images: int) -> dict[str, Path]:
    from training.data.index import load_or_build_index
    from training.data.synthetic import make_dataset

    roots = {}
    for name, (height, width) in RESOLUTIONS.items():
        root = folder / name
        start = time.perf_counter()
        make_dataset(root, train=0, val=images, height=height, width=width, seed=0, progress=False)
        load_or_build_index(root, report=lambda message: None)
        print(f"dataset {name}: {images} images in {time.perf_counter() - start:.1f} s", flush=True)
        roots[name] = root
    return roots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders with model.keras (scratch models)")
    parser.add_argument("--images", type=int, default=32, help="validation images per resolution")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per size")
    parser.add_argument("--batch", type=int, default=8, help="training batch")
    parser.add_argument("--repeats", type=int, default=20, help="timed forward passes")
    parser.add_argument("--train-sizes", nargs="+", default=list(TRAIN_SIZES), help="own or HxW")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        roots = make_datasets(Path(tmp), args.images)  # worker processes: before JAX starts its threads
        import keras

        device = device_text()
        print(f"keras {keras.__version__} on {device}", flush=True)
        for run_dir in args.runs:
            model, config = load_run_model(run_dir)
            print(f"{run_dir.name}", flush=True)
            row = {"run": run_dir.name, "model": config["model"]["name"], "params": int(model.count_params()),
                   "evaluation": evaluation_rates(model, config, roots),
                   "forward": forward(model, config, args.repeats),
                   "training": training_rates(config, args.steps, args.batch, args.train_sizes)}
            print(f"  forward {row['forward']}", flush=True)
            rows.append(row)
    write_results("gpu", {"keras": keras.__version__, "backend": keras.backend.backend(), "device": device,
                          "cores": os.cpu_count(), "rows": rows}, out=args.out)


if __name__ == "__main__":
    main()
