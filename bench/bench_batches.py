"""Input pipeline throughput next to a training step: the pipeline must never be the bottleneck.

On a generated dataset at the demo's resolution (256x512) or Cityscapes' own (2048x1024), batches
at the training size of the demo configs, with each augmentation, loaded by 2 threads as Keras'
PyDataset workers do, three ways: without the cache (every epoch decodes the PNGs), the first
epoch with the cache (decodes and writes it) and a later epoch (reads it). Then one training step
(batch 8) of each demo model at the same size; the ratio is cached images/s over the fastest
model's training images/s. Other processes on a shared machine only slow a measurement down, so
each rate is the best of several epochs (steps): both sides of the ratio alike.

    .venv/bin/python bench/bench_batches.py --resolution demo|full [--size 128x256 --workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import training  # noqa: E402,F401
from bench.datasets import add_resolution_argument, bench_dataset  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from training.data.cache import FrameCache  # noqa: E402
from training.data.index import load_or_build_index  # noqa: E402
from training.fit.augment import AUGMENTATIONS, build_augmentation  # noqa: E402
from training.fit.batches import SegmentationBatches  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEMO_CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs" / "demo").glob("[!_]*.yaml"))


def epoch_images_per_second(batches: SegmentationBatches, workers: int) -> float:
    """One whole epoch, batches taken by ``workers`` threads."""
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        images = sum(len(x) for x, _ in pool.map(batches.__getitem__, range(len(batches))))
    seconds = time.perf_counter() - start
    batches.on_epoch_end()
    return images / seconds


def pipeline_rates(root: Path, entries, size, batch_size: int, workers: int, name: str) -> dict:
    def batches(cache):
        return SegmentationBatches(root, entries, "categories8", size, batch_size, shuffle=True,
                                   augment=build_augmentation(name, size, seed=0), cache=cache)

    with tempfile.TemporaryDirectory() as folder:
        cached = batches(FrameCache(root, folder))
        first = epoch_images_per_second(cached, workers)
        later = max(epoch_images_per_second(cached, workers) for _ in range(8))
    uncached = batches(None)
    return {"uncached": max(epoch_images_per_second(uncached, workers) for _ in range(2)),
            "first_epoch": first, "cached": later}


def training_step_seconds(config_path: Path, size, batch_size: int, steps: int) -> float:
    """Shortest time of one compiled training step on one batch, after tracing."""
    from training.fit.config import load_config
    from training.fit.runner import build_compiled_model

    config = load_config(config_path, [f"data.height={size[0]}", f"data.width={size[1]}"])
    model = build_compiled_model(config)
    rng = np.random.default_rng(0)
    x = rng.random((batch_size, *size, 3), dtype=np.float32)
    y = rng.integers(0, 8, (batch_size, *size)).astype(np.uint8)
    model.train_on_batch(x, y)  # tracing
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_resolution_argument(parser)
    parser.add_argument("--size", default="128x256", help="training size HxW (the demo configs': 128x256)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--configs", nargs="*", type=Path, default=DEMO_CONFIGS,
                        help="models whose training step is timed (default: the demo set)")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    root = bench_dataset(args.resolution)
    entries = load_or_build_index(root).split("all")
    for entry in entries:  # the page cache, not the first policy measured, pays for the disk
        (root / entry.image).read_bytes(), (root / entry.label).read_bytes()

    pipeline = {name: pipeline_rates(root, entries, size, args.batch_size, args.workers, name)
                for name in AUGMENTATIONS}
    steps = {path.stem: training_step_seconds(path, size, args.batch_size, args.steps) for path in args.configs}
    fastest = min(steps, key=steps.get)
    train_rate = args.batch_size / steps[fastest]

    print(f"{len(entries)} frames of {args.resolution} resolution ({root.name}), training size {args.size}, "
          f"batch {args.batch_size}, {args.workers} loading threads")
    print("\n| model | training step (batch) | training images/s |\n|---|---|---|")
    for name, seconds in steps.items():
        print(f"| {name} | {1000 * seconds:.0f} ms | {args.batch_size / seconds:.0f} |")
    print(f"\nimages/s of the input pipeline; ratio = cached / training images/s of {fastest}")
    print("| augmentation | uncached | cache: first epoch | cached | ratio |\n|---|---|---|---|---|")
    for name, rates in pipeline.items():
        print(f"| {name} | {rates['uncached']:.0f} | {rates['first_epoch']:.0f} | {rates['cached']:.0f} | "
              f"{rates['cached'] / train_rate:.1f}x |")
    write_results(f"batches-{args.resolution}",
        {"resolution": args.resolution, "frames": len(entries), "size": args.size, "batch_size": args.batch_size,
         "workers": args.workers, "pipeline_images_per_s": pipeline, "train_step_s": steps, "fastest": fastest,
         "ratio_cached_over_training": {n: r["cached"] / train_rate for n, r in pipeline.items()}})


if __name__ == "__main__":
    main()
