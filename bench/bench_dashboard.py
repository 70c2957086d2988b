"""The dashboard at the demo's size and at Cityscapes' own: re-rendering the Image explorer when
the id changes (4 runs), in AppTest and in chromium, the server's memory over 50 ids, cold start.

Runs on a benchmark store made here (once, into ``data/``): 4 runs whose predictions are the
ground truth shifted and patched, written at ground-truth resolution as a real run's evaluation
writes them, for the 56 test images of ``bench.datasets.bench_dataset(resolution, 8, 56)``
(256x512 or 2048x1024). Writes ``bench/results/dashboard-<resolution>.json`` and prints a
Markdown table. No asserts.

    .venv/bin/python bench/bench_dashboard.py --resolution demo|full [--ids 20] [--memory-ids 50]
                                              [--repeats 1] [--small-cache-mb 16] [--make-demo]

- explorer re-render (AppTest, the script run alone in this process): ``at.run()`` after
  setting the id box to an id not shown before (``new id``: every file decoded) and to one shown
  before (``seen id``: everything from the dashboard's caches);
- in chromium (``/usr/bin/chromium``) on ``streamlit run``: cold start (process to
  ``/_stcore/health``, to the Overview drawn, then to the explorer drawn), then ``--memory-ids``
  clicks on "Next" (new ids each time), each timed from the click to the new images drawn, and
  the server process's RSS before the first click and after the last. With ``--small-cache-mb``
  the clicks are repeated on a server whose ``DASHBOARD_CACHE_MB`` is that small: the growth
  follows the setting;
- ``--make-demo``: the second start of the real ``make demo`` (data and runs present) to the
  dashboard answering ``/_stcore/health``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import training  # noqa: E402,F401  (import-time environment)
from bench.datasets import add_resolution_argument, bench_dataset  # noqa: E402

RESULTS = REPO / "bench" / "results"
APP = REPO / "dashboard" / "app.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
RENDERED = """() => {
    const images = [...document.querySelectorAll('[data-testid="stImage"] img')];
    const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]').length;
    const drawn = document.querySelectorAll('[data-testid="stPlotlyChart"] .main-svg').length;
    return images.length >= %d && images.every(img => img.complete && img.naturalWidth > 0) && drawn >= charts;
}"""
NEW_CAPTION = """first => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
    .some(c => /^Image \\d+/.test(c.innerText) && !c.innerText.startsWith(`Image ${first} `))"""
START_TIMEOUT_S = 120  # bounds, not measurements
PAGE_TIMEOUT_MS = 120_000
EXPLORER_IMAGES = 10  # photo, ground truth, 4 predictions, 4 error maps
RUNS, TRAIN, VAL = 4, 8, 56  # the test split (official val) has VAL images: 50 new ids and more


# ---------------------------------------------------------------------------- the benchmark store

def fake_prediction(truth, run: int, image_id: int):
    """What a model of middling quality predicts: the ground truth (classes; ignored -> void)
    shifted sideways by a run-dependent amount, with a few rectangles of a wrong class."""
    rng = np.random.default_rng([run, image_id])
    height, width = truth.shape
    predicted = np.roll(np.where(truth == 255, 0, truth), (run + 1) * width // 128, axis=1).astype(np.uint8)
    for _ in range(3):
        top, left = int(rng.integers(0, height * 3 // 4)), int(rng.integers(0, width * 3 // 4))
        predicted[top:top + height // 6, left:left + width // 8] = rng.integers(0, 8)
    return predicted


def bench_store(resolution: str) -> tuple[Path, Path]:
    """(artifacts, data root): RUNS runs of ``resolution``'s data, made once."""
    import shutil

    import yaml

    from training.data.cityscapes import read_label_ids
    from training.data.index import load_or_build_index
    from training.data.labels import get_class_set
    from training.evaluation.evaluator import Evaluator
    from training.evaluation.metrics import iou_per_class, mean_iou, pixel_accuracy
    from training.files import finite_or_none
    from training.runs.writer import RunWriter

    root = bench_dataset(resolution, train=TRAIN, val=VAL)
    artifacts = REPO / "data" / f"bench-dashboard-store-{root.name}"
    if (artifacts / "bench-complete").exists():
        return artifacts, root
    shutil.rmtree(artifacts, ignore_errors=True)
    index = load_or_build_index(root, write=False, report=lambda message: None)
    class_set, entries = get_class_set("categories8"), index.split("test")
    height, width = entries[0].height, entries[0].width
    print(f"writing {RUNS} runs of {len(entries)} predictions ({height}x{width}) into {artifacts} (once)",
          file=sys.stderr)
    for number in range(RUNS):
        name = f"bench_{number}"
        writer, evaluator, rows, confusions = RunWriter(name, artifacts), Evaluator(class_set), [], []
        for entry in entries:
            label_ids = read_label_ids(root / entry.label)
            predicted = fake_prediction(class_set.lut[label_ids], number, entry.id)
            confusion = evaluator.add(label_ids, predicted)
            iou = iou_per_class(confusion)[:class_set.num_classes]
            rows.append({"id": entry.id, "split": entry.split, "miou": finite_or_none(mean_iou(iou), 6),
                         "pixel_accuracy": finite_or_none(pixel_accuracy(confusion), 6),
                         **{f"iou_{n}": finite_or_none(v) for n, v in zip(class_set.names, iou, strict=True)}})
            confusions.append(confusion)
            writer.write_prediction(entry.id, predicted, class_set.palette())
        config = {"name": name, "data": {"root": str(root), "classes": class_set.name, "height": height,
                                         "width": width}, "evaluation": {"split": "test"}}
        metrics = {"run": name, "split": "test", **evaluator.summary(), "model": "bench", "backbone": None,
                   "loss_name": "none", "augmentation": "none", "image_size": [height, width], "params": 0,
                   "train_seconds": 0.0, "inference_ms": None, "source": "imported",
                   "dataset": {"root": str(root), "fingerprint": index.fingerprint(), "images": len(index)}}
        writer.write_text("config.yaml", yaml.safe_dump(config))
        writer.write_text("model.keras", "no model: a benchmark run made of predictions\n")
        writer.write_csv("history.csv", [{"epoch": 1, "loss": 0.0, "val_loss": 0.0}])
        writer.write_json("metrics.json", metrics)
        writer.write_array("confusion.npy", evaluator.confusion)
        writer.write_array("per_image_confusion.npy", np.stack(confusions).astype(np.int64))
        writer.write_csv("per_image.csv", rows)
        writer.commit()
    (artifacts / "bench-complete").write_text("made\n")
    return artifacts, root


