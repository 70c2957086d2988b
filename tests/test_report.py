"""The report to send (``training.report``, ``python -m training report``), on the tiny two-run
store: one self-contained HTML file, offline, every chosen image and run in it, user text escaped."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.data.dataset import DataSettings
from training.evaluation.variants import MIOU, MIOU_OFFICIAL
from training.report import build_report, write_report
from training.report.html import plotly_js
from training.runs.layout import ArtifactError
from training.runs.reader import get_run
from training.runs.tags import TagStore

REPO = Path(__file__).resolve().parent.parent
HOSTILE = '<script>alert(1)</script> & "quoted" <img src=x onerror=alert(2)>'
# A URL where the browser would fetch it: an attribute (src, href, action...) or a CSS url().
FETCHED = re.compile(r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?\s*|url\(\s*["']?)(?:https?:)?//""", re.I)


def _entries(store):
    data = DataSettings(str(store.data_root)).open()
    return data.index


def _test_ids(store) -> list[int]:
    return [int(row["id"]) for row in get_run(store.runs[0], store.artifacts).per_image()]


@pytest.fixture
def store_copy(dashboard_store, tmp_path):
    """The two-run store copied, for tags to be written (the dataset is shared, read-only)."""
    from types import SimpleNamespace

    artifacts = shutil.copytree(dashboard_store.artifacts, tmp_path / "artifacts")
    return SimpleNamespace(artifacts=artifacts, data_root=dashboard_store.data_root, runs=list(dashboard_store.runs))


def _images(page: str) -> list[tuple[str, bytes]]:
    return [(mime, base64.b64decode(data))
            for mime, data in re.findall(r'<img src="data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)"', page)]


def test_the_report_holds_every_run_and_image_offline(dashboard_store):
    store = dashboard_store
    ids = _test_ids(store)[:2]
    page = build_report(store.runs, ids, root=store.artifacts,
                        now=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc))

    assert page.startswith("<!DOCTYPE html>")
    assert page.count(plotly_js()) == 1 and page.count("<script") == 2  # plotly.js once, then the figures
    markup = page.replace(plotly_js(), "")  # the bundle's own strings (map tiles' attributions) are never fetched
    assert not FETCHED.search(markup), FETCHED.search(markup).group(0)
    assert "default-src 'none'" in page  # and the browser itself refuses any request
    assert "2026-01-02 03:04:05 UTC" in page and f"<code>{Path(store.artifacts).resolve().name}</code>" in page
    assert str(Path(store.artifacts).resolve().parent) not in page  # no server path in a file sent around
    for run in store.runs:
        assert f"<h3>{run}</h3>" in page  # its confusion matrix
        assert get_run(run, store.artifacts).uid in page
    for image_id in ids:
        assert f'id="image-{image_id}"' in page
    figures = json.loads(re.search(r"const FIGURES = (\[.*?\]);\n", page).group(1))
    assert [f["data"][0]["type"] for f in figures] == ["bar"] + ["heatmap"] * len(store.runs)
    assert [trace["name"] for trace in figures[0]["data"]] == store.runs
    metrics = get_run(store.runs[0], store.artifacts).metrics
    assert figures[0]["data"][0]["y"] == [metrics["iou"].get(name) for name in metrics["class_names"]]
    rows = np.asarray(figures[1]["data"][0]["z"])
    assert np.allclose(rows.sum(axis=1)[rows.sum(axis=1) > 0], 1, atol=1e-3)  # row-normalised

    pictures = _images(page)  # per image: photo, ground truth, one prediction per run
    assert [mime for mime, _ in pictures] == ["image/jpeg", "image/png", "image/png", "image/png"] * len(ids)
    truth = Image.open(io.BytesIO(pictures[1][1]))
    assert truth.mode == "P" and truth.size == (32, 16)  # small frames are shown whole
    assert MIOU.label() in page and MIOU_OFFICIAL.label() in page
    assert "95% interval" in page and f"A = <b>{store.runs[0]}</b>" in page


def test_the_default_images_are_the_first_runs_worst(dashboard_store):
    store = dashboard_store
    rows = get_run(store.runs[1], store.artifacts).per_image()
    worst = [int(row["id"]) for row in sorted(rows, key=lambda row: float(row["miou"]))][:6]
    page = build_report([store.runs[1], store.runs[0]], root=store.artifacts)
    shown = [int(i) for i in re.findall(r'<section class="image" id="image-(\d+)"', page)]
    assert shown == worst
    assert "does worst on" in page


def test_tags_and_notes_are_shown_escaped_and_choose_images(store_copy):
    store = store_copy
    index = _entries(store)
    first, second = (index[i] for i in _test_ids(store)[:2])
    tags = TagStore(store.artifacts)
    tags.add_tag(first.city, first.stem, "reflection")
    tags.set_note(first.city, first.stem, HOSTILE)
    tags.add_tag(second.city, second.stem, "reflection")
    tags.add_tag(second.city, second.stem, "<img src=x onerror=alert(3)>")

    page = build_report(store.runs[:1], tag="Reflection", root=store.artifacts)
    assert '<span class="tag">&lt;img src=x onerror=alert(3)&gt;</span>' in page
    assert re.findall(r'<section class="image" id="image-(\d+)"', page) == [str(i) for i in sorted([first.id,
                                                                                                      second.id])]
    assert HOSTILE not in page and "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot;" in page
    assert '<span class="tag">reflection</span>' in page
    assert page.count("<script") == 2  # the note added none

    with pytest.raises(ValueError, match="carries the tag 'ground truth wrong'"):
        build_report(store.runs[:1], tag="ground truth wrong", root=store.artifacts)


