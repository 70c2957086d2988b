"""The API reads no more than an answer needs, and holds any upload in bounded memory.

Decoders are replaced by ones that refuse (or count): metadata and listings come from the index
and PNG headers, the photo is sent as its file, a cached prediction never decodes its photo, and
decoded inputs are shared by the routes of an image. The PNG writer gives exactly the arrays
Pillow reads back. A 36-megapixel upload is handled by a real process whose peak memory is
measured (correctness: a bound, not a timing).
"""

import base64
import io
import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pyspng
import pytest
from api_fixtures import HEIGHT, WIDTH, png_bytes, random_rgb
from PIL import Image, ImageDraw, ImageFile

from api import create_app, imaging
from api.routes_predict import class_pixels
from training.data import png
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.runs.reader import get_run

CAT8 = get_class_set("categories8")
PEAK_BYTES = 500 * 2**20  # the bound for a 36 MP upload, over what the process held before


@pytest.fixture
def decoders(monkeypatch):
    """Counts every pixel decode by kind (``RGB``, ``L``: libspng; ``pillow``) and refuses the
    kinds put in ``refused``."""
    calls, refused = Counter(), set()
    real_spng, real_pillow = png.spng_load, ImageFile.ImageFile.load

    def spng(data, fmt=None, *args, **kwargs):
        calls[fmt] += 1
        if fmt in refused:
            raise RuntimeError(f"decoding {fmt} refused by the test")
        return real_spng(data, fmt, *args, **kwargs)

    def pillow(image, *args, **kwargs):
        calls["pillow"] += 1
        if "pillow" in refused:
            raise RuntimeError("decoding with Pillow refused by the test")
        return real_pillow(image, *args, **kwargs)

    monkeypatch.setattr(png, "spng_load", spng)
    monkeypatch.setattr(ImageFile.ImageFile, "load", pillow)
    return calls, refused


def _test_entry(api_store, position: int = 0):
    index = load_or_build_index(api_store.data_root)
    return index.split("test")[position]


def test_listing_metadata_and_the_photo_decode_no_photo(client, api_store, decoders):
    calls, refused = decoders
    refused.update({"RGB", "pillow"})  # the photo cannot be decoded at all
    entry = _test_entry(api_store)
    assert client.get("/api/images?split=all").status_code == 200
    meta = client.get(f"/api/images/{entry.id}")
    assert meta.status_code == 200, meta.json
    assert (meta.json["width"], meta.json["height"]) == (WIDTH, HEIGHT)
    assert meta.json["classes_present"] == ["void", "flat", "construction", "sky", "human", "vehicle"]
    photo = client.get(f"/api/images/{entry.id}/image.png")
    assert photo.status_code == 200 and photo.data == (api_store.data_root / entry.image).read_bytes()
    assert client.get(f"/api/images/{entry.id}/ground_truth.png").status_code == 200
    assert calls["L"] == 1 and calls["RGB"] == 0 and calls["pillow"] == 0  # the ground truth, once

    refused.add("L")  # nothing can be decoded now: what was read is not read again
    for route in (f"/api/images/{entry.id}", f"/api/images/{entry.id}/ground_truth.png", "/api/images?split=test"):
        assert client.get(route).status_code == 200, route
    assert client.get(f"/api/images/{entry.id}/image.png").data == photo.data


def test_decoded_inputs_are_shared_and_a_cached_prediction_decodes_nothing(client, api_store, decoders):
    calls, refused = decoders
    entry = _test_entry(api_store, 1)
    first = client.get(f"/api/images/{entry.id}/segmentation")
    assert first.status_code == 200 and (calls["RGB"], calls["L"]) == (1, 1)
    stored = get_run(api_store.run, api_store.artifacts).prediction(entry.id)
    refused.update({"RGB", "L", "pillow"})
    routes = [f"/api/images/{entry.id}/{route}" for route in (
        "segmentation", "segmentation?format=index", "prediction.png", "prediction.png?overlay=0.5",
        "ground_truth.png", "ground_truth.png?overlay=0.25")] + [f"/api/images/{entry.id}"]
    for route in routes:
        response = client.get(route)
        assert response.status_code == 200, (route, response.get_data()[:300])
    refused.clear()  # the test's own reading of the picture
    with Image.open(io.BytesIO(client.get(f"/api/images/{entry.id}/prediction.png").data)) as picture:
        np.testing.assert_array_equal(np.asarray(picture), stored)


