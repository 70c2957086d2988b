"""Writing the dataset in the exact Cityscapes layout, optionally with parallel workers.

Each image's RNG seed is derived from (seed, split, index) only, and every worker writes its
own files with fixed PNG options, so the bytes on disk never depend on scheduling or on the
number of workers.

Sequences, in the official layouts (``training.data.sequences`` reads them):

- ``sequences`` snippets of 30 frames around the first val images, as
  ``leftImg8bit_sequence/val/<city>/<city>_<seq>_<frame>_leftImg8bit.png`` for frames 000000 ...
  000029; frame 000019 is the annotated still, byte for byte the file in ``leftImg8bit/val/``.
  Like the official download, no labels for the other frames.
- one drive of ``drive_frames`` frames through a val city, ``leftImg8bit/demoVideo/synthetic_00/
  synthetic_00_000000_<frame>_leftImg8bit.png`` from frame 000000.

The camera drives forward at 25-40 km/h, 17 frames a second, while traffic and pedestrians move
(``motion.py``); each frame has its own sensor noise. A job renders up to ``SEQUENCE_CHUNK``
consecutive frames of one sequence, sampling its scene once.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from training.data.sequences import ANNOTATED_POSITION, DEMO_VIDEO_SPLIT, SEQUENCE_DIR, SNIPPET_FRAMES
from training.data.synthetic.motion import EGO_SPEED_MPS, FRAME_RATE_HZ, frame_time, sample_motion, scene_at
from training.data.synthetic.render import accepted_scene, render_description, render_scene
from training.data.synthetic.scene import sample_scene
from training.data.synthetic.styles import CITY_STYLES, TRAIN_CITIES, VAL_CITIES

SPLIT_CODES = {"train": 0, "val": 1}
# Other seed streams: (seed, code, k); split codes are 0 and 1.
SNIPPET_MOTION, DRIVE_SCENE, DRIVE_MOTION, FRAME_NOISE = 2, 3, 4, 5
SEQUENCE_CHUNK = 10  # frames per job
DRIVE_NAME = "synthetic_00"  # a demo video's name: <name>_<two digits>, like stuttgart_00
DRIVE_CITY = VAL_CITIES[0]
SPLIT_CITIES = {"train": TRAIN_CITIES, "val": VAL_CITIES}
FRAME = 19  # the annotated frame of every Cityscapes snippet is frame 000019
# Camera noise makes the RGB nearly incompressible; zlib level 3 with libpng's adaptive filters
# writes it 3x faster than level 6 and within 6% of its size. Label maps are flat: zlib level 1.
RGB_PNG = [cv2.IMWRITE_PNG_COMPRESSION, 3]
LABEL_PNG = {"format": "PNG", "compress_level": 1, "optimize": False}


@dataclass(frozen=True)
class SequenceJob:
    """Frames ``first .. first + count - 1`` of a snippet (``stem``: its annotated still, ``seed``:
    that still's seed) or of the drive (``stem``: the video name, ``seed``: its scene's seed)."""

    kind: str  # "snippet" or "drive"
    city: str
    stem: str
    seed: int
    motion_seed: int
    first: int
    count: int
    total: int
    height: int
    width: int
    out_dir: str


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


def _seed(*words: int) -> int:
    return int(np.random.SeedSequence(list(words)).generate_state(1, np.uint64)[0])


def plan_sequences(out_dir, jobs: list[Job], snippets: int, drive_frames: int, seed: int) -> list[SequenceJob]:
    """Snippets around the first ``snippets`` val stills of ``jobs``, then the drive; in chunks."""
    stills = [job for job in jobs if job.split == "val"][:snippets]
    if len(stills) < snippets:
        raise ValueError(f"{snippets} snippets need as many val images, there are {len(stills)}")
    if not jobs and drive_frames:
        raise ValueError("the drive needs the size of the images: no images planned")
    out = []
    for k, still in enumerate(stills):
        for first in range(0, SNIPPET_FRAMES, SEQUENCE_CHUNK):
            out.append(SequenceJob("snippet", still.city, still.stem, still.seed, _seed(seed, SNIPPET_MOTION, k),
                                   first, min(SEQUENCE_CHUNK, SNIPPET_FRAMES - first), SNIPPET_FRAMES,
                                   still.height, still.width, str(out_dir)))
    for first in range(0, drive_frames, SEQUENCE_CHUNK):
        out.append(SequenceJob("drive", DRIVE_CITY, DRIVE_NAME, _seed(seed, DRIVE_SCENE, 0),
                               _seed(seed, DRIVE_MOTION, 0), first, min(SEQUENCE_CHUNK, drive_frames - first),
                               drive_frames, jobs[0].height, jobs[0].width, str(out_dir)))
    return out


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
    (img_dir / f"{job.stem}_leftImg8bit.png").write_bytes(_rgb_png(rgb, job.stem))
    Image.fromarray(labels, "L").save(gt_dir / f"{job.stem}_gtFine_labelIds.png", **LABEL_PNG)
    Image.fromarray(PALETTE_RGBA[labels], "RGBA").save(gt_dir / f"{job.stem}_gtFine_color.png", **LABEL_PNG)
    Image.fromarray(inst.astype(np.uint16)).save(gt_dir / f"{job.stem}_gtFine_instanceIds.png", **LABEL_PNG)
    return job.stem


def _rgb_png(rgb: np.ndarray, what: str) -> bytes:
    ok, png = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]), RGB_PNG)
    if not ok:
        raise OSError(f"could not encode {what}")
    return png.tobytes()


def _sequence_scene(job: SequenceJob):
    """The scene and motion of a sequence: a snippet's is its annotated still's scene; the drive's
    street is made longer by the distance the camera will drive."""
    motion_rng = np.random.default_rng(job.motion_seed)
    if job.kind == "snippet":
        scene = accepted_scene(job.seed, job.city, job.height, job.width)[0]
        return scene, sample_motion(motion_rng, scene), ANNOTATED_POSITION
    ego = float(motion_rng.uniform(*EGO_SPEED_MPS))
    extra = ego * job.total / FRAME_RATE_HZ + 10.0
    scene = sample_scene(np.random.default_rng(job.seed), CITY_STYLES[job.city], extra)
    return scene, sample_motion(motion_rng, scene, ego), 0


def sequence_frame_path(job: SequenceJob, position: int) -> Path:
    if job.kind == "snippet":
        city, seq, annotated = job.stem.split("_")
        number = int(annotated) - ANNOTATED_POSITION + position
        return Path(job.out_dir, SEQUENCE_DIR, "val", city, f"{city}_{seq}_{number:06d}_leftImg8bit.png")
    return Path(job.out_dir, "leftImg8bit", DEMO_VIDEO_SPLIT, job.stem,
                f"{job.stem}_000000_{position:06d}_leftImg8bit.png")


def render_sequence_frames(job: SequenceJob) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """``(position, rgb, labelIds)`` of each frame of one chunk, as ``write_sequence_frames``
    writes its photos. The labels are what the generator drew; the files hold none (nor does the
    official download), but a benchmark can use them as a model that never errs."""
    scene, motion, sampled_at = _sequence_scene(job)
    for position in range(job.first, job.first + job.count):
        if position == sampled_at and job.kind == "snippet":
            frame = scene  # the annotated still itself: the same bytes as leftImg8bit/
        else:
            noise = np.random.default_rng(np.random.SeedSequence([job.seed, FRAME_NOISE, position]))
            frame = scene_at(scene, motion, frame_time(position, sampled_at),
                             tuple(int(v) for v in noise.integers(0, 4096, 3)))
        rgb, labels, _ = render_description(frame, job.height, job.width)
        yield position, rgb, labels


def write_sequence_frames(job: SequenceJob) -> int:
    """Render and write the frames of one chunk; returns how many."""
    for position, rgb, _ in render_sequence_frames(job):
        path = sequence_frame_path(job, position)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_rgb_png(rgb, path.name))
    return job.count


def _readme(train: int, val: int, height: int, width: int, seed: int, snippets: int = 0, drive_frames: int = 0) -> str:
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
    ]
    if snippets:
        lines.append(f"sequences: {snippets} snippets of {SNIPPET_FRAMES} frames, {SEQUENCE_DIR}/val/<city>/"
                     f"<city>_<seq>_<frame>_leftImg8bit.png; frame {ANNOTATED_POSITION:06d} is the annotated image")
    if drive_frames:
        lines.append(f"drive: {drive_frames} frames through {DRIVE_CITY}, leftImg8bit/{DEMO_VIDEO_SPLIT}/{DRIVE_NAME}/"
                     f"{DRIVE_NAME}_000000_<frame>_leftImg8bit.png (no labels, as in the official download)")
    lines += [
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
                 seed: int = 0, workers: int | None = None, progress: bool = True, sequences: int = 0,
                 drive_frames: int = 0) -> dict:
    """Write a synthetic Cityscapes-layout dataset to ``out_dir``; returns a summary dict.

    ``sequences`` snippets of 30 frames around the first val images and a drive of
    ``drive_frames`` frames are written too (0: none); ``images_per_second`` counts every picture
    rendered, stills and sequence frames."""
    if train < 0 or val < 0 or height < 32 or width < 64:
        raise ValueError("need train, val >= 0 and an image of at least 32x64 pixels")
    if sequences < 0 or drive_frames < 0:
        raise ValueError("need sequences, drive frames >= 0")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = plan(out, train, val, height, width, seed)
    sequence_jobs = plan_sequences(out, jobs, sequences, drive_frames, seed)
    frames = sum(job.count for job in sequence_jobs)
    workers = max(1, min(workers or os.cpu_count() or 1, max(1, len(jobs) + len(sequence_jobs))))
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs) + frames, desc="synthetic scenes", unit="img")
    if workers == 1:
        for sequence_job in sequence_jobs:
            count = write_sequence_frames(sequence_job)
            if bar is not None:
                bar.update(count)
        for job in jobs:
            write_image(job)
            if bar is not None:
                bar.update(1)
    else:
        with _context().Pool(workers) as pool:  # the long sequence jobs first, one at a time
            chunks = pool.imap_unordered(write_sequence_frames, sequence_jobs, chunksize=1)
            stills = pool.imap_unordered(write_image, jobs, chunksize=max(1, min(8, len(jobs) // (4 * workers))))
            for count in chunks:
                if bar is not None:
                    bar.update(count)
            for _ in stills:
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    (out / "README.txt").write_text(_readme(train, val, height, width, seed, sequences, drive_frames),
                                    encoding="utf-8")
    seconds = time.perf_counter() - start
    return {"images": len(jobs), "train": train, "val": val, "height": height, "width": width, "seed": seed,
            "snippets": sequences, "drive_frames": drive_frames, "sequence_frames": frames,
            "workers": workers, "seconds": seconds, "images_per_second": (len(jobs) + frames) / max(seconds, 1e-9),
            "out_dir": str(out), "train_cities": list(TRAIN_CITIES), "val_cities": list(VAL_CITIES)}
