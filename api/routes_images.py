"""Image ids, metadata, and ground truth vs the deployed model's prediction for an id.

Each answer reads no more than it needs: ids and metadata come from the index and the photo's
PNG header (the ground truth is decoded once for the classes present), the photo is sent as its
file, and a prediction already made is never preceded by decoding its photo. Pictures and
answers, once made, are served from the cache.

The ids and the photos need only the dataset: with ``DATA_ROOT`` set they are served even when
the deployed run cannot be (``Serving.files_dataset``). Metadata and ground truth are in the run's
class set, so they need its config.yaml; predictions need its model.
"""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
from flask import Blueprint, Response, jsonify, request, url_for

from api.errors import ApiError, no_deployed_run
from api.imaging import MaskPngs, b64, mask_pngs, parse_opacity, png_bytes
from api.serving import identity, parse_image_id, serving
from training.data.dataset import Dataset
from training.data.index import SELECTABLE_SPLITS
from training.data.labels import IGNORE_INDEX
from training.data.png import PngError, read_header
from training.evaluation.evaluator import Evaluator
from training.runs.reader import Run
from training.viz import overlay

bp = Blueprint("images", __name__, url_prefix="/api/images")

MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000_000
FORMATS = ("both", "index", "color")


def _int_argument(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(high)) or not low <= int(raw) <= high:
        raise ApiError(400, f"bad {name}", f"{name} must be an integer from {low} to {high}, got {raw!r}")
    return int(raw)


@bp.get("")
def list_images():
    """List image ids.
    ---
    get:
      summary: Image ids available for segmentation, with their split
      parameters:
        - {in: query, name: split, schema: {type: string, enum: [train, validation, test, train_sample, validation_sample, all]}}
        - {in: query, name: offset, schema: {type: integer, minimum: 0, maximum: 1000000000, default: 0}}
        - {in: query, name: limit, schema: {type: integer, minimum: 1, maximum: 1000, default: 100}}
      responses:
        200: {description: A page of ids, content: {application/json: {schema: ImageList}}}
        400: {$ref: "#/components/responses/Error"}
        503: {$ref: "#/components/responses/Error"}
    """
    dataset = serving().files_dataset()
    split = request.args.get("split", "all")
    if split not in SELECTABLE_SPLITS:
        raise ApiError(400, "bad split", f"split must be one of {', '.join(SELECTABLE_SPLITS)}, got {split!r}")
    offset = _int_argument("offset", 0, 0, MAX_OFFSET)
    limit = _int_argument("limit", 100, 1, MAX_LIMIT)
    entries = dataset.index.split(split)
    page = entries[offset:offset + limit]
    return jsonify(total=len(entries), offset=offset, limit=limit, split=split,
                   images=[{"id": e.id, "split": e.split, "city": e.city, "stem": e.stem} for e in page])


@bp.get("/<image_id>")
def image_metadata(image_id: str):
    """Metadata of one image.
    ---
    get:
      summary: Split, city, size and the classes present in the ground truth
      parameters: [ImageId]
      responses:
        200: {description: Metadata, content: {application/json: {schema: ImageMetadata}}}
        400: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
        503: {$ref: "#/components/responses/Error"}
    """
    state = serving()
    dataset = state.dataset()
    identifier = parse_image_id(image_id, dataset)
    entry = dataset.index[identifier]
    key = state.images.image_key(dataset, identifier)
    header = state.images.photo_header(dataset, identifier, key)
    present_key = ("classes_present", key, dataset.class_set.name)
    present = state.cache.get(present_key)
    if present is None:  # the ground truth (a small PNG) is decoded once; the photo never
        present = dataset.classes_present(state.images.label_ids(dataset, identifier, key))
        state.cache.put(present_key, present, 64 * (1 + len(present)))
    links = {name: url_for(f"images.{name}", image_id=identifier)
             for name in ("segmentation", "image_png", "ground_truth_png", "prediction_png")}
    return jsonify(id=entry.id, split=entry.split, official_split=entry.official_split, city=entry.city,
                   stem=entry.stem, width=header.width, height=header.height,
                   classes=dataset.class_set.name, classes_present=present, links=links)


def _served_run_and_dataset() -> tuple[Run | None, Dataset]:
    """The run (None when nothing is deployed: the data can still be listed) and its dataset."""
    state = serving()
    run = state.run(required=False)
    return run, state.dataset_for(run)


