"""Input pipeline throughput next to a training step: the pipeline must never be the bottleneck.

Batches of the embedded dataset (or --data-root) at 128x256 and 256x512, with each
augmentation, loaded by 2 threads as Keras' PyDataset workers do; then the time of one
training step of a small convolutional model at the same size and batch.

    .venv/bin/python bench/bench_batches.py [--data-root DIR --batch-size 8 --batches 12]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import training  # noqa: E402,F401
from training.data.cityscapes import resolve_data_root  # noqa: E402
from training.data.index import load_or_build_index  # noqa: E402
from training.fit.augment import AUGMENTATIONS, build_augmentation  # noqa: E402
from training.fit.batches import SegmentationBatches  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = ((128, 256), (256, 512))


def pipeline_images_per_second(batches: SegmentationBatches, count: int, workers: int) -> float:
    count = min(count, len(batches))
    batches[0]  # first-call costs (imports, caches) are not throughput
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        images = sum(len(x) for x, _ in pool.map(batches.__getitem__, range(count)))
    return images / (time.perf_counter() - start)


def small_model(size: tuple[int, int], num_classes: int = 8):
    """The source's 'simple' baseline shape, scaled down: convolutions then transposed ones."""
    import keras

    inputs = keras.Input((*size, 3))
    x = inputs
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    for filters in (64, 32, 16):
        x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu")(x)
    outputs = keras.layers.Conv2D(num_classes, 1, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def training_images_per_second(batches: SegmentationBatches, steps: int = 6) -> float:
    model = small_model(batches.size)
    x, y = batches[0]
    model.train_on_batch(x, y)  # graph tracing
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    root = resolve_data_root(args.data_root)
    entries = load_or_build_index(root).split("train")
    for entry in entries:  # the page cache, not the first policy measured, pays for the disk
        (root / entry.image).read_bytes(), (root / entry.label).read_bytes()
    rows = []
    for size in SIZES:
        row = {"size": f"{size[1]}x{size[0]}"}
        for name in AUGMENTATIONS:
            batches = SegmentationBatches(root, entries, "categories8", size, args.batch_size, shuffle=True,
                                          augment=build_augmentation(name, size, seed=0))
            row[name] = pipeline_images_per_second(batches, args.batches, args.workers)
        row["train_step"] = training_images_per_second(
            SegmentationBatches(root, entries, "categories8", size, args.batch_size))
        rows.append(row)
    print(f"images/s, batch {args.batch_size}, {args.workers} loading threads, data {root}")
    print("| size | " + " | ".join(AUGMENTATIONS) + " | training step (small model) |")
    print("|---|" + "---|" * (len(AUGMENTATIONS) + 1))
    for r in rows:
        print(f"| {r['size']} | " + " | ".join(f"{r[n]:.0f}" for n in AUGMENTATIONS) + f" | {r['train_step']:.0f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "batches.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