def test_runs_of_two_class_sets_and_a_partial_import(imported_store):
    """An imported run of 3 of the 4 test images, and one of another class set: each class set gets
    its ground truth and IoU table, a run without the image says so, and the other class set is not
    compared (its mIoU would count other classes)."""
    store = imported_store
    c8, c19 = store.imported
    first = store.trained[0]
    ids = [int(row["id"]) for row in get_run(first, store.artifacts).per_image()]
    left_out = next(i for i in ids if i not in store.covered[c8])
    page = build_report([first, c8, c19], [left_out], root=store.artifacts)
    assert f"run {c8} did not evaluate this image" in page
    assert "ground truth (categories8)" in page and "ground truth (cityscapes19)" in page
    assert f"not compared: runs {first} and {c19} predict different class sets" in page
    assert re.search(rf"<td class=text>{c8}</td><td class=text>human</td>", page)  # its per-class intervals
    assert page.count("<h3>categories8</h3>") == 1 and page.count("<h3>cityscapes19</h3>") == 1  # IoU bars


def test_unknown_runs_ids_and_damaged_runs_are_clear_errors(store_copy):
    store = store_copy
    with pytest.raises(ArtifactError, match="no run named 'nope'"):
        build_report(["nope"], root=store.artifacts)
    with pytest.raises(ValueError, match="no image 99999 in the dataset"):
        build_report(store.runs, [99999], root=store.artifacts)
    with pytest.raises(ValueError, match="at least one run"):
        build_report([], root=store.artifacts)
    (Path(store.artifacts) / "runs" / store.runs[1] / "confusion.npy").write_bytes(b"not an array")
    with pytest.raises(ArtifactError, match=f"run {store.runs[1]} cannot be reported: .*confusion.npy"):
        build_report(store.runs, root=store.artifacts)


def test_write_report_replaces_the_file_whole(dashboard_store, tmp_path):
    out = tmp_path / "reports" / "report.html"
    out.parent.mkdir()
    out.write_text("old")
    written = write_report(out, dashboard_store.runs[:1], _test_ids(dashboard_store)[:1],
                           root=dashboard_store.artifacts)
    assert written == out and out.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary file left


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training", "-q", "report", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_the_command_writes_the_report_and_names_what_is_wrong(dashboard_store, tmp_path):
    store = dashboard_store
    out = tmp_path / "report.html"
    ids = [str(i) for i in _test_ids(store)[:2]]
    done = _cli(*store.runs, "--images", *ids, "--out", str(out), "--artifacts", str(store.artifacts))
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stderr and out.stat().st_size > 1_000_000  # plotly.js alone is 4.8 MB
    page = out.read_text()
    assert all(f'id="image-{i}"' in page for i in ids) and not FETCHED.search(page.replace(plotly_js(), ""))

    for args, expected in ((["nope", "--out", str(tmp_path / "x.html")], "no run named 'nope'"),
                           ([store.runs[0], "--images", "99999", "--out", str(tmp_path / "x.html")],
                            "no image 99999 in the dataset"),
                           ([store.runs[0], "--out", str(tmp_path)], "is a folder")):
        failed = _cli(*args, "--artifacts", str(store.artifacts))
        assert failed.returncode == 2, failed.stderr
        assert expected in failed.stderr and "Traceback" not in failed.stderr
        assert failed.stderr.count("\n") == 1
    assert not (tmp_path / "x.html").exists()


CHROMIUM = Path("/usr/bin/chromium")  # Debian's, as tests/test_dashboard_browser.py drives it
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync"]


@pytest.mark.slow
def test_the_report_renders_offline_in_chromium_without_a_request(store_copy, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run the browser test")
    from playwright.sync_api import sync_playwright

    store = store_copy
    index = _entries(store)
    first = index[_test_ids(store)[0]]
    TagStore(store.artifacts).set_note(first.city, first.stem, HOSTILE)
    out = write_report(tmp_path / "report.html", store.runs, _test_ids(store)[:3], root=store.artifacts)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_offline(True)
            requests, dialogs, errors = [], [], []
            context.route("**/*", lambda route: route.continue_() if route.request.url == out.as_uri()
                          else (requests.append(route.request.url), route.abort()))
            page = context.new_page()
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(out.as_uri(), wait_until="load")
            page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length === {1 + len(store.runs)}",
                                   timeout=30_000)
            assert page.locator(".js-plotly-plot .main-svg").count() >= 1 + len(store.runs)  # drawn, not only made
            assert page.locator(".js-plotly-plot .bars .point").count() > 0  # the IoU bars
            images = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
            assert len(images) == 3 * (2 + len(store.runs)) and all(done and width > 0 for done, width in images)
            assert page.get_by_text("<script>alert(1)</script>", exact=False).count() == 1  # shown as text
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            browser.close()
    assert requests == [] and dialogs == [] and errors == []
