"""Every route and every error of the API, through Flask's test client."""

import base64
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from api_fixtures import HEIGHT, WIDTH, copy_store, png_bytes, random_rgb, remove_pair, truncate
from PIL import Image

from api import create_app
from training.data.cityscapes import read_pair
from training.data.index import load_or_build_index
from training.data.labels import IGNORE_INDEX, get_class_set
from training.runs.reader import get_run
from training.viz import overlay

CAT8 = get_class_set("categories8")


def _png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return np.asarray(image)


def _b64png(text: str) -> np.ndarray:
    return _png(base64.b64decode(text))


def _shown(data: bytes) -> np.ndarray:
    """A PNG's pixels as a viewer shows them (RGB)."""
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


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


@pytest.mark.parametrize("query, error", [("split=val", "bad split"), ("limit=0", "bad limit"),
                                          ("limit=1001", "bad limit"), ("limit=abc", "bad limit"),
                                          ("offset=-1", "bad offset"), ("offset=1.5", "bad offset")])
def test_list_images_rejects_bad_arguments(client, query, error):
    response = client.get(f"/api/images?{query}")
    assert response.status_code == 400 and response.json["error"] == error
    assert repr(query.partition("=")[2]) in response.json["detail"]


def test_metadata(client, api_store):
    image_id = _test_ids(api_store)[0]
    meta = client.get(f"/api/images/{image_id}").json
    assert meta["id"] == image_id and meta["split"] == "test" and meta["official_split"] == "val"
    assert (meta["width"], meta["height"]) == (WIDTH, HEIGHT)
    assert meta["classes_present"] == ["void", "flat", "construction", "sky", "human", "vehicle"]
    assert meta["links"]["segmentation"] == f"/api/images/{image_id}/segmentation"


@pytest.mark.parametrize("raw, status, error", [
    ("abc", 400, "malformed id"), ("-1", 400, "malformed id"), ("1.5", 400, "malformed id"),
    ("²", 400, "malformed id"), ("9" * 19, 404, "unknown id"),  # more digits than an int64 id has: out of range
    ("99999999999999", 404, "unknown id"), ("999", 404, "unknown id"),
    ("..%2F..%2Fetc", 404, "not found"),  # the decoded '/' makes it a path that no route has
])
def test_bad_and_unknown_ids(client, raw, status, error):
    for suffix in ("", "/segmentation", "/image.png", "/ground_truth.png", "/prediction.png"):
        response = client.get(f"/api/images/{raw}{suffix}")
        assert (response.status_code, response.json["error"]) == (status, error), suffix
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
    scored = truth != IGNORE_INDEX
    for k, name in enumerate(CAT8.names):  # IoU by hand: |truth k and predicted k| / |truth k or predicted k|
        union = np.sum(scored & ((truth == k) | (predicted == k)))
        intersection = np.sum(scored & (truth == k) & (predicted == k))
        assert body["iou"][name] == (None if union == 0 else pytest.approx(intersection / union)), name
    present = [v for v in body["iou"].values() if v is not None]
    assert body["miou"] == pytest.approx(sum(present) / len(present))
    assert body["pixel_accuracy"] == pytest.approx(np.mean(truth[scored] == predicted[scored]))
    assert body["run"] == api_store.run and body["cached"] is False and body["inference_ms"] > 0
    again = client.get(f"/api/images/{image_id}/segmentation")
    assert again.headers["X-Cache"] == "hit" and again.json["cached"] is True
    assert again.json["prediction"] == body["prediction"]


@pytest.mark.parametrize("fmt, keys", [("index", {"index_png"}), ("color", {"color_png"}),
                                       ("both", {"index_png", "color_png"})])
