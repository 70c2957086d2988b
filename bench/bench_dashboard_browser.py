"""The dashboard as a user feels it, in chromium (Playwright, headless) on ``streamlit run``: every
sidebar page change (first visit and again), a cold first page, "Open in the explorer" from the
Model comparison page, an id change in the explorer's side-by-side view and the zoom of its figure.

On a 4-run store (imported predictions, ``bench_dashboard.bench_store(resolution, train=24, val=24)``:
the 24 test images predicted) at 256x512 and at 2048x1024. No API (``SEGMENTATION_API_URL`` points
at a closed port: the Deployed page's "down" state). Each repeat starts a new server (nothing cached):

- cold first page: a new browser context opens the app's URL -> the app idle and the Overview drawn;
- page changes: a click on each page's link in the sidebar -> the URL is the page's, the app idle,
  the page's title (``stMain h1``) shown, no skeleton left, every image loaded and every plotly
  chart drawn; a first round (each page's first visit: ``cold``) then a second (``warm``);
- "Open in the explorer" (Model comparison, under the confusion matrix) -> the explorer drawn;
- explorer id change: "Next" -> the new id's caption, the app idle and the side-by-side figure
  redrawn (its first trace's picture replaced);
- zoom: a box dragged in the side-by-side figure's second panel; from mouse-up to every panel's
  ``_fullLayout.xaxis*/yaxis*.range`` equal to the new region (polled each animation frame in the page).

A returning browser: a browser context kept from server to server on one address (its HTTP cache
and compiled-code cache filled by an earlier visit, as a user's browser is after the first day),
each server new: the cold first page and each page's first visit. A new browser context fetches and
compiles each page's lazily loaded widget scripts at its first visit (plotly's 4.7 MB on the first
page with a chart); a returning one has them.

The Check labels page keeps its scan in the run store (``training.runs.derived``): the first
server's store has none (removed), so its first visit scans (reported on a line of its own); the
later servers read what it kept, as a restarted dashboard does.

Medians over ``--repeats`` (one per server) per measure and resolution; writes
``bench/results/dashboard_browser.json`` and prints a Markdown table. No asserts.

    .venv/bin/python bench/bench_dashboard_browser.py [--repeats 3] [--resolutions demo,full] [--zooms 3] [--ids 3]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.bench_dashboard import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    IDLE,
    bench_store,
    free_port,
    start_dashboard,
    stop_group,
    wait_http,
)
from bench.results_file import write_results  # noqa: E402
from dashboard.readers.label_scan import DERIVED_KIND as LABEL_SCANS  # noqa: E402
from training.runs.derived import CACHE as DERIVED_CACHE  # noqa: E402

RESULTS = REPO / "bench" / "results"
WIDTH, HEIGHT = 1400, 900
TIMEOUT_MS = 180_000  # bounds, not measurements
PAGE_TARGET_S, COLD_TARGET_S = 1.0, 3.0
# (title in the sidebar, url path): dashboard/app.py's pages, in its order
PAGES = [("Overview", ""), ("Image explorer", "explorer"), ("Gallery", "gallery"), ("Tags and notes", "tags"),
         ("Model comparison", "comparison"), ("Calibration", "calibration"), ("Error anatomy", "anatomy"),
         ("Check labels", "labels"), ("Embedded exports", "exports"), ("Deployed model", "deployed"),
         ("Drive", "drive")]
DRAWN = """previous => {
    const main = document.querySelector('[data-testid="stMain"]');
    if (!main || !document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]')) return false;
    const title = main.querySelector('h1');
    if (previous !== null && (title === null || title.innerText === previous)) return false;
    const images = [...main.querySelectorAll('[data-testid="stImage"] img')];
    const charts = main.querySelectorAll('[data-testid="stPlotlyChart"]').length;
    const drawn = main.querySelectorAll('[data-testid="stPlotlyChart"] .main-svg').length;
    return document.querySelectorAll('[data-testid="stSkeleton"]').length === 0
        && images.every(img => img.complete && img.naturalWidth > 0) && drawn >= charts;
}"""
COMPARE_PLOT = """[...document.querySelectorAll('.js-plotly-plot')]
    .find(p => p._fullLayout && p._fullLayout.meta && p._fullLayout.meta.panels)"""
RANGES = f"""() => {{
    const plot = {COMPARE_PLOT};
    if (!plot) return null;
    const layout = plot._fullLayout;
    const names = Object.keys(layout).filter(k => /^[xy]axis\\d*$/.test(k)).sort();
    return Object.fromEntries(names.map(k => [k, layout[k].range.slice()]));
}}"""
PANEL_BOX = f"""() => {{
    const plot = {COMPARE_PLOT};
    const box = plot.querySelector('.nsewdrag[data-subplot="x2y2"]').getBoundingClientRect();
    return {{x: box.x, y: box.y, width: box.width, height: box.height}};
}}"""
# Before the mouse-up: poll each animation frame until every panel shows the same region, not ``before``.
WATCH_ZOOM = f"""before => {{
    window.__zoomDone = null;
    const same = (a, b) => Math.abs(a[0] - b[0]) < 1e-6 && Math.abs(a[1] - b[1]) < 1e-6;
    const poll = () => {{
        const plot = {COMPARE_PLOT};
        if (plot) {{
            const layout = plot._fullLayout;
            const xs = Object.keys(layout).filter(k => /^xaxis\\d*$/.test(k)).map(k => layout[k].range);
            const ys = Object.keys(layout).filter(k => /^yaxis\\d*$/.test(k)).map(k => layout[k].range);
            if (xs.every(r => same(r, xs[0])) && ys.every(r => same(r, ys[0]))
                && !same(xs[0], before.xaxis) && !same(ys[0], before.yaxis)) {{
                window.__zoomDone = performance.now();
                return;
            }}
        }}
        requestAnimationFrame(poll);
    }};
    requestAnimationFrame(poll);
}}"""
FIRST_PICTURE = f"""() => {{ const p = {COMPARE_PLOT};
    return p && p.layout.images && p.layout.images.length ? String(p.layout.images[0].source).slice(-200) : null; }}"""


# Watches the app's run state from the page: the performance.now() of the last "notRunning" after a click.
WATCH_RUN = """() => {
    if (window.__runWatch) window.__runWatch.disconnect();
    window.__runEnded = null;
    window.__clickAt = performance.now();
    const app = document.querySelector('[data-testid="stApp"]');
    window.__runWatch = new MutationObserver(() => {
        if (app.getAttribute('data-test-script-state') === 'notRunning') window.__runEnded = performance.now();
    });
    window.__runWatch.observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
RUN_ENDED = "() => window.__runEnded === null ? null : window.__runEnded - window.__clickAt"


def main_title(page) -> str | None:
    return page.evaluate("() => { const h = document.querySelector('[data-testid=\"stMain\"] h1');"
                         " return h ? h.innerText : null; }")


def wait_drawn(page, previous_title: str | None) -> None:
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)
    page.wait_for_function(DRAWN, arg=previous_title, timeout=TIMEOUT_MS)
    page.wait_for_selector(IDLE, timeout=TIMEOUT_MS)


