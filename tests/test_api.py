"""Every route and every error of the API, through Flask's test client."""

import base64
import io
import subprocess
import sys

import numpy as np
import pytest
from api_fixtures import HEIGHT, WIDTH, png_bytes, random_rgb
from PIL import Image

from api import create_app
from training.data.cityscapes import read_pair
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.evaluation.metrics import confusion_matrix, iou_per_class
from training.runs.store import get_run

CAT8 = get_class_set("categories8")


def _png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return np.asarray(image)


def _b64png(text: str) -> np.ndarray:
    return _png(base64.b64decode(text))


def _test_ids(api_store):
    return [e.id for e in load_or_build_index(api_store.data_root).split("test")]


def test_factory():
    assert not create_app().testing
    assert create_app({"TESTING": True}).testing


LIGHT_ROUTES_WITHOUT_TENSORFLOW = """
import importlib.abc, sys

REFUSED = ("tensorflow", "keras", "tf_keras", "segmentation_models", "albumentations")
attempts = []

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in REFUSED or name.startswith(("training.fit", "training.models", "training.losses")):
            attempts.append(name)
            raise ImportError(f"{name} refused: the API's light routes must not need it")

sys.meta_path.insert(0, Refuse())
import training.data.dataset, training.evaluation.masks, training.runs.summary, training.viz  # the core
from api import create_app

client = create_app({"ARTIFACTS_DIR": sys.argv[1], "DATA_ROOT": sys.argv[2]}).test_client()
for route in ("/health", "/", "/api/images", "/api/images/0", "/api/model", "/api/runs", "/openapi.json",
              "/api/images/0/image.png", "/api/images/0/ground_truth.png?overlay=0.5", "/api/images/x"):
    response = client.get(route)
    assert response.status_code == (400 if route.endswith("/x") else 200), (route, response.status_code)
assert not attempts, attempts
print("ok")
"""