def test_segmentation_formats(client, api_store, fmt, keys):
    image_id = _test_ids(api_store)[0]
    body = client.get(f"/api/images/{image_id}/segmentation?format={fmt}").json
    assert set(body["ground_truth"]) == keys == set(body["prediction"])
    entry = load_or_build_index(api_store.data_root)[image_id]
    truth = CAT8.lut[read_pair(api_store.data_root, entry.image, entry.label)[1]]
    predicted = get_run(api_store.run, api_store.artifacts).prediction(image_id)
    for side, classes in (("ground_truth", truth), ("prediction", predicted)):
        if "index_png" in keys:
            np.testing.assert_array_equal(_b64png(body[side]["index_png"]), classes)
        if "color_png" in keys:
            with Image.open(io.BytesIO(base64.b64decode(body[side]["color_png"]))) as colors:
                np.testing.assert_array_equal(np.asarray(colors), classes)  # palette indices = classes
                np.testing.assert_array_equal(np.asarray(colors.convert("RGB")), CAT8.colorize(classes))


def test_segmentation_bad_format(client, api_store):
    response = client.get(f"/api/images/{_test_ids(api_store)[0]}/segmentation?format=jpeg")
    assert response.status_code == 400 and response.json["error"] == "bad format"


def test_picture_routes_and_overlay(client, api_store):
    image_id = _test_ids(api_store)[2]
    entry = load_or_build_index(api_store.data_root)[image_id]
    photo, label_ids = read_pair(api_store.data_root, entry.image, entry.label)
    np.testing.assert_array_equal(_png(client.get(f"/api/images/{image_id}/image.png").data), photo)
    colors = CAT8.colorize(CAT8.lut[label_ids])
    np.testing.assert_array_equal(_shown(client.get(f"/api/images/{image_id}/ground_truth.png").data), colors)
    np.testing.assert_array_equal(
        _png(client.get(f"/api/images/{image_id}/ground_truth.png?overlay=0").data), photo)
    np.testing.assert_array_equal(
        _png(client.get(f"/api/images/{image_id}/ground_truth.png?overlay=1").data), colors)
    stored = get_run(api_store.run, api_store.artifacts).prediction(image_id)
    for route, classes in (("ground_truth.png", CAT8.lut[label_ids]), ("prediction.png", stored)):
        with Image.open(io.BytesIO(client.get(f"/api/images/{image_id}/{route}").data)) as picture:
            assert picture.mode == "P"  # class indices in the official colours, like color_png
            np.testing.assert_array_equal(np.asarray(picture), classes)
            np.testing.assert_array_equal(np.asarray(picture.convert("RGB")), CAT8.colorize(classes))
        blended = _png(client.get(f"/api/images/{image_id}/{route}?overlay=0.5").data)
        np.testing.assert_array_equal(blended, overlay(photo, CAT8.colorize(classes), 0.5))
    for bad in ("1.5", "-0.1", "half"):
        response = client.get(f"/api/images/{image_id}/prediction.png?overlay={bad}")
        assert response.status_code == 400 and response.json["error"] == "bad overlay"


def test_predict_multipart_png_any_size(client, api_store):
    from training.fit.predict import Predictor

    photo = random_rgb(40, 70)
    response = client.post("/api/predict", data={"image": (io.BytesIO(png_bytes(photo)), "me.png")})
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.headers["X-Run"] == api_store.run
    with Image.open(io.BytesIO(response.data)) as mask:
        assert mask.mode == "P" and mask.size == (70, 40)  # the original size
        expected = Predictor.load(get_run(api_store.run, api_store.artifacts)).classes(photo)
        np.testing.assert_array_equal(np.asarray(mask), expected)
        np.testing.assert_array_equal(np.asarray(mask.convert("RGB")), CAT8.colorize(expected))


def test_predict_raw_jpeg_as_json(client):
    buffer = io.BytesIO()
    Image.fromarray(random_rgb(33, 45, seed=3)).save(buffer, format="JPEG")
    for response in (client.post("/api/predict?format=json", data=buffer.getvalue(), content_type="image/jpeg"),
                     client.post("/api/predict", data=buffer.getvalue(), content_type="image/jpeg",
                                 headers={"Accept": "application/json"})):
        body = response.json
        assert response.status_code == 200 and (body["width"], body["height"]) == (45, 33)
        mask = _b64png(body["index_png"])
        assert mask.shape == (33, 45)
        counts = np.bincount(mask.ravel(), minlength=8)
        assert body["class_pixels"] == {name: int(counts[k]) for k, name in enumerate(CAT8.names)}
        np.testing.assert_array_equal(_shown(base64.b64decode(body["color_png"])), CAT8.colorize(mask))
        np.testing.assert_array_equal(mask, _png(client.post("/api/predict", data=buffer.getvalue(),
                                                             content_type="image/jpeg").data))


