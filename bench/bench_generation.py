"""Throughput of the synthetic dataset generator: images/s with 1 and 2 workers.

Counts rendering plus writing all four PNG files per image; writes
``bench/results/generation-<resolution>.json``. Usage:
    .venv/bin/python bench/bench_generation.py [--resolution demo|full] [--images 120]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.datasets import RESOLUTIONS, add_resolution_argument  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from training.data.synthetic import make_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=120, help="images per run (train split)")
    add_resolution_argument(parser)
    parser.add_argument("--height", type=int, default=None, help="overrides --resolution")
    parser.add_argument("--width", type=int, default=None, help="overrides --resolution")
    args = parser.parse_args()
    height, width = RESOLUTIONS[args.resolution]
    args.height, args.width = args.height or height, args.width or width
    rows = []
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            summary = make_dataset(tmp, train=args.images, val=0, height=args.height, width=args.width,
                                   seed=0, workers=workers, progress=False)
            photos = [p.stat().st_size for p in Path(tmp).rglob("*_leftImg8bit.png")]
        per_core = summary["images_per_second"] / workers
        print(f"workers={workers}: {summary['images']} images {args.height}x{args.width} in "
              f"{summary['seconds']:.2f} s -> {summary['images_per_second']:.1f} images/s "
              f"({per_core:.1f} per worker); photos {min(photos) / 1e6:.2f}-{max(photos) / 1e6:.2f} MB")
        rows.append({"workers": workers, "images": summary["images"], "seconds": summary["seconds"],
                     "images_per_second": summary["images_per_second"],
                     "photo_mb": [min(photos) / 1e6, max(photos) / 1e6]})
    write_results(f"generation-{args.resolution}", {"size": f"{args.width}x{args.height}", "rows": rows})


if __name__ == "__main__":
    main()
