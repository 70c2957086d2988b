"""Our evaluations against the official cityscapesScripts one, at 256x512 and at 2048x1024.

1. ``evaluate-masks`` vs ``evalPixelLevelSemanticLabeling`` on the same label PNG pairs, end to
   end (PNG decoding included), checking that every class and category IoU is identical. The
   ground truth is the generated dataset's (``bench/datasets.py``: label maps drawn at their own
   resolution, as detailed as real ones); predictions look like a model's (the truth seen at
   1/8 resolution and upsampled bilinearly, so borders are smooth curves, plus wrong blobs) and
   are saved the way a PyTorch user saves them (Pillow's default zlib level).
2. A model's evaluation (``training.fit.predict.evaluate_model``: decode, predict, upsample to
   the ground truth's size, score, write the prediction PNG): images per second, with the
   fastest demo model (random weights: the speed does not depend on them).

    .venv/bin/python bench/bench_evaluation.py [--resolution demo full] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
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
from training.data.cityscapes import read_label_ids  # noqa: E402
from training.data.index import load_or_build_index  # noqa: E402
from training.data.png import read_png  # noqa: E402
from training.evaluation.evaluator import Evaluator  # noqa: E402
from training.evaluation.masks import evaluate_masks  # noqa: E402
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


def masks_row(resolution: str, pairs: int, workers: int) -> dict:
    root = bench_dataset(resolution, train=24, val=pairs)  # its test split: the ``pairs`` val images
    with tempfile.TemporaryDirectory() as tmp:
        pred_dir = Path(tmp)
        gt_paths = write_pairs(root, pred_dir, pairs)
        official, official_seconds, csupport = official_evaluation(gt_paths, pred_dir)
        start = time.perf_counter()
        ours19 = evaluate_masks(root, pred_dir, "test", "cityscapes19", workers, progress=False)
        our_seconds = time.perf_counter() - start
        ours8 = evaluate_masks(root, pred_dir, "test", "categories8", workers, progress=False)
        decode_ms, metric_ms = split_our_time(gt_paths, pred_dir)
        prediction_kb = sum(p.stat().st_size for p in pred_dir.glob("*_labelIds.png")) / 1024 / len(gt_paths)
        label_kb = sum(p.stat().st_size for p in gt_paths) / 1024 / len(gt_paths)
    height, width = RESOLUTIONS[resolution]
    return {
        "size": f"{width}x{height}", "pairs": len(gt_paths), "workers": workers,
        "label_png_kb": round(label_kb, 1), "prediction_png_kb": round(prediction_kb, 1),
        "official_ms_per_pair": 1000 * official_seconds / len(gt_paths), "official_cython": csupport,
        "ours_ms_per_pair": 1000 * our_seconds / len(gt_paths),
        "speedup": official_seconds / our_seconds,
        "ours_decode_ms_per_pair_1_thread": decode_ms, "ours_metric_ms_per_pair": metric_ms,
        "max_abs_difference": compare(ours19, ours8, official),
        "miou_19": ours19["miou_official"], "miou_categories_official": ours8["miou_official"],
    }


def model_row(resolution: str, images: int) -> dict:
    """``evaluate_model`` end to end with the demo's simple model, predictions written like a run's."""
    import training.runtime_env  # noqa: F401  (before Keras)
    from training.data.labels import get_class_set
    from training.fit.predict import evaluate_model
    from training.models import build_model
    from training.runs.writer import RunWriter

    root = bench_dataset(resolution, train=24, val=images)
    entries = load_or_build_index(root, write=False, report=lambda message: None).split("test")[:images]
    class_set = get_class_set("categories8")
    model = build_model("simple", class_set.num_classes, (128, 256, 3), filters=[32, 64, 128])
    evaluate_model(model, root, entries[:2], class_set, (128, 256), progress=False)  # compile, warm caches
    with tempfile.TemporaryDirectory() as tmp:
        writer, palette = RunWriter("bench", tmp), class_set.palette()
        start = time.perf_counter()
        evaluate_model(model, root, entries, class_set, (128, 256), progress=False,
                       on_prediction=lambda image_id, classes: writer.write_prediction(image_id, classes, palette))
        seconds = time.perf_counter() - start
    height, width = RESOLUTIONS[resolution]
    return {"size": f"{width}x{height}", "images": len(entries), "model": "simple (demo), 128x256 input",
            "images_per_second": len(entries) / seconds, "ms_per_image": 1000 * seconds / len(entries)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", nargs="+", choices=sorted(RESOLUTIONS), default=["demo", "full"])
    parser.add_argument("--pairs", type=int, default=None, help=f"pairs per resolution (default {PAIRS})")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-model", action="store_true")
    args = parser.parse_args()
    rows = [masks_row(r, args.pairs or PAIRS[r], args.workers) for r in args.resolution]
    header = ("size", "pairs", "label KB", "prediction KB", "official ms/pair", "ours ms/pair", "speedup",
              "decode ms", "metric ms", "max |diff|")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print(f"| {r['size']} | {r['pairs']} | {r['label_png_kb']:.0f} | {r['prediction_png_kb']:.0f} | "
              f"{r['official_ms_per_pair']:.1f} | {r['ours_ms_per_pair']:.1f} | {r['speedup']:.2f}x | "
              f"{r['ours_decode_ms_per_pair_1_thread']:.1f} | {r['ours_metric_ms_per_pair']:.1f} | "
              f"{r['max_abs_difference']:.1e} |")
    print(f"official Cython extension: {rows[0]['official_cython']}; ours with {args.workers} decoding threads; "
          "decode/metric columns: ours, per pair, one thread")
    model_rows = [] if args.skip_model else [model_row(r, args.pairs or PAIRS[r]) for r in args.resolution]
    for r in model_rows:
        print(f"model evaluation {r['size']}: {r['images_per_second']:.2f} images/s "
              f"({r['ms_per_image']:.0f} ms/image, {r['images']} images, {r['model']})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "evaluation.json").write_text(json.dumps({"masks": rows, "model": model_rows}, indent=2))


if __name__ == "__main__":
    main()
