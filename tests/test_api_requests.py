"""How /api/predict takes a request, through Flask's test client: content types, a body that cannot
be read, connections after an early error, and how many uploads are decoded at once."""

import io
import threading

import numpy as np
import pytest
from api_fixtures import png_bytes, random_rgb
from gunicorn.http.errors import InvalidChunkSize, NoMoreData
from PIL import Image

import api.routes_predict
from api import create_app

WAIT = 60  # seconds: a bound on waiting for another thread, never reached when all is well


@pytest.mark.parametrize("content_type", ["IMAGE/PNG", "Image/Png; charset=binary", "image/png ; q=1",
                                          "APPLICATION/OCTET-STREAM"])
def test_content_types_are_matched_without_case_and_parameters(client, content_type):
    response = client.post("/api/predict", data=png_bytes(random_rgb(9, 11)), headers={"Content-Type": content_type})
    assert response.status_code == 200, response.get_data()[:300]
    with Image.open(io.BytesIO(response.data)) as mask:
        assert mask.size == (11, 9)


def test_a_multipart_upload_typed_in_capitals_is_read(client):
    form = (b"--b0undary\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
            b"Content-Type: IMAGE/PNG\r\n\r\n" + png_bytes(random_rgb(5, 6)) + b"\r\n--b0undary--\r\n")
    response = client.post("/api/predict", data=form, content_type="MULTIPART/FORM-DATA; boundary=b0undary")
    assert response.status_code == 200, response.get_data()[:300]
    with Image.open(io.BytesIO(response.data)) as mask:
        assert mask.size == (6, 5)


class _FailingStream:
    """A request body whose reading fails as gunicorn's does: a malformed chunk, or the client gone."""

    def __init__(self, error: Exception, first: bytes = b"\x89PNG"):
        self.error, self.first = error, first

    def read(self, size=-1):
        if self.first:
            data, self.first = self.first, b""
            return data
        raise self.error


@pytest.mark.parametrize("error, title", [(InvalidChunkSize(b"zz"), "malformed body"),
                                          (NoMoreData(), "incomplete upload"),
                                          (ConnectionResetError(104, "reset"), "incomplete upload")])
def test_a_body_that_cannot_be_read_is_400(client, caplog, error, title):
    response = client.post("/api/predict", headers={"Content-Type": "image/png", "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input": _FailingStream(error), "wsgi.input_terminated": True})
    assert response.status_code == 400 and response.json["error"] == title
    assert response.headers["Connection"] == "close"  # where the next request starts is unknown
    assert not any(record.exc_info for record in caplog.records)  # no traceback in the log


def test_an_error_before_the_body_is_read_closes_the_connection(client, api_store, tmp_path):
    """A 415, 400 or 503 answered without reading the body says ``Connection: close``: the unread
    body is still on the connection, where the server would otherwise look for the next request."""
    body = bytes(200_000)
    nothing_deployed = create_app({"ARTIFACTS_DIR": str(tmp_path), "DATA_ROOT": str(api_store.data_root)})
    for response, status in ((client.post("/api/predict", data=body, content_type="text/plain"), 415),
                             (client.post("/api/predict?format=x", data=body, content_type="image/png"), 400),
                             (nothing_deployed.test_client().post("/api/predict", data=body,
                                                                  content_type="image/png"), 503)):
        assert response.status_code == status and response.headers["Connection"] == "close"
    # a body read to its end (an upload that is no image), or no body at all: the connection stays
    read = client.post("/api/predict", data=b"not an image", content_type="image/png")
    assert read.status_code == 415 and "Connection" not in read.headers
    assert "Connection" not in client.get("/api/images/abc").headers


def test_a_photo_the_size_of_a_camera_is_taken_and_a_strip_of_40_megapixels_is_not(client):
    """The default pixel limit admits a 4000x2000 photo and refuses a 39999x1000 PNG (118 KB
    that decode to 120 MB) from its header."""
    photo = np.zeros((2000, 4000, 3), np.uint8)
    photo[:1000] = (70, 130, 180)
    assert client.post("/api/predict", data=png_bytes(photo), content_type="image/png").status_code == 200
    strip = png_bytes(np.zeros((1000, 39_999, 3), np.uint8))
    response = client.post("/api/predict", data=strip, content_type="image/png")
    assert response.status_code == 413 and "39999x1000" in response.json["detail"]


def test_uploads_beyond_the_decoding_slots_wait_then_get_503(api_store, monkeypatch):
    """One decoding slot, no waiting: while one upload is being decoded, another is answered 503
    with Retry-After at once; the first one finishes normally."""
    app = create_app({"TESTING": True, "ARTIFACTS_DIR": str(api_store.artifacts), "DATA_ROOT": str(api_store.data_root),
                      "MAX_DECODING_UPLOADS": 1, "UPLOAD_QUEUE_SECONDS": 0})
    decoding, release = threading.Event(), threading.Event()
    real_decode = api.routes_predict.decode_upload

    def slow_decode(*args, **kwargs):
        if not decoding.is_set():  # the first upload holds its slot until the test lets it go
            decoding.set()
            assert release.wait(WAIT)
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(api.routes_predict, "decode_upload", slow_decode)
    upload = png_bytes(random_rgb(8, 8))
    first = {}
    thread = threading.Thread(target=lambda: first.update(response=app.test_client().post(
        "/api/predict", data=upload, content_type="image/png")))
    thread.start()
    try:
        assert decoding.wait(WAIT)
        busy = app.test_client().post("/api/predict", data=upload, content_type="image/png")
        assert busy.status_code == 503 and busy.json["error"] == "server busy"
        assert busy.headers["Retry-After"]
    finally:
        release.set()
        thread.join(WAIT)
    assert first["response"].status_code == 200
    assert app.test_client().post("/api/predict", data=upload, content_type="image/png").status_code == 200
