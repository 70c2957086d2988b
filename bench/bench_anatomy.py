"""What the error anatomy costs, at 256x512 and at 2048x1024.

The anatomy (``training.evaluation.anatomy``: Boundary IoU in both modes, the official iIoU and a
row per object, errors on the frame grid) is computed in the evaluation's pass. Measured here:

* per image, one thread, against the IoU part (the pair counts and both confusion matrices):
  decoding (labelIds, prediction, instanceIds), the ground truth's share (``Anatomy.truth``: its
  class maps, and whether the official one has regions of its own), the pixels' share without the
  objects (``Anatomy.score``: the boundary bands of the truth and the prediction in one pass, the
  one histogram of every Boundary IoU count, the frame grid) and the objects (iIoU, boxes), on
  model-like predictions (``bench_evaluation.model_like``);
* a model's evaluation end to end (``evaluate_model`` as ``train`` runs it: prediction PNGs and
  confidence maps written like a run's) with and without the anatomy: its share of the time.

Each figure is the median of ``--rounds`` rounds, the contenders taking turns within a round.

    .venv/bin/python bench/bench_anatomy.py [--resolution demo full] [--images 24] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import training  # noqa: E402,F401
from bench.bench_evaluation import model_like  # noqa: E402
from bench.datasets import RESOLUTIONS, bench_dataset  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from training.data.cityscapes import read_instance_ids, read_label_ids, read_png_file  # noqa: E402
from training.data.index import load_or_build_index  # noqa: E402
from training.data.labels import get_class_set  # noqa: E402
from training.evaluation.anatomy import Anatomy, Truth, pair_table  # noqa: E402
from training.evaluation.evaluator import Evaluator  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


STAGES = ("decode", "iou", "truth", "prediction", "objects")


def shares_row(resolution: str, images: int, rounds: int) -> dict:
    root = bench_dataset(resolution, train=24, val=images)
    entries = load_or_build_index(root, write=False, report=lambda message: None).split("test")[:images]
    rng = np.random.default_rng(0)
    row = {"size": "x".join(map(str, RESOLUTIONS[resolution][::-1])), "images": len(entries), "rounds": rounds}
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for entry in entries:  # model-like labelIds predictions, as evaluate-masks reads them
            path = Path(tmp) / f"{entry.stem}.png"
            Image.fromarray(model_like(read_label_ids(root / entry.label), rng)).save(path)
            paths.append(path)
        for name in ("categories8", "cityscapes19"):
            row[name] = _stage_times(get_class_set(name), root, entries, paths, rounds)
    return row


def _stage_times(class_set, root: Path, entries, paths: list[Path], rounds: int) -> dict:
    """Median over rounds of each stage's ms per image, one thread, and the objects found."""
    times = {stage: [] for stage in STAGES}
    anatomy = Anatomy(class_set, "label_ids")
    for _ in range(rounds):
        spent = dict.fromkeys(STAGES, 0.0)
        anatomy = Anatomy(class_set, "label_ids")
        evaluator = Evaluator(class_set, "label_ids")
        for entry, path in zip(entries, paths):
            start = time.perf_counter()
            label_ids = read_label_ids(root / entry.label)
            prediction = read_png_file(path, ("L",), "labelIds")
            instance_ids = read_instance_ids(root / entry.label)
            decoded = time.perf_counter()
            evaluator.add_counts(pair_table(label_ids, prediction))
            counted = time.perf_counter()
            truth = anatomy.truth(label_ids, instance_ids)
            prepared = time.perf_counter()
            without_objects = Truth(**{**vars(truth), "instance_ids": None})
            scored = anatomy.score(entry.id, without_objects, prediction)
            scored_pixels = time.perf_counter()
            scored.objects = anatomy.objects.score(entry.id, instance_ids, prediction, scored.counts)
            anatomy.add_scored(scored)
            done = time.perf_counter()
            for stage, (a, b) in zip(STAGES, ((start, decoded), (decoded, counted), (counted, prepared),
                                              (prepared, scored_pixels), (scored_pixels, done))):
                spent[stage] += b - a
        for stage in STAGES:
            times[stage].append(1000 * spent[stage] / len(entries))
    result = {f"{stage}_ms": float(np.median(times[stage])) for stage in STAGES}
    result["anatomy_ms"] = sum(result[f"{stage}_ms"] for stage in ("truth", "prediction", "objects"))
    result["objects"] = len(anatomy.instance_rows)
    return result


def model_row(resolution: str, images: int, rounds: int) -> dict:
    """``evaluate_model`` with and without the anatomy, in turns, median of ``rounds``."""
    import training.runtime_env  # noqa: F401  (before Keras)
    from training.fit.predict import evaluate_model
    from training.models import build_model
    from training.runs.writer import RunWriter

    root = bench_dataset(resolution, train=24, val=images)
    entries = load_or_build_index(root, write=False, report=lambda message: None).split("test")[:images]
    class_set = get_class_set("categories8")
    model = build_model("simple", class_set.num_classes, (128, 256, 3), filters=[32, 64, 128])
    evaluate_model(model, root, entries[:2], class_set, (128, 256), progress=False)  # compile, warm caches
    times = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for with_anatomy in (False, True):
                writer = RunWriter("bench", tmp)
                start = time.perf_counter()
                evaluate_model(model, root, entries, class_set, (128, 256), progress=False,
                               on_prediction=_writing(writer, class_set.palette()),
                               on_confidence=writer.write_confidence, with_anatomy=with_anatomy)
                times[with_anatomy].append(time.perf_counter() - start)
                writer.abort()
    n = len(entries)
    with_ms, without_ms = (1000 * float(np.median(times[flag])) / n for flag in (True, False))
    return {"size": "x".join(map(str, RESOLUTIONS[resolution][::-1])), "images": n, "rounds": rounds,
            "without_ms": without_ms, "with_ms": with_ms, "extra_ms": with_ms - without_ms,
            "share": float(np.median([1 - b / a for a, b in zip(times[True], times[False])]))}


def _writing(writer, palette):
    return lambda image_id, classes: writer.write_prediction(image_id, classes, palette)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", nargs="+", choices=sorted(RESOLUTIONS), default=["demo", "full"])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args()
    shares = [shares_row(r, args.images, args.rounds) for r in args.resolution]
    print("ms per image, one thread (evaluate-masks' work on labelIds predictions):\n")
    print("| size | class set | decode (3 PNGs) | IoU part | anatomy: truth maps | pixels (bands, Boundary IoU "
          "counts, frame) | objects (iIoU) | anatomy in all | anatomy / IoU part | objects |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in shares:
        for name in ("categories8", "cityscapes19"):
            t = r[name]
            print(f"| {r['size']} | {name} | {t['decode_ms']:.1f} | {t['iou_ms']:.1f} | {t['truth_ms']:.1f} | "
                  f"{t['prediction_ms']:.1f} | {t['objects_ms']:.1f} | {t['anatomy_ms']:.1f} | "
                  f"{t['anatomy_ms'] / t['iou_ms']:.1f}x | {t['objects']} |")
    models = [] if args.skip_model else [model_row(r, args.images, args.rounds) for r in args.resolution]
    if models:
        print("\n| size | evaluate_model ms/img without the anatomy | with it | extra | anatomy's share |")
        print("|---|---|---|---|---|")
        for r in models:
            print(f"| {r['size']} | {r['without_ms']:.0f} | {r['with_ms']:.0f} | {r['extra_ms']:+.0f} | "
                  f"{100 * r['share']:.0f} % |")
    write_results("anatomy", {"shares": shares, "model": models})


if __name__ == "__main__":
    main()
