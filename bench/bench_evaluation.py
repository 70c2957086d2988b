"""Our evaluation vs the official cityscapesScripts evaluation, on the same mask files.

For 256x512 and 2048x1024 pairs: both evaluations end to end (PNG decoding included), checks
that every class and category IoU is identical, and splits our time into decoding and the
metric step.

    .venv/bin/python bench/bench_evaluation.py [--pairs-small 200 --pairs-large 40 --workers 2]
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
from training.data.cityscapes import read_label_ids  # noqa: E402
from training.data.index import load_or_build_index  # noqa: E402
from training.data.synthetic import CITY_STYLES, render_scene  # noqa: E402
from training.evaluation.evaluator import Evaluator  # noqa: E402
from training.evaluation.masks import evaluate_masks  # noqa: E402
from training.evaluation.metrics import pair_counts  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BASE_SIZE = (256, 512)


def write_pairs(root: Path, pred_dir: Path, count: int, size: tuple[int, int]) -> None:
    """Ground truth from generated street scenes (upscaled for large sizes), and predictions
    that get regions and borders wrong like a real model does."""
    rng = np.random.default_rng(0)
    cities = sorted(CITY_STYLES)
    for n in range(count):
        _, label_ids, _ = render_scene(n, cities[n % len(cities)], *BASE_SIZE)
        if size != BASE_SIZE:
            label_ids = np.asarray(Image.fromarray(label_ids).resize(size[::-1], Image.Resampling.NEAREST))
        prediction = np.asarray(Image.fromarray(label_ids).resize(
            (size[1] // 4, size[0] // 4), Image.Resampling.NEAREST).resize(size[::-1], Image.Resampling.NEAREST)).copy()
        for _ in range(8):
            top, left = rng.integers(0, size[0] - size[0] // 8), rng.integers(0, size[1] - size[1] // 8)
            prediction[top:top + size[0] // 10, left:left + size[1] // 10] = rng.integers(0, 34)
        stem = f"benchcity_{n:06d}_000019"
        gt_dir = root / "gtFine" / "val" / "benchcity"
        image_dir = root / "leftImg8bit" / "val" / "benchcity"
        gt_dir.mkdir(parents=True, exist_ok=True)
        image_dir.mkdir(parents=True, exist_ok=True)
        Image.fromarray(label_ids).save(gt_dir / f"{stem}_gtFine_labelIds.png")
        Image.new("RGB", size[::-1]).save(image_dir / f"{stem}_leftImg8bit.png")
        Image.fromarray(prediction).save(pred_dir / f"{stem}_labelIds.png")


def official_evaluation(root: Path, pred_dir: Path) -> tuple[dict, float, bool]:
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    gts = sorted(str(p) for p in (root / "gtFine" / "val").rglob("*_gtFine_labelIds.png"))
    preds = [str(pred_dir / (Path(g).name.replace("_gtFine_labelIds", "_labelIds"))) for g in gts]
    official.args.evalInstLevelScore = False
    official.args.JSONOutput = False
    official.args.quiet = True
    start = time.perf_counter()
    result = official.evaluateImgLists(preds, gts, official.args)
    return result, time.perf_counter() - start, official.CSUPPORT


def split_our_time(root: Path, pred_dir: Path, limit: int = 20) -> tuple[float, float]:
    """Per pair, one thread: decoding both PNGs vs the metric step (counts + both class sets)."""
    gts = sorted((root / "gtFine" / "val").rglob("*_gtFine_labelIds.png"))[:limit]
    decode = metric = 0.0
    evaluators = [Evaluator("cityscapes19", "label_ids"), Evaluator("categories8", "label_ids")]
    for gt_path in gts:
        start = time.perf_counter()
        gt = read_label_ids(gt_path)
        prediction = np.asarray(Image.open(pred_dir / gt_path.name.replace("_gtFine_labelIds", "_labelIds")))
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


def run(size: tuple[int, int], pairs: int, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root, pred_dir = Path(tmp) / "gt", Path(tmp) / "pred"
        pred_dir.mkdir(parents=True)
        write_pairs(root, pred_dir, pairs, size)
        load_or_build_index(root)  # not part of either evaluation
        official, official_seconds, csupport = official_evaluation(root, pred_dir)
        start = time.perf_counter()
        ours19 = evaluate_masks(root, pred_dir, "test", "cityscapes19", workers, progress=False)
        our_seconds = time.perf_counter() - start
        ours8 = evaluate_masks(root, pred_dir, "test", "categories8", workers, progress=False)
        decode_ms, metric_ms = split_our_time(root, pred_dir)
    return {
        "size": f"{size[1]}x{size[0]}", "pairs": pairs, "workers": workers,
        "official_ms_per_pair": 1000 * official_seconds / pairs, "official_cython": csupport,
        "ours_ms_per_pair": 1000 * our_seconds / pairs,
        "speedup": official_seconds / our_seconds,
        "ours_decode_ms_per_pair_1_thread": decode_ms, "ours_metric_ms_per_pair": metric_ms,
        "max_abs_difference": compare(ours19, ours8, official),
        "miou_19": ours19["miou_official"], "miou_categories_official": ours8["miou_official"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs-small", type=int, default=200)
    parser.add_argument("--pairs-large", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = [run((256, 512), args.pairs_small, args.workers), run((1024, 2048), args.pairs_large, args.workers)]
    header = ("size", "pairs", "official ms/pair", "ours ms/pair", "speedup", "decode ms", "metric ms", "max |diff|")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print(f"| {r['size']} | {r['pairs']} | {r['official_ms_per_pair']:.1f} | {r['ours_ms_per_pair']:.1f} | "
              f"{r['speedup']:.2f}x | {r['ours_decode_ms_per_pair_1_thread']:.1f} | "
              f"{r['ours_metric_ms_per_pair']:.1f} | {r['max_abs_difference']:.1e} |")
    print(f"official Cython extension: {rows[0]['official_cython']}; ours with {args.workers} decoding threads; "
          "decode/metric columns: ours, per pair, one thread")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "evaluation.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
