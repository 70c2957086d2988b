"""Segmentation of an uploaded photo of any size, in bounded memory.

The photo is shrunk to the model's input size as it is decoded (``api.imaging.decode_upload``),
the prediction is upsampled back to the photo's size in bands, and the mask is compressed in
bands and counted in bands: a 36-megapixel PNG upload raises a worker's peak memory by ~150 MB
(the decoded photo), where it took ~3 GB (``tests/test_api_lean.py`` holds it under 500 MB). At
most ``MAX_DECODING_UPLOADS`` uploads are decoded at once in a process (``Serving.upload_slot``).

Content types are matched as HTTP says, without case and parameters (``IMAGE/PNG; x=y``). A body
that cannot be read (a malformed chunk, a client gone in the middle) is a 400, logged in one line.
"""

from __future__ import annotations

import logging

import numpy as np
from flask import Blueprint, Response, current_app, jsonify, request
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import RequestEntityTooLarge

from api.errors import ApiError, body_read
from api.imaging import b64, decode_upload, mask_pngs
from api.serving import serving
from training.data.labels import get_class_set

bp = Blueprint("predict", __name__, url_prefix="/api")
log = logging.getLogger(__name__)

RAW_TYPES = ("image/", "application/octet-stream")
FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
READ_CHUNK = 64 * 1024
COUNT_ROWS = 512  # np.bincount widens to int64: count a band of rows at a time


def _upload_bytes() -> bytes:
    """The uploaded file's bytes, the body read to its end.

    Raises:
        ApiError: 400 no file or a body that cannot be read, 415 not an image type.
        RequestEntityTooLarge: more bytes than ``MAX_CONTENT_LENGTH``.
    """
    try:
        data = _sent_file()
    except ParseException as error:  # the server's parser: a malformed chunked body
        raise ApiError(400, "malformed body", f"the request body cannot be read ({error})") from None
    except OSError as error:  # the client went away (gunicorn's NoMoreData is one), or reset the connection
        raise _cut_short(type(error).__name__) from None
    body_read()
    return data


def _cut_short(how: str) -> ApiError:
    log.warning("upload cut short by the client: %s", how)  # one line: nothing went wrong here
    return ApiError(400, "incomplete upload", "the request body ended before all of it was sent")


def _sent_file() -> bytes:
    if request.files:  # a multipart body: Werkzeug's parser stops past MAX_CONTENT_LENGTH (413)
        upload = request.files.get("image") or next(iter(request.files.values()))
        return upload.read()
    if request.form or request.mimetype in FORM_TYPES:
        raise ApiError(400, "no image", "multipart upload without a file: send the photo in field 'image'")
    if request.mimetype and not request.mimetype.startswith(RAW_TYPES):
        raise ApiError(415, "not an image", f"content type {request.content_type!r}: send multipart field 'image' "
                                            "or a raw body typed image/* or application/octet-stream")
    return _raw_body(request.max_content_length)


def _raw_body(limit: int | None) -> bytes:
    """The request body; 413 past ``limit`` bytes.

    A Content-Length beyond the limit is refused before anything is read. A chunked upload has
    none: the limit holds while it is read, from the server's own stream, because Werkzeug's
    stops quietly at the limit (a photo cut short would be decoded, or refused as no image).
    """
    if request.content_length is not None or limit is None or not request.environ.get("wsgi.input_terminated"):
        data = request.get_data(cache=False)
        if len(data) < (request.content_length or 0):  # the server gives what came before the client left
            raise _cut_short(f"{len(data)} of {request.content_length} bytes")
        return data
    stream, body = request.environ["wsgi.input"], bytearray()
    while chunk := stream.read(min(READ_CHUNK, limit + 1 - len(body))):
        body += chunk
        if len(body) > limit:
            raise RequestEntityTooLarge()
    return bytes(body)


def _wants_json() -> bool:
    wanted = request.args.get("format")
    if wanted is not None:
        if wanted not in ("png", "json"):
            raise ApiError(400, "bad format", f"format must be png or json, got {wanted!r}")
        return wanted == "json"
    best = request.accept_mimetypes.best_match(["image/png", "application/json"], default="image/png")
    return best == "application/json"


@bp.post("/predict")
def predict():
    """Segment an uploaded image.
    ---
    post:
      summary: Predicted segmentation of an uploaded photo, at its original size
      parameters:
        - {in: query, name: format, schema: {type: string, enum: [png, json]},
           description: "png (default): a palette PNG whose pixel values are class indices; json: base64 PNGs and class pixel counts"}
      requestBody:
        content:
          multipart/form-data: {schema: {type: object, properties: {image: {type: string, format: binary}}, required: [image]}}
          image/png: {schema: {type: string, format: binary}}
          image/jpeg: {schema: {type: string, format: binary}}
          application/octet-stream: {schema: {type: string, format: binary}}
      responses:
        200:
          description: The predicted mask
          content:
            image/png: {schema: {type: string, format: binary}}
            application/json: {schema: Prediction}
        400: {$ref: "#/components/responses/Error"}
        413: {$ref: "#/components/responses/Error"}
        415: {$ref: "#/components/responses/Error"}
        503:
          description: "No model can be served, or too many uploads are being decoded (with Retry-After)"
          headers: {Retry-After: {description: "seconds to wait when busy", schema: {type: integer}}}
          content: {application/json: {schema: Error}}
    """
    state = serving()
    run = state.run()
    wants_json = _wants_json()
    data = _upload_bytes()
    with state.upload_slot():
        upload = decode_upload(data, current_app.config["MAX_UPLOAD_PIXELS"], state.input_size(run))
    del data  # the file's bytes are not needed while the model runs
    classes, milliseconds = state.predict(run, upload.image, upload.size)
    class_set = get_class_set(state.data_settings(run).classes)  # no dataset needed
    pngs = mask_pngs(classes, class_set.palette())
    if not wants_json:
        return Response(pngs.color, mimetype="image/png",
                        headers={"X-Inference-Ms": f"{milliseconds:.3f}", "X-Run": run.name})
    counts = class_pixels(classes, class_set.num_classes)
    return jsonify(run=run.name, width=int(classes.shape[1]), height=int(classes.shape[0]),
                   classes=class_set.name, class_names=list(class_set.names),
                   class_pixels={name: int(counts[i]) for i, name in enumerate(class_set.names)},
                   index_png=b64(pngs.index), color_png=b64(pngs.color), inference_ms=round(milliseconds, 3))


def class_pixels(classes: np.ndarray, num_classes: int) -> np.ndarray:
    """Pixels of each class in an ``(H, W)`` uint8 mask."""
    counts = np.zeros(256, dtype=np.int64)
    for top in range(0, classes.shape[0], COUNT_ROWS):
        counts += np.bincount(classes[top:top + COUNT_ROWS].ravel(), minlength=256)
    return counts[:num_classes]
