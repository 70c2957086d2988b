"""End to end in a real browser: the served dashboard (``streamlit run``) beside the real API
(gunicorn), driven by Debian's chromium through Playwright (``executable_path``: Playwright never
downloads a browser here). One test: every page renders without a Streamlit exception, an image
is picked in the explorer, and a full-page screenshot of each page is saved.

Normally it runs on the tiny test store and writes the screenshots to a temporary folder. With
``DASHBOARD_SCREENSHOT_STORE=1`` it serves the real demo store (``artifacts/``, the embedded
dataset) and writes the docs' screenshots, ``docs/screenshot_{overview,explorer,gallery,tags,
comparison,deployed,anatomy,labels,calibration,exports,drive}.png`` (docs/dashboard.md shows them):

    DASHBOARD_SCREENSHOT_STORE=1 .venv/bin/python -m pytest tests/test_dashboard_browser.py
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from api_fixtures import REPO, free_port, start_server

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync"]
REAL_STORE = os.environ.get("DASHBOARD_SCREENSHOT_STORE") == "1"
WIDTH, HEIGHT = 1400, 900
START_TIMEOUT_S = 90  # bounds, not measurements
PAGE_TIMEOUT_MS = 90_000
PAGES = [("overview", "", "Overview"), ("explorer", "explorer", "Image explorer"),
         ("comparison", "comparison", "Model comparison"), ("deployed", "deployed", "Deployed model"),
         ("anatomy", "anatomy", "Error anatomy"), ("labels", "labels", "Check labels"),
         ("gallery", "gallery", "Gallery"), ("tags", "tags", "Tags and notes"),
         ("calibration", "calibration", "Calibration"), ("exports", "exports", "Embedded exports"),
         ("drive", "drive", "Drive")]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'


# ---------------------------------------------------------------------------- servers

class Dashboard:
    """``python -m dashboard.serve`` (``streamlit run dashboard/app.py``, its libraries imported
    before it listens) in its own process group on a free port."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.port = free_port()
        self.log_path = log_path
        self.log_file = open(log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dashboard.serve",
             "--server.port", str(self.port), "--server.address", "127.0.0.1", "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1", **env}, stdout=self.log_file,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        self.log_file.flush()
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if requests.get(f"{self.url}/_stcore/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the dashboard did not answer /_stcore/health within {timeout:.0f} s; its log:\n"
                           f"{self.log()[-4000:]}")

    def stop(self, timeout: float = 20.0) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=timeout)
                break
            except subprocess.TimeoutExpired:
                continue
        self.log_file.close()


@pytest.fixture(scope="module")
def setting(request, tmp_path_factory):
    """(dashboard environment, API environment, screenshot folder) for the tiny or the real store."""
    if REAL_STORE:
        data_root = REPO / "data" / "cityscapes-synthetic"
        if not (REPO / "artifacts" / "deployed.json").is_file() or not data_root.is_dir():
            pytest.fail("DASHBOARD_SCREENSHOT_STORE=1 needs the demo store: run `make demo` first")
        env = {"ARTIFACTS_DIR": str(REPO / "artifacts")}
        api_env = {"SEGAPI_ARTIFACTS_DIR": str(REPO / "artifacts"), "SEGAPI_DATA_ROOT": str(data_root)}
        return env, api_env, REPO / "docs"
    api_store = request.getfixturevalue("api_store")
    dashboard_store = request.getfixturevalue("dashboard_store")
    env = {"ARTIFACTS_DIR": str(dashboard_store.artifacts), "CITYSCAPES_DATASET": str(dashboard_store.data_root)}
    api_env = {"SEGAPI_ARTIFACTS_DIR": str(api_store.artifacts), "SEGAPI_DATA_ROOT": str(api_store.data_root)}
    return env, api_env, tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def served(setting, tmp_path_factory):
    """The API and the dashboard that calls it, both stopped (process groups) at the end."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) "
                    "to run the browser test; Playwright's own browser download is never used")
    env, api_env, shots = setting
    logs = tmp_path_factory.mktemp("browser_logs")
    api = start_server(api_env, logs / "api.log", workers=1, threads=4)
    dashboard = None
    try:
        dashboard = Dashboard({**env, "SEGMENTATION_API_URL": api.url}, logs / "dashboard.log")
        dashboard.wait_healthy()
        yield dashboard, api, shots
    finally:
        if dashboard is not None:
            dashboard.stop()
        api.stop()


# ---------------------------------------------------------------------------- browser helpers

def wait_rendered(page, timeout_ms: int = PAGE_TIMEOUT_MS) -> None:
    """The script run has finished, and every image and plotly chart on the page has drawn.

    Streamlit loads some elements' code (plotly's among them) only when a page first shows one,
    with a skeleton in its place meanwhile, for a second or more after the script has finished:
    no skeleton may be left."""
    page.wait_for_selector(IDLE, timeout=timeout_ms)
    page.wait_for_function(
        """() => {
            const images = [...document.querySelectorAll('[data-testid="stImage"] img')];
            const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]').length;
            const drawn = document.querySelectorAll('[data-testid="stPlotlyChart"] .main-svg').length;
            return document.querySelector('[data-testid="stMain"] h1') !== null
                && document.querySelectorAll('[data-testid="stSkeleton"]').length === 0
                && images.every(img => img.complete && img.naturalWidth > 0) && drawn >= charts;
        }""", timeout=timeout_ms)
    page.wait_for_selector(IDLE, timeout=timeout_ms)


def wait_resized(page, timeout_ms: int = PAGE_TIMEOUT_MS) -> None:
    """The page has taken the viewport's new size: every plotly chart is as wide as its container
    again (the scrollbar that goes away widens the page, and plotly redraws on the resize event)."""
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].every(chart => {
            const svg = chart.querySelector('.main-svg');
            return svg !== null
                && Math.abs(svg.getBoundingClientRect().width - chart.getBoundingClientRect().width) <= 1;
        })""", timeout=timeout_ms)