# ---------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_group(process: subprocess.Popen, timeout: float = 20) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_http(url: str, process: subprocess.Popen, timeout: float = START_TIMEOUT_S) -> float | None:
    """Seconds (perf_counter) when ``url`` first answered 200, None if the process died or timed out."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return time.perf_counter()
        except requests.RequestException:
            pass
        time.sleep(0.05)
    return None


def start_dashboard(port: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL, start_new_session=True)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def summary(values: list[float]) -> dict:
    values = sorted(values)
    return {"n": len(values), "median": statistics.median(values), "min": values[0], "max": values[-1],
            "p90": values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]}


# ---------------------------------------------------------------------------- browser

def wait_rendered(page, min_images: int = 0) -> None:
    page.wait_for_selector(IDLE, timeout=PAGE_TIMEOUT_MS)
    page.wait_for_function(RENDERED % min_images, timeout=PAGE_TIMEOUT_MS)


def caption_id(page) -> int:
    text = page.locator('[data-testid="stCaptionContainer"]', has_text=re.compile(r"^Image \d+")).first.inner_text()
    return int(re.match(r"Image (\d+)", text).group(1))


def served_session(browser, env: dict, clicks: int) -> dict:
    """A new dashboard process: cold start in chromium, then ``clicks`` "Next" clicks (new ids)."""
    port = free_port()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    started = time.perf_counter()
    process = start_dashboard(port, env)
    try:
        healthy = wait_http(f"http://127.0.0.1:{port}/_stcore/health", process)
        if healthy is None:
            raise RuntimeError("the dashboard did not start")
        page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
        page.wait_for_function("() => [...document.querySelectorAll('h1')].length > 0", timeout=PAGE_TIMEOUT_MS)
        wait_rendered(page)
        overview = time.perf_counter()
        page.locator('[data-testid="stSidebarNav"] a', has_text="Image explorer").first.click()
        wait_rendered(page, EXPLORER_IMAGES)
        explorer = time.perf_counter()
        row = {"health_s": healthy - started, "overview_s": overview - started,
               "explorer_after_overview_s": explorer - overview, "rss_before_mib": rss_mib(process.pid)}
        times = []
        for _ in range(clicks):
            before = caption_id(page)
            t0 = time.perf_counter()
            page.get_by_role("button", name="Next").click()
            page.wait_for_function(NEW_CAPTION, arg=before, timeout=PAGE_TIMEOUT_MS)
            wait_rendered(page, EXPLORER_IMAGES)
            times.append((time.perf_counter() - t0) * 1000)
        row.update(rss_after_mib=rss_mib(process.pid), next_click_ms=times)
        row["rss_growth_mib"] = row["rss_after_mib"] - row["rss_before_mib"]
        print(f"served ({env.get('DASHBOARD_CACHE_MB', 'default')} MB cache): health {row['health_s']:.2f} s, "
              f"overview {row['overview_s']:.2f} s, explorer +{row['explorer_after_overview_s']:.2f} s; "
              f"{clicks} Next clicks, median {statistics.median(times) if times else float('nan'):.0f} ms; "
              f"RSS {row['rss_before_mib']:.0f} -> {row['rss_after_mib']:.0f} MiB", flush=True)
        return row
    finally:
        page.close()
        stop_group(process)


def browser_sessions(env: dict, repeats: int, clicks: int, small_cache_mb: int | None) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            cold = [served_session(browser, env, clicks if repeat == repeats - 1 else 0) for repeat in range(repeats)]
            small = served_session(browser, {**env, "DASHBOARD_CACHE_MB": str(small_cache_mb)}, clicks) \
                if small_cache_mb else None
        finally:
            browser.close()
    return {"served": cold, "small_cache": small}


# ---------------------------------------------------------------------------- AppTest

def explorer_rerender(ids: int, root: Path) -> dict:
    from streamlit.testing.v1 import AppTest

    from training.data.index import load_or_build_index

    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("app_pages/explorer.py").run()
    runs = list(at.multiselect(key="explorer_runs").value)
    index = load_or_build_index(root, write=False, report=lambda message: None)
    shown = [entry.id for entry in index.split("test")][1:1 + ids]
    first_new, seen = [], []
    for times in (first_new, seen):  # new ids (decoded from disk), then the same again (from the caches)
        for image_id in shown:
            at.number_input(key="explorer_id").set_value(image_id)
            t0 = time.perf_counter()
            at.run()
            times.append((time.perf_counter() - t0) * 1000)
    images = sum(len(image.value) for image in at.image)
    return {"runs_selected": len(runs), "images_shown": images, "exception": bool(at.exception),
            "new_id_ms": summary(first_new), "seen_id_ms": summary(seen)}


# ---------------------------------------------------------------------------- make demo

def make_demo_second_start() -> dict:
    api_port, dashboard_port = free_port(), free_port()
    started = time.perf_counter()
    process = subprocess.Popen(["make", "demo", f"API_PORT={api_port}", f"DASHBOARD_PORT={dashboard_port}"],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        healthy = wait_http(f"http://127.0.0.1:{dashboard_port}/_stcore/health", process)
    finally:
        stop_group(process)
    return {"dashboard_answers_s": None if healthy is None else healthy - started}


# ---------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_resolution_argument(parser)
    parser.add_argument("--ids", type=int, default=20, help="new ids for the AppTest re-render")
    parser.add_argument("--memory-ids", type=int, default=50, help="Next clicks in chromium (new ids)")
    parser.add_argument("--repeats", type=int, default=1, help="cold starts")
    parser.add_argument("--small-cache-mb", type=int, default=16, help="0: no run with a small cache")
    parser.add_argument("--make-demo", action="store_true", help="also time a second `make demo`")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.chdir(REPO)

    artifacts, root = bench_store(args.resolution)
    env = {"ARTIFACTS_DIR": str(artifacts), "CITYSCAPES_DATASET": str(root)}
    os.environ.update(env)
    results = {"resolution": args.resolution, "cpus": os.cpu_count(), "runs": RUNS, "browser": CHROMIUM.exists(),
               "explorer_apptest": explorer_rerender(args.ids, root)}
    if CHROMIUM.exists():
        results.update(browser_sessions(env, args.repeats, args.memory_ids, args.small_cache_mb))
    if args.make_demo:
        results["make_demo_second_start"] = make_demo_second_start()
    out = args.out or RESULTS / f"dashboard-{args.resolution}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    report(results)


def report(results: dict) -> None:
    print(f"\n### Dashboard, {results['resolution']} ({results['runs']} runs, {results['cpus']} CPUs)\n")
    print("| measure | median | min | max |\n|---|---|---|---|")
    explorer = results["explorer_apptest"]
    for key, label in (("new_id_ms", "explorer re-render, new id, 4 runs: AppTest run (ms)"),
                       ("seen_id_ms", "explorer re-render, id seen before: AppTest run (ms)")):
        s = explorer[key]
        print(f"| {label} | {s['median']:.0f} | {s['min']:.0f} | {s['max']:.0f} |")
    served = results.get("served") or []
    for key, label in (("health_s", "cold start: process to /_stcore/health (s)"),
                       ("overview_s", "cold start: process to the Overview drawn in chromium (s)"),
                       ("explorer_after_overview_s", "then the Image explorer drawn, first time (s)")):
        values = [row[key] for row in served]
        if values:
            print(f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")
    for row, what in ((served[-1] if served else None, "default cache"), (results.get("small_cache"), "small cache")):
        if row and row["next_click_ms"]:
            s = summary(row["next_click_ms"])
            print(f"| explorer: click Next to new images drawn in chromium, {what} (ms) | {s['median']:.0f} "
                  f"| {s['min']:.0f} | {s['max']:.0f} |")
            print(f"| server RSS over {s['n']} new ids, {what} (MiB) | +{row['rss_growth_mib']:.0f} "
                  f"| {row['rss_before_mib']:.0f} | {row['rss_after_mib']:.0f} |")
    if "make_demo_second_start" in results:
        print(f"| make demo, second start: dashboard answers (s) | "
              f"{results['make_demo_second_start']['dashboard_answers_s']} | | |")


if __name__ == "__main__":
    main()
