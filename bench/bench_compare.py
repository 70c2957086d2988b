"""``python -m training compare``: the paired bootstrap of two runs, on 500 images.

Two runs of each class set are published to a temporary store with synthetic per-image confusion
counts (2048x1024 images: a heavy diagonal, some confusion, classes absent from some images):
categories8 (8 x 8 per image) and cityscapes19 (20 x 20: 19 classes and the sink). Timed:

* ``compare_runs``: reading per_image.csv and the memory-mapped per-image confusions (all classes
  and official) of both runs, matching ids, the bootstrap of both mIoU variants from the same
  resamples (what the command does, less printing);
* ``paired_bootstrap`` alone, on arrays in memory (one variant).

The median of ``--repeats`` runs is reported; the issue asks for well under a second.

    .venv/bin/python bench/bench_compare.py [--images 500] [--resamples 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import training  # noqa: E402,F401
from bench.results_file import write_results  # noqa: E402
from training.data.labels import get_class_set  # noqa: E402
from training.evaluation.significance import compare_runs, paired_bootstrap  # noqa: E402
from training.runs.reader import get_run  # noqa: E402
from training.runs.writer import RunWriter

RESULTS = Path(__file__).resolve().parent / "results"
PIXELS = 2048 * 1024


def synthetic_confusions(rng: np.random.Generator, images: int, size: int, accuracy: float) -> np.ndarray:
    """``(images, size, size)`` int64 counts of about ``PIXELS`` pixels per image."""
    present = rng.random((images, size)) < 0.7
    truth = rng.dirichlet(np.ones(size), images) * present
    truth = truth / truth.sum(axis=1, keepdims=True) * PIXELS
    wrong = rng.dirichlet(np.ones(size), (images, size)) * (1 - accuracy)
    shares = wrong + np.eye(size) * accuracy
    return np.rint(truth[:, :, None] * shares).astype(np.int64)


def publish(root: Path, name: str, classes: str, confusions: np.ndarray) -> str:
    class_set = get_class_set(classes)
    writer = RunWriter(name, root)
    writer.write_text("config.yaml", f"name: {name}\n")
    writer.write_csv("history.csv", [{"epoch": 1}])
    writer.write_json("metrics.json", {"source": "imported", "classes": classes, "split": "test",
                                       "class_names": list(class_set.names), "iou": {}, "miou": None})
    writer.write_array("confusion.npy", confusions.sum(axis=0))
    writer.write_csv("per_image.csv", [{"id": i} for i in range(len(confusions))])
    writer.write_array("per_image_confusion.npy", confusions)
    writer.write_array("per_image_official_confusion.npy", confusions)  # both variants resampled, as a run has them
    return writer.commit().name


def median_ms(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def row_for(root: Path, classes: str, images: int, resamples: int, repeats: int) -> dict:
    class_set = get_class_set(classes)
    rng = np.random.default_rng(0)
    a = synthetic_confusions(rng, images, class_set.num_eval_classes, 0.85)
    b = synthetic_confusions(rng, images, class_set.num_eval_classes, 0.86)
    names = publish(root, f"{classes}_a", classes, a), publish(root, f"{classes}_b", classes, b)
    runs = [get_run(name, root) for name in names]
    result = compare_runs(*runs, resamples=resamples)  # also warms the page cache
    compare_ms = median_ms(lambda: compare_runs(*(get_run(name, root) for name in names), resamples=resamples),
                           repeats)
    bootstrap_ms = median_ms(lambda: paired_bootstrap(a, b, range(class_set.num_classes), resamples), repeats)
    return {"classes": classes, "matrix": f"{class_set.num_eval_classes}x{class_set.num_eval_classes}",
            "images": images, "resamples": resamples, "compare_runs_ms": round(compare_ms, 1),
            "paired_bootstrap_ms": round(bootstrap_ms, 1), "miou_difference": result["miou"]["difference"],
            "ci95": [result["miou"]["ci95_low"], result["miou"]["ci95_high"]],
            "significant": result["miou"]["significant"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row_for(Path(tmp), classes, args.images, args.resamples, args.repeats)
                for classes in ("categories8", "cityscapes19")]
    header = ("classes", "per-image matrix", "images", "resamples", "compare_runs ms", "paired_bootstrap ms",
              "B - A [95% interval]")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print(f"| {r['classes']} | {r['matrix']} | {r['images']} | {r['resamples']} | {r['compare_runs_ms']:.1f} | "
              f"{r['paired_bootstrap_ms']:.1f} | {r['miou_difference']:+.4f} "
              f"[{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}] |")
    print(f"median of {args.repeats} runs; compare_runs reads both runs from disk (memory-mapped)")
    write_results("compare", rows)


if __name__ == "__main__":
    main()
