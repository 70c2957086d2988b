"""Evaluate prediction PNGs from any tool against ground truth in the Cityscapes layout.

Predictions hold Cityscapes labelIds (as the official benchmark expects) and are matched to
ground-truth files by ``<city>_<seq>_<frame>`` anywhere in their file name, as the official
``evalPixelLevelSemanticLabeling`` does. PNG decoding, the slow part, runs in parallel threads.
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from training.data.cityscapes import DatasetError, check_label_values, read_label_ids, read_png_file
from training.data.index import load_or_build_index
from training.data.labels import NUM_LABEL_IDS
from training.evaluation.evaluator import Evaluator
from training.evaluation.metrics import iou_per_class, mean_iou, pair_counts, pixel_accuracy
from training.files import finite_or_none

KEY_PATTERN = re.compile(r"([A-Za-z0-9-]+_\d{6}_\d{6})")
SPLIT_ALIASES = {"val": "test"}  # the official val folder is our test split


def find_predictions(pred_dir: Path) -> dict[str, Path]:
    """``<city>_<seq>_<frame>`` -> prediction file, for every PNG under ``pred_dir``.

    Raises:
        DatasetError: the folder is missing, or two files claim the same image.
    """
    if not pred_dir.is_dir():
        raise DatasetError(f"{pred_dir}: prediction folder does not exist")
    found: dict[str, Path] = {}
    for folder, _, names in os.walk(pred_dir):
        for name in sorted(names):
            match = KEY_PATTERN.search(name)
            if not name.endswith(".png") or not match:
                continue
            path = Path(folder) / name
            key = match.group(1)
            if key in found:
                raise DatasetError(f"{path}: a second prediction for {key} (first: {found[key]})")
            found[key] = path
    return found


def read_prediction(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A prediction PNG as ``(H, W)`` uint8 labelIds, checked against the ground-truth shape."""
    prediction = read_png_file(path, ("L", "P"), "a single-channel 8-bit PNG of labelIds")
    if prediction.shape != shape:
        raise DatasetError(f"{path}: size {prediction.shape[1]}x{prediction.shape[0]}, "
                           f"the ground truth is {shape[1]}x{shape[0]}")
    check_label_values(prediction, path)
    return prediction


def _count_pair(gt_path: Path, pred_path: Path) -> np.ndarray:
    gt = read_label_ids(gt_path)
    prediction = read_prediction(pred_path, gt.shape)
    return pair_counts(gt, prediction, size=NUM_LABEL_IDS).copy()


def evaluate_masks(
    gt_root: Path,
    pred_dir: Path,
    split: str = "test",
    classes: str = "categories8",
    workers: int | None = None,
    progress: bool = True,
    index_path: str | None = None,
) -> dict:
    """Evaluate every ground-truth image of ``split`` against its prediction.

    Returns:
        The summary of ``training.evaluation.evaluator.summarize`` plus ``per_image`` (id, stem, mIoU,
        pixel accuracy) and the folders evaluated.

    Raises:
        DatasetError: predictions missing for some images, or a bad file (named).
    """
    gt_root, pred_dir = Path(gt_root), Path(pred_dir)
    split = SPLIT_ALIASES.get(split, split)
    index = load_or_build_index(gt_root, index_path)
    entries = index.split(split)
    if not entries:
        raise DatasetError(f"{gt_root}: split {split!r} has no images")
    predictions = find_predictions(pred_dir)
    missing = [e.stem for e in entries if e.stem not in predictions]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DatasetError(f"{pred_dir}: no prediction for {len(missing)} of {len(entries)} "
                           f"{split} images: {shown}")

    evaluator = Evaluator(classes, prediction_kind="label_ids")
    per_image = []
    workers = workers or os.cpu_count() or 1
    jobs = [(gt_root / e.label, predictions[e.stem]) for e in entries]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        counts_stream = pool.map(lambda job: _count_pair(*job), jobs)
        bar = tqdm(counts_stream, total=len(jobs), desc="evaluate", unit="img", disable=not progress)
        for entry, counts in zip(entries, bar):
            image_confusion = evaluator.add_counts(counts)
            k = evaluator.class_set.num_classes
            per_image.append({
                "id": entry.id, "stem": entry.stem,
                "miou": finite_or_none(mean_iou(iou_per_class(image_confusion)[:k])),
                "pixel_accuracy": finite_or_none(pixel_accuracy(image_confusion)),
            })
    result = evaluator.summary()
    result.update(split=split, gt_root=str(gt_root), pred_dir=str(pred_dir), per_image=per_image)
    return result


def format_report(result: dict) -> str:
    """The per-class table and the means, as printed by ``evaluate-masks``."""
    def cell(value):
        return "   n/a" if value is None else f"{value:6.3f}"

    width = max(len(name) for name in result["class_names"]) + 2
    lines = [f"{result['images']} images, split {result['split']}, classes {result['classes']}",
             "", f"{'class':<{width}}{'IoU':>8}{'official':>10}"]
    for name in result["class_names"]:
        lines.append(f"{name:<{width}}{cell(result['iou'][name]):>8}{cell(result['iou_official'][name]):>10}")
    lines += ["", f"{'mIoU (all classes)':<28}{cell(result['miou'])}",
              f"{'mIoU (official-compatible)':<28}{cell(result['miou_official'])}",
              f"{'pixel accuracy':<28}{cell(result['pixel_accuracy'])}"]
    if result["classes"] == "categories8":
        lines.append("official-compatible: the cityscapesScripts category score (void and the labels "
                     "it ignores are left out)")
    return "\n".join(lines)
