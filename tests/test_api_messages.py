"""What the API says when it refuses a request (issue 25, defect 11): the limit that was passed,
with its number and the setting that holds it, and JSON for every path, even a malformed one."""

import zlib

import pytest

from training.data.index import load_or_build_index

IMAGE_ROUTES = ("", "/segmentation", "/image.png", "/ground_truth.png", "/prediction.png")


def _json_error(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.mimetype == "application/json"
    assert set(response.json) == {"error", "detail"}
    return response.json


def _png_header(width: int, height: int) -> bytes:
    """A few hundred bytes that declare a ``width`` x ``height`` RGB PNG (its pixels never follow)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1000))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("suffix", IMAGE_ROUTES)
def test_an_id_of_26_digits_is_no_such_image_with_the_range(client, api_store, suffix):
    last = load_or_build_index(api_store.data_root).next_id - 1
    body = _json_error(client.get(f"/api/images/{'9' * 26}{suffix}"), 404)
    assert body["error"] == "unknown id"
    assert f"ids run from 0 to {last}" in body["detail"]
    assert "non-negative" not in body["detail"]


def test_an_upload_past_the_pixel_limit_says_its_size_and_the_limit(client):
    body = _json_error(client.post("/api/predict", data=_png_header(12_000, 12_000),
                                   headers={"Content-Type": "image/png"}), 413)
    assert body["error"] == "image too large"
    assert body["detail"] == ("12000x12000 = 144,000,000 pixels, more than the 16,000,000 this server takes "
                              "(MAX_UPLOAD_PIXELS)")


def test_an_upload_past_pillows_own_limit_says_the_pixels_and_the_limit(client):
    # 20,000 x 20,000: past what Pillow itself refuses to open (twice its MAX_IMAGE_PIXELS)
    body = _json_error(client.post("/api/predict", data=_png_header(20_000, 20_000),
                                   headers={"Content-Type": "image/png"}), 413)
    assert body["error"] == "image too large"
    assert "400,000,000 pixels, more than the 16,000,000 this server takes (MAX_UPLOAD_PIXELS)" in body["detail"]
    assert "bomb" not in body["detail"] and "DOS" not in body["detail"]


@pytest.mark.parametrize("as_file", [False, True])
def test_a_body_past_the_byte_limit_says_the_limit(client, as_file):
    data = b"\x00" * (20 * 10**6)
    if as_file:  # the body built here: the test client would spool it to a file of its own
        body = (b"--B\r\nContent-Disposition: form-data; name=\"image\"; filename=\"big.png\"\r\n"
                b"Content-Type: image/png\r\n\r\n" + data + b"\r\n--B--\r\n")
        response = client.post("/api/predict", data=body, content_type="multipart/form-data; boundary=B")
    else:
        response = client.post("/api/predict", data=data, headers={"Content-Type": "image/png"})
    body = _json_error(response, 413)
    assert body["error"] == "request entity too large"
    assert "16 MB (16,777,216 bytes)" in body["detail"] and "MAX_CONTENT_LENGTH" in body["detail"]


@pytest.mark.parametrize("path", ["/api/images//segmentation", "/api/images//image.png", "//api/images",
                                  "/api//model"])
def test_a_path_with_an_empty_segment_is_a_json_404_not_a_redirect(client, path):
    assert _json_error(client.get(path), 404)["error"] == "not found"
