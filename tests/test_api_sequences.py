"""``GET /api/sequences`` and the deployed model's prediction of one frame of a sequence, with the
Flask test client on the tiny store, its dataset given a drive and a snippet."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from sequence_fixtures import DRIVE, DRIVE_FRAMES, DRIVE_HEIGHT, DRIVE_WIDTH, SNIPPET, SNIPPET_FRAMES, copy_store


@pytest.fixture(scope="module")
def drive_store(api_store, tmp_path_factory):
    return copy_store(api_store, tmp_path_factory.mktemp("api_sequences"))


@pytest.fixture
def drive_client(drive_store):
    from api import create_app

    app = create_app({"TESTING": True, "ARTIFACTS_DIR": str(drive_store.artifacts),
                      "DATA_ROOT": str(drive_store.data_root)})
    return app.test_client()


def _png(text: str) -> np.ndarray:
    with Image.open(io.BytesIO(base64.b64decode(text))) as image:
        return np.asarray(image)


def test_sequences_are_listed(drive_client, drive_store):
    answer = drive_client.get("/api/sequences")
    assert answer.status_code == 200
    body = answer.get_json()
    by_name = {s["name"]: s for s in body["sequences"]}
    assert body["total"] == 2 and set(by_name) == {DRIVE, SNIPPET}
    assert by_name[DRIVE] == {"name": DRIVE, "kind": "drive", "split": "demoVideo", "city": "tiny", "frames": 5,
                              "first_frame": 1, "last_frame": 5, "annotated_id": None, "annotated_stem": None}
    snippet = by_name[SNIPPET]
    assert (snippet["kind"], snippet["frames"], snippet["annotated_stem"]) == ("snippet", 5, SNIPPET)
    assert isinstance(snippet["annotated_id"], int)
    one = drive_client.get(f"/api/sequences/{DRIVE}").get_json()
    assert one["frame_numbers"] == DRIVE_FRAMES and one["segmentation"].endswith(f"/{DRIVE}/frames/0/segmentation")


def test_a_frame_is_segmented_and_cached(drive_client):
    first = drive_client.get(f"/api/sequences/{DRIVE}/frames/3/segmentation")
    assert first.status_code == 200, first.get_json()
    assert first.headers["X-Cache"] == "miss"
    body = first.get_json()
    assert (body["run"], body["sequence"], body["frame"], body["position"]) == ("tiny", DRIVE, 3, 2)
    assert (body["width"], body["height"], body["classes"]) == (DRIVE_WIDTH, DRIVE_HEIGHT, "categories8")
    assert body["annotated"] is False and body["cached"] is False
    index = _png(body["prediction"]["index_png"])
    assert index.shape == (DRIVE_HEIGHT, DRIVE_WIDTH) and index.max() < 8
    color = _png(body["prediction"]["color_png"])
    assert np.array_equal(color, index)  # a palette PNG: its values are the class indices
    again = drive_client.get(f"/api/sequences/{DRIVE}/frames/3/segmentation")
    assert again.headers["X-Cache"] == "hit" and again.get_json()["cached"] is True
    assert again.get_json()["prediction"] == body["prediction"]
    only_colour = drive_client.get(f"/api/sequences/{DRIVE}/frames/3/segmentation?format=color").get_json()
    assert set(only_colour["prediction"]) == {"color_png"}


def test_the_annotated_frame_says_its_image_id(drive_client):
    body = drive_client.get(f"/api/sequences/{SNIPPET}/frames/{SNIPPET_FRAMES[-1]}/segmentation").get_json()
    assert body["annotated"] is True and isinstance(body["annotated_id"], int)
    image = drive_client.get(f"/api/images/{body['annotated_id']}").get_json()
    assert image["stem"] == SNIPPET


@pytest.mark.parametrize(("path", "status", "error"), [
    ("/api/sequences/nowhere_00", 404, "unknown sequence"),
    ("/api/sequences/nowhere_00/frames/1/segmentation", 404, "unknown sequence"),
    (f"/api/sequences/{DRIVE}/frames/9/segmentation", 404, "unknown frame"),
    (f"/api/sequences/{DRIVE}/frames/-1/segmentation", 400, "malformed frame"),
    (f"/api/sequences/{DRIVE}/frames/1/segmentation?format=jpeg", 400, "bad format"),
])
def test_errors_are_json(drive_client, path, status, error):
    answer = drive_client.get(path)
    assert answer.status_code == status
    assert answer.get_json()["error"] == error and answer.get_json()["detail"]


def test_a_damaged_frame_is_503_without_paths(drive_store, tmp_path):
    import shutil

    from api import create_app

    root = shutil.copytree(drive_store.data_root, tmp_path / "data")
    (root / "leftImg8bit" / "demoVideo" / DRIVE / f"{DRIVE}_000000_000002_leftImg8bit.png").write_bytes(b"broken")
    client = create_app({"TESTING": True, "ARTIFACTS_DIR": str(drive_store.artifacts),
                         "DATA_ROOT": str(root)}).test_client()
    answer = client.get(f"/api/sequences/{DRIVE}/frames/2/segmentation")
    assert answer.status_code == 503
    body = answer.get_json()
    assert body["error"] == "frame unavailable" and f"{DRIVE}_000000_000002_leftImg8bit.png" in body["detail"]
    assert str(tmp_path) not in body["detail"]


def test_the_routes_are_in_the_openapi_description(drive_client):
    spec = drive_client.get("/openapi.json").get_json()
    assert "/api/sequences" in spec["paths"]
    assert "/api/sequences/{name}/frames/{frame}/segmentation" in spec["paths"]
