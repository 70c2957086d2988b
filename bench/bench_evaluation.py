"""Our evaluations against the official cityscapesScripts one, at 256x512 and at 2048x1024.

1. ``evaluate-masks`` vs ``evalPixelLevelSemanticLabeling`` on the same label PNG pairs, end to
   end (PNG decoding included), checking that every class and category IoU is identical: ours with
   the full error anatomy (Boundary IoU, iIoU from the instanceIds, errors in the frame) and ours
   with ``--no-anatomy`` (pixel IoU only). The ground truth is the generated dataset's
   (``bench/datasets.py``: label maps drawn at their own resolution, as detailed as real ones, with
   instanceIds); predictions look like a model's (the truth seen at 1/8 resolution and upsampled
   bilinearly, so borders are smooth curves, plus wrong blobs) and are saved the way a PyTorch
   user saves them (Pillow's default zlib level).
2. A model's evaluation (``training.fit.predict.evaluate_model`` as ``train`` runs it: decode,
   predict, upsample to the ground truth's size, score, anatomy, calibration, write the prediction
   PNG and the confidence map): images per second, with and without the anatomy, with the fastest
   demo model (random weights).

The machine may be shared: the contenders run in turn within each of ``--rounds`` rounds and
each figure is the median of its rounds (ratios are taken round by round, then their median).

    .venv/bin/python bench/bench_evaluation.py [--resolution demo full] [--workers 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import training  # noqa: E402,F401
from bench.datasets import RESOLUTIONS, bench_dataset  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from training.data.cityscapes import read_label_ids  # noqa: E402
from training.data.index import load_or_build_index  # noqa: E402
from training.data.png import read_png  # noqa: E402
from training.evaluation.evaluator import Evaluator  # noqa: E402
from training.evaluation.masks import evaluate_masks, evaluation_threads  # noqa: E402
from training.evaluation.metrics import pair_counts  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PAIRS = {"demo": 120, "full": 24}


def model_like(label_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What a model trained at 1/8 resolution predicts: smooth borders, some regions wrong."""
    import cv2

    height, width = label_ids.shape
    small = label_ids[4::8, 4::8]
    present = np.unique(small)
    scores = [cv2.resize((small == value).astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
              for value in present]
    prediction = present[np.argmax(scores, axis=0)].astype(np.uint8)
    for _ in range(6):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(width // 40, width // 12)), int(rng.integers(height // 40, height // 12)))
        cv2.ellipse(prediction, centre, axes, float(rng.uniform(0, 180)), 0, 360, int(rng.integers(0, 34)), -1)
    return prediction


def write_pairs(root: Path, pred_dir: Path, count: int) -> list[Path]:
    """A model-like prediction for the first ``count`` test images of ``root``."""
    rng = np.random.default_rng(0)
    entries = load_or_build_index(root, write=False, report=lambda message: None).split("test")[:count]
    for entry in entries:
        prediction = model_like(read_label_ids(root / entry.label), rng)
        Image.fromarray(prediction).save(pred_dir / f"{entry.stem}_labelIds.png")
    return [root / entry.label for entry in entries]


def official_evaluation(gt_paths: list[Path], pred_dir: Path) -> tuple[dict, float, bool]:
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    gts = [str(p) for p in gt_paths]
    preds = [str(pred_dir / (Path(g).name.replace("_gtFine_labelIds", "_labelIds"))) for g in gts]
    official.args.evalInstLevelScore = False
    official.args.JSONOutput = False
    official.args.quiet = True
    start = time.perf_counter()
    result = official.evaluateImgLists(preds, gts, official.args)
    return result, time.perf_counter() - start, official.CSUPPORT


def split_our_time(gt_paths: list[Path], pred_dir: Path, limit: int = 20) -> tuple[float, float]:
    """Per pair, one thread: decoding both PNGs vs the metric step (counts + both class sets)."""
    gts = gt_paths[:limit]
    decode = metric = 0.0
    evaluators = [Evaluator("cityscapes19", "label_ids"), Evaluator("categories8", "label_ids")]
    for gt_path in gts:
        start = time.perf_counter()
        gt = read_label_ids(gt_path)
        prediction = read_png(pred_dir / gt_path.name.replace("_gtFine_labelIds", "_labelIds"))[1]
        middle = time.perf_counter()
        counts = pair_counts(gt, prediction, size=34)
        for evaluator in evaluators:
            evaluator.add_counts(counts)
        end = time.perf_counter()
        decode += middle - start
        metric += end - middle
    return 1000 * decode / len(gts), 1000 * metric / len(gts)


def compare(ours19: dict, ours8: dict, official: dict) -> float:
    """Largest absolute difference over class IoU, category IoU and the means."""
    def diff(a, b):
        if b is None or (isinstance(b, float) and math.isnan(b)):
            return 0.0 if a is None else float("inf")
        return abs(a - b)

    gaps = [diff(ours19["iou_official"][k], official["classScores"][k]) for k in ours19["class_names"]]
    gaps += [diff(ours8["iou_official"][k], official["categoryScores"][k]) for k in ours8["class_names"]]
    gaps += [diff(ours19["miou_official"], official["averageScoreClasses"]),
             diff(ours8["miou_official"], official["averageScoreCategories"])]
    return max(gaps)


def _per_pair(seconds: list[float], pairs: int) -> float:
    return 1000 * float(np.median(seconds)) / pairs


def masks_row(resolution: str, pairs: int, workers: int | None, rounds: int) -> dict:
    """The official script, ours with the anatomy and ours without it, interleaved over ``rounds``."""
    root = bench_dataset(resolution, train=24, val=pairs)  # its test split: the ``pairs`` val images
    times: dict[str, list[float]] = {"official": [], "anatomy": [], "no_anatomy": []}
    with tempfile.TemporaryDirectory() as tmp:
        pred_dir = Path(tmp)
        gt_paths = write_pairs(root, pred_dir, pairs)
        for _ in range(rounds):
            official, seconds, csupport = official_evaluation(gt_paths, pred_dir)
            times["official"].append(seconds)
            start = time.perf_counter()
            ours19 = evaluate_masks(root, pred_dir, "test", "cityscapes19", workers, progress=False)
            times["anatomy"].append(time.perf_counter() - start)
            start = time.perf_counter()
            evaluate_masks(root, pred_dir, "test", "cityscapes19", workers, progress=False, anatomy=False)
            times["no_anatomy"].append(time.perf_counter() - start)
        ours8 = evaluate_masks(root, pred_dir, "test", "categories8", workers, progress=False)
        decode_ms, metric_ms = split_our_time(gt_paths, pred_dir)
        prediction_kb = sum(p.stat().st_size for p in pred_dir.glob("*_labelIds.png")) / 1024 / len(gt_paths)
        label_kb = sum(p.stat().st_size for p in gt_paths) / 1024 / len(gt_paths)
    height, width = RESOLUTIONS[resolution]
    ratio = {name: float(np.median([o / t for o, t in zip(times["official"], times[name])]))
             for name in ("anatomy", "no_anatomy")}
    share = float(np.median([1 - n / a for n, a in zip(times["no_anatomy"], times["anatomy"])]))
    return {
        "size": f"{width}x{height}", "pairs": len(gt_paths), "workers": evaluation_threads(workers), "rounds": rounds,
        "label_png_kb": round(label_kb, 1), "prediction_png_kb": round(prediction_kb, 1),
        "official_ms_per_pair": _per_pair(times["official"], len(gt_paths)), "official_cython": csupport,
        "ours_ms_per_pair": _per_pair(times["anatomy"], len(gt_paths)),
        "ours_no_anatomy_ms_per_pair": _per_pair(times["no_anatomy"], len(gt_paths)),
        "speedup": ratio["anatomy"], "speedup_no_anatomy": ratio["no_anatomy"], "anatomy_share": share,
        "rounds_seconds": times,
        "ours_decode_ms_per_pair_1_thread": decode_ms, "ours_metric_ms_per_pair": metric_ms,
        "max_abs_difference": compare(ours19, ours8, official),
        "miou_19": ours19["miou_official"], "miou_categories_official": ours8["miou_official"],
        "mean_boundary_iou_19": ours19["mean_boundary_iou"], "mean_iiou_19": ours19["mean_iiou"],
    }


def model_row(resolution: str, images: int, rounds: int) -> dict:
    """``evaluate_model`` end to end as ``train`` runs it (prediction PNGs and confidence maps written
    like a run's), with the demo's simple model, with and without the anatomy, interleaved."""
    import training.runtime_env  # noqa: F401  (before Keras)
    from training.data.labels import get_class_set
    from training.fit.predict import evaluate_model, model_evaluation_threads
    from training.models import build_model
    from training.runs.writer import RunWriter

    root = bench_dataset(resolution, train=24, val=images)
    entries = load_or_build_index(root, write=False, report=lambda message: None).split("test")[:images]
    class_set = get_class_set("categories8")
    model = build_model("simple", class_set.num_classes, (128, 256, 3), filters=[32, 64, 128])
    evaluate_model(model, root, entries[:2], class_set, (128, 256), progress=False)  # compile, warm caches
    times: dict[bool, list[float]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        palette = class_set.palette()
        for _ in range(rounds):
            for with_anatomy in (True, False):
                writer = RunWriter("bench", tmp)
                start = time.perf_counter()
                evaluate_model(model, root, entries, class_set, (128, 256), progress=False,
                               on_prediction=_writing(writer, palette), on_confidence=writer.write_confidence,
                               with_anatomy=with_anatomy)
                times[with_anatomy].append(time.perf_counter() - start)
                writer.abort()
    height, width = RESOLUTIONS[resolution]
    n = len(entries)
    return {"size": f"{width}x{height}", "images": n, "model": "simple (demo, random weights), 128x256 input",
            "threads_per_stage": model_evaluation_threads(), "rounds": rounds,
            "images_per_second": n / float(np.median(times[True])),
            "ms_per_image": 1000 * float(np.median(times[True])) / n,
            "images_per_second_no_anatomy": n / float(np.median(times[False])),
            "ms_per_image_no_anatomy": 1000 * float(np.median(times[False])) / n,
            "anatomy_share": float(np.median([1 - b / a for a, b in zip(times[True], times[False])])),
            "rounds_seconds": {"anatomy": times[True], "no_anatomy": times[False]}}


def _writing(writer, palette):
    return lambda image_id, classes: writer.write_prediction(image_id, classes, palette)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", nargs="+", choices=sorted(RESOLUTIONS), default=["demo", "full"])
    parser.add_argument("--pairs", type=int, default=None, help=f"pairs per resolution (default {PAIRS})")
    parser.add_argument("--workers", type=int, default=None, help="evaluate-masks threads (default: every core)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds, the median is kept (default: 3)")
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args()
    rows = [masks_row(r, args.pairs or PAIRS[r], args.workers, args.rounds) for r in args.resolution]
    header = ("size", "pairs", "label KB", "prediction KB", "official ms/pair", "ours ms/pair", "speed-up",
              "ours --no-anatomy ms/pair", "speed-up", "anatomy share", "decode ms", "metric ms", "max |diff|")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print(f"| {r['size']} | {r['pairs']} | {r['label_png_kb']:.0f} | {r['prediction_png_kb']:.0f} | "
              f"{r['official_ms_per_pair']:.1f} | {r['ours_ms_per_pair']:.1f} | {r['speedup']:.2f}x | "
              f"{r['ours_no_anatomy_ms_per_pair']:.1f} | {r['speedup_no_anatomy']:.2f}x | "
              f"{100 * r['anatomy_share']:.0f} % | {r['ours_decode_ms_per_pair_1_thread']:.1f} | "
              f"{r['ours_metric_ms_per_pair']:.1f} | {r['max_abs_difference']:.1e} |")
    print(f"official Cython extension: {rows[0]['official_cython']}; ours with {rows[0]['workers']} threads; "
          f"medians of {args.rounds} interleaved rounds; decode/metric columns: ours, per pair, one thread")
    model_rows = [] if args.skip_model else [model_row(r, args.pairs or PAIRS[r], args.rounds)
                                             for r in args.resolution]
    for r in model_rows:
        print(f"model evaluation {r['size']}: {r['images_per_second']:.2f} images/s ({r['ms_per_image']:.0f} ms/image; "
              f"without the anatomy {r['images_per_second_no_anatomy']:.2f} images/s, anatomy share "
              f"{100 * r['anatomy_share']:.0f} %; {r['images']} images, {r['threads_per_stage']} threads per stage, "
              f"{r['model']})")
    write_results("evaluation", {"masks": rows, "model": model_rows})


if __name__ == "__main__":
    main()
