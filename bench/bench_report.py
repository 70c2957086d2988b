"""The report to send (``training.report``): its size and build time for 4 runs and 12 images at
2048x1024 (Cityscapes' frames).

The store: 4 imported runs (``import-predictions``, categories8) of the generated full-size dataset
(``bench/datasets.py``), each predicting the 12 test images like a model (``model_like`` of
bench_evaluation: the truth seen at 1/8 resolution, smooth borders, wrong blobs; another seed per
run). Timed: ``build_report`` end to end (reading the runs, the paired bootstraps of 3 runs against
the first, decoding and shrinking 12 photos, 12 ground truths and 48 predictions, encoding them,
the page), the median of ``--rounds``; the size of the file and of its parts (plotly.js, the
pictures as base64).

    .venv/bin/python bench/bench_report.py [--images 12] [--runs 4] [--rounds 3] [--workers 4]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import re
import statistics
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
from training.data.cityscapes import read_label_ids  # noqa: E402
from training.data.index import load_or_build_index  # noqa: E402
from training.report import build_report  # noqa: E402
from training.report.html import plotly_js  # noqa: E402
from training.runs.imported import import_predictions  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def make_store(root: Path, artifacts: Path, folder: Path, runs: int, images: int) -> tuple[list[str], list[int]]:
    """``runs`` imported runs predicting the first ``images`` test images; their names and the ids."""
    entries = load_or_build_index(root, write=False, report=lambda message: None).split("test")[:images]
    names = []
    for number in range(runs):
        rng = np.random.default_rng(number)
        predictions = folder / f"run{number}"
        for entry in entries:
            (predictions / entry.city).mkdir(parents=True, exist_ok=True)
            prediction = model_like(read_label_ids(root / entry.label), rng)
            Image.fromarray(prediction).save(predictions / entry.city / f"{entry.stem}_pred.png")
        run_dir, _ = import_predictions(predictions, f"bench_report_{number}", root, classes="categories8",
                                        format="labelIds", artifacts=artifacts, progress=False)
        names.append(run_dir.name)
    return names, [entry.id for entry in entries]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=12, help="test images shown (at most 24)")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="threads drawing the images")
    args = parser.parse_args()
    root = bench_dataset("full", train=24, val=24)
    height, width = RESOLUTIONS["full"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        runs, ids = make_store(root, tmp / "artifacts", tmp / "predictions", args.runs, args.images)
        store_seconds = time.perf_counter() - start
        plotly_js()  # read once per process: not the report's work
        seconds = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            page = build_report(runs, ids, root=tmp / "artifacts", workers=args.workers)
            seconds.append(time.perf_counter() - start)
        path = tmp / "report.html"
        path.write_text(page)
        size = path.stat().st_size
    pictures = re.findall(r'<img src="data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)"', page.replace(plotly_js(), ""))
    by_kind = {mime: sum(len(data) for kind, data in pictures if kind == mime) for mime in ("image/jpeg", "image/png")}
    result = {
        "frames": f"{width}x{height}", "runs": len(runs), "images": len(ids), "workers": args.workers,
        "rounds": args.rounds, "build_seconds_median": round(statistics.median(seconds), 2),
        "build_seconds": [round(s, 2) for s in seconds],
        "file_mb": round(size / 1e6, 2), "plotly_js_mb": round(len(plotly_js()) / 1e6, 2),
        "photos_jpeg_mb": round(by_kind["image/jpeg"] / 1e6, 2), "masks_png_mb": round(by_kind["image/png"] / 1e6, 2),
        "pictures": len(pictures), "picture_width": Image.open(io.BytesIO(base64.b64decode(pictures[0][1]))).width,
        "store_seconds": round(store_seconds, 1),
    }
    print(json.dumps(result, indent=2))
    write_results("report", result)


if __name__ == "__main__":
    main()
