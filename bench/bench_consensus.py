"""What the Check labels page's scan costs, at 256x512 and at 2048x1024.

``training.evaluation.consensus.scan_images`` reads each image's ground truth and every chosen
run's prediction PNG, finds where the runs agree against the ground truth and labels the
connected regions. Measured here, on the test images of the benchmark dataset with three runs'
predictions written as a run writes them (palette PNGs, zlib level 3): model-like predictions
(``bench_evaluation.model_like``: smooth borders, six wrong ellipses) shared by the runs, plus
three wrong ellipses of each run's own, so that the runs agree on some errors and not on others:

* the rule and the labelling alone (``image_candidates`` on decoded arrays), one thread;
* the whole scan per image (decoding included) with 1, 4 and 8 reader threads.

    .venv/bin/python bench/bench_consensus.py [--resolution demo full] [--images 24] [--runs 3]
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
from bench.bench_evaluation import model_like  # noqa: E402
from bench.datasets import RESOLUTIONS, bench_dataset  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from training.data.cityscapes import read_label_ids  # noqa: E402
from training.data.index import load_or_build_index  # noqa: E402
from training.data.labels import get_class_set  # noqa: E402
from training.evaluation.consensus import image_candidates, scan_images  # noqa: E402
from training.runs.reader import Run  # noqa: E402
from training.runs.writer import RunWriter

RESULTS = Path(__file__).resolve().parent / "results"
MIN_PIXELS_FULL = 2000  # at 2048x1024; scaled by area at other sizes
THREADS = (1, 4, 8)


def own_errors(prediction: np.ndarray, rng: np.random.Generator, classes: int) -> np.ndarray:
    """``prediction`` with three wrong ellipses of this run's own."""
    import cv2

    height, width = prediction.shape
    out = prediction.copy()
    for _ in range(3):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(width // 40, width // 12)), int(rng.integers(height // 40, height // 12)))
        cv2.ellipse(out, centre, axes, float(rng.uniform(0, 180)), 0, 360, int(rng.integers(0, classes)), -1)
    return out


def measure(resolution: str, images: int, runs: int) -> dict:
    root = bench_dataset(resolution, train=24, val=images)
    entries = load_or_build_index(root, write=False, report=lambda message: None).split("test")[:images]
    class_set = get_class_set("cityscapes19")
    height, width = RESOLUTIONS[resolution]
    min_pixels = max(1, round(MIN_PIXELS_FULL * height * width / (1024 * 2048)))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        writers = [RunWriter(f"bench{number}", tmp) for number in range(runs)]
        arrays = []
        for entry in entries:
            truth = class_set.lut[read_label_ids(root / entry.label)]
            shared = class_set.lut[model_like(read_label_ids(root / entry.label), rng)]
            shared[shared == 255] = 0
            predictions = [own_errors(shared, rng, class_set.num_classes) for _ in writers]
            for writer, predicted in zip(writers, predictions):
                writer.write_prediction(entry.id, predicted, class_set.palette())
            arrays.append((truth, predictions))
        start = time.perf_counter()
        found = [image_candidates(truth, predictions, min_pixels, class_set.num_classes)
                 for truth, predictions in arrays]
        rule_ms = 1000 * (time.perf_counter() - start) / len(entries)
        opened = [Run(writer.name, writer.staging) for writer in writers]
        items = [(entry.id, root / entry.label) for entry in entries]
        scan_ms = {}
        for workers in THREADS:
            best = float("inf")
            for _ in range(2):
                start = time.perf_counter()
                scan = scan_images(items, [run.prediction for run in opened], class_set, min_pixels, workers=workers)
                best = min(best, time.perf_counter() - start)
            scan_ms[workers] = 1000 * best / len(entries)
        assert len(scan.rows) == sum(map(len, found)) and not scan.skipped
        for writer in writers:
            writer.abort()
    agreed = float(np.mean([sum(c.region.pixels for c in image) for image in found]))
    return {"size": f"{width}x{height}", "images": len(entries), "runs": runs, "min_pixels": min_pixels,
            "regions_per_image": sum(map(len, found)) / len(entries), "candidate_pixels_per_image": agreed,
            "rule_ms": rule_ms, "scan_ms": scan_ms}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", nargs="+", choices=sorted(RESOLUTIONS), default=["demo", "full"])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = [measure(resolution, args.images, args.runs) for resolution in args.resolution]
    threads = " | ".join(f"scan ms/img, {n} thread{'s' if n > 1 else ''}" for n in THREADS)
    print(f"| size | runs | min pixels | regions/img | rule + labelling ms/img | {threads} |")
    print("|---|---|---|---|---|" + "---|" * len(THREADS))
    for row in rows:
        scans = " | ".join(f"{row['scan_ms'][n]:.1f}" for n in THREADS)
        print(f"| {row['size']} | {row['runs']} | {row['min_pixels']} | {row['regions_per_image']:.1f} | "
              f"{row['rule_ms']:.1f} | {scans} |")
    write_results("consensus", rows)


if __name__ == "__main__":
    main()