def test_without_the_inputs_cache_a_cached_prediction_still_needs_no_photo(api_store, decoders):
    calls, refused = decoders
    client = create_app({"TESTING": True, "ARTIFACTS_DIR": str(api_store.artifacts),
                         "DATA_ROOT": str(api_store.data_root), "INPUT_CACHE_BYTES": 0}).test_client()
    entry = _test_entry(api_store, 2)
    assert client.get(f"/api/images/{entry.id}/segmentation").status_code == 200
    refused.update({"RGB", "pillow"})
    for route in ("prediction.png", "segmentation?format=color"):
        assert client.get(f"/api/images/{entry.id}/{route}").status_code == 200, route
    assert calls["RGB"] == 1


def test_a_damaged_photo_is_503_on_every_route_that_needs_its_pixels(api_store, tmp_path):
    from api_fixtures import copy_store

    private = copy_store(api_store, tmp_path)
    entry = _test_entry(private)
    path = private.data_root / entry.image
    path.write_bytes(path.read_bytes()[:60])  # the header survives, the pixels do not
    client = create_app({"TESTING": True, "ARTIFACTS_DIR": str(private.artifacts),
                         "DATA_ROOT": str(private.data_root)}).test_client()
    assert client.get(f"/api/images/{entry.id}").status_code == 200  # header and ground truth are whole
    for route in ("segmentation", "prediction.png", "ground_truth.png?overlay=0.5"):
        response = client.get(f"/api/images/{entry.id}/{route}")
        assert response.status_code == 503 and response.json["error"] == "image unavailable", route
        assert entry.image.rsplit("/", 1)[1] in response.json["detail"]
    path.write_bytes(b"not a png at all")
    assert client.get(f"/api/images/{entry.id}/image.png").status_code == 503


# ---------------------------------------------------------------------------- the PNG writer

@pytest.mark.parametrize("shape", [(1, 1), (HEIGHT, WIDTH), (3, 5000), (1000, 7), (257, 129)])
def test_mask_pngs_read_back_exactly(monkeypatch, shape):
    monkeypatch.setattr(imaging, "BAND_BYTES", 1000)  # many bands even for small masks
    rng = np.random.default_rng(shape[0])
    mask = rng.integers(0, CAT8.num_classes, shape, dtype=np.uint8)
    mask.flat[:: 7] = 255  # ignored pixels: black in the palette
    pngs = imaging.mask_pngs(mask, CAT8.palette())
    with Image.open(io.BytesIO(pngs.index)) as grey, Image.open(io.BytesIO(pngs.color)) as colored:
        assert (grey.mode, colored.mode) == ("L", "P")
        np.testing.assert_array_equal(np.asarray(grey), mask)
        np.testing.assert_array_equal(np.asarray(colored), mask)
        np.testing.assert_array_equal(np.asarray(colored.convert("RGB")), CAT8.palette()[mask])
    np.testing.assert_array_equal(pyspng.load(pngs.index), mask)  # a second, stricter decoder
    assert imaging.png_bytes(mask) == pngs.index and imaging.png_bytes(mask, CAT8.palette()) == pngs.color


def test_rgb_pngs_read_back_exactly():
    photo = random_rgb(37, 61, seed=9)
    with Image.open(io.BytesIO(imaging.png_bytes(photo))) as image:
        assert image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), photo)


def test_class_pixels_counts_in_bands():
    mask = np.random.default_rng(1).integers(0, 8, (1500, 40), dtype=np.uint8)
    np.testing.assert_array_equal(class_pixels(mask, 8), np.bincount(mask.ravel(), minlength=8))


# ---------------------------------------------------------------------------- large uploads

