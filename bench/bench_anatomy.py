"""What the error anatomy costs, at 256x512 and at 2048x1024.

The anatomy (``training.evaluation.anatomy``: Boundary IoU in both modes, the official iIoU and a
row per object, errors on the frame grid) is computed in the evaluation's pass. Measured here:

* its two shares per image, one thread: the ground truth's (``Anatomy.truth``: class maps and
  boundary bands, read ahead in the evaluation's reader thread) and the prediction's
  (``Anatomy.add``), on model-like predictions (``bench_evaluation.model_like``);
* a model's evaluation end to end (``evaluate_model`` with the demo's simple model, prediction
  PNGs written like a run's) with and without the anatomy: the extra time per image users see.

    .venv/bin/python bench/bench_anatomy.py [--resolution demo full] [--images 24]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import training  # noqa: E402,F401
from bench.bench_evaluation import model_like  # noqa: E402
from bench.datasets import RESOLUTIONS, bench_dataset  # noqa: E402
from training.data.cityscapes import read_label_ids  # noqa: E402
from training.data.index import load_or_build_index  # noqa: E402
from training.data.labels import get_class_set  # noqa: E402
from training.evaluation.anatomy import Anatomy, read_instance_ids  # noqa: E402
from training.evaluation.metrics import pair_counts  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def shares_row(resolution: str, images: int) -> dict:
    root = bench_dataset(resolution, train=24, val=images)
    entries = load_or_build_index(root, write=False, report=lambda message: None).split("test")[:images]
    rng = np.random.default_rng(0)
    row = {"size": "x".join(map(str, RESOLUTIONS[resolution][::-1])), "images": len(entries)}
    for name in ("categories8", "cityscapes19"):
        class_set = get_class_set(name)
        anatomy = Anatomy(class_set)
        truth_seconds = add_seconds = 0.0
        for entry in entries:
            label_ids = read_label_ids(root / entry.label)
            instance_ids = read_instance_ids(root / entry.label)
            predicted = class_set.lut[model_like(label_ids, rng)]
            predicted[predicted == 255] = 0
            counts = pair_counts(label_ids, predicted)
            start = time.perf_counter()
            truth = anatomy.truth(label_ids, instance_ids)
            middle = time.perf_counter()
            anatomy.add(entry.id, truth, predicted, counts)
            add_seconds += time.perf_counter() - middle
            truth_seconds += middle - start
        row[name] = {"truth_ms": 1000 * truth_seconds / len(entries), "add_ms": 1000 * add_seconds / len(entries),
                     "objects": len(anatomy.instance_rows)}
    return row


def model_row(resolution: str, images: int, repeats: int = 2) -> dict:
    """``evaluate_model`` with and without the anatomy, alternated, best of ``repeats``."""
    import training.runtime_env  # noqa: F401  (before Keras)
    from training.fit.predict import evaluate_model
    from training.models import build_model
    from training.runs.writer import RunWriter

    root = bench_dataset(resolution, train=24, val=images)
    entries = load_or_build_index(root, write=False, report=lambda message: None).split("test")[:images]
    class_set = get_class_set("categories8")
    model = build_model("simple", class_set.num_classes, (128, 256, 3), filters=[32, 64, 128])
    evaluate_model(model, root, entries[:2], class_set, (128, 256), progress=False)  # compile, warm caches
    best = {True: float("inf"), False: float("inf")}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for with_anatomy in (False, True):
                writer = RunWriter("bench", tmp)
                start = time.perf_counter()
                evaluate_model(model, root, entries, class_set, (128, 256), progress=False,
                               on_prediction=_writing(writer, class_set.palette()), with_anatomy=with_anatomy)
                best[with_anatomy] = min(best[with_anatomy], time.perf_counter() - start)
                writer.abort()
    n = len(entries)
    return {"size": "x".join(map(str, RESOLUTIONS[resolution][::-1])), "images": n,
            "without_ms": 1000 * best[False] / n, "with_ms": 1000 * best[True] / n,
            "extra_ms": 1000 * (best[True] - best[False]) / n}


def _writing(writer, palette):
    return lambda image_id, classes: writer.write_prediction(image_id, classes, palette)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", nargs="+", choices=sorted(RESOLUTIONS), default=["demo", "full"])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args()
    shares = [shares_row(r, args.images) for r in args.resolution]
    print("| size | class set | ground truth's share ms/img (reader thread) | prediction's share ms/img | objects |")
    print("|---|---|---|---|---|")
    for r in shares:
        for name in ("categories8", "cityscapes19"):
            shares_ms = f"{r[name]['truth_ms']:.1f} | {r[name]['add_ms']:.1f}"
            print(f"| {r['size']} | {name} | {shares_ms} | {r[name]['objects']} |")
    models = [] if args.skip_model else [model_row(r, args.images) for r in args.resolution]
    if models:
        print("\n| size | evaluate_model ms/img without the anatomy | with it | extra |")
        print("|---|---|---|---|")
        for r in models:
            print(f"| {r['size']} | {r['without_ms']:.0f} | {r['with_ms']:.0f} | {r['extra_ms']:+.0f} |")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "anatomy.json").write_text(json.dumps({"shares": shares, "model": models}, indent=2))


if __name__ == "__main__":
    main()
