"""Image ids, metadata, and ground truth vs the deployed model's prediction for an id."""

from __future__ import annotations

import hashlib

import numpy as np
from flask import Blueprint, Response, jsonify, request, url_for

from api.errors import ApiError, no_deployed_run
from api.imaging import b64, parse_opacity, png_bytes
from api.serving import identity, parse_image_id, serving
from training.data.dataset import Dataset
from training.data.index import SELECTABLE_SPLITS
from training.data.labels import IGNORE_INDEX
from training.evaluation.evaluator import Evaluator, summarize
from training.runs.store import Run
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
    dataset = serving().dataset()
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
    _, label_ids = state.read(dataset, identifier)
    present = dataset.classes_present(label_ids)
    links = {name: url_for(f"images.{name}", image_id=identifier)
             for name in ("segmentation", "image_png", "ground_truth_png", "prediction_png")}
    return jsonify(id=entry.id, split=entry.split, official_split=entry.official_split, city=entry.city,
                   stem=entry.stem, width=entry.width, height=entry.height,
                   classes=dataset.class_set.name, classes_present=present, links=links)


def _served_run_and_dataset() -> tuple[Run | None, Dataset]:
    """The run (None when nothing is deployed: the data can still be listed) and its dataset."""
    state = serving()
    run = state.run(required=False)
    return run, state.dataset_for(run)


def _prediction(run: Run, dataset: Dataset, image_id: int):
    """(photo, labelIds, predicted classes, inference ms, cached) for one id."""
    state = serving()
    key = ("prediction", identity(run), state.image_key(dataset, image_id))
    image, label_ids = state.read(dataset, image_id)
    hit = state.cache.get(key)
    if hit is not None:
        return image, label_ids, hit[0], hit[1], True
    classes, milliseconds = state.predict(run, image)
    state.cache.put(key, (classes, milliseconds), classes.nbytes)
    return image, label_ids, classes, milliseconds, False


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
    response_key = ("segmentation", identity(run), state.image_key(dataset, identifier), wanted)
    body = state.cache.get(response_key)
    if body is not None:
        return Response(body, mimetype="application/json", headers={"X-Cache": "hit"})

    _, label_ids, predicted, milliseconds, _ = _prediction(run, dataset, identifier)
    class_set = dataset.class_set
    image_confusion = Evaluator(class_set).add(label_ids, predicted)
    summary = summarize(class_set, image_confusion, image_confusion, images=1)
    scores = {key: summary[key] for key in ("iou", "miou", "pixel_accuracy")}
    payload = {"id": identifier, "run": run.name, "model": run.metrics.get("model"),
               "classes": class_set.name, "class_names": list(class_set.names),
               "colors": class_set.colors.tolist(), "ignore_index": IGNORE_INDEX,
               "width": int(label_ids.shape[1]), "height": int(label_ids.shape[0]),
               "ground_truth": _ground_truth_pngs(dataset, identifier, label_ids, wanted),
               "prediction": _encoded(class_set, predicted, wanted),
               "inference_ms": round(milliseconds, 3), **scores}
    response = jsonify(**payload, cached=False)
    cached = jsonify(**payload, cached=True).get_data()
    state.cache.put(response_key, cached, len(cached))
    response.headers["X-Cache"] = "miss"
    return response


def _encoded(class_set, classes: np.ndarray, wanted: str) -> dict:
    """Base64 PNGs of a class mask: ``index`` (grey values = class indices) and/or ``color``
    (a palette PNG: shown in the official colours by any viewer, 3x smaller than RGB)."""
    out = {}
    if wanted in ("both", "index"):
        out["index_png"] = b64(png_bytes(classes))
    if wanted in ("both", "color"):
        out["color_png"] = b64(png_bytes(classes, class_set.palette()))
    return out


def _ground_truth_pngs(dataset: Dataset, image_id: int, label_ids: np.ndarray, wanted: str) -> dict:
    """The ground truth's PNGs never change for an id: encoded once, then cached."""
    state = serving()
    key = ("ground_truth", state.image_key(dataset, image_id), dataset.class_set.name, wanted)
    encoded = state.cache.get(key)
    if encoded is None:
        encoded = _encoded(dataset.class_set, dataset.class_set.lut[label_ids], wanted)
        state.cache.put(key, encoded, sum(len(v) for v in encoded.values()))
    return encoded


def _png_response(depends_on: tuple, draw) -> Response:
    """The PNG ``draw()`` makes, tagged with what it ``depends_on`` (the run's identity, the
    image's key, the options). Clients keep it but ask again each time (no-cache): a browser
    never shows the picture of a model or an index that has since changed, and an unchanged one
    costs a 304 and no drawing."""
    etag = hashlib.sha256(repr(depends_on).encode()).hexdigest()[:32]
    if request.if_none_match.contains(etag):
        response = Response(status=304)
    else:
        response = Response(draw(), mimetype="image/png")
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
    dataset = state.dataset()
    identifier = parse_image_id(image_id, dataset)
    return _png_response(("image", state.image_key(dataset, identifier)),
                         lambda: png_bytes(state.read(dataset, identifier)[0]))


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

    def draw() -> bytes:
        image, label_ids = state.read(dataset, identifier)
        colors = dataset.class_set.colorize(dataset.class_set.lut[label_ids])
        return png_bytes(colors if opacity is None else overlay(image, colors, opacity))

    depends_on = ("ground_truth", state.image_key(dataset, identifier), dataset.class_set.name, opacity)
    return _png_response(depends_on, draw)


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

    def draw() -> bytes:
        image, _, predicted, _, _ = _prediction(run, dataset, identifier)
        colors = dataset.class_set.colorize(predicted)
        return png_bytes(colors if opacity is None else overlay(image, colors, opacity))

    depends_on = ("prediction", identity(run), state.image_key(dataset, identifier), opacity)
    return _png_response(depends_on, draw)
