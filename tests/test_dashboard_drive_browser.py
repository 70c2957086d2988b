"""The Drive page's video in a real browser: the served dashboard (``streamlit run``) on the tiny
store with a 5-frame drive predicted (``test_dashboard_drive``'s store), in Debian's chromium
through Playwright. The video element plays: it has its data (readyState >= 2) and lasts the
drive's frames at the chosen rate."""

from __future__ import annotations

import shutil

import pytest
from sequence_fixtures import DRIVE, DRIVE_FRAMES, copy_store, predict_sequence_command
from test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, EXCEPTION, HEIGHT, PAGE_TIMEOUT_MS, WIDTH, Dashboard

pytestmark = pytest.mark.slow

FPS = 17
VIDEO_STATE = """() => {
    const video = document.querySelector('video');
    return video ? {readyState: video.readyState, duration: video.duration, error: video.error && video.error.code}
                 : null;
}"""

PLAYBACK_STATE = """() => {
    const v = document.querySelector('video');
    return v && {paused: v.paused, ended: v.ended, currentTime: v.currentTime, readyState: v.readyState,
                 autoplay: v.autoplay, muted: v.muted, loop: v.loop, networkState: v.networkState,
                 videos: document.querySelectorAll('video').length, visible: document.visibilityState};
}"""


@pytest.fixture(scope="module")
def served_drive(api_store, tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run the browser test")
    base = tmp_path_factory.mktemp("drive_browser")
    store = copy_store(api_store, base)
    done = predict_sequence_command(store, store.run, "--sequence", DRIVE)
    assert done.returncode == 0, done.stderr
    shutil.rmtree(store.artifacts / ".videos", ignore_errors=True)
    dashboard = Dashboard({"ARTIFACTS_DIR": str(store.artifacts), "CITYSCAPES_DATASET": str(store.data_root),
                           "SEGMENTATION_API_URL": "http://127.0.0.1:9"}, base / "dashboard.log")
    try:
        dashboard.wait_healthy()
        yield dashboard
    finally:
        dashboard.stop()


def test_the_drive_video_plays_in_chromium(served_drive):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(f"{served_drive.url}/drive?sequence={DRIVE}", wait_until="domcontentloaded")
            page.wait_for_selector("video", timeout=PAGE_TIMEOUT_MS)
            ready = f"() => {{ const s = ({VIDEO_STATE})(); return s && (s.readyState >= 2 || s.error); }}"
            page.wait_for_function(ready, timeout=PAGE_TIMEOUT_MS)
            state = page.evaluate(VIDEO_STATE)
            assert state["error"] is None, f"the browser cannot play the video (MediaError {state['error']})"
            assert state["readyState"] >= 2
            assert state["duration"] == pytest.approx(len(DRIVE_FRAMES) / FPS, abs=1 / FPS)
            assert page.locator(EXCEPTION).count() == 0
            # It plays by itself (muted autoplay, which the page asks of Streamlit: tests/test_dashboard_drive.py)
            # and starts again at its end (Streamlit loops it by script). Streamlit's player marks an element
            # as autoplayed while it renders it; when React throws that render away and renders again (it
            # happened in 3 full test runs, never alone), the player it keeps has autoplay withheld. That
            # race is Streamlit's, in the browser: the player then starts with a click, as a user's would.
            playing = ("() => { const v = document.querySelector('video'); "
                       "return v && !v.paused && v.currentTime > 0 && v.muted; }")
            withheld = "() => { const v = document.querySelector('video'); return v && !v.autoplay; }"
            try:
                page.wait_for_function(f"() => ({playing})() || ({withheld})()")
                if not page.evaluate(playing):
                    page.evaluate("() => document.querySelector('video').play()")
                page.wait_for_function(playing)
            except Exception:  # say in what state the video stayed
                raise AssertionError(f"the video did not play: {page.evaluate(PLAYBACK_STATE)}") from None
            page.evaluate("""() => {  // count the times it goes back to its start while playing
                const v = document.querySelector('video');
                window.__loops = 0;
                let last = v.currentTime;
                v.addEventListener('timeupdate', () => {
                    if (v.currentTime < last) window.__loops++;
                    last = v.currentTime;
                });
            }""")
            page.wait_for_function("() => window.__loops >= 1 && !document.querySelector('video').paused")
            # A rerun (the R key) keeps the same player, playing on.
            page.evaluate("""() => {
                document.querySelector('video').dataset.first = 'yes';
                const app = document.querySelector("[data-testid='stApp']");
                window.__reran = false;
                let asked = false;
                new MutationObserver(() => {
                    const state = app.dataset.testScriptState;
                    if (state !== 'notRunning') asked = true;
                    else if (asked) window.__reran = true;
                }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
            }""")
            page.locator("body").press("r")
            page.wait_for_function("() => window.__reran")
            page.wait_for_function("() => window.__loops >= 2")
            assert page.evaluate("() => document.querySelector('video').dataset.first") == "yes"
            assert page.evaluate("() => !document.querySelector('video').paused")
            # the flicker chart is SVG inside Streamlit's Markdown: a sanitiser that dropped it would show nothing
            page.wait_for_selector("svg.line-chart-svg circle")
            points = page.locator("svg.line-chart-svg circle")
            assert points.count() == len(DRIVE_FRAMES) - 1  # one run, one point per consecutive pair
            assert points.first.locator("title").text_content().startswith("tiny")
            assert points.first.bounding_box()["width"] > 0
        finally:
            browser.close()