def change_page(page, base: str, title: str, path: str, runs: dict | None = None) -> float:
    """ms from the click on the sidebar link to the page drawn (``runs[title]``: to the script run's end)."""
    previous = main_title(page)
    link = page.locator('[data-testid="stSidebarNav"] a', has_text=title).first
    page.evaluate(WATCH_RUN)
    t0 = time.perf_counter()
    link.click()
    page.wait_for_url(re.compile(re.escape(f"{base}/{path}") + r"(\?.*)?$"), timeout=TIMEOUT_MS)
    wait_drawn(page, previous)
    elapsed = (time.perf_counter() - t0) * 1000
    if runs is not None:
        runs[title] = page.evaluate(RUN_ENDED)
    return elapsed


def caption_id(page) -> int | None:
    captions = page.locator('[data-testid="stCaptionContainer"]', has_text=re.compile(r"^Image \d+"))
    if captions.count() == 0:
        return None
    return int(re.match(r"Image (\d+)", captions.first.inner_text()).group(1))


def open_in_explorer(page, base: str) -> tuple[float, float | None] | None:
    """From the Model comparison page: (ms from the click on "Open in the explorer" to the explorer
    drawn, to the script run's end); None without the button."""
    change_page(page, base, "Model comparison", "comparison")
    button = page.get_by_role("button", name="Open in the explorer")
    if button.count() == 0:
        return None
    button.first.scroll_into_view_if_needed()
    previous = main_title(page)
    page.evaluate(WATCH_RUN)
    t0 = time.perf_counter()
    button.first.click()
    page.wait_for_url(re.compile(re.escape(f"{base}/explorer") + r"(\?.*)?$"), timeout=TIMEOUT_MS)
    wait_drawn(page, previous)
    page.wait_for_function(f"({RANGES})() !== null", timeout=TIMEOUT_MS)
    elapsed = (time.perf_counter() - t0) * 1000
    return elapsed, page.evaluate(RUN_ENDED)


