"""Writing the dataset in the exact Cityscapes layout, optionally with parallel workers.

Each image's RNG seed is derived from (seed, split, index) only, and every worker writes its
own files with fixed PNG options, so the bytes on disk never depend on scheduling or on the
number of workers.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from training.data.synthetic.render import render_scene
from training.data.synthetic.styles import CITY_STYLES, TRAIN_CITIES, VAL_CITIES

SPLIT_CODES = {"train": 0, "val": 1}
SPLIT_CITIES = {"train": TRAIN_CITIES, "val": VAL_CITIES}
FRAME = 19  # the annotated frame of every Cityscapes snippet is frame 000019
# Camera noise makes the RGB nearly incompressible; zlib level 3 with libpng's adaptive filters
# writes it 3x faster than level 6 and within 6% of its size. Label maps are flat: zlib level 1.
RGB_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 3]
LABEL_PNG = {"format": "PNG", "compress_level": 1, "optimize": False}


@dataclass(frozen=True)
class Job:
    split: str
    city: str
    stem: str
    seed: int
    height: int
    width: int
    out_dir: str


def image_seed(seed: int, split: str, index: int) -> int:
    """Seed of image ``index`` of ``split``: independent streams via numpy's SeedSequence."""
    return int(np.random.SeedSequence([seed, SPLIT_CODES[split], index]).generate_state(1, np.uint64)[0])


def plan(out_dir, train: int, val: int, height: int, width: int, seed: int) -> list[Job]:
    """All images to write; cities take turns so every city gets a share of each split."""
    jobs = []
    for split, count in (("train", train), ("val", val)):
        cities = SPLIT_CITIES[split]
        for index in range(count):
            city = cities[index % len(cities)]
            stem = f"{city}_{index // len(cities):06d}_{FRAME:06d}"
            jobs.append(Job(split, city, stem, image_seed(seed, split, index), height, width, str(out_dir)))
    return jobs


def _palette_rgba() -> np.ndarray:
    from cityscapesscripts.helpers.labels import labels

    palette = np.zeros((256, 4), dtype=np.uint8)
    palette[:, 3] = 255
    for label in labels:
        if label.id >= 0:
            palette[label.id, :3] = label.color
    return palette


PALETTE_RGBA = _palette_rgba()


def write_image(job: Job) -> str:
    rgb, labels, inst = render_scene(job.seed, job.city, job.height, job.width)
    img_dir = Path(job.out_dir, "leftImg8bit", job.split, job.city)
    gt_dir = Path(job.out_dir, "gtFine", job.split, job.city)
    img_dir.mkdir(parents=True, exist_ok=True)
    gt_dir.mkdir(parents=True, exist_ok=True)
    ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), RGB_PNG)
    if not ok:
        raise OSError(f"could not encode {job.stem}")
    (img_dir / f"{job.stem}_leftImg8bit.png").write_bytes(png.tobytes())
    Image.fromarray(labels, "L").save(gt_dir / f"{job.stem}_gtFine_labelIds.png", **LABEL_PNG)
    Image.fromarray(PALETTE_RGBA[labels], "RGBA").save(gt_dir / f"{job.stem}_gtFine_color.png", **LABEL_PNG)
    Image.fromarray(inst.astype(np.uint16)).save(gt_dir / f"{job.stem}_gtFine_instanceIds.png", **LABEL_PNG)
    return job.stem


def _readme(train: int, val: int, height: int, width: int, seed: int) -> str:
    lines = [
        "Synthetic street scenes in the Cityscapes layout (GENERATED, not real camera data).",
        "Generator: training.data.synthetic.make_dataset (pinhole dashcam, procedural streets).",
        f"seed: {seed}",
        f"size: {height}x{width} (height x width)",
        f"train images: {train} (cities: {', '.join(TRAIN_CITIES)})",
        f"val images: {val} (cities: {', '.join(VAL_CITIES)})",
        "files: leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png,",
        "       gtFine/<split>/<city>/<stem>_gtFine_{labelIds,color,instanceIds}.png",
        "labels: official Cityscapes labelIds; instanceIds = labelId*1000+k for objects, else labelId.",
        "cities:",
    ]
    lines += [f"  {name} ({style.split}): {style.description}" for name, style in CITY_STYLES.items()]
    return "\n".join(lines) + "\n"


def _context():
    # fork is fastest, but forking a process that already runs TensorFlow threads is unsafe.
    if "fork" in mp.get_all_start_methods() and "tensorflow" not in sys.modules:
        return mp.get_context("fork")
    return mp.get_context("spawn")


def make_dataset(out_dir, train: int = 300, val: int = 100, height: int = 256, width: int = 512,
                 seed: int = 0, workers: int | None = None, progress: bool = True) -> dict:
    """Write a synthetic Cityscapes-layout dataset to ``out_dir``; returns a summary dict."""
    if train < 0 or val < 0 or height < 32 or width < 64:
        raise ValueError("need train, val >= 0 and an image of at least 32x64 pixels")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan(out, train, val, height, width, seed)
    workers = max(1, min(workers or os.cpu_count() or 1, max(1, len(jobs))))
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="synthetic scenes", unit="img")
    if workers == 1:
        for job in jobs:
            write_image(job)
            if bar is not None:
                bar.update(1)
    else:
        with _context().Pool(workers) as pool:
            for _ in pool.imap_unordered(write_image, jobs, chunksize=max(1, min(8, len(jobs) // (4 * workers)))):
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    (out / "README.txt").write_text(_readme(train, val, height, width, seed), encoding="utf-8")
    seconds = time.perf_counter() - start
    return {"images": len(jobs), "train": train, "val": val, "height": height, "width": width, "seed": seed,
            "workers": workers, "seconds": seconds, "images_per_second": len(jobs) / max(seconds, 1e-9),
            "out_dir": str(out), "train_cities": list(TRAIN_CITIES), "val_cities": list(VAL_CITIES)}