def full_page_screenshot(page, path: Path) -> None:
    """Streamlit scrolls inside its main container: grow the viewport to the content first."""
    height = page.evaluate("""() => {
        const main = document.querySelector('[data-testid="stMain"]') || document.body;
        return Math.max(main.scrollHeight, document.body.scrollHeight);
    }""")
    page.set_viewport_size({"width": WIDTH, "height": int(min(max(height, HEIGHT), 8000)) + 40})
    wait_resized(page)
    wait_rendered(page)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})


def open_page(page, title: str) -> None:
    """Follow the sidebar's link to a page (the app's own navigation) and wait for it."""
    page.locator('[data-testid="stSidebarNav"] a', has_text=title).first.click()
    page.wait_for_function("title => [...document.querySelectorAll('h1')].some(h => h.innerText.includes(title))",
                           arg=title if title != "Overview" else "segmentation", timeout=PAGE_TIMEOUT_MS)
    wait_rendered(page)


def shown_image_id(page) -> int:
    caption = page.locator('[data-testid="stCaptionContainer"]', has_text=re.compile(r"^Image \d+")).first
    return int(re.match(r"Image (\d+)", caption.inner_text()).group(1))


# ---------------------------------------------------------------------------- the test

def test_every_page_renders_in_chromium_and_an_image_can_be_picked(served):
    from playwright.sync_api import sync_playwright

    dashboard, api, shots = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(dashboard.url, wait_until="domcontentloaded")
            wait_rendered(page)
            seen = {}
            for name, path, title in PAGES:
                if name != "overview":
                    open_page(page, title)
                assert page.url.rstrip("/").endswith(path) or page.url.split("?")[0].endswith(f"/{path}")
                if name == "explorer":
                    first = shown_image_id(page)
                    page.get_by_role("button", name="Next").click()
                    page.wait_for_function(
                        """first => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
                                   .some(c => /^Image \\d+/.test(c.innerText)
                                              && !c.innerText.startsWith(`Image ${first} `))""",
                        arg=first)
                    wait_rendered(page)
                    seen["explorer"] = shown_image_id(page)
                    assert seen["explorer"] != first
                    # the arrow keys page through the images too (the focus is on the page, not a box)
                    page.locator('[data-testid="stMain"] h1').first.click()
                    page.keyboard.press("ArrowLeft")
                    page.wait_for_function(
                        """first => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
                                   .some(c => c.innerText.startsWith(`Image ${first} `))""", arg=first)
                    wait_rendered(page)
                    assert shown_image_id(page) == first and f"id={first}" in page.url
                    page.keyboard.press("ArrowRight")
                    page.wait_for_function(
                        """shown => [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
                                   .some(c => c.innerText.startsWith(`Image ${shown} `))""", arg=seen["explorer"])
                    wait_rendered(page)
                    assert shown_image_id(page) == seen["explorer"]
                    assert page.locator('[data-testid="stImage"] img').count() >= 2  # photo, ground truth, ...
                    assert f"id={seen['explorer']}" in page.url  # the URL reproduces the view
                if name == "gallery":
                    assert page.locator('[data-testid="stImage"] img').count() >= 4  # a page of thumbnails
                    assert page.locator('a', has_text="in the explorer").count() >= 4
                if name == "deployed":
                    assert page.locator('[data-testid="stImage"] img').count() == 3  # photo, truth, prediction
                    assert page.locator('[data-testid="stMetric"]', has_text="Round trip").count() == 1
                assert page.locator(EXCEPTION).count() == 0, f"a Streamlit exception on the {name} page"
                full_page_screenshot(page, shots / f"screenshot_{name}.png")
                assert (shots / f"screenshot_{name}.png").stat().st_size > 10_000
                if name == "gallery":  # one click from a thumbnail to the explorer, on that image
                    link = page.locator('a', has_text="in the explorer").nth(1)
                    chosen = int(re.search(r"Open (\d+) in the explorer", link.inner_text()).group(1))
                    link.click()
                    page.wait_for_function("() => [...document.querySelectorAll('h1')]"
                                           ".some(h => h.innerText.includes('Image explorer'))")
                    wait_rendered(page)
                    assert shown_image_id(page) == chosen and f"id={chosen}" in page.url
        finally:
            browser.close()
