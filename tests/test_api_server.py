"""The real server: gunicorn with ``api/gunicorn.conf.py`` on a free loopback port, over HTTP.

One tiny dataset and one tiny trained, deployed run for the whole module; the server runs with
2 workers x 2 threads and tight upload limits, so the 413 paths are cheap to reach.
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import sys
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
    copy_store,
    decode_png,
    png_bytes,
    random_rgb,
    remove_pair,
    replace_run,
    start_server,
    tiny_store,
)
from PIL import Image, ImageOps

from training import runtime_env
from training.data.cityscapes import read_pair
from training.data.index import load_index, load_or_build_index
from training.data.labels import get_class_set
from training.runs.deployment import deploy
from training.runs.reader import get_run

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
    # TensorFlow started quietly in each worker (post_fork): none of its start-up noise in the log,
    # above all no cuInit error where there is no GPU driver
    assert "I0000" not in log and "absl::InitializeLog" not in log, log[-3000:]
    if not runtime_env.has_nvidia_driver():
        assert "failed call to cuInit" not in log, log[-3000:]


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
    assert image.content == (store.data_root / entry.image).read_bytes()  # the file itself, not re-encoded
    np.testing.assert_array_equal(decode_png(image.content), photo)
    for name in ("ground_truth.png", "prediction.png"):
        plain = get(http, server, f"/api/images/{entry.id}/{name}")
        blended = get(http, server, f"/api/images/{entry.id}/{name}", params={"overlay": "0.5"})
        photo_only = get(http, server, f"/api/images/{entry.id}/{name}", params={"overlay": "0"})
        for response in (plain, blended, photo_only):
            assert response.status_code == 200 and response.headers["Content-Type"] == "image/png"
        assert decode_png(plain.content).shape == (HEIGHT, WIDTH)  # a palette PNG: class indices
        assert decode_png(blended.content).shape == (HEIGHT, WIDTH, 3)
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


def _chunks(data: bytes, size: int = 64 * 1024):
    """A generator body: requests sends it with Transfer-Encoding: chunked, no Content-Length."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


def _post_once(server, data, content_type: str):
    """A POST on a connection of its own: the server closes a connection whose body it refused
    part-way (its answer says ``Connection: close``)."""
    with requests.Session() as session:
        return session.post(f"{server.url}/api/predict", data=data, headers={"Content-Type": content_type},
                            timeout=TIMEOUT)


def test_a_chunked_upload_is_held_to_the_byte_limit(server, http):
    """Without a Content-Length the limit can only be enforced while the body is read: past it
    the upload is refused (413), never cut at the limit and then decoded. A PNG followed by
    padding shows why: its first MAX_BYTES hold the whole image, so a cut upload would be accepted."""
    padded = png_bytes(random_rgb(40, 50, seed=5)) + bytes(MAX_BYTES)
    raw = _post_once(server, _chunks(padded), "image/png")
    assert raw.request.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in raw.request.headers
    assert assert_error(raw, 413)["error"] == "request entity too large"
    too_many_bytes = png_bytes(random_rgb(600, 600, seed=5))
    assert MAX_BYTES < len(too_many_bytes) < 2 * MAX_BYTES
    raw = _post_once(server, _chunks(too_many_bytes), "image/png")
    assert assert_error(raw, 413)["error"] == "request entity too large"
    boundary = "segapi-test"
    form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + too_many_bytes + f"\r\n--{boundary}--\r\n".encode()
    multipart = _post_once(server, _chunks(form), f"multipart/form-data; boundary={boundary}")
    assert assert_error(multipart, 413)["error"] == "request entity too large"

    small = png_bytes(random_rgb(37, 50, seed=1))  # under the limit: the whole image arrives
    chunked = post(http, server, "/api/predict", data=_chunks(small, 100), headers={"Content-Type": "image/png"})
    assert chunked.status_code == 200, chunked.text[:300]
    whole = post(http, server, "/api/predict", data=small, headers={"Content-Type": "image/png"})
    np.testing.assert_array_equal(decode_png(chunked.content), decode_png(whole.content))
    exactly = png_bytes(random_rgb(20, 20, seed=8))  # a body of exactly the limit is within it
    exactly += bytes(MAX_BYTES - len(exactly))
    assert _post_once(server, _chunks(exactly), "image/png").status_code == 200
    assert get(http, server, "/health").json()["model_loaded"] is True