def next_id(page) -> float:
    """ms from a click on the explorer's "Next" to the new id's side-by-side figure drawn."""
    before, picture = caption_id(page), page.evaluate(FIRST_PICTURE)
    button = page.get_by_role("button", name="Next")
    t0 = time.perf_counter()
    button.click()
    page.wait_for_function("""first => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
        .some(c => /^Image \\d+/.test(c.innerText) && !c.innerText.startsWith(`Image ${first} `))""",
                           arg=before, timeout=TIMEOUT_MS)
    page.wait_for_function(f"old => {{ const now = ({FIRST_PICTURE})(); return now !== null && now !== old; }}",
                           arg=picture, timeout=TIMEOUT_MS)
    wait_drawn(page, None)
    return (time.perf_counter() - t0) * 1000


def zoom(page) -> float:
    """ms from the mouse-up of a box dragged in the second panel to every panel on its region."""
    page.locator('[data-testid="stPlotlyChart"]').first.scroll_into_view_if_needed()
    before = page.evaluate(RANGES)
    box = page.evaluate(PANEL_BOX)
    start = (box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    end = (box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.7)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=5)
    page.mouse.move(*end, steps=5)
    page.evaluate(WATCH_ZOOM, before)
    up = page.evaluate("() => performance.now()")
    page.mouse.up()
    page.wait_for_function("() => window.__zoomDone !== null", timeout=TIMEOUT_MS)
    done = page.evaluate("() => window.__zoomDone")
    page.mouse.dblclick(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)  # back to the whole frame
    page.wait_for_function(f"before => JSON.stringify(({RANGES})()) === JSON.stringify(before)", arg=before,
                           timeout=TIMEOUT_MS)
    return done - up  # includes the mouse-up's own dispatch (a few ms)


def first_page(context, base: str) -> tuple:
    """A new page of ``context`` opened on the app: (the page, ms from the navigation to the Overview drawn)."""
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    t0 = time.perf_counter()
    page.goto(f"{base}/", wait_until="commit")
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=TIMEOUT_MS)
    wait_drawn(page, None)
    return page, (time.perf_counter() - t0) * 1000


