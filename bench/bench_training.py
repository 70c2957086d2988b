"""Training and inference speed of the demo models, and model load time.

For each config of configs/demo/ at 128x256 and 256x512: training images/s (one compiled
training step, batch 8, after tracing), inference ms per image (batch 1), and the time to
reload the saved ``model.keras`` in this process.

    .venv/bin/python bench/bench_training.py [--configs configs/demo/*.yaml] [--steps 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import training  # noqa: E402,F401
from bench.results_file import write_results  # noqa: E402
from training.fit.config import load_config  # noqa: E402
from training.fit.predict import inference_ms_per_image  # noqa: E402
from training.fit.runner import build_compiled_model  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = ((128, 256), (256, 512))


def measure(config_path: Path, size: tuple[int, int], steps: int, batch: int) -> dict:
    from training.models import count_parameters, load_model

    config = load_config(config_path, [f"data.height={size[0]}", f"data.width={size[1]}"])
    model = build_compiled_model(config)
    rng = np.random.default_rng(0)
    x = rng.random((batch, *size, 3), dtype=np.float32)
    y = rng.integers(0, 8, (batch, *size)).astype(np.uint8)
    start = time.perf_counter()
    model.train_on_batch(x, y)
    trace = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    train_rate = steps * batch / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        start = time.perf_counter()
        load_model(path)
        load_seconds = time.perf_counter() - start
    return {"config": config_path.stem, "size": f"{size[0]}x{size[1]}", "params": count_parameters(model),
            "trace_s": trace, "train_images_per_s": train_rate,
            "inference_ms": inference_ms_per_image(model, size), "load_s": load_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="*", type=Path,
                        default=sorted(Path("configs/demo").glob("[!_]*.yaml")))
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    rows = [measure(c, s, args.steps, args.batch_size) for c in args.configs for s in SIZES]
    print("| config | size (HxW) | params | train images/s | inference ms/image | load model.keras s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['size']} | {r['params']:,} | {r['train_images_per_s']:.1f} | "
              f"{r['inference_ms']:.1f} | {r['load_s']:.2f} |")
    write_results("training", rows)


if __name__ == "__main__":
    main()