def test_the_mask_of_a_rotated_jpeg_matches_the_image_as_shown(server, http):
    """EXIF orientation 6: stored 512 wide and 256 high, shown 256 wide and 512 high. The mask
    is the model's answer for the image as shown (what a phone displays)."""
    stored = Image.fromarray(random_rgb(256, 512, seed=6))
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    jpeg = io.BytesIO()
    stored.save(jpeg, format="JPEG", exif=exif)
    with Image.open(io.BytesIO(jpeg.getvalue())) as decoded:
        shown = np.asarray(ImageOps.exif_transpose(decoded).convert("RGB"))
    assert shown.shape == (512, 256, 3)

    response = post(http, server, "/api/predict", files={"image": ("phone.jpg", jpeg.getvalue(), "image/jpeg")})
    assert response.status_code == 200, response.text[:300]
    mask = decode_png(response.content)
    assert mask.shape == (512, 256)
    as_shown = post(http, server, "/api/predict", data=png_bytes(shown), headers={"Content-Type": "image/png"})
    np.testing.assert_array_equal(mask, decode_png(as_shown.content))  # same pixels, same mask


# ---------------------------------------------------------------------------- a store that changes

def _segmentation(session, server, image_id: int) -> dict:
    response = session.get(f"{server.url}/api/images/{image_id}/segmentation", params={"format": "index"},
                           timeout=TIMEOUT)
    assert response.status_code == 200, response.text[:500]
    return response.json()


def _answers(server, image_id: int, count: int = 8) -> list[dict]:
    """``count`` answers for one id, each on a new connection: both workers answer some."""
    answers = []
    for _ in range(count):
        with requests.Session() as session:
            answers.append(_segmentation(session, server, image_id))
    return answers


def test_a_rebuilt_index_and_a_run_replaced_under_its_name_are_served_fresh(store, tmp_path):
    """Another process changes the store under a running server: the dataset index is rebuilt so
    that an id names another image, then the deployed run is deleted and another run published and
    deployed under the same name. Every answer after each change is about the new content, from
    every worker: no cached ground truth, prediction, config or model of the old one."""
    private = copy_store(store, tmp_path)
    class_set = get_class_set("categories8")
    old_run = get_run(RUN_NAME, private.artifacts)
    old_uid = old_run.uid
    index = load_or_build_index(private.data_root, write=False)
    image_id = index.split("test")[0].id
    env = {"ARTIFACTS_DIR": str(private.artifacts), "SEGAPI_DATA_ROOT": str(private.data_root)}
    server = start_server(env, tmp_path / "server.log", workers=2, threads=2)
    try:
        for body in _answers(server, image_id):  # every worker has cached its answers for the id
            np.testing.assert_array_equal(_b64_png(body["prediction"]["index_png"]), old_run.prediction(image_id))

        # 1. the index is rebuilt after an image is removed: ids move to other files
        remove_pair(private.data_root, index.split("train")[0])
        rebuilt = subprocess.run([sys.executable, "-m", "training", "data", "index", "--rebuild", "--data-root",
                                  str(private.data_root)], capture_output=True, text=True, timeout=120)
        assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
        new_entry = load_index(private.data_root / "segmentation_index.csv")[image_id]
        assert new_entry.stem == index[image_id + 1].stem  # the id now names the next test image
        _, label_ids = read_pair(private.data_root, new_entry.image, new_entry.label)
        _, old_label_ids = read_pair(store.data_root, index[image_id].image, index[image_id].label)
        assert not np.array_equal(class_set.lut[label_ids], class_set.lut[old_label_ids]), "cannot tell them apart"
        for body in _answers(server, image_id):
            np.testing.assert_array_equal(_b64_png(body["ground_truth"]["index_png"]), class_set.lut[label_ids])
            np.testing.assert_array_equal(_b64_png(body["prediction"]["index_png"]),
                                          old_run.prediction(image_id + 1))
        with requests.Session() as session:
            assert session.get(f"{server.url}/api/images/{image_id}", timeout=TIMEOUT).json()["stem"] == new_entry.stem

        # 2. run "tiny" is replaced by another run under the same name, then deployed
        counts = np.bincount(old_run.prediction(image_id + 1).ravel(), minlength=NUM_CLASSES)
        constant = int(np.argmin(counts))  # a class the old model does not predict everywhere
        new_metrics = replace_run(private.artifacts, RUN_NAME, constant)
        deploy(RUN_NAME, private.artifacts)
        new_run = get_run(RUN_NAME, private.artifacts)
        assert new_run.uid == new_metrics["uid"] != old_uid
        for body in _answers(server, image_id):
            assert body["run"] == RUN_NAME
            np.testing.assert_array_equal(_b64_png(body["prediction"]["index_png"]),
                                          np.full(label_ids.shape, constant, np.uint8))
        upload = png_bytes(random_rgb(20, 30, seed=7))
        for _ in range(4):
            with requests.Session() as session:
                predicted = session.post(f"{server.url}/api/predict", data=upload,
                                         headers={"Content-Type": "image/png"}, timeout=TIMEOUT)
            np.testing.assert_array_equal(decode_png(predicted.content), np.full((20, 30), constant, np.uint8))
        for _ in range(4):
            with requests.Session() as session:
                card = session.get(f"{server.url}/api/model", timeout=TIMEOUT).json()
            assert (card["uid"], card["miou"], card["epochs"]) == (new_run.uid, 0.125, 42)
            assert card["config"]["train"]["seed"] == new_run.config["train"]["seed"] == 4242
            assert card["created"] == new_metrics["created"]
        assert "Traceback" not in server.log()
    finally:
        server.stop()


