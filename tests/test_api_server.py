"""The real server: gunicorn with ``api/gunicorn.conf.py`` on a free loopback port, over HTTP.

One tiny dataset and one tiny trained, deployed run for the whole module; the server runs with
2 workers x 2 threads and tight upload limits, so the 413 paths are cheap to reach.
"""

from __future__ import annotations

import base64
import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
from api_fixtures import (
    HEIGHT,
    IMAGES,
    NUM_CLASSES,
    RUN_NAME,
    TEST_IMAGES,
    WIDTH,
    decode_png,
    png_bytes,
    random_rgb,
    start_server,
    tiny_store,
)
from PIL import Image

from training.data.cityscapes import read_pair
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.runs.store import get_run

pytestmark = pytest.mark.slow

MAX_BYTES = 1_000_000
MAX_PIXELS = 250_000
TIMEOUT = 60  # seconds per request: a bound, not a measurement


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tiny_store(tmp_path_factory)


@pytest.fixture(scope="module")
def server(store, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("gunicorn") / "server.log"
    env = {"ARTIFACTS_DIR": str(store.artifacts), "SEGAPI_DATA_ROOT": str(store.data_root),
           "SEGAPI_MAX_CONTENT_LENGTH": str(MAX_BYTES), "SEGAPI_MAX_UPLOAD_PIXELS": str(MAX_PIXELS)}
    running = start_server(env, log_path, workers=2, threads=2)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def http():
    with requests.Session() as session:
        yield session


def get(http, server, path, **kwargs):
    return http.get(f"{server.url}{path}", timeout=TIMEOUT, **kwargs)


def post(http, server, path, **kwargs):
    return http.post(f"{server.url}{path}", timeout=TIMEOUT, **kwargs)


def assert_error(response, status):
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error", "detail"} and all(isinstance(body[k], str) and body[k] for k in ("error", "detail"))
    return body


def test_workers_are_warm_before_they_serve(server, http):
    health = get(http, server, "/health")
    assert health.status_code == 200
    body = health.json()
    assert (body["status"], body["model_loaded"], body["run"]) == ("ok", True, RUN_NAME)
    assert len(server.worker_pids()) == 2
    # post_worker_init in api/gunicorn.conf.py reports each worker's model before it serves
    log = server.log()
    assert log.count(f"run={RUN_NAME} model_loaded=True") == 2, log[-3000:]


def test_home_and_openapi(server, http):
    home = get(http, server, "/")
    assert home.status_code == 200 and home.headers["Content-Type"].startswith("text/html")
    assert RUN_NAME in home.text
    spec = get(http, server, "/openapi.json")
    assert spec.status_code == 200
    document = spec.json()
    assert document["openapi"].startswith("3.")
    for path in ("/api/images", "/api/images/{image_id}", "/api/images/{image_id}/segmentation", "/api/predict",
                 "/health"):
        assert path in document["paths"], sorted(document["paths"])


def test_listing_and_metadata(server, http, store):
    listing = get(http, server, "/api/images", params={"limit": 100})
    assert listing.status_code == 200
    page = listing.json()
    assert page["total"] == IMAGES and page["offset"] == 0 and len(page["images"]) == IMAGES
    index = load_or_build_index(store.data_root)
    assert sorted(image["id"] for image in page["images"]) == sorted(e.id for e in index.split("all"))

    tests = get(http, server, "/api/images", params={"split": "test", "offset": 1, "limit": 2}).json()
    assert tests["total"] == TEST_IMAGES and tests["offset"] == 1 and len(tests["images"]) == 2
    assert {image["split"] for image in tests["images"]} == {"test"}
    assert [image["id"] for image in tests["images"]] == [e.id for e in index.split("test")][1:3]

    entry = index.split("test")[0]
    meta = get(http, server, f"/api/images/{entry.id}")
    assert meta.status_code == 200
    body = meta.json()
    assert (body["id"], body["split"], body["city"], body["stem"]) == (entry.id, "test", entry.city, entry.stem)
    assert (body["width"], body["height"]) == (WIDTH, HEIGHT)
    assert body["classes_present"] and set(body["classes_present"]) <= set(get_class_set("categories8").names)


def _b64_png(text: str) -> np.ndarray:
    return decode_png(base64.b64decode(text, validate=True))


def test_segmentation_is_the_runs_prediction_and_is_cached(server, http, store):
    index = load_or_build_index(store.data_root)
    class_set = get_class_set("categories8")
    run = get_run(RUN_NAME, store.artifacts)
    entry = index.split("test")[0]
    response = get(http, server, f"/api/images/{entry.id}/segmentation", params={"format": "both"})
    assert response.status_code == 200
    body = response.json()
    assert body["run"] == RUN_NAME and body["id"] == entry.id
    assert isinstance(body["inference_ms"], (int, float)) and body["inference_ms"] >= 0
    assert (body["width"], body["height"]) == (WIDTH, HEIGHT)

    _, label_ids = read_pair(store.data_root, entry.image, entry.label)
    truth = _b64_png(body["ground_truth"]["index_png"])
    predicted = _b64_png(body["prediction"]["index_png"])
    assert truth.shape == predicted.shape == (HEIGHT, WIDTH)
    np.testing.assert_array_equal(truth, class_set.lut[label_ids])
    assert predicted.max() < NUM_CLASSES
    # a fresh process (the gunicorn worker) predicts what training stored for this test image
    np.testing.assert_array_equal(predicted, run.prediction(entry.id))
    for side, classes in (("ground_truth", truth), ("prediction", predicted)):
        with Image.open(io.BytesIO(base64.b64decode(body[side]["color_png"]))) as colors:
            assert colors.mode == "P"  # class indices with the official palette
            np.testing.assert_array_equal(np.asarray(colors.convert("RGB")), class_set.colorize(classes))
    assert 0.0 <= body["miou"] <= 1.0 and len(body["iou"]) >= 1

    # index-only, then the same request again: any worker, same answer
    first = get(http, server, f"/api/images/{entry.id}/segmentation", params={"format": "index"}).json()
    assert "color_png" not in first["prediction"] and "index_png" in first["prediction"]
    again = [get(http, server, f"/api/images/{entry.id}/segmentation", params={"format": "index"}).json()
             for _ in range(4)]  # 2 workers: at least one of them answers twice, from its cache
    assert any(body["cached"] for body in again)
    for body in again:
        np.testing.assert_array_equal(_b64_png(body["prediction"]["index_png"]), predicted)
        assert body["miou"] == first["miou"]


def test_pngs_for_pages(server, http, store):
    entry = load_or_build_index(store.data_root).split("test")[1]
    photo, _ = read_pair(store.data_root, entry.image, entry.label)
    image = get(http, server, f"/api/images/{entry.id}/image.png")
    assert image.status_code == 200 and image.headers["Content-Type"] == "image/png"
    np.testing.assert_array_equal(decode_png(image.content), photo)
    for name in ("ground_truth.png", "prediction.png"):
        plain = get(http, server, f"/api/images/{entry.id}/{name}")
        blended = get(http, server, f"/api/images/{entry.id}/{name}", params={"overlay": "0.5"})
        photo_only = get(http, server, f"/api/images/{entry.id}/{name}", params={"overlay": "0"})
        for response in (plain, blended, photo_only):
            assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
            assert decode_png(response.content).shape == (HEIGHT, WIDTH, 3)
        np.testing.assert_array_equal(decode_png(photo_only.content), photo)
        assert_error(get(http, server, f"/api/images/{entry.id}/{name}", params={"overlay": "1.5"}), 400)


def test_predict_an_upload_at_its_own_size(server, http):
    upload = png_bytes(random_rgb(37, 50, seed=1))
    multipart = post(http, server, "/api/predict", files={"image": ("street.png", upload, "image/png")})
    assert multipart.status_code == 200 and multipart.headers["Content-Type"] == "image/png"
    mask = decode_png(multipart.content)
    assert mask.shape == (37, 50) and mask.max() < NUM_CLASSES

    raw = post(http, server, "/api/predict", data=upload,
               headers={"Content-Type": "image/png", "Accept": "application/json"})
    assert raw.status_code == 200 and raw.headers["Content-Type"].startswith("application/json")
    body = raw.json()
    assert (body["width"], body["height"], body["run"]) == (50, 37, RUN_NAME)
    np.testing.assert_array_equal(_b64_png(body["index_png"]), mask)  # same model, same answer
    assert sum(body["class_pixels"].values()) == 37 * 50

    jpeg = io.BytesIO()
    Image.fromarray(random_rgb(21, 13, seed=2)).save(jpeg, format="JPEG")
    as_json = post(http, server, "/api/predict", params={"format": "json"},
                   files={"image": ("street.jpg", jpeg.getvalue(), "image/jpeg")})
    assert as_json.status_code == 200 and (as_json.json()["width"], as_json.json()["height"]) == (13, 21)


def test_concurrent_requests_all_succeed(server, http, store):
    ids = [e.id for e in load_or_build_index(store.data_root).split("all")]
    upload = png_bytes(random_rgb(20, 30, seed=3))

    def call(i):
        with requests.Session() as session:
            if i % 3 == 2:
                response = session.post(f"{server.url}/api/predict", data=upload,
                                        headers={"Content-Type": "image/png"}, timeout=TIMEOUT)
                return response.status_code, decode_png(response.content).shape
            response = session.get(f"{server.url}/api/images/{ids[i % len(ids)]}/segmentation", timeout=TIMEOUT)
            return response.status_code, (response.json()["height"], response.json()["width"])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(24)))
    assert all(status == 200 for status, _ in results), results
    assert {shape for i, (_, shape) in enumerate(results) if i % 3 == 2} == {(20, 30)}
    assert {shape for i, (_, shape) in enumerate(results) if i % 3 != 2} == {(HEIGHT, WIDTH)}


