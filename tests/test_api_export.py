"""``python -m training deploy RUN --export NAME``: the API serves a run's TFLite export through the
real Flask app, on the same routes, says which file in the model card, and goes back to the Keras
model when the run is deployed again; the light routes still import no TensorFlow."""

import base64
import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from api_fixtures import png_bytes
from export_fixtures import INT8, exported_store
from PIL import Image

from api import create_app
from training.cli import main
from training.runs.reader import get_run
from training.runs.tflite_exports import export_prediction


@pytest.fixture(scope="module")
def store(tmp_path_factory, dashboard_store):
    return exported_store(tmp_path_factory, dashboard_store)


@pytest.fixture
def artifacts(store, tmp_path):
    """A copy of the exported store (deploying writes deployed.json)."""
    return shutil.copytree(store.artifacts, tmp_path / "artifacts")


def _mask(encoded: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(encoded)) as image:
        return np.asarray(image)


def _client(artifacts, data_root, **config):
    return create_app({"TESTING": True, "ARTIFACTS_DIR": str(artifacts), "DATA_ROOT": str(data_root),
                       **config}).test_client()


def test_deploy_export_serves_the_tflite_model_on_the_same_routes(store, artifacts, capsys):
    assert main(["deploy", store.run, "--export", INT8, "--artifacts", str(artifacts)]) == 0
    assert f"export {INT8} (exports/{INT8}.tflite, int8" in capsys.readouterr().out
    record = json.loads((artifacts / "deployed.json").read_text())
    assert record["run"] == store.run and record["export"] == INT8 and record["export_file"] == f"exports/{INT8}.tflite"

    client = _client(artifacts, store.data_root)
    card = client.get("/api/model").json
    assert card["run"] == store.run
    assert card["served"]["file"] == f"exports/{INT8}.tflite" and card["served"]["quantize"] == "int8"
    assert card["served"]["miou"] == store.reports[INT8]["miou"]
    assert f"exports/{INT8}.tflite" in client.get("/").get_data(as_text=True)

    run = get_run(store.run, artifacts)
    dataset = run.data_settings.open()
    image_id = dataset.index.split("test")[0].id
    body = client.get(f"/api/images/{image_id}/segmentation?format=index").json
    assert body["run"] == store.run and body["cached"] is False
    served = _mask(base64.b64decode(body["prediction"]["index_png"]))
    assert np.array_equal(served, export_prediction(run, INT8, image_id))  # the export's own evaluation
    assert client.get("/health").json["loaded_run"] == store.run

    photo, _ = dataset.read(image_id)
    uploaded = client.post("/api/predict", data={"image": (io.BytesIO(png_bytes(photo)), "photo.png")})
    assert uploaded.status_code == 200
    assert np.array_equal(_mask(uploaded.data), served)

    # the Keras model again: nothing the export answered is served for it
    assert main(["deploy", store.run, "--artifacts", str(artifacts)]) == 0
    assert client.get("/api/model").json["served"] == {"file": "model.keras", "format": "keras"}
    body = client.get(f"/api/images/{image_id}/segmentation?format=index").json
    assert body["cached"] is False
    assert np.array_equal(_mask(base64.b64decode(body["prediction"]["index_png"])), run.prediction(image_id))


def test_a_pinned_run_with_an_export(store):
    client = _client(store.artifacts, store.data_root, RUN=store.run, EXPORT=INT8)
    assert client.get("/api/model").json["served"]["file"] == f"exports/{INT8}.tflite"


def test_a_missing_export_is_refused_when_deployed_and_503_when_gone(store, artifacts, capsys):
    assert main(["deploy", store.run, "--export", "ghost", "--artifacts", str(artifacts)]) == 2
    assert "has no export 'ghost'" in capsys.readouterr().err
    assert main(["deploy", store.run, "--export", INT8, "--artifacts", str(artifacts)]) == 0
    (artifacts / "runs" / store.run / "exports" / f"{INT8}.tflite").unlink()
    client = _client(artifacts, store.data_root)
    response = client.get("/api/model")
    assert response.status_code == 503 and f"missing exports/{INT8}.tflite" in response.json["detail"]
    assert client.get("/health").json["problem"]


LIGHT_ROUTES = """
import importlib.abc, sys

REFUSED = ("tensorflow", "keras", "tf_keras", "segmentation_models", "albumentations")
attempts = []

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in REFUSED or name.startswith(("training.fit", "training.models", "training.losses")):
            attempts.append(name)
            raise ImportError(f"{name} refused")

sys.meta_path.insert(0, Refuse())
from api import create_app

client = create_app({"ARTIFACTS_DIR": sys.argv[1], "DATA_ROOT": sys.argv[2]}).test_client()
for route in ("/health", "/", "/api/model", "/api/runs", "/api/images/0"):
    assert client.get(route).status_code == 200, route
assert client.get("/api/model").json["served"]["format"] == "tflite"
assert not attempts, attempts
print("ok")
"""


def test_light_routes_with_an_export_deployed_import_no_tensorflow(store, artifacts):
    assert main(["deploy", store.run, "--export", INT8, "--artifacts", str(artifacts)]) == 0
    result = subprocess.run([sys.executable, "-c", LIGHT_ROUTES, str(artifacts), str(store.data_root)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