def _prediction(run: Run, dataset: Dataset, image_id: int, key: tuple) -> tuple[np.ndarray, float]:
    """(predicted classes at the photo's size, inference ms) for one id: the photo is decoded
    only when the prediction is not cached."""
    state = serving()
    cache_key = ("prediction", identity(run), key)
    hit = state.cache.get(cache_key)
    if hit is not None:
        return hit
    classes, milliseconds = state.predict(run, state.images.photo(dataset, image_id, key))
    classes.flags.writeable = False
    state.cache.put(cache_key, (classes, milliseconds), classes.nbytes)
    return classes, milliseconds


@bp.get("/<image_id>/segmentation")
def segmentation(image_id: str):
    """Ground truth and prediction of one image.
    ---
    get:
      summary: The ground-truth segmentation and the deployed model's prediction, with this image's IoU
      parameters:
        - ImageId
        - {in: query, name: format, schema: {type: string, enum: [both, index, color], default: both},
           description: "index: PNGs of class indices; color: PNGs in the official colours"}
      responses:
        200: {description: Both segmentations (base64 PNG), content: {application/json: {schema: Segmentation}}}
        400: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
        503: {$ref: "#/components/responses/Error"}
    """
    state = serving()
    run, dataset = _served_run_and_dataset()
    identifier = parse_image_id(image_id, dataset)
    wanted = request.args.get("format", "both")
    if wanted not in FORMATS:
        raise ApiError(400, "bad format", f"format must be one of {', '.join(FORMATS)}, got {wanted!r}")
    if run is None:
        raise no_deployed_run()
    key = state.images.image_key(dataset, identifier)
    response_key = ("segmentation", identity(run), key, wanted)
    body = state.cache.get(response_key)
    if body is not None:
        return Response(body, mimetype="application/json", headers={"X-Cache": "hit"})

    predicted, milliseconds = _prediction(run, dataset, identifier, key)
    label_ids = state.images.label_ids(dataset, identifier, key)
    state.images.check_pair(dataset, identifier, label_ids, predicted.shape)
    class_set = dataset.class_set
    evaluator = Evaluator(class_set)
    evaluator.add(label_ids, predicted)
    summary = evaluator.summary()
    scores = {name: summary[name] for name in ("iou", "miou", "pixel_accuracy")}
    payload = {"id": identifier, "run": run.name, "model": run.metrics.get("model"),
               "classes": class_set.name, "class_names": list(class_set.names),
               "colors": class_set.colors.tolist(), "ignore_index": IGNORE_INDEX,
               "width": int(label_ids.shape[1]), "height": int(label_ids.shape[0]),
               "ground_truth": _chosen(_ground_truth_pngs(dataset, key, label_ids), wanted),
               "prediction": _chosen(mask_pngs(predicted, class_set.palette()), wanted),
               "inference_ms": round(milliseconds, 3), **scores}
    response = jsonify(**payload, cached=False)
    cached = jsonify(**payload, cached=True).get_data()
    state.cache.put(response_key, cached, len(cached))
    response.headers["X-Cache"] = "miss"
    return response


def _chosen(pngs: MaskPngs, wanted: str) -> dict:
    """Base64 PNGs of a class mask: ``index`` (grey values = class indices) and/or ``color``
    (a palette PNG: shown in the official colours by any viewer, 3x smaller than RGB)."""
    out = {}
    if wanted in ("both", "index"):
        out["index_png"] = b64(pngs.index)
    if wanted in ("both", "color"):
        out["color_png"] = b64(pngs.color)
    return out


def _ground_truth_pngs(dataset: Dataset, key: tuple, label_ids: np.ndarray) -> MaskPngs:
    """The ground truth's PNGs never change for an image: encoded once (both, at the cost of
    one), then cached."""
    state = serving()
    cache_key = ("ground_truth", key, dataset.class_set.name)
    pngs = state.cache.get(cache_key)
    if pngs is None:
        pngs = mask_pngs(_truth(dataset, label_ids), dataset.class_set.palette())
        state.cache.put(cache_key, pngs, len(pngs.index) + len(pngs.color))
    return pngs


def _truth(dataset: Dataset, label_ids: np.ndarray) -> np.ndarray:
    """``dataset.truth``: the same table lookup, by OpenCV in a fifth of numpy's time."""
    return cv2.LUT(label_ids, dataset.class_set.lut)


