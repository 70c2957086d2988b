"""The dashboard: cold start to the first page, re-rendering the explorer when the image id
changes (4 runs selected), and the second start of ``make demo``.

Runs on the real demo store (``artifacts/`` with its runs, the embedded dataset; ``make demo``
makes them). Writes ``bench/results/dashboard.json`` and prints Markdown tables. No asserts.

    .venv/bin/python bench/bench_dashboard.py [--repeats 3] [--ids 20] [--skip-demo]

- cold start: ``streamlit run dashboard/streamlit_app.py`` started here (a new process each
  repeat; chromium already launched), timed to ``/_stcore/health``, to the Overview fully drawn in
  chromium, then to the Image explorer drawn (its photo, ground truth, 4 predictions and 4
  error maps loaded; the first explorer render reads everything from disk). Without
  ``/usr/bin/chromium`` only the health time and a first AppTest run are reported;
- explorer re-render: AppTest (the script run alone, no browser): ``at.run()`` after setting the
  id box to an id not shown before (``new id``: PNG reads from disk) and to one shown before
  (``seen id``: everything from ``st.cache_data``); and in chromium the time from a click on
  "Next" to the new images drawn (server run + websocket + browser decoding and layout);
- ``make demo`` second start: the real ``make demo`` (data and runs present) in a new process
  group on free ports, from the command's start to the dashboard answering ``/_stcore/health``,
  with the moments the API answered; the whole group (and the API's own group, through the
  script's trap) is stopped after.
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
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import training  # noqa: E402,F401  (import-time environment)

RESULTS = REPO / "bench" / "results"
APP = REPO / "dashboard" / "streamlit_app.py"
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
START_TIMEOUT_S = 120  # bounds, not measurements
PAGE_TIMEOUT_MS = 120_000
EXPLORER_IMAGES = 10  # photo, ground truth, 4 predictions, 4 error maps


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


def cold_start_browser(repeats: int, clicks: int) -> dict:
    from playwright.sync_api import sync_playwright

    rows, next_clicks = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            for repeat in range(repeats):
                port = free_port()
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                started = time.perf_counter()
                process = start_dashboard(port, {})
                try:
                    healthy = wait_http(f"http://127.0.0.1:{port}/_stcore/health", process)
                    if healthy is None:
                        raise RuntimeError("the dashboard did not start")
                    page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
                    page.wait_for_function("() => [...document.querySelectorAll('h1')].length > 0",
                                           timeout=PAGE_TIMEOUT_MS)
                    wait_rendered(page)
                    overview = time.perf_counter()
                    page.locator('[data-testid="stSidebarNav"] a', has_text="Image explorer").first.click()
                    wait_rendered(page, EXPLORER_IMAGES)
                    explorer = time.perf_counter()
                    rows.append({"health_s": healthy - started, "overview_s": overview - started,
                                 "explorer_after_overview_s": explorer - overview})
                    print(f"cold start {repeat + 1}: health {healthy - started:.2f} s, overview drawn "
                          f"{overview - started:.2f} s, then explorer drawn in {explorer - overview:.2f} s", flush=True)
                    if repeat == repeats - 1:  # "Next" clicks on the last server (new ids each time)
                        for _ in range(clicks):
                            before = caption_id(page)
                            t0 = time.perf_counter()
                            page.get_by_role("button", name="Next").click()
                            page.wait_for_function(
                                """first => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
                                   .some(c => /^Image \\d+/.test(c.innerText)
                                              && !c.innerText.startsWith(`Image ${first} `))""",
                                arg=before, timeout=PAGE_TIMEOUT_MS)
                            wait_rendered(page, EXPLORER_IMAGES)
                            next_clicks.append((time.perf_counter() - t0) * 1000)
                finally:
                    page.close()
                    stop_group(process)
        finally:
            browser.close()
    return {"cold_start": rows, "next_click_ms": summary(next_clicks) if next_clicks else None}


def cold_start_without_browser(repeats: int) -> dict:
    from streamlit.testing.v1 import AppTest

    rows = []
    for _ in range(repeats):
        port = free_port()
        started = time.perf_counter()
        process = start_dashboard(port, {})
        try:
            healthy = wait_http(f"http://127.0.0.1:{port}/_stcore/health", process)
        finally:
            stop_group(process)
        t0 = time.perf_counter()
        at = AppTest.from_file(str(APP), default_timeout=120).run()
        rows.append({"health_s": healthy - started, "first_apptest_run_s": time.perf_counter() - t0,
                     "exception": bool(at.exception)})
    return {"cold_start": rows, "next_click_ms": None}


# ---------------------------------------------------------------------------- AppTest

def explorer_rerender(ids: int) -> dict:
    from streamlit.testing.v1 import AppTest

    from training.data.cityscapes import resolve_data_root
    from training.data.index import load_or_build_index

    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("app_pages/explorer.py").run()
    runs = list(at.multiselect(key="explorer_runs").value)
    index = load_or_build_index(resolve_data_root(None), write=False, report=lambda message: None)
    test_ids = [entry.id for entry in index.split("test")]
    box = at.number_input(key="explorer_id")
    first_new, seen = [], []
    shown = test_ids[1:1 + ids]
    for image_id in shown:  # never shown before in this process
        box = at.number_input(key="explorer_id").set_value(image_id)
        t0 = time.perf_counter()
        at.run()
        first_new.append((time.perf_counter() - t0) * 1000)
    for image_id in shown:  # every read now comes from st.cache_data
        box = at.number_input(key="explorer_id").set_value(image_id)
        t0 = time.perf_counter()
        at.run()
        seen.append((time.perf_counter() - t0) * 1000)
    del box
    return {"runs_selected": len(runs), "exception": bool(at.exception), "new_id_ms": summary(first_new),
            "seen_id_ms": summary(seen)}


# ---------------------------------------------------------------------------- make demo

def make_demo_second_start(repeats: int) -> list[dict]:
    rows = []
    for repeat in range(repeats):
        api_port, dashboard_port = free_port(), free_port()
        marks: dict[str, float] = {}
        lines: list[str] = []
        started = time.perf_counter()
        process = subprocess.Popen(
            ["make", "demo", f"API_PORT={api_port}", f"DASHBOARD_PORT={dashboard_port}"], cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            errors="replace", start_new_session=True)

        # Bound now: the reader thread lives only within this iteration.
        def read(process=process, lines=lines, marks=marks, started=started):
            for line in process.stdout:
                now = time.perf_counter()
                lines.append(line.rstrip())
                if "demo: starting the API" in line:
                    marks.setdefault("prerequisites_done_s", now - started)
                if "demo: the API answers" in line:
                    marks.setdefault("api_answers_s", now - started)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            healthy = wait_http(f"http://127.0.0.1:{dashboard_port}/_stcore/health", process)
        finally:
            stop_group(process)
            reader.join(timeout=30)
        api_left = True
        for _ in range(100):  # the script's trap stops the API's own process group
            with socket.socket() as sock:
                sock.settimeout(0.2)
                api_left = sock.connect_ex(("127.0.0.1", api_port)) == 0
            if not api_left:
                break
            time.sleep(0.2)
        row = {"dashboard_answers_s": None if healthy is None else healthy - started, **marks,
               "api_stopped_after": not api_left}
        if healthy is None:
            row["output_tail"] = lines[-30:]
        rows.append(row)
        print(f"make demo (second start) {repeat + 1}: " + ", ".join(
            f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items() if k != "output_tail"),
            flush=True)
    return rows


# ---------------------------------------------------------------------------- main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ids", type=int, default=20, help="ids for the explorer re-render (and Next clicks)")
    parser.add_argument("--demo-repeats", type=int, default=2)
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "dashboard.json")
    args = parser.parse_args()
    os.chdir(REPO)

    from training.runs.store import list_runs

    results = {"cpus": os.cpu_count(), "runs": [run.name for run in list_runs()],
               "browser": CHROMIUM.exists()}
    if CHROMIUM.exists():
        results.update(cold_start_browser(args.repeats, args.ids))
    else:
        results.update(cold_start_without_browser(args.repeats))
    results["explorer_apptest"] = explorer_rerender(args.ids)
    if not args.skip_demo:
        results["make_demo_second_start"] = make_demo_second_start(args.demo_repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    report(results)


def report(results: dict) -> None:
    print(f"\n### Dashboard ({len(results['runs'])} runs, {results['cpus']} CPUs)\n")
    print("| measure | median | min | max |\n|---|---|---|---|")
    cold = results["cold_start"]
    for key, label in (("health_s", "cold start: process to /_stcore/health (s)"),
                       ("overview_s", "cold start: process to the Overview drawn in chromium (s)"),
                       ("explorer_after_overview_s", "then the Image explorer drawn, first time (s)"),
                       ("first_apptest_run_s", "first AppTest run of the app (s)")):
        values = [row[key] for row in cold if key in row]
        if values:
            print(f"| {label} | {statistics.median(values):.2f} | {min(values):.2f} | {max(values):.2f} |")
    explorer = results["explorer_apptest"]
    for key, label in (("new_id_ms", "explorer re-render, new id, 4 runs: AppTest run (ms)"),
                       ("seen_id_ms", "explorer re-render, id seen before: AppTest run (ms)")):
        s = explorer[key]
        print(f"| {label} | {s['median']:.0f} | {s['min']:.0f} | {s['max']:.0f} |")
    if results.get("next_click_ms"):
        s = results["next_click_ms"]
        print(f"| explorer: click Next to new images drawn in chromium (ms) | {s['median']:.0f} | {s['min']:.0f} "
              f"| {s['max']:.0f} |")
    demo = [row for row in results.get("make_demo_second_start", []) if row["dashboard_answers_s"] is not None]
    for key, label in (("prerequisites_done_s", "make demo, second start: check/preview/models done (s)"),
                       ("api_answers_s", "make demo, second start: API answers /health (s)"),
                       ("dashboard_answers_s", "make demo, second start: dashboard answers (s)")):
        values = [row[key] for row in demo if key in row]
        if values:
            print(f"| {label} | {statistics.median(values):.1f} | {min(values):.1f} | {max(values):.1f} |")


if __name__ == "__main__":
    main()