def one_server(browser, env: dict, zooms: int, ids: int, log) -> dict:
    """A new server: the cold first page, two rounds of page changes, "Open in the explorer", ids, zooms."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start_dashboard(port, env)
    row: dict = {"errors": []}
    try:
        if wait_http(f"{base}/_stcore/health", process) is None:
            raise RuntimeError("the dashboard did not start")
        context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
        page, row["cold_first_page_ms"] = first_page(context, base)
        log(f"  cold first page {row['cold_first_page_ms']:.0f} ms")
        row["titles"], row["cold_ms"], row["warm_ms"] = {}, {}, {}
        row["cold_run_end_ms"], row["warm_run_end_ms"] = {}, {}
        for round_name in ("cold_ms", "warm_ms"):
            # start each round away from the Overview so that it is a change too
            order = PAGES[1:] + PAGES[:1]
            for title, path in order:
                try:
                    row[round_name][title] = change_page(page, base, title, path,
                                                         row[round_name.replace("_ms", "_run_end_ms")])
                    row["titles"][title] = main_title(page)
                except Exception as error:  # noqa: BLE001  (a page that never draws: recorded, go on)
                    row["errors"].append(f"{round_name} {title}: {type(error).__name__}: {str(error)[:200]}")
                    page.goto(f"{base}/", wait_until="commit")
                    wait_drawn(page, None)
                if page.locator('[data-testid="stException"]').count():
                    row["errors"].append(f"{round_name} {title}: a Streamlit exception on the page")
            log(f"  {round_name}: " + ", ".join(f"{t} {ms:.0f}" for t, ms in row[round_name].items()))
        try:
            opened = open_in_explorer(page, base) or (None, None)
            row["open_in_explorer_ms"], row["open_in_explorer_run_end_ms"] = opened
            log(f"  open in explorer {row['open_in_explorer_ms']} ms")
            row["next_id_ms"] = [next_id(page) for _ in range(ids)]
            log(f"  next id {[round(v) for v in row['next_id_ms']]} ms")
            row["zoom_ms"] = [zoom(page) for _ in range(zooms)]
            log(f"  zoom {[round(v) for v in row['zoom_ms']]} ms")
        except Exception as error:  # noqa: BLE001
            row["errors"].append(f"explorer: {type(error).__name__}: {str(error)[:300]}")
            log(f"  explorer error: {row['errors'][-1]}")
        context.close()
        return row
    finally:
        stop_group(process)


def returning_servers(browser, env: dict, repeats: int, log) -> list[dict]:
    """``repeats`` new servers, one after the other on one port, visited by one browser context kept
    throughout (filled by a first server not counted): the cold first page, then each page's first
    visit (one round, as ``one_server``'s first)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    rows = []
    try:
        for repeat in range(repeats + 1):
            process = start_dashboard(port, env)
            try:
                if wait_http(f"{base}/_stcore/health", process) is None:
                    raise RuntimeError("the dashboard did not start")
                page, first_ms = first_page(context, base)
                row = {"cold_first_page_ms": first_ms, "cold_ms": {}, "errors": []}
                for title, path in PAGES[1:] + PAGES[:1]:
                    try:
                        row["cold_ms"][title] = change_page(page, base, title, path)
                    except Exception as error:  # noqa: BLE001  (recorded, go on)
                        row["errors"].append(f"returning {title}: {type(error).__name__}: {str(error)[:200]}")
                        page.goto(f"{base}/", wait_until="commit")
                        wait_drawn(page, None)
                page.close()
                if repeat:  # the first server only fills the browser's caches
                    rows.append(row)
                    log(f"  returning browser: first page {row['cold_first_page_ms']:.0f}, "
                        + ", ".join(f"{t} {ms:.0f}" for t, ms in row["cold_ms"].items()))
            finally:
                stop_group(process)
    finally:
        context.close()
    return rows


def median(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def bench_resolution(resolution: str, repeats: int, zooms: int, ids: int) -> dict:
    from playwright.sync_api import sync_playwright

    artifacts, root = bench_store(resolution, train=24, val=24)
    env = {"ARTIFACTS_DIR": str(artifacts), "CITYSCAPES_DATASET": str(root),
           "SEGMENTATION_API_URL": "http://127.0.0.1:9", "PYTHONUNBUFFERED": "1"}

    def log(message: str) -> None:
        print(f"[{resolution} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            kept = Path(artifacts) / DERIVED_CACHE
            for repeat in range(repeats):
                if repeat == 0:  # the first server scans for Check labels; the next ones read what it kept
                    shutil.rmtree(kept, ignore_errors=True)
                scans_kept = (kept / LABEL_SCANS).is_dir()
                log(f"server {repeat + 1}/{repeats}" + (" (label scans kept in the store)" if scans_kept else ""))
                rows.append({**one_server(browser, env, zooms, ids, log), "scans_kept": scans_kept})
            log("returning browser")
            returning = returning_servers(browser, env, repeats, log)
        finally:
            browser.close()
    titles = [title for title, _ in PAGES]
    return {
        "resolution": resolution, "store": artifacts.name, "repeats": len(rows),
        "cold_first_page_ms": median([row.get("cold_first_page_ms") for row in rows]),
        "page_change_cold_ms": {t: median([row["cold_ms"].get(t) for row in rows]) for t in titles},
        # Check labels on a server whose store had no scan kept (the first): the scan itself
        "check_labels_never_scanned_ms": median([row["cold_ms"].get("Check labels") for row in rows
                                                 if not row["scans_kept"]]),
        "page_change_warm_ms": {t: median([row["warm_ms"].get(t) for row in rows]) for t in titles},
        # from the click to the script run's end (the server's part, with the websocket's): the rest is drawing
        "page_change_cold_run_end_ms": {t: median([row["cold_run_end_ms"].get(t) for row in rows]) for t in titles},
        "page_change_warm_run_end_ms": {t: median([row["warm_run_end_ms"].get(t) for row in rows]) for t in titles},
        "open_in_explorer_ms": median([row.get("open_in_explorer_ms") for row in rows]),
        "open_in_explorer_run_end_ms": median([row.get("open_in_explorer_run_end_ms") for row in rows]),
        "explorer_next_id_ms": median([v for row in rows for v in row.get("next_id_ms", [])]),
        "zoom_ms": median([v for row in rows for v in row.get("zoom_ms", [])]),
        "returning_cold_first_page_ms": median([row["cold_first_page_ms"] for row in returning]),
        "returning_page_change_cold_ms": {t: median([row["cold_ms"].get(t) for row in returning]) for t in titles},
        "raw": rows, "raw_returning": returning}


LABELS = {"demo": "256x512", "full": "2048x1024"}


def fmt(ms: float | None, target_s: float | None = None, run_end: float | None = None) -> str:
    """``ms`` (bold over the target), with the script run's end in brackets when known."""
    if ms is None:
        return "-"
    miss = target_s is not None and ms > target_s * 1000
    text = f"**{ms:.0f}**" if miss else f"{ms:.0f}"
    return text + (f" ({run_end:.0f})" if run_end is not None else "")


def report(results: dict) -> None:
    rows = results["resolutions"]
    heads = " | ".join(f"{LABELS.get(r['resolution'], r['resolution'])} first | again | first, returning browser"
                       for r in rows)
    print(f"\n### Dashboard in chromium: medians (ms) over {rows[0]['repeats']} servers, "
          f"{results['cpus']} CPUs, load {results['load_average_at_start']} at start; bold: over the target "
          f"(1 s, cold first page 3 s); in brackets: the click to the script run's end\n")
    print(f"| measure | {heads} |")
    print("|---|" + "---|---|---|" * len(rows))
    for title, _ in PAGES:
        cells = " | ".join(
            f"{fmt(r['page_change_cold_ms'][title], PAGE_TARGET_S, r['page_change_cold_run_end_ms'][title])} | "
            f"{fmt(r['page_change_warm_ms'][title], PAGE_TARGET_S, r['page_change_warm_run_end_ms'][title])} | "
            f"{fmt(r.get('returning_page_change_cold_ms', {}).get(title), PAGE_TARGET_S)}"
            for r in rows)
        print(f"| page change: {title} | {cells} |")
    for key, label, target in (("cold_first_page_ms", "cold first page (new context, Overview)", COLD_TARGET_S),
                               ("check_labels_never_scanned_ms", "Check labels, first visit, no scan kept yet",
                                None),
                               ("open_in_explorer_ms", "Open in the explorer (comparison -> explorer)", PAGE_TARGET_S),
                               ("explorer_next_id_ms", "explorer: Next -> side-by-side redrawn", None),
                               ("zoom_ms", "zoom box: mouse-up -> every panel's range", None)):
        returning = "returning_" + key
        print(f"| {label} | " + " | ".join(f"{fmt(r[key], target, r.get(key.replace('_ms', '_run_end_ms')))} |  | "
                                           f"{fmt(r.get(returning), target)}" for r in rows) + " |")
    for r in rows:
        errors = [e for row in r["raw"] + r.get("raw_returning", []) for e in row["errors"]]
        if errors:
            print(f"\nerrors at {r['resolution']}: {errors}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="servers (cold) per resolution")
    parser.add_argument("--resolutions", default="demo,full", help="demo (256x512), full (2048x1024)")
    parser.add_argument("--zooms", type=int, default=3)
    parser.add_argument("--ids", type=int, default=3, help="Next clicks in the explorer per server")
    parser.add_argument("--out", type=Path, default=RESULTS / "dashboard_browser.json")
    args = parser.parse_args()
    os.chdir(REPO)
    load = [round(v, 2) for v in os.getloadavg()]
    results = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
               "load_average_at_start": load, "chromium": str(CHROMIUM), "viewport": [WIDTH, HEIGHT],
               "targets_s": {"page_change": PAGE_TARGET_S, "open_in_explorer": PAGE_TARGET_S,
                             "cold_first_page": COLD_TARGET_S},
               "resolutions": []}
    for resolution in args.resolutions.split(","):
        results["resolutions"].append(bench_resolution(resolution, args.repeats, args.zooms, args.ids))
        write_results("dashboard_browser", results, out=args.out)  # after each resolution: partial results kept
    report(results)


if __name__ == "__main__":
    main()