def test_the_core_and_the_light_routes_work_without_tensorflow(api_store):
    """Every route that needs no model answers with TensorFlow, Keras, segmentation-models and
    Albumentations refused at import (as if not installed), and so does importing the core."""
    result = subprocess.run([sys.executable, "-c", LIGHT_ROUTES_WITHOUT_TENSORFLOW, str(api_store.artifacts),
                             str(api_store.data_root)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_home_page_names_the_model_and_links_the_routes(client, api_store):
    page = client.get("/").get_data(as_text=True)
    miou = get_run(api_store.run, api_store.artifacts).metrics["miou"]
    assert api_store.run in page and f"{miou:.3f}" in page
    for route in ("/api/images", "/segmentation", "/api/predict", "/openapi.json", "/health"):
        assert route in page


def test_health_says_when_the_model_is_loaded(client, api_store):
    before = client.get("/health").json
    assert before == {"status": "ok", "model_loaded": False, "loaded_run": None, "run": api_store.run,
                      "problem": None}
    client.get(f"/api/images/{_test_ids(api_store)[0]}/segmentation")
    assert client.get("/health").json["model_loaded"] is True


def test_list_images_with_split_and_paging(client, api_store):
    everything = client.get("/api/images").json
    assert everything["total"] == 14 and [i["id"] for i in everything["images"]] == list(range(14))
    tests = client.get("/api/images?split=test").json
    assert [i["id"] for i in tests["images"]] == _test_ids(api_store)
    assert {i["split"] for i in tests["images"]} == {"test"}
    page = client.get("/api/images?offset=2&limit=3").json
    assert [i["id"] for i in page["images"]] == [2, 3, 4] and page["total"] == 14


@pytest.mark.parametrize("query", ["split=val", "limit=0", "limit=1001", "limit=abc", "offset=-1", "offset=1.5"])
def test_list_images_rejects_bad_arguments(client, query):
    response = client.get(f"/api/images?{query}")
    assert response.status_code == 400 and set(response.json) == {"error", "detail"}


def test_metadata(client, api_store):
    image_id = _test_ids(api_store)[0]
    meta = client.get(f"/api/images/{image_id}").json
    assert meta["id"] == image_id and meta["split"] == "test" and meta["official_split"] == "val"
    assert (meta["width"], meta["height"]) == (WIDTH, HEIGHT)
    assert meta["classes_present"] == ["void", "flat", "construction", "sky", "human", "vehicle"]
    assert meta["links"]["segmentation"] == f"/api/images/{image_id}/segmentation"


@pytest.mark.parametrize("raw, status", [("abc", 400), ("-1", 400), ("1.5", 400), ("²", 400), ("99999999999999", 404),
                                         ("9" * 19, 400), ("999", 404), ("..%2F..%2Fetc", 400)])
def test_bad_and_unknown_ids(client, raw, status):
    for suffix in ("", "/segmentation", "/image.png", "/ground_truth.png", "/prediction.png"):
        response = client.get(f"/api/images/{raw}{suffix}")
        assert response.status_code in (status, 404), suffix  # a '/' in the id is no route at all
        assert set(response.json) == {"error", "detail"}


def test_segmentation_matches_the_files_and_the_stored_prediction(client, api_store):
    image_id = _test_ids(api_store)[1]
    body = client.get(f"/api/images/{image_id}/segmentation").json
    entry = load_or_build_index(api_store.data_root)[image_id]
    _, label_ids = read_pair(api_store.data_root, entry.image, entry.label)
    truth = _b64png(body["ground_truth"]["index_png"])
    predicted = _b64png(body["prediction"]["index_png"])
    np.testing.assert_array_equal(truth, CAT8.lut[label_ids])
    # the deployed model predicts what training stored for this test image
    np.testing.assert_array_equal(predicted, get_run(api_store.run, api_store.artifacts).prediction(image_id))
    with Image.open(io.BytesIO(base64.b64decode(body["prediction"]["color_png"]))) as colors:
        assert colors.mode == "P"  # a palette PNG: class indices shown in the official colours
        np.testing.assert_array_equal(np.asarray(colors.convert("RGB")), CAT8.colorize(predicted))
    expected = iou_per_class(confusion_matrix(truth, predicted, 8))
    for name, value in zip(CAT8.names, expected):
        assert (body["iou"][name] is None) if np.isnan(value) else body["iou"][name] == pytest.approx(value)
    assert body["run"] == api_store.run and body["cached"] is False and body["inference_ms"] > 0
    again = client.get(f"/api/images/{image_id}/segmentation")
    assert again.headers["X-Cache"] == "hit" and again.json["cached"] is True
    assert again.json["prediction"] == body["prediction"]


@pytest.mark.parametrize("fmt, keys", [("index", {"index_png"}), ("color", {"color_png"}),
                                       ("both", {"index_png", "color_png"})])
def test_segmentation_formats(client, api_store, fmt, keys):
    body = client.get(f"/api/images/{_test_ids(api_store)[0]}/segmentation?format={fmt}").json
    assert set(body["ground_truth"]) == keys == set(body["prediction"])


def test_segmentation_bad_format(client, api_store):
    assert client.get(f"/api/images/{_test_ids(api_store)[0]}/segmentation?format=jpeg").status_code == 400


def test_picture_routes_and_overlay(client, api_store):
    image_id = _test_ids(api_store)[2]
    entry = load_or_build_index(api_store.data_root)[image_id]
    photo, label_ids = read_pair(api_store.data_root, entry.image, entry.label)
    np.testing.assert_array_equal(_png(client.get(f"/api/images/{image_id}/image.png").data), photo)
    colors = CAT8.colorize(CAT8.lut[label_ids])
    np.testing.assert_array_equal(_png(client.get(f"/api/images/{image_id}/ground_truth.png").data), colors)
    np.testing.assert_array_equal(
        _png(client.get(f"/api/images/{image_id}/ground_truth.png?overlay=0").data), photo)
    np.testing.assert_array_equal(
        _png(client.get(f"/api/images/{image_id}/ground_truth.png?overlay=1").data), colors)
    predicted = _png(client.get(f"/api/images/{image_id}/prediction.png").data)
    assert predicted.shape == (HEIGHT, WIDTH, 3)
    for bad in ("1.5", "-0.1", "half"):
        assert client.get(f"/api/images/{image_id}/prediction.png?overlay={bad}").status_code == 400


def test_predict_multipart_png_any_size(client):
    response = client.post("/api/predict", data={"image": (io.BytesIO(png_bytes(random_rgb(40, 70))), "me.png")})
    assert response.status_code == 200 and response.mimetype == "image/png"
    with Image.open(io.BytesIO(response.data)) as mask:
        assert mask.mode == "P" and mask.size == (70, 40)  # the original size
        assert np.asarray(mask).max() < 8


def test_predict_raw_jpeg_as_json(client):
    buffer = io.BytesIO()
    Image.fromarray(random_rgb(33, 45, seed=3)).save(buffer, format="JPEG")
    for response in (client.post("/api/predict?format=json", data=buffer.getvalue(), content_type="image/jpeg"),
                     client.post("/api/predict", data=buffer.getvalue(), content_type="image/jpeg",
                                 headers={"Accept": "application/json"})):
        body = response.json
        assert response.status_code == 200 and (body["width"], body["height"]) == (45, 33)
        assert sum(body["class_pixels"].values()) == 45 * 33
        assert _b64png(body["index_png"]).shape == (33, 45)


@pytest.mark.parametrize("kwargs, status", [
    ({"data": b"not an image at all", "content_type": "image/png"}, 415),
    ({"data": b"", "content_type": "image/png"}, 400),
    ({"data": "hello", "content_type": "text/plain"}, 415),
    ({"data": {"note": "no file"}}, 400),
    ({"data": png_bytes(random_rgb(10, 10))[:40], "content_type": "image/png"}, 415),  # truncated
])
def test_predict_bad_uploads(client, kwargs, status):
    response = client.post("/api/predict", **kwargs)
    assert response.status_code == status and set(response.json) == {"error", "detail"}


def test_predict_limits(api_store):
    app = create_app({"TESTING": True, "ARTIFACTS_DIR": str(api_store.artifacts),
                      "DATA_ROOT": str(api_store.data_root), "MAX_CONTENT_LENGTH": 2000, "MAX_UPLOAD_PIXELS": 400})
    client = app.test_client()
    big = client.post("/api/predict", data=png_bytes(random_rgb(60, 60)), content_type="image/png")
    assert big.status_code == 413 and big.json["error"]
    many = client.post("/api/predict", data=png_bytes(np.zeros((30, 30, 3), np.uint8)), content_type="image/png")
    assert many.status_code == 413 and "more than 400 pixels" in many.json["detail"]


def test_model_card_and_runs(client, api_store):
    card = client.get("/api/model").json
    metrics = get_run(api_store.run, api_store.artifacts).metrics
    assert card["run"] == api_store.run and card["miou"] == metrics["miou"] and card["params"] == metrics["params"]
    assert card["config"]["model"]["name"] == "simple"
    runs = client.get("/api/runs").json
    assert runs["deployed"] == api_store.run and runs["runs"][0]["deployed"] is True


def test_openapi_describes_every_route(client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert {"/", "/health", "/api/images", "/api/images/{image_id}", "/api/images/{image_id}/segmentation",
            "/api/images/{image_id}/image.png", "/api/images/{image_id}/ground_truth.png",
            "/api/images/{image_id}/prediction.png", "/api/predict", "/api/model", "/api/runs",
            "/openapi.json"} == set(spec["paths"])


def test_without_a_deployed_run(api_store, tmp_path):
    client = create_app({"TESTING": True, "ARTIFACTS_DIR": str(tmp_path),
                         "DATA_ROOT": str(api_store.data_root)}).test_client()
    for method, url in (("get", "/api/images/0/segmentation"), ("get", "/api/model"),
                        ("get", "/api/images/0/prediction.png"), ("post", "/api/predict")):
        response = getattr(client, method)(url)
        assert response.status_code == 503, url
        assert "python -m training deploy" in response.json["detail"]
    assert client.get("/health").json["run"] is None
    assert client.get("/api/images").status_code == 200  # the data is still there
    assert "No model is deployed" in client.get("/").get_data(as_text=True)


def test_a_pinned_run_and_an_unknown_one(api_store):
    pinned = create_app({"TESTING": True, "ARTIFACTS_DIR": str(api_store.artifacts), "RUN": api_store.run,
                         "DATA_ROOT": str(api_store.data_root)}).test_client()
    assert pinned.get("/api/model").json["run"] == api_store.run
    missing = create_app({"TESTING": True, "ARTIFACTS_DIR": str(api_store.artifacts), "RUN": "ghost",
                          "DATA_ROOT": str(api_store.data_root)}).test_client()
    response = missing.get("/api/model")
    assert response.status_code == 503 and "no run named 'ghost'" in response.json["detail"]


def test_redeploying_switches_the_served_model_without_a_restart(api_store, tmp_path):
    import shutil

    from training.runs.store import deploy

    artifacts = tmp_path / "artifacts"
    shutil.copytree(api_store.artifacts, artifacts)
    shutil.copytree(artifacts / "runs" / api_store.run, artifacts / "runs" / "tiny_copy")
    client = create_app({"TESTING": True, "ARTIFACTS_DIR": str(artifacts),
                         "DATA_ROOT": str(api_store.data_root)}).test_client()
    image_id = _test_ids(api_store)[0]
    assert client.get(f"/api/images/{image_id}/segmentation").json["run"] == api_store.run
    deploy("tiny_copy", artifacts)
    body = client.get(f"/api/images/{image_id}/segmentation").json
    assert body["run"] == "tiny_copy" and body["cached"] is False  # the cache is per run
    assert client.get("/health").json["loaded_run"] == "tiny_copy"
