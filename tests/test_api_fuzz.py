"""Fuzzing the API: schemathesis from ``/openapi.json`` against every operation, and hypothesis
uploads of random and damaged bytes. Zero server errors, and every error is the JSON shape.

Runs in-process against the WSGI app of ``create_app`` (no network), on the same tiny deployed
run as the server test.
"""

from __future__ import annotations

import io
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
import schemathesis
from api_fixtures import NUM_CLASSES, RUN_NAME, png_bytes, tiny_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

pytestmark = pytest.mark.slow

MAX_BYTES = 200_000
MAX_PIXELS = 100_000
UPLOADS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
FUZZ = settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from api import create_app

    store = tiny_store(tmp_path_factory)
    app = create_app({"ARTIFACTS_DIR": str(store.artifacts), "DATA_ROOT": str(store.data_root),
                      "MAX_CONTENT_LENGTH": MAX_BYTES, "MAX_UPLOAD_PIXELS": MAX_PIXELS, "WARM_UP": True,
                      "TESTING": False})  # TESTING would re-raise errors instead of answering 500
    assert app.extensions["segmentation_serving"].model_loaded
    return app


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


def assert_no_server_error(response):
    assert response.status_code < 500, (response.status_code, response.get_data()[:1000])
    if response.status_code >= 400:
        body = response.get_json(silent=True)
        assert isinstance(body, dict) and {"error", "detail"} <= set(body), response.get_data()[:500]


# What an upload that is refused deserves: the status and the titles that go with it.
UPLOAD_ERRORS = {400: {"empty upload", "no image", "empty image"}, 413: {"image too large", "request entity too large"},
                 415: {"not an image", "unreadable image"}}


def assert_upload_error(response, status: int) -> dict:
    """A JSON error ``{"error", "detail"}`` with ``status`` and one of its titles."""
    assert response.status_code == status, (response.status_code, response.get_data()[:500])
    body = response.get_json(silent=True)
    assert isinstance(body, dict) and set(body) == {"error", "detail"}, response.get_data()[:500]
    assert body["error"] in UPLOAD_ERRORS[status] and body["detail"], body
    return body


class LateApp:
    """A WSGI app that forwards to one chosen later.

    The schema is read when this module is imported (schemathesis parametrizes the test per
    operation at collection time; its fixture-based loader does not work with this pytest), from
    an app without a run store: the OpenAPI description does not depend on the store. The cases
    are then sent to the app of the tiny deployed run, set by the ``fuzzed_app`` fixture.
    """

    def __init__(self, target):
        self.target = target

    def __call__(self, environ, start_response):
        return self.target(environ, start_response)


def _spec_only_app():
    from api import create_app

    return create_app({"ARTIFACTS_DIR": str(Path(__file__).parent / "no-such-store"), "TESTING": False})


LATE_APP = LateApp(_spec_only_app())
schema = schemathesis.openapi.from_wsgi("/openapi.json", LATE_APP)


@pytest.fixture(scope="module")
def fuzzed_app(app):
    LATE_APP.target = app
    yield app
    LATE_APP.target = _spec_only_app()


@schema.parametrize()
@FUZZ
def test_every_operation_conforms_to_its_schema(case, fuzzed_app):
    """Positive and negative cases from the OpenAPI description: no 5xx, and statuses, content
    types and bodies as documented.

    One check is left out for POST /api/predict: any bytes are a schema-valid binary body, but
    only an image is accepted (415 otherwise, as documented); the uploads are fuzzed below."""
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    excluded = [positive_data_acceptance] if case.operation.path == "/api/predict" else []
    response = case.call_and_validate(excluded_checks=excluded)
    assert response.status_code < 500, response.text[:1000]


def test_the_schema_covers_every_route(app, client):
    documented = client.get("/openapi.json").get_json()["paths"]
    documented = {(method.upper(), path) for path, item in documented.items() for method in item}
    routes = {(method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)) for rule in app.url_map.iter_rules()
              if rule.endpoint != "static" for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert routes <= documented, routes - documented


# ---------------------------------------------------------------------------- uploads

CONTENT_TYPES = st.sampled_from(["image/png", "image/jpeg", "application/octet-stream", "image/x-anything",
                                 "text/plain", "application/json", "multipart/form-data; boundary=xyz",
                                 "application/x-www-form-urlencoded", ""])


@given(body=st.binary(max_size=4096), content_type=CONTENT_TYPES, as_json=st.booleans())
@UPLOADS
def test_random_bytes_never_break_predict(client, body, content_type, as_json):
    """Random bytes are no image: 415, or 400 when there is nothing to read; a non-image type is
    415 whatever the body. (Should the bytes ever form an image, the answer is its mask.)"""
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/api/predict" + ("?format=json" if as_json else ""), data=body, headers=headers)
    assert_no_server_error(response)
    if content_type in ("text/plain", "application/json"):
        assert_upload_error(response, 415)
    elif content_type.startswith(("multipart/", "application/x-www-form-urlencoded")):
        assert response.status_code in (400, 415) and assert_upload_error(response, response.status_code)
    elif not body:
        assert assert_upload_error(response, 400)["error"] == "empty upload"
    elif response.status_code != 200:
        assert_upload_error(response, 415)
    elif as_json:
        assert {"width", "height", "index_png", "class_pixels"} <= set(response.get_json())
    else:
        with Image.open(io.BytesIO(response.get_data())) as mask:
            assert mask.format == "PNG" and np.asarray(mask).max() < NUM_CLASSES


