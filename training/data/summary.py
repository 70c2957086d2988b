"""``data check``: decode every file once, report what the dataset holds and every bad file.

The index step only reads PNG headers; this full pass also catches corrupt files and label ids
outside the Cityscapes table, and counts class pixels (what a user wants to know before
training: how rare are poles, riders, trains?).
"""

from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from training.data.cityscapes import DatasetError, read_pair
from training.data.index import SPLITS, DatasetIndex
from training.data.labels import LUT_SIZE, get_class_set


def _label_histogram(root: Path, image: str, label: str) -> np.ndarray | str:
    try:
        _, label_ids = read_pair(root, image, label)
    except DatasetError as error:
        return str(error)
    return np.bincount(label_ids.ravel(), minlength=LUT_SIZE)


def summarize_dataset(index: DatasetIndex, classes: str = "categories8", workers: int | None = None,
                      progress: bool = True) -> dict:
    """Images per split and city, class pixel frequencies per split, and the bad files."""
    class_set = get_class_set(classes)
    label_pixels = {split: np.zeros(LUT_SIZE, dtype=np.int64) for split in SPLITS}
    problems = []
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        results = pool.map(lambda e: _label_histogram(index.root, e.image, e.label), index.entries)
        for entry, result in tqdm(zip(index.entries, results), total=len(index), desc="check",
                                  unit="img", disable=not progress):
            if isinstance(result, str):
                problems.append(result)
            else:
                label_pixels[entry.split] += result

    frequencies = {}
    for split, counts in label_pixels.items():
        per_class = np.zeros(class_set.num_classes + 1, dtype=np.int64)  # last: ignored
        np.add.at(per_class, np.minimum(class_set.lut, class_set.num_classes), counts)
        total = per_class.sum()
        frequencies[split] = {
            name: (float(per_class[i] / total) if total else 0.0) for i, name in enumerate(class_set.names)
        }
        if class_set.name != "categories8":
            frequencies[split]["(ignored)"] = float(per_class[-1] / total) if total else 0.0
    cities = Counter((e.split, e.city) for e in index.entries)
    sizes = Counter(f"{e.width}x{e.height}" for e in index.entries)
    return {
        "root": str(index.root),
        "images": index.counts(),
        "cities": {split: sorted({c for (s, c) in cities if s == split}) for split in SPLITS},
        "images_per_city": {f"{s}/{c}": n for (s, c), n in sorted(cities.items())},
        "sizes": dict(sizes),
        "classes": class_set.name,
        "class_pixel_frequency": frequencies,
        "fingerprint": index.fingerprint(),
        "problems": problems,
    }


def format_summary(summary: dict) -> str:
    lines = [f"dataset {summary['root']} (fingerprint {summary['fingerprint']})", ""]
    lines.append("images: " + ", ".join(f"{k} {v}" for k, v in summary["images"].items()))
    for split in SPLITS:
        lines.append(f"  {split:<11} cities: {', '.join(summary['cities'][split]) or '-'}")
    lines.append("sizes: " + ", ".join(f"{k} ({v})" for k, v in summary["sizes"].items()))
    lines += ["", f"class pixel frequency ({summary['classes']}), %:"]
    freq = summary["class_pixel_frequency"]
    names = list(next(iter(freq.values())))
    width = max(len(n) for n in names) + 2
    lines.append(f"{'class':<{width}}" + "".join(f"{s:>12}" for s in SPLITS))
    for name in names:
        lines.append(f"{name:<{width}}" + "".join(f"{100 * freq[s][name]:>12.2f}" for s in SPLITS))
    if summary["problems"]:
        lines += ["", f"{len(summary['problems'])} bad file(s):"] + [f"  {p}" for p in summary["problems"]]
    else:
        lines += ["", "all files decoded and valid"]
    return "\n".join(lines)