@pytest.mark.parametrize("kwargs, status, error", [
    ({"data": b"not an image at all", "content_type": "image/png"}, 415, "not an image"),
    ({"data": b"", "content_type": "image/png"}, 400, "empty upload"),
    ({"data": "hello", "content_type": "text/plain"}, 415, "not an image"),
    ({"data": {"note": "no file"}}, 400, "no image"),
    ({"data": png_bytes(random_rgb(10, 10))[:40], "content_type": "image/png"}, 415, "not an image"),  # no header
    ({"data": png_bytes(random_rgb(10, 10))[:100], "content_type": "image/png"}, 415, "unreadable image"),  # no pixels
])
def test_predict_bad_uploads(client, kwargs, status, error):
    response = client.post("/api/predict", **kwargs)
    assert (response.status_code, response.json["error"]) == (status, error)
    assert set(response.json) == {"error", "detail"}


def test_predict_limits(api_store):
    app = create_app({"TESTING": True, "ARTIFACTS_DIR": str(api_store.artifacts),
                      "DATA_ROOT": str(api_store.data_root), "MAX_CONTENT_LENGTH": 2000, "MAX_UPLOAD_PIXELS": 400})
    client = app.test_client()
    big = client.post("/api/predict", data=png_bytes(random_rgb(60, 60)), content_type="image/png")
    assert big.status_code == 413 and big.json["error"]
    many = client.post("/api/predict", data=png_bytes(np.zeros((30, 30, 3), np.uint8)), content_type="image/png")
    assert many.status_code == 413 and "more than the 400 this server takes" in many.json["detail"]


def test_model_card_and_runs(client, api_store):
    from training.runs.summary import SUMMARY_KEYS

    card = client.get("/api/model").json
    run = get_run(api_store.run, api_store.artifacts)
    metrics = run.metrics
    assert (card["run"], card["uid"], card["deployed"], card["model_loaded"]) == (api_store.run, run.uid, True, False)
    for key in SUMMARY_KEYS + ("class_names", "iou", "iou_official", "versions"):
        assert card[key] == metrics.get(key), key
    assert card["served"] == {"file": "model.keras", "format": "keras"}  # not a TFLite export
    # the dataset and the config as trained, but no server path: the data folder by its name
    assert card["dataset"] == {**metrics["dataset"], "root": api_store.data_root.name}
    assert card["config"] == {**run.config, "data": {**run.config["data"], "root": api_store.data_root.name}}
    runs = client.get("/api/runs").json
    assert runs["deployed"] == api_store.run and len(runs["runs"]) == 1
    row = runs["runs"][0]
    assert row == {key: value for key, value in card.items() if key not in ("config", "model_loaded", "served")}


