"""Importing another tool's predictions, and exporting a run, at 256x512 and at 2048x1024.

For each format (labelIds, trainIds, colour) the predictions look like a model's (``model_like``
of bench_evaluation: smooth borders, wrong blobs) and are saved the way a PyTorch user saves
them (Pillow, default zlib level). Timed end to end, per image:

* ``import-predictions``: decode, check, score, write the run's class-index PNGs, publish;
* ``evaluate-masks`` on the same files (the import's extra cost is writing the run);
* ``export-predictions`` of the imported run as labelIds (the official submission layout).

    .venv/bin/python bench/bench_import.py [--resolution demo full] [--images 24] [--workers 2]
"""

from __future__ import annotations

import argparse
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
from training.evaluation.formats import FORMATS, label_ids_to  # noqa: E402
from training.evaluation.masks import evaluate_masks  # noqa: E402
from training.runs.imported import import_predictions  # noqa: E402
from training.runs.submission import export_predictions  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def write_predictions(root: Path, out: Path, images: int) -> dict[str, Path]:
    """The same model-like predictions in every format, one folder per format."""
    rng = np.random.default_rng(0)
    folders = {name: out / name for name in FORMATS}
    entries = load_or_build_index(root, write=False, report=lambda message: None).split("test")[:images]
    for entry in entries:
        prediction = model_like(read_label_ids(root / entry.label), rng)
        for name, folder in folders.items():
            (folder / entry.city).mkdir(parents=True, exist_ok=True)
            Image.fromarray(label_ids_to(prediction, name)).save(folder / entry.city / f"{entry.stem}_pred.png")
    return folders


def timed(function, *args, **kwargs) -> tuple[object, float]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def rows_for(resolution: str, images: int, workers: int) -> list[dict]:
    root = bench_dataset(resolution, train=24, val=24)
    height, width = RESOLUTIONS[resolution]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        folders = write_predictions(root, tmp / "pred", images)
        for name, folder in folders.items():
            artifacts = tmp / f"art-{name}"
            (_, metrics), import_seconds = timed(import_predictions, folder, f"bench_{name}", root,
                                                 classes="cityscapes19", format="auto", artifacts=artifacts,
                                                 workers=workers, progress=False)
            masks, masks_seconds = timed(evaluate_masks, root, folder, "test", "cityscapes19", workers,
                                         progress=False, partial=True)
            assert masks["miou"] == metrics["miou"], "the import must score as evaluate-masks does"
            _, export_seconds = timed(export_predictions, f"bench_{name}", tmp / f"export-{name}", "labelIds",
                                      artifacts, root, progress=False)
            scored = metrics["coverage"]["images"]
            size_kb = sum(p.stat().st_size for p in folder.rglob("*.png")) / 1024 / scored
            rows.append({"size": f"{width}x{height}", "format": name, "images": scored, "workers": workers,
                         "prediction_png_kb": round(size_kb, 1),
                         "import_ms_per_image": round(1000 * import_seconds / scored, 1),
                         "evaluate_masks_ms_per_image": round(1000 * masks_seconds / scored, 1),
                         "export_ms_per_image": round(1000 * export_seconds / scored, 1),
                         "miou": metrics["miou"]})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", nargs="+", choices=sorted(RESOLUTIONS), default=["demo", "full"])
    parser.add_argument("--images", type=int, default=24, help="test images per resolution (at most 24)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    rows = [row for resolution in args.resolution for row in rows_for(resolution, args.images, args.workers)]
    header = ("size", "format", "images", "PNG KB", "import ms/image", "evaluate-masks ms/image",
              "export ms/image")
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for r in rows:
        print(f"| {r['size']} | {r['format']} | {r['images']} | {r['prediction_png_kb']:.0f} | "
              f"{r['import_ms_per_image']:.1f} | {r['evaluate_masks_ms_per_image']:.1f} | "
              f"{r['export_ms_per_image']:.1f} |")
    print(f"{args.workers} decoding threads; export: labelIds of the imported run")
    write_results("import", rows)


if __name__ == "__main__":
    main()
