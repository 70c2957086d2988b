"""The Deployed model page with Streamlit's AppTest: the API down, and the real API (gunicorn).

The dashboard reads the tiny two-run store (``dashboard_env``); the API serves the session's
tiny deployed run (``api_store``) on a free loopback port, started once for the module.
"""

from __future__ import annotations

import re

import pytest
import requests
from api_fixtures import REPO, free_port, png_bytes, random_rgb, start_server
from dashboard_fixtures import fake_api
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Column

from training.data.labels import get_class_set

APP = str(REPO / "dashboard" / "app.py")
PAGE = "app_pages/deployed.py"
TIMEOUT = 60  # seconds: a bound on each AppTest run and HTTP call, not a measurement


def _deployed_page(image_id: int | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if image_id is not None:
        at.query_params["id"] = str(image_id)
    at.run()
    return at.switch_page(PAGE).run()


def _shown(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


# What a metric holds uncut at a 1600 px window (wide layout, sidebar open): the page's body is
# about 1150 px wide, split by its columns (their weights, less a gap each); a value (2.25rem) takes
# about 20 px a character, a label (14 px) about 8.
BODY_PX, GAP_PX, VALUE_PX, LABEL_PX = 1150, 16, 20, 8


def _cut_metrics(at: AppTest) -> list[str]:
    """The metrics of the page's body whose label or value would be cut (with an ellipsis)."""
    cut = []

    def walk(node, width: float) -> None:
        children = list(getattr(node, "children", {}).values())
        weights = sum(child.weight for child in children if isinstance(child, Column))
        for child in children:
            room = width * child.weight / weights - GAP_PX if isinstance(child, Column) else width
            if getattr(child, "type", None) == "metric" and (
                    len(child.label) * LABEL_PX > room or len(child.value) * VALUE_PX > room):
                cut.append(f"{child.label}: {child.value} in {room:.0f} px")
            walk(child, room)

    walk(at.main, BODY_PX)
    return cut


@pytest.fixture(scope="module")
def api_server(api_store, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("dashboard_api") / "server.log"
    env = {"SEGAPI_ARTIFACTS_DIR": str(api_store.artifacts), "SEGAPI_DATA_ROOT": str(api_store.data_root)}
    server = start_server(env, log_path, workers=1, threads=2)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api_up(dashboard_env, api_server, monkeypatch):
    monkeypatch.setenv("SEGMENTATION_API_URL", api_server.url)
    return api_server


def _test_ids(store) -> list[int]:
    from training.data.index import load_or_build_index

    index = load_or_build_index(store.data_root, write=False, report=lambda message: None)
    return [entry.id for entry in index.split("test")]


def test_api_down_explains_how_to_start_it(dashboard_env, monkeypatch):
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("SEGMENTATION_API_URL", closed)
    at = _deployed_page()
    assert not at.exception
    message = " ".join(error.value for error in at.error)
    assert "make api" in message and "make demo" in message
    assert f"{closed}/health" in message
    assert not at.image and not at.file_uploader  # nothing that needs the API is offered


@pytest.mark.slow
def test_api_up_shows_the_run_and_the_scores_the_api_returned(api_up, dashboard_env):
    image_id = _test_ids(dashboard_env)[1]
    expected = requests.get(f"{api_up.url}/api/images/{image_id}/segmentation?format=color",
                            timeout=TIMEOUT).json()
    at = _deployed_page(image_id)
    assert not at.exception and not at.error and not at.warning
    shown = _shown(at)
    assert shown["API"] == "up"
    assert expected["run"] == api_up_run(api_up)
    assert any(f"Served run: **{expected['run']}**" in markdown.value for markdown in at.markdown)
    assert shown["mIoU"] == f"{expected['miou']:.3f}"
    assert shown["Pixel accuracy"] == f"{expected['pixel_accuracy']:.3f}"
    assert any(f"(model {expected['model']})" in caption.value for caption in at.caption)
    assert shown["Round trip"].endswith(" ms") and shown["Inference"].endswith(" ms")
    assert not _cut_metrics(at)
    assert at.number_input[0].value == image_id

    iou = at.dataframe[0].value
    assert list(iou["class"]) == expected["class_names"]  # class order, not the JSON's sorted keys
    for name, value in expected["iou"].items():
        row = iou[iou["class"] == name].iloc[0]
        assert (value is None and row["IoU"] != row["IoU"]) or row["IoU"] == pytest.approx(value)
    assert len(at.image) == 3  # photo, ground truth, prediction
    assert any(expected["run"] in caption.value for caption in at.caption)


@pytest.mark.slow
def test_choosing_another_id_asks_the_api_for_it(api_up, dashboard_env):
    first, second = _test_ids(dashboard_env)[:2]
    at = _deployed_page(first)
    at.number_input[0].set_value(second).run()
    assert not at.exception
    assert at.query_params["id"] == str(second)
    expected = requests.get(f"{api_up.url}/api/images/{second}/segmentation", timeout=TIMEOUT).json()
    assert _shown(at)["mIoU"] == f"{expected['miou']:.3f}"
    assert any(f"Image {second}:" in caption.value for caption in at.caption)


def test_every_id_typed_or_stepped_is_shown_and_the_metrics_fit(dashboard_env, monkeypatch):
    """Issue 15: typing 320, 330, 340, 350 showed 320, 320, 340, 340 (the box had no key and took
    its value from the URL); and a run's long name (or "72.2 ms/image") was cut in a metric."""
    from training.data.index import load_or_build_index

    ids = [entry.id for entry in load_or_build_index(dashboard_env.data_root, write=False,
                                                     report=lambda message: None).entries]
    long_name = "12_smfpn_efficientnetb3-imagenet_dice_v1_256x512"  # a run name of configs/source
    with fake_api(run=long_name) as api:
        monkeypatch.setenv("SEGMENTATION_API_URL", api)
        at = _deployed_page(ids[0])
        assert not at.exception and not at.error and not at.warning
        assert not _cut_metrics(at)
        assert len(at.metric) == 2 + 4  # the service's two, the image's four
        assert any(f"Served run: **{long_name}**" in markdown.value for markdown in at.markdown)

        def shows(image_id: int) -> None:
            assert not at.exception
            assert at.number_input[0].value == image_id
            assert at.query_params["id"] == str(image_id)
            assert [c.value for c in at.caption if c.value.startswith("Image ")][0].startswith(f"Image {image_id}:")

        for image_id in (ids[3], ids[5], ids[7], ids[9]):  # typed one after the other
            at.number_input[0].set_value(image_id).run()
            shows(image_id)
        for step in (1, 2):  # "+", twice
            at.number_input[0].increment().run()
            shows(ids[9] + step)
        at.query_params["id"] = str(ids[1])  # a link: the URL changed, the box follows it
        at.run()
        shows(ids[1])


@pytest.mark.slow
def test_an_uploaded_photo_is_segmented_by_the_api(api_up, dashboard_env):
    at = _deployed_page()
    photo = png_bytes(random_rgb(24, 40, seed=3))
    at.file_uploader[0].set_value(("street.png", photo, "image/png")).run()
    assert not at.exception and not at.error and not at.warning
    shares = at.dataframe[-1].value
    assert shares["share"].sum() == pytest.approx(1.0)
    assert list(shares["share"]) == sorted(shares["share"], reverse=True)
    assert len(at.image) == 3 + 2  # the dataset image's three, then the photo and its mask
    # beside the mask, its legend: the classes it holds, largest share first, each in its colour
    legend = at.markdown[-1].value
    present = shares[shares["share"] > 0]
    colors = dict(zip(get_class_set("categories8").names, get_class_set("categories8").colors))
    assert re.findall(r"</span> ([a-z]+) ", legend) == list(present["class"])
    for name, share in zip(present["class"], present["share"]):
        r, g, b = colors[name]
        assert f"rgb({r},{g},{b});" in legend
        assert f"{name} {share:.0%}" in legend or (share < 0.01 and f"{name} &lt;1%" in legend)
    assert any("Round trip" in caption.value and "server inference" in caption.value for caption in at.caption)


@pytest.mark.slow
def test_an_upload_the_api_refuses_is_a_warning_not_a_crash(api_up, dashboard_env):
    at = _deployed_page()
    at.file_uploader[0].set_value(("street.png", b"not a picture", "image/png")).run()
    assert not at.exception
    assert any("415" in warning.value for warning in at.warning)


def test_another_program_on_the_api_port_is_explained(dashboard_env, monkeypatch):
    """A server that is not the API (answers 404 in HTML): the start hint, no stack trace."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class NotTheApi(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_error(404)

        def log_message(self, *args):
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), NotTheApi) as other:
        thread = threading.Thread(target=other.serve_forever, daemon=True)
        thread.start()
        try:
            monkeypatch.setenv("SEGMENTATION_API_URL", f"http://127.0.0.1:{other.server_address[1]}")
            at = _deployed_page()
        finally:
            other.shutdown()
            thread.join(timeout=10)
    assert not at.exception
    message = " ".join(error.value for error in at.error)
    assert "404" in message and "make api" in message


def api_up_run(server) -> str:
    return requests.get(f"{server.url}/health", timeout=TIMEOUT).json()["run"]


def test_the_deployed_page_never_imports_tensorflow(dashboard_env, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("SEGMENTATION_API_URL", f"http://127.0.0.1:{free_port()}")
    code = ("import sys; from streamlit.testing.v1 import AppTest;"
            f"at = AppTest.from_file({APP!r}, default_timeout=60).run();"
            f"at.switch_page({PAGE!r}).run(); assert not at.exception and at.error;"
            "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO, timeout=120).returncode == 0