def test_openapi_describes_every_route(client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert {"/", "/health", "/api/images", "/api/images/{image_id}", "/api/images/{image_id}/segmentation",
            "/api/images/{image_id}/image.png", "/api/images/{image_id}/ground_truth.png",
            "/api/images/{image_id}/prediction.png", "/api/predict", "/api/model", "/api/runs",
            "/api/sequences", "/api/sequences/{name}", "/api/sequences/{name}/frames/{frame}/segmentation",
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

    from training.runs.deployment import deploy

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


def _upload():
    return {"data": png_bytes(random_rgb(8, 8)), "content_type": "image/png"}


# ---------------------------------------------------------------------------- no server path in any answer

def test_server_paths_are_named_by_their_folder(tmp_path):
    from api.paths import ServerPaths

    repository = Path(__file__).parents[1]
    paths = ServerPaths((tmp_path / "store", None), (repository, "."))
    assert paths.text(f"no run 'x' in {tmp_path}/store; see /api/images") == "no run 'x' in store; see /api/images"
    assert paths.text(f"{repository}/data/cityscapes-synthetic: missing gtFine/") == \
        "./data/cityscapes-synthetic: missing gtFine/"
    assert paths.text("cannot read /tmp/elsewhere/index.csv (gone)") == "cannot read index.csv (gone)"  # a folder here
    assert paths.text("GET http://host:8000/api/images/3 or /api/images/3") == \
        "GET http://host:8000/api/images/3 or /api/images/3"  # routes, not files
    card = {"root": "/data/on/the/training/machine", "n": 3, "weights": ["imagenet", "/opt/w/b0.h5"]}
    assert paths.value(card) == {"root": "machine", "n": 3, "weights": ["imagenet", "b0.h5"]}


def _strings(value):
    """Every string of a JSON document, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _every_answer(client, image_id: int) -> list[tuple[str, int, str]]:
    """(route, status, text) of every route, good and bad requests, GET and POST."""
    routes = ["/", "/health", "/api/model", "/api/runs", "/api/images", f"/api/images/{image_id}",
              f"/api/images/{image_id}/segmentation", f"/api/images/{image_id}/image.png",
              f"/api/images/{image_id}/ground_truth.png", f"/api/images/{image_id}/prediction.png",
              "/api/images/999", "/api/images/abc", "/no/such/route", "/openapi.json"]
    answers = []
    for route in routes:
        response = client.get(route)
        answers.append((route, response.status_code, response.get_data(as_text=not response.mimetype == "image/png")))
    for kwargs in (_upload(), {"data": b"junk", "content_type": "image/png"}):
        response = client.post("/api/predict?format=json", **kwargs)
        answers.append(("/api/predict", response.status_code, response.get_data(as_text=True)))
    return answers


def test_no_answer_carries_a_server_path(api_store, tmp_path, monkeypatch):
    """Healthy, damaged, without a model, an unknown run, no dataset, a damaged image, and an
    unexpected error: no JSON string and no page holds the store's, the data's or the
    repository's absolute path; the 500 answer is generic."""
    private = copy_store(api_store, tmp_path / "store")
    image_id = _test_ids(api_store)[0]
    secrets = (str(tmp_path), str(api_store.artifacts), str(api_store.data_root), str(Path(__file__).parents[1]))

    def app(artifacts=private.artifacts, **settings):
        return create_app({"ARTIFACTS_DIR": str(artifacts), "DATA_ROOT": str(private.data_root), **settings})

    not_a_dataset = tmp_path / "none"  # a folder (the settings are checked at start), but no dataset in it
    not_a_dataset.mkdir()
    scenarios = {"healthy": app(), "unknown run": app(RUN="ghost"), "no dataset": app(DATA_ROOT=str(not_a_dataset)),
                 "nothing deployed": app(artifacts=tmp_path / "empty")}
    answers = []
    for name, scenario in scenarios.items():
        answers += [(name, *answer) for answer in _every_answer(scenario.test_client(), image_id)]

    run_dir = private.artifacts / "runs" / api_store.run
    entry = load_or_build_index(private.data_root)[image_id]
    truncate(private.data_root / entry.label)  # a damaged ground truth: read errors name files
    answers += [("damaged image", *answer) for answer in _every_answer(app().test_client(), image_id)]
    (run_dir / "model.keras").write_bytes(b"not a keras archive")
    answers += [("model that does not load", *answer) for answer in _every_answer(app().test_client(), image_id)]
    (run_dir / "model.keras").unlink()
    answers += [("missing model", *answer) for answer in _every_answer(app().test_client(), image_id)]
    truncate(run_dir / "metrics.json")
    answers += [("damaged metrics", *answer) for answer in _every_answer(app().test_client(), image_id)]

    def unexpected(app):
        raise RuntimeError(f"cannot read {private.artifacts}/secret.yaml")

    monkeypatch.setattr("api.openapi.build_spec", unexpected)
    crash = app().test_client().get("/openapi.json")
    assert crash.status_code == 500
    assert crash.json == {"error": "internal server error",
                          "detail": "the server could not answer this request; the details are in its log"}
    answers.append(("unexpected error", "/openapi.json", 500, crash.get_data(as_text=True)))

    statuses = {(scenario, route): status for scenario, route, status, _ in answers}
    assert statuses[("healthy", "/api/model")] == 200 and statuses[("missing model", "/api/model")] == 503
    assert statuses[("damaged image", f"/api/images/{image_id}/segmentation")] == 503
    for scenario, route, status, text in answers:
        assert status != 500 or scenario == "unexpected error", (scenario, route, text[:300])
        if isinstance(text, bytes):
            continue  # a PNG
        strings = list(_strings(json.loads(text))) if text.startswith("{") else [text]  # JSON or the home page
        for string in strings:
            for secret in secrets:
                assert secret not in string, (scenario, route, string[:500])


def test_pictures_are_revalidated_and_change_with_the_model_and_the_index(api_store, tmp_path):
    """Browsers keep a picture by its URL: it must not outlive the model or the index it shows.
    Every picture carries an ETag of what it depends on, and clients are told to revalidate."""
    from training.runs.deployment import deploy

    private = copy_store(api_store, tmp_path)
    shutil.copytree(private.artifacts / "runs" / api_store.run, private.artifacts / "runs" / "other")
    client = create_app({"TESTING": True, "ARTIFACTS_DIR": str(private.artifacts),
                         "DATA_ROOT": str(private.data_root)}).test_client()
    image_id = _test_ids(api_store)[0]
    pictures = [f"/api/images/{image_id}/{name}" for name in ("image.png", "ground_truth.png", "prediction.png")]
    pictures.append(pictures[-1] + "?overlay=0.5")
    tags = {}
    for url in pictures:
        first = client.get(url)
        assert first.status_code == 200 and first.headers["Cache-Control"] == "no-cache" and first.headers["ETag"]
        tags[url] = first.headers["ETag"]
        again = client.get(url, headers={"If-None-Match": tags[url]})
        assert again.status_code == 304 and again.data == b""
    assert len(set(tags.values())) == len(pictures)
    deploy("other", private.artifacts)
    for url in pictures:
        response = client.get(url, headers={"If-None-Match": tags[url]})
        expected = 200 if "prediction" in url else 304  # the photo and its truth did not change
        assert response.status_code == expected, url
        tags[url] = response.headers["ETag"]
    # the index is rebuilt without the first image: the id now names the next one
    index = load_or_build_index(private.data_root)
    remove_pair(private.data_root, index.split("train")[0])
    (private.data_root / "segmentation_index.csv").unlink()
    assert load_or_build_index(private.data_root)[image_id].stem == index[image_id + 1].stem
    for url in pictures:
        response = client.get(url, headers={"If-None-Match": tags[url]})
        assert response.status_code == 200, url


def test_a_run_published_under_the_deployed_name_is_served_once_it_is_deployed(api_store, tmp_path):
    """deployed.json records the uid of the run deployed: another run published under its name
    is not served until it is deployed, and then nothing cached for the old one is."""
    from training.runs.deployment import deploy

    private = copy_store(api_store, tmp_path)
    client = create_app({"TESTING": True, "ARTIFACTS_DIR": str(private.artifacts),
                         "DATA_ROOT": str(private.data_root)}).test_client()
    url = f"/api/images/{_test_ids(api_store)[0]}/segmentation"
    assert client.get(url).json["cached"] is False and client.get(url).json["cached"] is True
    metrics_file = private.artifacts / "runs" / api_store.run / "metrics.json"
    metrics_file.write_text(json.dumps({**json.loads(metrics_file.read_text()), "uid": "republished"}))

    refused = client.get(url)
    assert refused.status_code == 503 and refused.json["error"] == "run unavailable"
    assert "replaced after it was deployed" in refused.json["detail"]
    assert "python -m training deploy" in refused.json["detail"]
    deploy(api_store.run, private.artifacts)
    served = client.get(url)
    assert served.status_code == 200 and served.json["cached"] is False  # another run: no old answer
    card = client.get("/api/model").json
    assert card["uid"] == "republished" and card["model_loaded"] is True  # its own model, loaded again