def _damaged(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    data = bytearray(data[: max(1, len(data) - cut)])
    for position, value in flips:
        data[position % len(data)] = value
    return bytes(data)


@given(height=st.integers(1, 40), width=st.integers(1, 40),
       mode=st.sampled_from(["RGB", "L", "RGBA", "P", "1", "I", "I;16", "F", "LA", "CMYK"]),
       fmt=st.sampled_from(["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP"]), cut=st.integers(0, 64),
       flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4), multipart=st.booleans())
@UPLOADS
def test_real_and_damaged_images_never_break_predict(client, height, width, mode, fmt, cut, flips, multipart):
    """Every mode and format Pillow writes, intact (-> a mask at the upload's size) or truncated
    and with flipped bytes (-> 200 or a 4xx, never a 5xx)."""
    rng = np.random.default_rng(height * 1000 + width)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    try:
        image = image.convert(mode)
        buffer = io.BytesIO()
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):
        return  # Pillow cannot write this mode in this format: nothing to upload
    intact = buffer.getvalue()
    for data, must_succeed in ((intact, True), (_damaged(intact, cut, flips), False)):
        if multipart:
            response = client.post("/api/predict", data={"image": (io.BytesIO(data), "upload.bin")},
                                   content_type="multipart/form-data")
        else:
            response = client.post("/api/predict", data=data, headers={"Content-Type": "application/octet-stream"})
        assert_no_server_error(response)
        if response.status_code != 200:  # a damaged file that cannot be decoded, or decodes to a bomb
            assert_upload_error(response, response.status_code)
        if must_succeed:
            assert response.status_code == 200, (mode, fmt, response.get_json(silent=True))
            with Image.open(io.BytesIO(response.get_data())) as mask:
                assert mask.size == (width, height)
                assert np.asarray(mask).max() < NUM_CLASSES


def test_decompression_bombs_and_oversized_uploads_are_413(client):
    # a few hundred bytes that declare 20,000 x 20,000 pixels
    header = b"\x89PNG\r\n\x1a\n"
    ihdr = (20_000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    chunk = lambda kind, data: (len(data).to_bytes(4, "big") + kind + data  # noqa: E731
                                + zlib.crc32(kind + data).to_bytes(4, "big"))
    bomb = header + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + chunk(b"IEND", b"")
    response = client.post("/api/predict", data=bomb, headers={"Content-Type": "image/png"})
    assert assert_upload_error(response, 413)["error"] == "image too large"
    flat = png_bytes(np.zeros((400, 400, 3), np.uint8))  # small file, 160,000 pixels > MAX_PIXELS
    assert len(flat) < MAX_BYTES
    response = client.post("/api/predict", data=flat, headers={"Content-Type": "image/png"})
    assert "more than the 100,000 this server takes" in assert_upload_error(response, 413)["detail"]
    too_big = b"\x00" * (MAX_BYTES + 1)
    response = client.post("/api/predict", data=too_big, headers={"Content-Type": "image/png"})
    assert assert_upload_error(response, 413)["error"] == "request entity too large"


@given(segment=st.text(max_size=30), sub=st.sampled_from(["", "/segmentation", "/image.png", "/ground_truth.png",
                                                         "/prediction.png"]),
       query=st.dictionaries(st.sampled_from(["split", "offset", "limit", "format", "overlay"]),
                             st.text(max_size=12), max_size=3))
@UPLOADS
def test_arbitrary_ids_and_query_strings_never_break_the_image_routes(client, segment, sub, query):
    from urllib.parse import quote

    response = client.get(f"/api/images/{quote(segment, safe='')}{sub}", query_string=query)
    assert_no_server_error(response)
    listing = client.get("/api/images", query_string=query)
    assert_no_server_error(listing)


def test_a_truncated_tiff_is_a_client_error(client):
    """Found by the fuzzer: Pillow warns (UserWarning "Truncated File Read" / "Corrupt EXIF data")
    while opening a damaged TIFF, here with warnings as errors. A TIFF cut short is not an image
    the model can read: 415, whether the cut reaches the header or only the pixels."""
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(buffer, format="TIFF")
    for cut in (49, 17, 33, 5):
        response = client.post("/api/predict", data=buffer.getvalue()[:-cut], headers={"Content-Type": "image/tiff"})
        assert_upload_error(response, 415)


def test_undeclared_methods_get_405_with_allow(client):
    """RFC 9110: a 405 names the methods the resource supports (schemathesis check ST204)."""
    for method, path, allowed in (("TRACE", "/health", "GET"), ("POST", "/api/images", "GET"),
                                  ("GET", "/api/predict", "POST"), ("DELETE", "/api/images/0", "GET")):
        response = client.open(path, method=method)
        assert response.status_code == 405
        assert response.get_json()["error"]
        assert allowed in response.headers.get("Allow", ""), (method, path, dict(response.headers))


def test_a_schema_valid_but_unknown_id_is_404(client):
    """The OpenAPI ImageId is any integer >= 0; a long one is unknown (404), not malformed (400)
    (schemathesis check ST202)."""
    for path in ("/api/images/1234567890123", "/api/images/100000000000000000/segmentation"):
        response = client.get(path)
        assert response.status_code == 404, (path, response.status_code, response.get_json())


def test_the_served_run_is_the_tiny_one(client):
    assert client.get("/health").get_json()["run"] == RUN_NAME
