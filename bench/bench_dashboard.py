"""The dashboard at the demo's size and at Cityscapes' own: re-rendering the Image explorer when
the id changes (4 runs), in AppTest and in chromium, the server's memory over 50 ids, cold start.

Runs on a benchmark store made here (once, into ``data/``): 4 runs whose predictions are the
ground truth shifted and patched, written at ground-truth resolution as a real run's evaluation
writes them, for the 56 test images of ``bench.datasets.bench_dataset(resolution, 8, 56)``
(256x512 or 2048x1024). Writes ``bench/results/dashboard-<resolution>.json`` and prints a
Markdown table. No asserts.

    .venv/bin/python bench/bench_dashboard.py --resolution demo|full [--ids 20] [--memory-ids 50]
                                              [--repeats 1] [--small-cache-mb 16] [--make-demo]
    .venv/bin/python bench/bench_dashboard.py --compare-view

- explorer re-render (AppTest, the script run alone in this process): ``at.run()`` after
  setting the id box to an id not shown before (``new id``: every file decoded) and to one shown
  before (``seen id``: everything from the dashboard's caches);
- in chromium (``/usr/bin/chromium``) on ``streamlit run``: cold start (process to
  ``/_stcore/health``, to the Overview drawn, then to the explorer drawn), then ``--memory-ids``
  clicks on "Next" (new ids each time), each timed from the click to the new images drawn, and
  the server process's RSS before the first click and after the last. With ``--small-cache-mb``
  the clicks are repeated on a server whose ``DASHBOARD_CACHE_MB`` is that small: the growth
  follows the setting;
- ``--compare-view`` (alone): the explorer's side-by-side figure for a new id, 1 and 4 runs, at
  256x512 and 2048x1024 (full-size pictures drawn and encoded, hover cells, ``plotly.io.to_json``:
  the time and the bytes Streamlit sends), into ``bench/results/compare_view.json``;
- ``--make-demo``: the second start of the real ``make demo`` (data and runs present) to the
  dashboard answering ``/_stcore/health``;
- ``--pages`` (alone): every page, server side in AppTest, on a 4-run store of the 24 test images
  of ``bench_dataset(resolution, 24, 24)`` at 256x512 and (``--pages-full``) 2048x1024: the cold
  first page (the Overview, nothing cached), each page's first visit, then a second round of page
  changes (warm caches), and a cProfile of the slowest first visit (caches cleared), its top entries
  by cumulative time; into ``bench/results/dashboard.json``. Its runs are imported predictions
  (no model, no anatomy, no confidence): those pages' heavy parts are not exercised.

    .venv/bin/python bench/bench_dashboard.py --pages [--pages-full] [--rounds 3] [--profile "Image explorer"]
"""

from __future__ import annotations

import argparse
import hashlib
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
from bench.results_file import write_results  # noqa: E402

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


def bench_store(resolution: str, train: int = TRAIN, val: int = VAL, images: int | None = None) -> tuple[Path, Path]:
    """(artifacts, data root): RUNS runs of ``resolution``'s data (``train`` and ``val`` images, the
    first ``images`` test images predicted: all by default), made once."""
    import shutil

    import yaml

    from training.data.cityscapes import read_label_ids
    from training.data.index import load_or_build_index
    from training.data.labels import get_class_set
    from training.evaluation.evaluator import Evaluator
    from training.evaluation.metrics import iou_per_class, mean_iou, pixel_accuracy
    from training.files import finite_or_none
    from training.runs.writer import RunWriter

    root = bench_dataset(resolution, train=train, val=val)
    artifacts = REPO / "data" / (f"bench-dashboard-store-{root.name}" + (f"-{images}" if images else ""))
    if (artifacts / "bench-complete").exists():
        return artifacts, root
    shutil.rmtree(artifacts, ignore_errors=True)
    index = load_or_build_index(root, write=False, report=lambda message: None)
    class_set, entries = get_class_set("categories8"), index.split("test")[:images]
    height, width = entries[0].height, entries[0].width
    print(f"writing {RUNS} runs of {len(entries)} predictions ({height}x{width}) into {artifacts} (once)",
          file=sys.stderr)
    for number in range(RUNS):
        name = f"bench_{number}"
        writer, evaluator, rows, confusions = RunWriter(name, artifacts), Evaluator(class_set), [], []
        for entry in entries:
            label_ids = read_label_ids(root / entry.label)
            predicted = fake_prediction(class_set.lut[label_ids], number, entry.id)
            confusion = evaluator.add(label_ids, predicted).all_classes  # (the official counts aside)
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


