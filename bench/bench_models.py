"""Parameter counts and build times of the models, next to the source's table (8 classes).

Builds each model at 256x512 (PSPNet at 240x480, its nearest valid size) without weights,
and writes ``bench/results/models.json``.

    .venv/bin/python bench/bench_models.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import training  # noqa: E402,F401
from bench.results_file import write_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
NUM_CLASSES = 8

# (model, backbone, parameters in the source's table or None); the source's "EfficientNet"
# counts are those of efficientnetb3 exactly.
CASES = (
    ("simple", None, 2_883_528),
    ("unet", None, 31_059_592),
    ("gridnet", None, None),
    ("sm_unet", "vgg16", 23_753_288),
    ("sm_unet", "resnet34", 24_457_169),
    ("sm_unet", "efficientnetb0", None),
    ("sm_fpn", "efficientnetb0", None),
    ("sm_linknet", "efficientnetb0", None),
    ("sm_unet", "efficientnetb3", 17_868_848),
    ("sm_fpn", "efficientnetb3", 13_919_792),
    ("sm_linknet", "efficientnetb3", 13_762_000),
    ("sm_pspnet", "resnet18", None),
)


def main() -> None:
    start = time.perf_counter()
    import segmentation_models  # noqa: F401  (its import cost is not any model's)

    from training.models import build_model, count_parameters

    rows = [{"model": "import keras + segmentation_models", "seconds": round(time.perf_counter() - start, 2)}]
    for name, backbone, source in CASES:
        shape = (240, 480, 3) if name == "sm_pspnet" else (256, 512, 3)
        start = time.perf_counter()
        model = build_model(name, NUM_CLASSES, shape, backbone=backbone)
        seconds = time.perf_counter() - start
        row = {
            "model": name,
            "backbone": backbone,
            "size": f"{shape[0]}x{shape[1]}",
            "parameters": count_parameters(model),
            "source_parameters": source,
            "build_seconds": round(seconds, 2),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_results("models", rows)


if __name__ == "__main__":
    main()
