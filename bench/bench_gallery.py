"""The Gallery at the demo's size and at Cityscapes' own: the time to draw a page of 24 thumbnails, in
each mode (photo, a run's prediction over it, its error map), cold and warm.

Runs on ``bench_dashboard``'s benchmark store (4 runs of the 56 test images of
``bench.datasets.bench_dataset(resolution, 8, 56)``, made once into ``data/``). Writes
``bench/results/gallery-<resolution>.json`` and prints a Markdown table. No asserts.

    .venv/bin/python bench/bench_gallery.py --resolution demo|full [--repeats 3]

- ``thumbnails()``, 24 thumbnails (``dashboard.pictures.thumbnails``), per mode: cold with every cache empty,
  drawn one at a time (``workers=1``) and by the thread pool (``WORKERS``); cold in memory but
  read from the disk layer (a restarted dashboard); warm (from memory);
- the decode of one photo PNG alone (what a cold thumbnail cannot avoid: PNG has no reduced decode);
- the Gallery page itself (AppTest, 4 runs chosen, overlay mode): ``at.run()`` of page 1 with every
  cache empty, then (once the background has drawn page 2) again (warm), then "Next" to page 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import training  # noqa: E402,F401  (import-time environment)
from bench.bench_dashboard import bench_store  # noqa: E402
from bench.datasets import add_resolution_argument  # noqa: E402
from bench.results_file import write_results  # noqa: E402

RESULTS = REPO / "bench" / "results"
APP = REPO / "dashboard" / "app.py"
PAGE = 24


def _ms(function) -> float:
    started = time.perf_counter()
    function()
    return (time.perf_counter() - started) * 1000


def _page_ms(wanted: list, disk: str | None, lru, workers: int | None = None) -> float:
    """Milliseconds for ``thumbnails()`` of ``wanted`` with that disk layer and memory."""
    import dashboard.pictures.thumbnails as thumbnails

    workers = thumbnails.WORKERS if workers is None else workers
    return _ms(lambda: thumbnails.thumbnails(wanted, disk, lru, workers=workers))


def _median(values: list[float]) -> float:
    return statistics.median(values)


def thumbnail_times(artifacts: Path, root: Path, repeats: int) -> dict:
    """Milliseconds for 24 thumbnails per mode and cache state (medians over ``repeats``)."""
    import dashboard.pictures.images as pictures
    import dashboard.pictures.thumbnails as thumbnails
    import dashboard.readers.store as store
    from training.data.cityscapes import read_image
    from training.memory import ByteLRU

    key = store.store_key()
    data = store.dataset(key)
    entries = data.index.split("test")[:PAGE]
    images = [pictures.ImageRef(str(data.root), data.index.fingerprint(), e.id, e.image, e.label,
                                thumbnails.THUMBNAIL_WIDTH) for e in entries]
    run = pictures.run_refs(key, ["bench_0"], images[0])["bench_0"]
    cpu = time.process_time()
    decode = _median([_ms(lambda e=e: read_image(root / e.image)) for e in entries[:8]])
    results = {"decode_one_photo_ms": decode, "decode_one_photo_cpu_ms": (time.process_time() - cpu) * 1000 / 8}
    for mode in thumbnails.MODES:
        wanted = [thumbnails.request(image, run, mode) for image in images]
        times = {name: [] for name in ("cold_serial", "cold_serial_cpu", "cold_pool", "cold_pool_disk_write", "disk",
                                       "warm")}
        for _ in range(repeats):
            disk = tempfile.mkdtemp(prefix="bench-thumbnails-")
            try:
                cpu = time.process_time()
                times["cold_serial"].append(_page_ms(wanted, None, ByteLRU(2**28), workers=1))
                times["cold_serial_cpu"].append((time.process_time() - cpu) * 1000)  # ~ its wall time, idle
                times["cold_pool"].append(_page_ms(wanted, None, ByteLRU(2**28)))
                lru = ByteLRU(2**28)
                times["cold_pool_disk_write"].append(_page_ms(wanted, disk, lru))
                times["disk"].append(_page_ms(wanted, disk, ByteLRU(2**28)))  # a restarted dashboard
                times["warm"].append(_page_ms(wanted, disk, lru))
                size = sum(len(t.jpeg) for t in thumbnails.thumbnails(wanted, None, lru)) / len(wanted)
            finally:
                shutil.rmtree(disk, ignore_errors=True)
        results[mode] = {**{name: _median(values) for name, values in times.items()}, "jpeg_kb": size / 1024}
        print(f"{mode}: " + ", ".join(f"{name} {value:.0f}" for name, value in results[mode].items()), flush=True)
    results["workers"] = thumbnails.WORKERS
    return results


def page_times(artifacts: Path) -> dict:
    """The Gallery page in AppTest: page 1 cold (every cache empty), warm, then page 2."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import dashboard.pictures.thumbnails as thumbnails

    shutil.rmtree(artifacts / thumbnails.FOLDER, ignore_errors=True)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.query_params.update({"runs": "bench_0,bench_1,bench_2,bench_3", "mode": "overlay"})
    at.run()
    at.switch_page("app_pages/gallery.py")
    cold = _ms(at.run)
    pending = thumbnails._pending  # page 2, drawn in the background while page 1 is looked at
    started = time.perf_counter()
    if pending is not None:
        pending.result()
    prefetch = (time.perf_counter() - started) * 1000
    warm = _ms(at.run)
    next(button for button in at.button if button.label == "Next").click()
    second = _ms(at.run)
    return {"images_shown": len(at.image), "exception": bool(at.exception), "page1_cold_ms": cold,
            "page1_warm_ms": warm, "prefetch_wait_ms": prefetch, "page2_prefetched_ms": second}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_resolution_argument(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.chdir(REPO)
    from streamlit.logger import set_log_level

    set_log_level("error")  # the caches' "no runtime" notes, outside a served app
    artifacts, root = bench_store(args.resolution)
    os.environ.update({"ARTIFACTS_DIR": str(artifacts), "CITYSCAPES_DATASET": str(root)})
    results = {"resolution": args.resolution, "cpus": os.cpu_count(), "page": PAGE,
               "thumbnails": thumbnail_times(artifacts, root, args.repeats), "page_apptest": page_times(artifacts),
               "load": " ".join(f"{load:.1f}" for load in os.getloadavg())}
    write_results(f"gallery-{args.resolution}", results, out=args.out)
    report(results)


def report(results: dict) -> None:
    thumbs = results["thumbnails"]
    print(f"\n### Gallery, {results['resolution']}: a page of {results['page']} thumbnails "
          f"({results['cpus']} CPUs, {thumbs['workers']} workers)\n")
    print("| mode | cold, one at a time (ms) | its CPU time (ms) | cold, thread pool (ms) "
          "| cold, pool + disk write (ms) | from the disk layer (ms) | warm (ms) | JPEG (KB) |\n"
          "|---|---|---|---|---|---|---|---|")
    for mode in ("photo", "overlay", "error map"):
        row = thumbs[mode]
        print(f"| {mode} | {row['cold_serial']:.0f} | {row['cold_serial_cpu']:.0f} | {row['cold_pool']:.0f} "
              f"| {row['cold_pool_disk_write']:.0f} "
              f"| {row['disk']:.1f} | {row['warm']:.1f} | {row['jpeg_kb']:.1f} |")
    print(f"\nDecoding one photo PNG alone: {thumbs['decode_one_photo_ms']:.1f} ms "
          f"({thumbs['decode_one_photo_cpu_ms']:.1f} ms of CPU). Load average during the run: {results['load']}.")
    page = results["page_apptest"]
    print(f"Gallery page (AppTest, 4 runs, overlay): page 1 cold {page['page1_cold_ms']:.0f} ms, warm "
          f"{page['page1_warm_ms']:.0f} ms; page 2 drawn in the background {page['prefetch_wait_ms']:.0f} ms "
          f"later, then Next {page['page2_prefetched_ms']:.0f} ms; {page['images_shown']} images shown.")


if __name__ == "__main__":
    main()