def served_environment(env: dict) -> dict:
    """The served dashboard's environment, as on a user's machine: the project's modules compiled
    once and their bytecode kept. This machine's shell sets ``PYTHONDONTWRITEBYTECODE=1``, under
    which every new server compiles each module of the dashboard and the core from source again
    (60-70 ms of the explorer's first visit, more of the first page's), which no user pays twice."""
    import compileall

    for folder in ("dashboard", "training"):
        compileall.compile_dir(str(REPO / folder), quiet=1)  # writes __pycache__/ (ignored by git); once
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    return {**environment, **env}


def start_dashboard(port: int, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dashboard.serve", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=REPO, env=served_environment(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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
        page.wait_for_function("() => location.pathname.endsWith('/explorer')", timeout=PAGE_TIMEOUT_MS)
        wait_rendered(page)  # its default layout: the side-by-side figure (bench_dashboard_browser.py times it)
        explorer = time.perf_counter()
        page.get_by_text("small multiples", exact=True).click()  # the layout whose pictures the Next clicks time
        wait_rendered(page, EXPLORER_IMAGES)
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


# ---------------------------------------------------------------------------- the side-by-side view

COMPARE_IMAGES = 3  # ids per measure: each a new id (nothing cached)


def compare_view_figure(key, image_id: int, runs: list[str], kind: str) -> tuple[float, int, dict]:
    """(ms, bytes, parts) of the explorer's side-by-side figure for a new id: what
    ``sections.compare_view.compare_ui`` computes (the full-size pictures decoded, drawn and
    encoded; the hover cells; the figure) and the JSON Streamlit sends (``plotly.io.to_json``)."""
    import plotly.io as pio

    import dashboard.pictures.compare_figure as compare_figure
    import dashboard.pictures.images as pictures
    import dashboard.views.compare_panels as compare
    from dashboard.pictures.marks import NO_MARKS
    from dashboard.views.hover_cells import class_name_lookup
    from training.data.labels import get_class_set

    class_set = get_class_set("categories8")
    served: dict[str, int] = {}  # what the media endpoint would serve (once per address), by address

    def media_url(picture: bytes, mime: str, coordinates: str) -> str:  # no Streamlit server here
        address = f"/media/{hashlib.sha224(picture).hexdigest()}"
        served[address] = len(picture)
        return address

    compare_figure.media_url = media_url
    t0 = time.perf_counter()
    image = pictures.image_ref(key, image_id)
    refs = pictures.run_refs(key, runs, image)
    photo = pictures.photo_view(image)
    views = {run: pictures.prediction_view(image, refs[run]) for run in runs}
    t1 = time.perf_counter()
    wanted = [("photo", "photo", class_set.name, None), ("ground truth", "ground truth", class_set.name, None)]
    wanted += [(f"{run}: {kind}", kind, class_set.name, refs[run]) for run in runs]
    panels = compare_figure.panel_pictures(image, wanted, 0.6, {class_set.name: None}, True, NO_MARKS)
    t2 = time.perf_counter()
    lookup = class_name_lookup(class_set.names)
    lines = [("true", photo.hover_truth(class_set)), *((run, views[run].hover) for run in runs)]
    stride = compare.hover_stride(lines[0][1].shape, len(panels))
    names, template = compare.hover_cells([(label, compare.coarse_cells(cells, stride), lookup)
                                           for label, cells in lines])
    figure = compare_figure.compare_figure(panels, photo.shape, names, template, stride)
    sent = pio.to_json(figure, validate=False)
    t3 = time.perf_counter()
    pictures_bytes = sum(served.values()) + sum(len(layer.source) for panel in panels for layer in panel.layers
                                                if layer.source.startswith("data:"))
    return (t3 - t0) * 1000, len(sent) + sum(served.values()), {
        "views_ms": (t1 - t0) * 1000, "full_size_pictures_ms": (t2 - t1) * 1000, "figure_json_ms": (t3 - t2) * 1000,
        "pictures_bytes": pictures_bytes, "hover_cells": list(names.shape[:2]), "hover_stride": stride}


def compare_view_bench() -> dict:
    """The side-by-side figure per new id, 1 and 4 runs, prediction and error map panels, at both
    resolutions (a store of COMPARE_IMAGES predicted images each, made once)."""
    import dashboard.readers.store as store
    from training.data.index import load_or_build_index

    results = {}
    for resolution in ("demo", "full"):
        artifacts, root = bench_store(resolution, train=24, val=24, images=COMPARE_IMAGES)  # the datasets made
        os.environ.update({"ARTIFACTS_DIR": str(artifacts), "CITYSCAPES_DATASET": str(root),
                           "DASHBOARD_CACHE_MB": "1024"})
        key = store.store_key()
        ids = [entry.id for entry in load_or_build_index(root, write=False, report=lambda m: None).split("test")]
        for count in (1, RUNS):
            for kind in ("prediction", "error map"):
                rows = [compare_view_figure(key, image_id, [f"bench_{n}" for n in range(count)], kind)
                        for image_id in ids[:COMPARE_IMAGES]]
                if kind == "prediction":  # the same id again: the pictures come from the cache
                    cached = compare_view_figure(key, ids[0], [f"bench_{n}" for n in range(count)], kind)[0]
                name = f"{resolution} {root.name.split('-')[1]}, {count} run{'s' * (count > 1)}, {kind}"
                results[name] = {"new_id_ms": summary([row[0] for row in rows]), "seen_id_ms": cached,
                                 "bytes_sent": int(statistics.median(row[1] for row in rows)),
                                 **{part: statistics.median(row[2][part] for row in rows)
                                    for part in ("views_ms", "full_size_pictures_ms", "figure_json_ms",
                                                 "pictures_bytes")},
                                 "hover_cells": rows[0][2]["hover_cells"], "hover_stride": rows[0][2]["hover_stride"]}
    return results


def compare_view_report(results: dict) -> None:
    print("\n### Explorer side by side: the figure per new id (full-size pictures)\n")
    print("| case | build + JSON, new id (ms, median) | seen id (ms) | pictures (ms) | sent (MB) | hover cells |")
    print("|---|---|---|---|---|---|")
    for name, row in results.items():
        print(f"| {name} | {row['new_id_ms']['median']:.0f} | {row['seen_id_ms']:.0f} | "
              f"{row['full_size_pictures_ms']:.0f} | {row['bytes_sent'] / 1e6:.2f} | "
              f"{row['hover_cells'][0]}x{row['hover_cells'][1]} |")


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

# ---------------------------------------------------------------------------- every page, server side

PAGE_SCRIPTS = {"Overview": None, "Image explorer": "app_pages/explorer.py", "Gallery": "app_pages/gallery.py",
                "Tags and notes": "app_pages/tags.py", "Model comparison": "app_pages/comparison.py",
                "Calibration": "app_pages/calibration.py", "Error anatomy": "app_pages/anatomy.py",
                "Check labels": "app_pages/labels_check.py", "Embedded exports": "app_pages/exports.py",
                "Deployed model": "app_pages/deployed.py"}
PROFILE_TOP = 25


def _clear_caches() -> None:
    """Every cache of the dashboard in this process (the pictures' too: a ``st.cache_resource``); the
    thumbnails cached on disk under the store stay (a new store has none)."""
    import streamlit as st

    st.cache_data.clear()
    st.cache_resource.clear()


def _visit(at, page: str | None) -> float:
    """ms of one page change (``None``: the Overview, the app's default page)."""
    at.switch_page(page or "app_pages/overview.py")
    t0 = time.perf_counter()
    at.run()
    return (time.perf_counter() - t0) * 1000


def pages_bench(resolution: str, rounds: int, profile_page: str | None = None) -> dict:
    """Every page of the app on a 4-run store of ``resolution``: the cold first page, each page's
    first visit, ``rounds`` rounds of warm page changes, and the slowest first visit profiled (or
    ``profile_page``'s)."""
    import cProfile
    import io
    import pstats

    from streamlit.testing.v1 import AppTest

    artifacts, root = bench_store(resolution, train=24, val=24)
    os.environ.update({"ARTIFACTS_DIR": str(artifacts), "CITYSCAPES_DATASET": str(root),
                       "SEGMENTATION_API_URL": "http://127.0.0.1:9"})  # no API: the Deployed page's "down" state
    _clear_caches()
    at = AppTest.from_file(str(APP), default_timeout=600)
    t0 = time.perf_counter()
    at.run()
    cold = (time.perf_counter() - t0) * 1000
    exceptions = {"Overview": [str(e.message)[:200] for e in at.exception]}
    first, warm = {}, {name: [] for name in PAGE_SCRIPTS}
    for name, script in PAGE_SCRIPTS.items():
        if script:
            first[name] = _visit(at, script)
            exceptions[name] = [str(e.message)[:200] for e in at.exception]
    for _ in range(rounds):
        for name, script in PAGE_SCRIPTS.items():
            warm[name].append(_visit(at, script))
    exceptions = {name: found for name, found in exceptions.items() if found}
    slowest = profile_page or max(first, key=first.get)
    _clear_caches()
    # The page runs in AppTest's script thread: profile that thread, around the script's run.
    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner

    profiler, original = cProfile.Profile(), ScriptRunner._run_script

    def profiled(self, *args, **kwargs):
        profiler.enable()
        try:
            return original(self, *args, **kwargs)
        finally:
            profiler.disable()

    ScriptRunner._run_script = profiled
    try:
        profiled_ms = _visit(at, PAGE_SCRIPTS[slowest])
    finally:
        ScriptRunner._run_script = original
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(PROFILE_TOP)
    lines = [line.rstrip().replace(str(REPO) + "/", "").replace(sys.prefix + "/", "")
             for line in text.getvalue().splitlines() if line.strip()]
    return {"resolution": resolution, "store": artifacts.name, "cold_first_page_ms": cold,
            "first_visit_ms": first, "warm_ms": {name: summary(times) for name, times in warm.items()},
            "exceptions": exceptions, "profiled_page": slowest, "profiled_run_ms": profiled_ms,
            "profile_top_cumulative": lines[-PROFILE_TOP - 1:]}


def pages_report(results: list[dict]) -> None:
    for result in results:
        print(f"\n### Every page in AppTest, {result['resolution']} (4 runs, 24 test images)\n")
        print(f"cold first page (Overview, nothing cached): {result['cold_first_page_ms']:.0f} ms\n")
        print("| page | first visit (ms) | warm change, median (ms) | warm max (ms) |\n|---|---|---|---|")
        for name, warm in result["warm_ms"].items():
            first = result["first_visit_ms"].get(name)
            print(f"| {name} | {'-' if first is None else f'{first:.0f}'} | {warm['median']:.0f} | {warm['max']:.0f} |")
        if result["exceptions"]:
            print(f"\nexceptions: {result['exceptions']}")
        print(f"\nProfile of the slowest first visit ({result['profiled_page']}, caches cleared; "
              f"{result['profiled_run_ms']:.0f} ms under the profiler):\n")
        print("\n".join(result["profile_top_cumulative"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_resolution_argument(parser)
    parser.add_argument("--ids", type=int, default=20, help="new ids for the AppTest re-render")
    parser.add_argument("--memory-ids", type=int, default=50, help="Next clicks in chromium (new ids)")
    parser.add_argument("--repeats", type=int, default=1, help="cold starts")
    parser.add_argument("--small-cache-mb", type=int, default=16, help="0: no run with a small cache")
    parser.add_argument("--make-demo", action="store_true", help="also time a second `make demo`")
    parser.add_argument("--compare-view", action="store_true",
                        help="only the explorer's side-by-side figure per id (both resolutions): "
                             "bench/results/compare_view.json")
    parser.add_argument("--pages", action="store_true",
                        help="only every page in AppTest (256x512): bench/results/dashboard.json")
    parser.add_argument("--pages-full", action="store_true", help="with --pages: 2048x1024 too")
    parser.add_argument("--rounds", type=int, default=3, help="with --pages: rounds of warm page changes")
    parser.add_argument("--profile", choices=[name for name, script in PAGE_SCRIPTS.items() if script],
                        help="with --pages: profile this page's first visit (default: the slowest)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    os.chdir(REPO)
    if args.pages:
        resolutions = ("demo", "full") if args.pages_full else ("demo",)
        results = [pages_bench(resolution, args.rounds, args.profile) for resolution in resolutions]
        write_results("dashboard", {"cpus": os.cpu_count(), "pages": results}, out=args.out)
        pages_report(results)
        return
    if args.compare_view:
        results = {"cpus": os.cpu_count(), "images": COMPARE_IMAGES, "cases": compare_view_bench()}
        write_results("compare_view", results, out=args.out)
        compare_view_report(results["cases"])
        return

    artifacts, root = bench_store(args.resolution)
    env = {"ARTIFACTS_DIR": str(artifacts), "CITYSCAPES_DATASET": str(root)}
    os.environ.update(env)
    results = {"resolution": args.resolution, "cpus": os.cpu_count(), "runs": RUNS, "browser": CHROMIUM.exists(),
               "explorer_apptest": explorer_rerender(args.ids, root)}
    if CHROMIUM.exists():
        results.update(browser_sessions(env, args.repeats, args.memory_ids, args.small_cache_mb))
    if args.make_demo:
        results["make_demo_second_start"] = make_demo_second_start()
    write_results(f"dashboard-{args.resolution}", results, out=args.out)
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
