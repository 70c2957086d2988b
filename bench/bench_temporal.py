"""Temporal consistency and drive videos: how fast, and what a smaller flow costs in TC.

A 30-frame drive is made from one frame of the benchmark dataset (``bench/datasets.py``: a
street photo and its labelIds) translated ``STEP`` pixels per frame (a camera panning), written as
PNG photos and labelId PNG predictions (its labels: a model that never flickers), and once more
with flickering blobs (discs that are person on even frames and car on odd ones). Then:

* ``temporal`` (``evaluate_temporal``, files read as the command reads them, flow included) at
  every flow width from the frame's own down to 256: frames per second, TC and flicker rate of
  the steady and the flickering drive, against the TC of full-size flow;
* ``render_video``: frames per second of a 1024-wide grid of the photo and two runs (H.264),
  from arrays (drawing and encoding only) and from the files (PNG decoding too).

At 2048x1024 and 256x512 (``--resolution``); targets on 2 cores: ``temporal`` >= 3 frames/s at
2048x1024, >= 20 at 256x512; video >= 10 frames/s.

    .venv/bin/python bench/bench_temporal.py [--resolution full demo] [--frames 30] [--workers 2]

Writes ``bench/results/temporal.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import training  # noqa: E402,F401
from bench.datasets import RESOLUTIONS, bench_dataset  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from training.data.cityscapes import read_image, read_label_ids  # noqa: E402
from training.data.index import load_or_build_index  # noqa: E402
from training.data.labels import get_class_set, label_id  # noqa: E402
from training.evaluation.temporal import DEFAULT_PRESET, evaluate_temporal, flow_size  # noqa: E402
from training.viz_video import render_video  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "temporal.json"
STEP = {"full": 8, "demo": 2}  # pixels per frame: 8 px at 2048 wide is a slow pan at 17 frames/s
FLOW_WIDTHS = {"full": [2048, 1024, 512, 256], "demo": [512, 256]}
TARGET_FPS = {"full": 3.0, "demo": 20.0}
VIDEO_TARGET_FPS = 10.0


def shifted(image: np.ndarray, dx: int, nearest: bool) -> np.ndarray:
    """``image`` moved ``dx`` pixels left (the camera pans right), the edge repeated."""
    matrix = np.float32([[1, 0, -dx], [0, 1, 0]])
    return cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]),
                          flags=cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def flickering(label_ids: np.ndarray, t: int) -> np.ndarray:
    """Six discs fixed in the image, person on even frames and car on odd ones."""
    height, width = label_ids.shape
    out = label_ids.copy()
    for n in range(6):
        centre = ((n + 1) * width // 7, height // 2 + (n % 2) * height // 6)
        cv2.circle(out, centre, height // 12, label_id("person") if t % 2 == 0 else label_id("car"), -1)
    return out


def make_drive(resolution: str, folder: Path, frames: int) -> dict:
    """Photos, steady and flickering predictions of a panning drive, as files and as arrays."""
    root = bench_dataset(resolution)
    entry = load_or_build_index(root).split("test")[0]
    photo, labels = read_image(root / entry.image), read_label_ids(root / entry.label)
    step = STEP[resolution]
    drive = {"photos": [], "steady": [], "flicker": []}
    for t in range(frames):
        key = f"panning_000000_{t:06d}"
        image, truth = shifted(photo, step * t, False), shifted(labels, step * t, True)
        paths = {"photos": folder / "frames" / f"{key}_leftImg8bit.png",
                 "steady": folder / "steady" / f"{key}_labelIds.png",
                 "flicker": folder / "flicker" / f"{key}_labelIds.png"}
        for kind, pixels in (("photos", cv2.cvtColor(image, cv2.COLOR_RGB2BGR)), ("steady", truth),
                             ("flicker", flickering(truth, t))):
            paths[kind].parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(paths[kind]), pixels)
            drive[kind].append(paths[kind])
    return drive


def bench_temporal(resolution: str, folder: Path, workers: int) -> dict:
    rows = []
    for width in FLOW_WIDTHS[resolution]:
        cpu = time.process_time()
        steady = evaluate_temporal(folder / "frames", folder / "steady", flow_width=width, workers=workers)
        cpu = time.process_time() - cpu
        jumpy = evaluate_temporal(folder / "frames", folder / "flicker", flow_width=width, workers=workers)
        frames = steady["counts"]["frames"]
        rows.append({"flow_width": width, "frames_per_second": round(steady["frames_per_second"], 2),
                     # CPU time of all threads: less sensitive than frames/s to others sharing the cores
                     "cpu_ms_per_frame": round(1000 * cpu / frames, 1),
                     "temporal_consistency": round(steady["temporal_consistency"], 4),
                     "flicker_rate": round(steady["flicker_rate"], 5),
                     "counted_share": round(steady["counts"]["counted_share"], 4),
                     "flickering_temporal_consistency": round(jumpy["temporal_consistency"], 4),
                     "flickering_flicker_rate": round(jumpy["flicker_rate"], 5)})
        print(f"{resolution} flow {width:5d}: {rows[-1]['frames_per_second']:6.2f} frames/s "
              f"({rows[-1]['cpu_ms_per_frame']:.0f} ms CPU per frame), TC "
              f"{rows[-1]['temporal_consistency']:.4f} (flickering {rows[-1]['flickering_temporal_consistency']:.4f}), "
              f"counted {rows[-1]['counted_share']:.3f}", flush=True)
    full = rows[0]["temporal_consistency"]
    for row in rows:
        row["tc_minus_full_flow"] = round(row["temporal_consistency"] - full, 4)
    default_width = flow_size(RESOLUTIONS[resolution], None)[1]
    default = next((r for r in rows if r["flow_width"] == default_width), None)
    return {"flow_widths": rows, "default_flow_width": default_width, "preset": DEFAULT_PRESET,
            "target_frames_per_second": TARGET_FPS[resolution],
            "default": default,
            "meets_target": bool(default and default["frames_per_second"] >= TARGET_FPS[resolution])}


def bench_video(drive: dict, folder: Path, workers: int) -> dict:
    from training.evaluation.temporal import prediction_reader

    class_set = get_class_set("categories8")
    reader = prediction_reader(drive["steady"][0], "categories8")
    photos = [read_image(path) for path in drive["photos"]]
    runs = {"steady": [reader(p) for p in drive["steady"]], "flickering": [reader(p) for p in drive["flicker"]]}
    cpu = time.process_time()
    done = render_video(photos, runs, class_set, folder / "arrays.mp4", width=1024, workers=workers)
    cpu_arrays = time.process_time() - cpu
    from_arrays = done["frames"] / done["seconds"]

    class Lazy(list):
        def __getitem__(self, index):
            return reader(super().__getitem__(index))

    cpu = time.process_time()
    done_files = render_video(drive["photos"], {"steady": Lazy(drive["steady"]), "flickering": Lazy(drive["flicker"])},
                              class_set, folder / "files.mp4", width=1024, workers=workers)
    cpu_files = time.process_time() - cpu
    from_files = done_files["frames"] / done_files["seconds"]
    frames = done["frames"]
    print(f"video {done['width']}x{done['height']}: {from_arrays:.1f} frames/s from arrays "
          f"({1000 * cpu_arrays / frames:.0f} ms CPU per frame), {from_files:.1f} from files "
          f"({1000 * cpu_files / frames:.0f} ms CPU per frame)", flush=True)
    return {"width": done["width"], "height": done["height"], "codec": done["codec"],
            "frames_per_second_from_arrays": round(from_arrays, 2),
            "frames_per_second_from_files": round(from_files, 2),
            "cpu_ms_per_frame_from_arrays": round(1000 * cpu_arrays / frames, 1),
            "cpu_ms_per_frame_from_files": round(1000 * cpu_files / frames, 1),
            "bytes": (folder / "files.mp4").stat().st_size, "target_frames_per_second": VIDEO_TARGET_FPS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", nargs="+", choices=sorted(RESOLUTIONS), default=["full", "demo"])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for resolution in args.resolution:
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            started = time.perf_counter()
            drive = make_drive(resolution, folder, args.frames)
            print(f"{resolution}: {args.frames} frames written in {time.perf_counter() - started:.1f} s", flush=True)
            results[resolution] = {"frames": args.frames, "size": list(RESOLUTIONS[resolution]),
                                   "cores": len(os.sched_getaffinity(0)), "load_average_before": os.getloadavg()[0],
                                   "step_pixels": STEP[resolution], "workers": args.workers,
                                   "temporal": bench_temporal(resolution, folder, args.workers),
                                   "video": bench_video(drive, folder, args.workers)}
    write_results("temporal", results, out=RESULTS)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