def _picture(depends_on: tuple, draw) -> Response:
    """The PNG ``draw()`` makes (bytes, kept in the cache, or a ready response), tagged with what it
    ``depends_on`` (the run's identity, the image's key, the options). Clients keep it but ask
    again each time (no-cache): a browser never shows the picture of a model or an index that has
    since changed, and an unchanged one costs a 304 and no drawing."""
    etag = hashlib.sha256(repr(depends_on).encode()).hexdigest()[:32]
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    else:
        state = serving()
        drawn = state.cache.get(("picture", depends_on))
        if drawn is None:
            drawn = draw()
            if isinstance(drawn, bytes):
                state.cache.put(("picture", depends_on), drawn, len(drawn))
        response = drawn if isinstance(drawn, Response) else Response(drawn, mimetype="image/png")
    response.set_etag(etag)
    response.cache_control.no_cache = True
    return response


@bp.get("/<image_id>/image.png")
def image_png(image_id: str):
    """The photo.
    ---
    get:
      summary: The photo as PNG
      parameters: [ImageId]
      responses:
        200: {description: PNG, content: {image/png: {schema: {type: string, format: binary}}}}
        304: {description: "Not modified: the picture of the If-None-Match ETag is still the one"}
        400: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
        503: {$ref: "#/components/responses/Error"}
    """
    state = serving()
    dataset = state.files_dataset()
    identifier = parse_image_id(image_id, dataset)
    key = state.images.image_key(dataset, identifier)

    def draw() -> Response:
        # The dataset's photo is already an RGB PNG: its own bytes are the answer, read from the
        # file (~1 ms for 2.2 MB), not decoded and encoded again (~0.5 s). Not kept in the cache:
        # the page cache holds them already. A file whose header says otherwise (replaced since
        # it was indexed) is decoded, and refused with 503 if it cannot be.
        data = state.images.photo_bytes(dataset, identifier)
        try:
            usable = read_header(data).mode == "RGB"
        except PngError:
            usable = False
        photo = data if usable else png_bytes(state.images.photo(dataset, identifier, key))
        return Response(photo, mimetype="image/png")

    return _picture(("image", key), draw)


@bp.get("/<image_id>/ground_truth.png")
def ground_truth_png(image_id: str):
    """The ground truth in colour.
    ---
    get:
      summary: Ground truth in the official colours, optionally over the photo
      parameters:
        - ImageId
        - Overlay
      responses:
        200: {description: PNG, content: {image/png: {schema: {type: string, format: binary}}}}
        304: {description: "Not modified: the picture of the If-None-Match ETag is still the one"}
        400: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
        503: {$ref: "#/components/responses/Error"}
    """
    state = serving()
    dataset = state.dataset()
    identifier = parse_image_id(image_id, dataset)
    opacity = parse_opacity(request.args.get("overlay"))
    key = state.images.image_key(dataset, identifier)

    def draw() -> bytes:
        label_ids = state.images.label_ids(dataset, identifier, key)
        if opacity is None:
            return _ground_truth_pngs(dataset, key, label_ids).color
        return _over_photo(dataset, identifier, key, _truth(dataset, label_ids), opacity)

    return _picture(("ground_truth", key, dataset.class_set.name, opacity), draw)


@bp.get("/<image_id>/prediction.png")
def prediction_png(image_id: str):
    """The deployed model's prediction in colour.
    ---
    get:
      summary: Prediction in the official colours, optionally over the photo
      parameters:
        - ImageId
        - Overlay
      responses:
        200: {description: PNG, content: {image/png: {schema: {type: string, format: binary}}}}
        304: {description: "Not modified: the picture of the If-None-Match ETag is still the one"}
        400: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
        503: {$ref: "#/components/responses/Error"}
    """
    state = serving()
    run, dataset = _served_run_and_dataset()
    identifier = parse_image_id(image_id, dataset)
    opacity = parse_opacity(request.args.get("overlay"))
    if run is None:
        raise no_deployed_run()
    key = state.images.image_key(dataset, identifier)

    def draw() -> bytes:
        predicted, _ = _prediction(run, dataset, identifier, key)
        if opacity is None:
            return png_bytes(predicted, dataset.class_set.palette())
        return _over_photo(dataset, identifier, key, predicted, opacity)

    return _picture(("prediction", identity(run), key, opacity), draw)


def _over_photo(dataset: Dataset, image_id: int, key: tuple, classes: np.ndarray, opacity: float) -> bytes:
    """An RGB PNG of the classes' colours blended over the photo (the decoded photo is shared)."""
    state = serving()
    photo = state.images.photo(dataset, image_id, key)
    state.images.check_pair(dataset, image_id, classes, photo.shape)
    return png_bytes(overlay(photo, dataset.class_set.colorize(classes), opacity))
