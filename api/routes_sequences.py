"""Drive sequences: the dataset's snippets and demo drives, and the deployed model's prediction of
one frame, so that a client can stream a drive frame by frame.

The sequences are those of ``training.data.sequences`` (``sequences.json`` beside the index, written
by ``python -m training data make`` / ``data index``; found on disk where it is missing), read once
per sidecar file. A frame is named by its number as the files name it (``.../stuttgart_00_000000_
000042_leftImg8bit.png`` is frame 42 of ``stuttgart_00``). Its prediction is cached like an image's
(``api.routes_images``): by the served run's identity and the frame file's stamp, the decoded photo
beside the other inputs, the whole answer beside the other answers.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, url_for

from api.errors import ApiError
from api.imaging import b64, mask_pngs
from api.serving import identity, serving
from training.data.cityscapes import DatasetError, read_image
from training.data.dataset import Dataset
from training.data.labels import IGNORE_INDEX
from training.data.sequences import Sequence, sequences_path_for
from training.files import file_stamp
from training.runs.sequences import dataset_sequences

bp = Blueprint("sequences", __name__, url_prefix="/api/sequences")

FORMATS = ("both", "index", "color")
MAX_FRAME = 999_999  # six digits, as the files name frames
BYTES_PER_FRAME = 120  # what a sequence's frame costs in the cache, roughly


def _index_file(dataset: Dataset):
    state = serving()
    try:
        run = state.run(required=False)
    except ApiError:  # a damaged run: the sequences are the dataset's, listed all the same
        run = None
    return state.data_settings(run).index_file(dataset.root)


def _sequences(dataset: Dataset) -> dict[str, Sequence]:
    """The dataset's sequences by name, read once per sidecar file (and per folder stamps where
    there is none)."""
    state = serving()
    index_file = _index_file(dataset)
    sidecar = sequences_path_for(index_file)
    stamps = (file_stamp(sidecar), file_stamp(dataset.root / "leftImg8bit_sequence"),
              file_stamp(dataset.root / "leftImg8bit" / "demoVideo"))
    key = ("sequences", str(dataset.root), dataset.index.fingerprint(), stamps)
    found = state.cache.get(key)
    if found is None:
        sequences, _ = dataset_sequences(dataset.root, index_file, dataset.index)
        found = {sequence.name: sequence for sequence in sequences}
        state.cache.put(key, found, 200 + BYTES_PER_FRAME * sum(len(s) for s in sequences))
    return found


def _sequence(dataset: Dataset, name: str) -> Sequence:
    sequence = _sequences(dataset).get(name)
    if sequence is None:
        raise ApiError(404, "unknown sequence", f"no sequence named {name!r} (see /api/sequences)")
    return sequence


def _summary(sequence: Sequence) -> dict:
    numbers = sequence.frame_numbers
    return {"name": sequence.name, "kind": sequence.kind, "split": sequence.split, "city": sequence.city,
            "frames": len(sequence), "first_frame": numbers[0] if numbers else None,
            "last_frame": numbers[-1] if numbers else None, "annotated_id": sequence.annotated_id,
            "annotated_stem": sequence.annotated_stem}


@bp.get("")
def list_sequences():
    """List the drive sequences.
    ---
    get:
      summary: The dataset's snippets and demo drives, with their frame counts and annotated frame
      responses:
        200:
          description: Every sequence
          content:
            application/json:
              schema:
                type: object
                properties:
                  total: {type: integer}
                  sequences:
                    type: array
                    items:
                      type: object
                      properties:
                        name: {type: string}
                        kind: {type: string, enum: [snippet, drive]}
                        split: {type: string}
                        city: {type: string}
                        frames: {type: integer}
                        first_frame: {type: integer, nullable: true}
                        last_frame: {type: integer, nullable: true}
                        annotated_id: {type: integer, nullable: true}
                        annotated_stem: {type: string, nullable: true}
        503: {$ref: "#/components/responses/Error"}
    """
    sequences = _sequences(serving().files_dataset())
    return jsonify(total=len(sequences), sequences=[_summary(s) for s in sequences.values()])


@bp.get("/<name>")
def sequence_frames(name: str):
    """One sequence and its frame numbers.
    ---
    get:
      summary: A sequence, the numbers of its frames in order, and where each frame's segmentation is
      parameters:
        - {in: path, name: name, required: true, schema: {type: string}}
      responses:
        200:
          description: The sequence
          content:
            application/json:
              schema:
                type: object
                properties:
                  name: {type: string}
                  kind: {type: string}
                  frames: {type: integer}
                  frame_numbers: {type: array, items: {type: integer}}
                  segmentation: {type: string, description: "URL of frame 0's segmentation; put a frame number in place of 0"}
        404: {$ref: "#/components/responses/Error"}
        503: {$ref: "#/components/responses/Error"}
    """
    sequence = _sequence(serving().files_dataset(), name)
    return jsonify(**_summary(sequence), frame_numbers=sequence.frame_numbers,
                   segmentation=url_for("sequences.frame_segmentation", name=sequence.name, frame="0"))


def _frame_number(raw: str, sequence: Sequence) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > len(str(MAX_FRAME)):
        raise ApiError(400, "malformed frame", f"frames are numbered by whole numbers, got {raw!r}")
    number = int(raw)
    if number not in sequence.frame_numbers:
        numbers = sequence.frame_numbers
        raise ApiError(404, "unknown frame", f"sequence {sequence.name} has no frame {number} (its frames: "
                                             f"{numbers[0]} to {numbers[-1]}, {len(numbers)} in all)")
    return number


@bp.get("/<name>/frames/<frame>/segmentation")
def frame_segmentation(name: str, frame: str):
    """The deployed model's prediction of one frame of a sequence.
    ---
    get:
      summary: The deployed model's segmentation of one frame of a sequence (no ground truth)
      parameters:
        - {in: path, name: name, required: true, schema: {type: string}}
        - {in: path, name: frame, required: true, schema: {type: integer, minimum: 0, maximum: 999999},
           description: "the frame's number, as its file names it"}
        - {in: query, name: format, schema: {type: string, enum: [both, index, color], default: both},
           description: "index: a PNG of class indices; color: a PNG in the official colours"}
      responses:
        200:
          description: The prediction (base64 PNG)
          content:
            application/json:
              schema:
                type: object
                required: [run, sequence, frame, prediction]
                properties:
                  run: {type: string}
                  sequence: {type: string}
                  frame: {type: integer}
                  position: {type: integer}
                  annotated: {type: boolean}
                  annotated_id: {type: integer, nullable: true}
                  width: {type: integer}
                  height: {type: integer}
                  classes: {type: string}
                  class_names: {type: array, items: {type: string}}
                  colors: {type: array, items: {type: array, items: {type: integer}}}
                  ignore_index: {type: integer}
                  prediction: {type: object, properties: {index_png: {type: string, format: byte},
                               color_png: {type: string, format: byte}}}
                  inference_ms: {type: number}
                  cached: {type: boolean}
        400: {$ref: "#/components/responses/Error"}
        404: {$ref: "#/components/responses/Error"}
        503: {$ref: "#/components/responses/Error"}
    """
    state = serving()
    run = state.run()
    dataset = state.dataset_for(run)
    sequence = _sequence(dataset, name)
    number = _frame_number(frame, sequence)
    wanted = request.args.get("format", "both")
    if wanted not in FORMATS:
        raise ApiError(400, "bad format", f"format must be one of {', '.join(FORMATS)}, got {wanted!r}")
    position = sequence.frame_numbers.index(number)
    path = dataset.root / sequence.paths[position]
    key = (str(dataset.root), sequence.paths[position], file_stamp(path))
    response_key = ("sequence_segmentation", identity(run), key, dataset.class_set.name, wanted)
    body = state.cache.get(response_key)
    if body is not None:
        return Response(body, mimetype="application/json", headers={"X-Cache": "hit"})

    prediction_key = ("prediction", identity(run), key)
    hit = state.cache.get(prediction_key)
    if hit is None:
        photo = state.images.inputs.get(("sequence_photo", key))
        if photo is None:
            try:
                photo = read_image(path)
            except DatasetError as error:
                raise ApiError(503, "frame unavailable", state.paths.text(str(error))) from None
            photo.flags.writeable = False
            state.images.inputs.put(("sequence_photo", key), photo, photo.nbytes)
        classes, milliseconds = state.predict(run, photo)
        classes.flags.writeable = False
        hit = (classes, milliseconds)
        state.cache.put(prediction_key, hit, classes.nbytes)
    classes, milliseconds = hit
    class_set = dataset.class_set
    pngs = mask_pngs(classes, class_set.palette())
    prediction = {}
    if wanted in ("both", "index"):
        prediction["index_png"] = b64(pngs.index)
    if wanted in ("both", "color"):
        prediction["color_png"] = b64(pngs.color)
    annotated = sequence.annotated_position == position
    payload = {"run": run.name, "sequence": sequence.name, "frame": number, "position": position,
               "annotated": annotated, "annotated_id": sequence.annotated_id if annotated else None,
               "width": int(classes.shape[1]), "height": int(classes.shape[0]), "classes": class_set.name,
               "class_names": list(class_set.names), "colors": class_set.colors.tolist(),
               "ignore_index": IGNORE_INDEX, "prediction": prediction, "inference_ms": round(milliseconds, 3)}
    response = jsonify(**payload, cached=False)
    cached = jsonify(**payload, cached=True).get_data()
    state.cache.put(response_key, cached, len(cached))
    response.headers["X-Cache"] = "miss"
    return response