def test_bad_requests_get_json_errors_and_leave_the_server_healthy(server, http):
    workers_before = server.worker_pids()
    assert_error(get(http, server, "/api/images/999999"), 404)
    assert_error(get(http, server, "/api/images/999999/segmentation"), 404)
    for bad in ("abc", "-1", "1.5", "%2E%2E", "1e3"):
        assert_error(get(http, server, f"/api/images/{bad}"), 400)
    assert_error(get(http, server, "/api/images/abc/segmentation"), 400)
    assert_error(get(http, server, "/api/images", params={"limit": "-1"}), 400)
    assert_error(get(http, server, "/api/images", params={"split": "nope"}), 400)
    assert_error(get(http, server, "/api/images/0/segmentation", params={"format": "jpeg"}), 400)
    assert_error(get(http, server, "/no/such/route"), 404)
    assert_error(get(http, server, "/api/images/../../etc/passwd"), 404)  # normalised by the client
    escaped = get(http, server, "/api/images/..%2F..%2Fetc%2Fpasswd")
    assert_error(escaped, escaped.status_code) and escaped.status_code in (400, 404)

    assert_error(post(http, server, "/api/predict", data=b"hello", headers={"Content-Type": "text/plain"}), 415)
    assert_error(post(http, server, "/api/predict", data=b"not a png at all",
                      headers={"Content-Type": "image/png"}), 415)
    broken = b"\x89PNG\r\n\x1a\nbroken"
    assert_error(post(http, server, "/api/predict", files={"image": ("x.png", broken, "image/png")}), 415)
    assert_error(post(http, server, "/api/predict", data=b"", headers={"Content-Type": "image/png"}), 400)
    assert_error(post(http, server, "/api/predict", data={"field": "value"}), 400)  # a form without a file
    # too large: more bytes than MAX_CONTENT_LENGTH, more pixels than MAX_UPLOAD_PIXELS
    too_many_bytes = png_bytes(random_rgb(600, 600, seed=4))
    assert len(too_many_bytes) > MAX_BYTES
    assert_error(post(http, server, "/api/predict", data=too_many_bytes, headers={"Content-Type": "image/png"}), 413)
    few_bytes_many_pixels = png_bytes(np.zeros((600, 600, 3), np.uint8))
    assert len(few_bytes_many_pixels) < MAX_BYTES
    assert_error(post(http, server, "/api/predict", files={"image": ("big.png", few_bytes_many_pixels, "image/png")}),
                 413)
    assert_error(get(http, server, "/api/predict"), 405)

    health = get(http, server, "/health")
    assert health.status_code == 200 and health.json()["model_loaded"] is True
    assert server.worker_pids() == workers_before  # no worker crashed or was replaced
    assert server.process.poll() is None
    assert "Traceback" not in server.log()