def test_a_server_started_on_a_damaged_store_answers_and_recovers_after_a_deploy(store, tmp_path):
    """The deployed run has lost its model: the workers still start (warm-up cannot load it),
    /health and / explain, the model's routes are 503 naming the fix; once a whole run is
    deployed the same workers serve it."""
    private = copy_store(store, tmp_path)
    shutil.copytree(private.artifacts / "runs" / RUN_NAME, private.artifacts / "runs" / "whole")
    (private.artifacts / "runs" / RUN_NAME / "model.keras").unlink()
    env = {"ARTIFACTS_DIR": str(private.artifacts), "SEGAPI_DATA_ROOT": str(private.data_root)}
    server = start_server(env, tmp_path / "server.log", workers=2, threads=2)
    try:
        with requests.Session() as session:
            health = session.get(f"{server.url}/health", timeout=TIMEOUT).json()
            assert health["status"] == "ok" and health["model_loaded"] is False
            assert "model.keras" in health["problem"] and "python -m training deploy" in health["problem"]
            home = session.get(f"{server.url}/", timeout=TIMEOUT)
            assert home.status_code == 200 and "model.keras" in home.text
            image_id = load_or_build_index(private.data_root, write=False).split("test")[0].id
            for path in (f"/api/images/{image_id}/segmentation", "/api/model"):
                body = assert_error(session.get(f"{server.url}{path}", timeout=TIMEOUT), 503)
                assert "model.keras" in body["detail"] and "python -m training deploy" in body["detail"]
            body = assert_error(session.post(f"{server.url}/api/predict", data=png_bytes(random_rgb(8, 8)),
                                             headers={"Content-Type": "image/png"}, timeout=TIMEOUT), 503)
            assert "model.keras" in body["detail"]
            runs = session.get(f"{server.url}/api/runs", timeout=TIMEOUT).json()["runs"]
            assert {row["run"]: row.get("error") for row in runs} == {RUN_NAME: "missing model.keras", "whole": None}

        deploy("whole", private.artifacts)
        for _ in range(4):
            with requests.Session() as session:
                health = session.get(f"{server.url}/health", timeout=TIMEOUT).json()
                assert health["run"] == "whole" and health["problem"] is None
                assert _segmentation(session, server, image_id)["run"] == "whole"
    finally:
        server.stop()
