"""The explorer's side-by-side view in a real browser: the served dashboard (``streamlit run``, the
fixtures of ``test_dashboard_browser``) in Debian's chromium through Playwright. A box dragged in
one panel zooms every panel to the same region: the figure's axes match, in plotly.js itself."""

from __future__ import annotations

import pytest
from test_dashboard_browser import (  # noqa: F401  (the module's fixtures, used by name)
    CHROMIUM,
    CHROMIUM_ARGS,
    EXCEPTION,
    HEIGHT,
    PAGE_TIMEOUT_MS,
    WIDTH,
    served,
    setting,
    wait_rendered,
)

pytestmark = pytest.mark.slow

RANGES = """() => {
    const plot = [...document.querySelectorAll('.js-plotly-plot')]
        .find(p => p._fullLayout && p._fullLayout.meta && p._fullLayout.meta.panels);
    if (!plot) return null;
    const layout = plot._fullLayout;
    const names = Object.keys(layout).filter(k => /^[xy]axis\\d*$/.test(k)).sort();
    return Object.fromEntries(names.map(k => [k, layout[k].range.slice()]));
}"""
PANEL_BOX = """() => {
    const plot = [...document.querySelectorAll('.js-plotly-plot')]
        .find(p => p._fullLayout && p._fullLayout.meta && p._fullLayout.meta.panels);
    const box = plot.querySelector('.nsewdrag[data-subplot="x2y2"]').getBoundingClientRect();
    return {x: box.x, y: box.y, width: box.width, height: box.height};
}"""


def test_a_box_dragged_in_one_panel_zooms_every_panel(served):  # noqa: F811  (the fixture)
    from playwright.sync_api import sync_playwright

    dashboard, _, _ = served
    runs = "tiny_simple,tiny_unet"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(f"{dashboard.url}/explorer?runs={runs}", wait_until="domcontentloaded")
            wait_rendered(page)
            page.wait_for_function(f"({RANGES})() !== null")
            before = page.evaluate(RANGES)
            assert sorted(before) == ["xaxis", "xaxis2", "xaxis3", "xaxis4", "yaxis", "yaxis2", "yaxis3", "yaxis4"]
            assert page.evaluate(PANEL_BOX)["width"] >= 400  # large panels, two a row (1400 px wide, sidebar open)
            # every layer drawn (plotly.js drops a layout image placed exactly on another of its subplot),
            # pixels shown as they are, and the photo fetched once for all the panels
            drawn = page.evaluate(f"""() => {{
                const plot = ({RANGES.replace("return Object", "return plot; Object")})();
                const images = [...plot.querySelectorAll('.imagelayer image')];
                return {{layers: plot.layout.images.length, drawn: images.length,
                         pixelated: images.every(i => getComputedStyle(i).imageRendering === 'pixelated'),
                         photos: [...new Set(plot.layout.images.map(i => i.source)
                                                  .filter(s => !s.startsWith('data:')))],
                         requests: performance.getEntriesByType('resource').map(r => r.name)}};
            }}""")
            assert drawn["drawn"] == drawn["layers"] == 1 + 3 * 2 and drawn["pixelated"], drawn  # photo; GT, 2 runs
            [photo] = drawn["photos"]
            assert photo.startswith("/media/") and [r for r in drawn["requests"] if r.endswith(photo)] == [
                f"{dashboard.url}{photo}"], drawn

            page.locator('[data-testid="stPlotlyChart"]').first.scroll_into_view_if_needed()
            box = page.evaluate(PANEL_BOX)  # the ground truth's panel (the second): drag a box in its middle
            start = (box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
            end = (box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.7)
            page.mouse.move(*start)
            page.mouse.down()
            page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=5)
            page.mouse.move(*end, steps=5)
            page.mouse.up()
            page.wait_for_function(f"""before => {{
                const now = ({RANGES})();
                return now.xaxis2[0] !== before.xaxis2[0] || now.xaxis2[1] !== before.xaxis2[1];
            }}""", arg=before)
            after = page.evaluate(RANGES)
            for name in ("xaxis", "yaxis"):
                zoomed = [after[key] for key in sorted(after) if key.startswith(name)]
                assert all(value == zoomed[0] for value in zoomed), after  # every panel the same region
                assert zoomed[0] != before[name], (name, before, after)  # ... and not the whole frame
                width = abs(zoomed[0][1] - zoomed[0][0])
                assert width < 0.8 * abs(before[name][1] - before[name][0]), after
            assert page.locator(EXCEPTION).count() == 0
        finally:
            browser.close()