def _jpeg(array: np.ndarray, orientation: int | None = None) -> bytes:
    buffer = io.BytesIO()
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    Image.fromarray(array).save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def _scene(height: int, width: int) -> np.ndarray:
    """A street-like picture: regions of colour, cheap to compress."""
    image = Image.new("RGB", (width, height), (70, 130, 180))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, height // 2, width, height), fill=(128, 64, 128))
    draw.rectangle((width // 5, height // 4, width // 2, height * 3 // 4), fill=(70, 70, 70))
    draw.ellipse((width * 3 // 5, height // 3, width * 4 // 5, height * 2 // 3), fill=(0, 0, 142))
    return np.asarray(image)


@pytest.mark.parametrize("orientation, shown", [(None, (1800, 2400)), (6, (2400, 1800)), (3, (1800, 2400))])
def test_a_large_jpeg_is_decoded_reduced_and_masked_at_its_own_size(client, orientation, shown):
    data = _jpeg(_scene(1800, 2400), orientation)  # 4.3 MP: above LARGE_UPLOAD_PIXELS
    assert 1800 * 2400 > imaging.LARGE_UPLOAD_PIXELS
    upload = imaging.decode_upload(data, 40_000_000, (HEIGHT, WIDTH))
    assert upload.image.shape == (HEIGHT, WIDTH, 3) and upload.size == shown
    response = client.post("/api/predict?format=json", data=data, content_type="image/jpeg")
    body = response.json
    assert response.status_code == 200 and (body["height"], body["width"]) == shown
    with Image.open(io.BytesIO(base64.b64decode(body["color_png"]))) as mask:
        assert mask.mode == "P" and mask.size == (shown[1], shown[0])
    assert sum(body["class_pixels"].values()) == shown[0] * shown[1]


def test_a_small_upload_is_the_photo_resized_as_the_model_does(api_store):
    from training.data.resize import resize_image

    photo = random_rgb(45, 70, seed=4)
    upload = imaging.decode_upload(png_bytes(photo), 10**6, (HEIGHT, WIDTH))
    np.testing.assert_array_equal(upload.image, resize_image(photo, (HEIGHT, WIDTH)))
    assert upload.size == (45, 70)


MEMORY = r"""
import json, sys, time
import numpy as np

from api import create_app


def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024


artifacts, data_root, upload_path = sys.argv[1:4]
app = create_app({"ARTIFACTS_DIR": artifacts, "DATA_ROOT": data_root, "WARM_UP": True,
                  "MAX_CONTENT_LENGTH": 64 * 2**20, "MAX_UPLOAD_PIXELS": 40_000_000})
client = app.test_client()
small = open(upload_path.replace(".png", "-small.png"), "rb").read()
assert client.post("/api/predict?format=json", data=small, content_type="image/png").status_code == 200
data = open(upload_path, "rb").read()
results = {}
for wanted in ("png", "json"):
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # the peak (VmHWM) starts again from what is held now
    before, start = status("VmRSS"), time.perf_counter()
    response = client.post(f"/api/predict?format={wanted}", data=data, content_type="image/png")
    seconds = time.perf_counter() - start
    assert response.status_code == 200, response.get_data()[:300]
    results[wanted] = {"peak_over_before": status("VmHWM") - before, "before": before, "seconds": seconds}
    body = response.get_data()
    del response
    if wanted == "png":
        mask_png = body

import io
from PIL import Image

from training.data.resize import resize_image

with Image.open(io.BytesIO(mask_png)) as mask:
    mask = np.asarray(mask)
state = app.extensions["segmentation_serving"]
run = state.run()
with Image.open(upload_path) as photo:
    photo = np.asarray(photo.convert("RGB"))
expected, _ = state.predict(run, resize_image(photo, state.input_size(run)), photo.shape[:2])
results["shape"] = list(mask.shape)
results["same_mask"] = bool(np.array_equal(mask, expected))
print(json.dumps(results))
"""


@pytest.mark.slow
def test_a_36_megapixel_upload_stays_in_bounded_memory(api_store, tmp_path):
    """6000x6000 pixels in ~100 KB of PNG (under the pixel limit): the worker's peak memory while
    answering, over what it held before, stays under 500 MB (it was ~3 GB), for the PNG and the
    JSON answer, and the mask is the model's, at the upload's size."""
    upload = tmp_path / "street.png"
    Image.fromarray(_scene(6000, 6000)).save(upload, compress_level=9)
    Image.fromarray(_scene(60, 60)).save(tmp_path / "street-small.png")
    assert upload.stat().st_size < 2**20
    result = subprocess.run([sys.executable, "-c", MEMORY, str(api_store.artifacts), str(api_store.data_root),
                             str(upload)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["shape"] == [6000, 6000] and measured["same_mask"], measured
    for wanted in ("png", "json"):
        assert measured[wanted]["peak_over_before"] < PEAK_BYTES, measured
