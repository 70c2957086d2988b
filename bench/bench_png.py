"""PNG decoding, one thread and two: ours (libspng through its C API, ``training.data.png``)
against pyspng's own binding, OpenCV and Pillow, on the files an evaluation reads at 2048x1024.

The files: the generated dataset's photos (``bench/datasets.py``: sensor noise, 2.3 MB like a
genuine photo), labelIds and 16-bit instanceIds. Per decoder and kind: ms per file in one thread,
and how many times one thread's files per second two threads decode, each pulling files from a
shared list. A decoder that holds the GIL stays near 1.0x however many threads decode; one that
releases it approaches the number of cores. The decoders take turns within each of ``--rounds``
rounds; each figure is the median of its rounds.

    .venv/bin/python bench/bench_png.py [--files 12] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pyspng
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.datasets import RESOLUTIONS, bench_dataset  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from training.data import png  # noqa: E402
from training.data.cityscapes import instance_path  # noqa: E402
from training.data.index import load_or_build_index  # noqa: E402

KINDS = {"photo": "RGB", "labelIds": "L", "instanceIds": "I;16"}


def _opencv(data: bytes, mode: str) -> np.ndarray:
    flags = cv2.IMREAD_COLOR_RGB if mode == "RGB" else cv2.IMREAD_UNCHANGED
    return cv2.imdecode(np.frombuffer(data, np.uint8), flags)


def _pillow(data: bytes, mode: str) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


DECODERS = {
    "ours (libspng, C API)": lambda data, mode: png.decode_png(data),
    "pyspng": lambda data, mode: pyspng.load(data, mode) if mode in ("L", "RGB") else None,
    "OpenCV": _opencv,
    "Pillow": _pillow,
}


def files_per_second(decode, files: list[bytes], mode: str, threads: int) -> float:
    """Files decoded per second by ``threads`` threads sharing ``files`` (each decoded twice)."""
    work = [data for data in files for _ in range(2)]
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not work:
                    return
                data = work.pop()
            decode(data, mode)

    start = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return 2 * len(files) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    root = bench_dataset("full", train=24, val=args.files)
    entries = load_or_build_index(root, write=False, report=lambda message: None).split("test")[:args.files]
    files = {"photo": [(root / e.image).read_bytes() for e in entries],
             "labelIds": [(root / e.label).read_bytes() for e in entries],
             "instanceIds": [instance_path(root / e.label).read_bytes() for e in entries]}
    for kind, mode in KINDS.items():  # every decoder gives our array
        expected = png.decode_png(files[kind][0])
        for name, decode in DECODERS.items():
            decoded = decode(files[kind][0], mode)
            if decoded is not None and not np.array_equal(decoded, expected):
                raise SystemExit(f"{name} decodes a {kind} file differently")
    rates = {(kind, name, threads): [] for kind in KINDS for name in DECODERS for threads in (1, 2)}
    for _ in range(args.rounds):
        for kind, mode in KINDS.items():
            for name, decode in DECODERS.items():
                if decode(files[kind][0], mode) is None:
                    continue
                for threads in (1, 2):
                    rates[kind, name, threads].append(files_per_second(decode, files[kind], mode, threads))
    rows = []
    for kind in KINDS:
        for name in DECODERS:
            one, two = (float(np.median(rates[kind, name, t])) if rates[kind, name, t] else None for t in (1, 2))
            rows.append({"kind": kind, "decoder": name, "kb": float(np.mean([len(d) for d in files[kind]])) / 1024,
                         "ms_one_thread": 1000 / one if one else None,
                         "two_threads_speedup": two / one if one else None})
    height, width = RESOLUTIONS["full"]
    print(f"PNG decoding at {width}x{height}, {len(entries)} files per kind, medians of {args.rounds} rounds\n")
    print("| file | KB | decoder | ms, one thread | two threads: files/s against one |")
    print("|---|---|---|---|---|")
    for r in rows:
        if r["ms_one_thread"] is None:
            print(f"| {r['kind']} | {r['kb']:.0f} | {r['decoder']} | (cannot) | |")
        else:
            print(f"| {r['kind']} | {r['kb']:.0f} | {r['decoder']} | {r['ms_one_thread']:.1f} | "
                  f"{r['two_threads_speedup']:.2f}x |")
    write_results("png", {"size": f"{width}x{height}", "files": len(entries), "rounds": args.rounds, "rows": rows})


if __name__ == "__main__":
    main()
