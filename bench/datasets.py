"""The generated datasets every benchmark runs on, at the demo's size and at Cityscapes' own.

``RESOLUTIONS`` names them: ``demo`` (256x512, what ``make demo`` trains on) and ``full``
(2048x1024, photos of ~2.2-2.6 MB that decode like genuine Cityscapes frames). Each is
generated once into ``data/bench-<height>x<width>-<train>-<val>/`` (ignored by git) and reused;
``--resolution`` in each benchmark picks one.

    from bench.datasets import RESOLUTIONS, bench_dataset
    root = bench_dataset("full", train=24, val=24)
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

RESOLUTIONS = {"demo": (256, 512), "full": (1024, 2048)}
DONE_MARK = "bench-complete"


def bench_dataset(resolution: str, train: int = 24, val: int = 24, seed: int = 0) -> Path:
    """The root of a generated dataset at ``resolution`` (made and indexed on first use)."""
    from training.data.index import load_or_build_index
    from training.data.synthetic import make_dataset

    height, width = RESOLUTIONS[resolution]
    root = REPO / "data" / f"bench-{height}x{width}-{train}-{val}-seed{seed}"
    if not (root / DONE_MARK).exists():
        print(f"generating {train + val} images of {height}x{width} into {root} (once)", file=sys.stderr)
        make_dataset(root, train=train, val=val, height=height, width=width, seed=seed, progress=False)
        load_or_build_index(root, report=lambda message: None)
        (root / DONE_MARK).write_text("generated\n")
    return root


def add_resolution_argument(parser, default: str = "demo") -> None:
    parser.add_argument("--resolution", choices=sorted(RESOLUTIONS), default=default,
                        help="demo: 256x512 generated frames; full: 2048x1024 frames of ~2.4 MB (Cityscapes' size)")
