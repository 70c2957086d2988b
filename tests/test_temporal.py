"""Temporal consistency (``training.evaluation.temporal``, ``python -m training temporal``) on
hand-made drives with known answers: a textured frame translated k pixels per frame (the flow
works, nothing flickers: TC near 1), a static scene whose blob changes class every frame (zero
flow: the IoU by hand), an object moving over a background (the pixels it uncovers fail the
forward-backward check), and the names of the official sequence layouts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from training.data.cityscapes import DatasetError
from training.data.labels import get_class_set
from training.evaluation.formats import label_ids_to
from training.evaluation.temporal import (
    class_ious,
    consistent_flow,
    evaluate_temporal,
    find_frames,
    flow_size,
    group_sequences,
    match_frame_predictions,
    score_pair,
    score_runs,
)

REPO = Path(__file__).resolve().parent.parent
CATEGORIES = get_class_set("categories8")
FLAT, HUMAN, VEHICLE = 1, 6, 7  # categories8 indices


def texture(height: int, width: int, seed: int = 0, sigma: float = 3.0) -> np.ndarray:
    """Smoothed noise: grey texture the flow can follow."""
    noise = np.random.default_rng(seed).normal(size=(height, width)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), sigma)
    return ((smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255).astype(np.uint8)


def street_labels(height: int, width: int, seed: int = 1) -> np.ndarray:
    """A street-like class map: sky on top, flat below, discs of construction, object, nature."""
    rng = np.random.default_rng(seed)
    classes = np.full((height, width), 2, np.uint8)
    classes[height // 2:] = FLAT
    classes[:height // 4] = 5
    for _ in range(width // 40):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.circle(classes, centre, int(rng.integers(height // 20 + 2, height // 6 + 3)), int(rng.integers(2, 5)), -1)
    return classes


def translated(height: int, width: int, frames: int, step: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """One wide labelled frame seen through a window moving ``step`` pixels per frame: photos (RGB)
    and their labels as the prediction."""
    canvas = texture(height, width + step * frames)
    labels = street_labels(height, width + step * frames)
    photos = [np.repeat(canvas[:, step * t:step * t + width, None], 3, axis=2) for t in range(frames)]
    return photos, [labels[:, step * t:step * t + width].copy() for t in range(frames)]


def with_flickering_blobs(predictions: list[np.ndarray], count: int = 6, radius: int = 24) -> list[np.ndarray]:
    """Discs that are human on even frames and vehicle on odd ones, fixed in the image."""
    height, width = predictions[0].shape
    out = []
    for t, prediction in enumerate(predictions):
        prediction = prediction.copy()
        for n in range(count):
            centre = ((n + 1) * width // (count + 1), height // 2 + (n % 2) * height // 5)
            cv2.circle(prediction, centre, radius, HUMAN if t % 2 == 0 else VEHICLE, -1)
        out.append(prediction)
    return out


# ---------------------------------------------------------------------------- known answers

def test_class_ious_by_hand():
    # rows: class at t, columns: warped class of t-1; last row/column: no class
    confusion = np.array([[6, 2, 0, 0],
                          [0, 4, 0, 1],
                          [0, 0, 0, 0],
                          [1, 0, 0, 3]])
    ious = class_ious(confusion)
    assert ious[0] == pytest.approx(6 / (8 + 7 - 6))
    assert ious[1] == pytest.approx(4 / (5 + 6 - 4))
    assert np.isnan(ious[2])  # in neither map: left out of the mean


def test_a_translated_frame_is_consistent():
    photos, labels = translated(256, 512, frames=8, step=5)
    result = score_runs([("drive", photos, labels)], CATEGORIES, workers=2)
    assert result["temporal_consistency"] >= 0.95
    assert result["flicker_rate"] <= 0.02
    assert result["counts"]["counted_share"] >= 0.9
    assert result["counts"]["pairs"] == 7 and len(result["sequences"][0]["pairs"]) == 7
    # the 5 columns a step brings in have no previous pixel: never counted
    assert result["counts"]["outside"] >= 7 * 5 * 256 * 0.9


def test_predictions_smaller_than_the_photos_are_warped_by_the_scaled_flow():
    photos, labels = translated(256, 512, frames=6, step=6)
    halves = [cv2.resize(label, (256, 128), interpolation=cv2.INTER_NEAREST) for label in labels]
    result = score_runs([("half", photos, halves)], CATEGORIES, workers=2)
    assert result["temporal_consistency"] >= 0.95
    assert result["counts"]["pixels"] == 5 * 128 * 256


@pytest.mark.parametrize("shape, given, expected", [
    ((1024, 2048), None, (256, 512)),  # a quarter
    ((256, 512), None, (128, 256)),  # at least 256 wide
    ((100, 200), None, (100, 200)),  # never enlarged
    ((1024, 2048), 1024, (512, 1024)),
    ((256, 512), 4096, (256, 512)),
])
def test_the_flow_size(shape, given, expected):
    assert flow_size(shape, given) == expected


@pytest.mark.parametrize("flips", [False, True])
def test_a_static_scene_with_a_blob_gives_the_iou_by_hand(flips):
    height, width = 64, 128
    photo = np.repeat(texture(height, width)[:, :, None], 3, axis=2)
    predictions = []
    for t in range(5):
        prediction = np.full((height, width), FLAT, np.uint8)
        prediction[16:32, 32:64] = VEHICLE if flips and t % 2 else HUMAN
        predictions.append(prediction)
    result = score_runs([("static", [photo] * 5, predictions)], CATEGORIES, workers=1)
    blob_share = 16 * 32 / (height * width)
    if flips:  # per pair: flat 1, human 0, vehicle 0 -> mIoU 1/3; the blob's pixels all changed
        assert result["temporal_consistency"] == pytest.approx(1 / 3)
        assert result["flicker_rate"] == pytest.approx(blob_share)
        per_class = result["temporal_consistency_per_class"]
        assert (per_class["flat"], per_class["human"], per_class["vehicle"]) == (1.0, 0.0, 0.0)
        assert per_class["sky"] is None
    else:
        assert result["temporal_consistency"] == 1.0 and result["flicker_rate"] == 0.0
    assert result["counts"]["counted_share"] == 1.0  # zero flow: every pixel counts


def test_flickering_blobs_lower_the_consistency_of_a_translated_drive():
    photos, labels = translated(256, 512, frames=8, step=5)
    steady = score_runs([("steady", photos, labels)], CATEGORIES, workers=2)
    flickering = score_runs([("flicker", photos, with_flickering_blobs(labels))], CATEGORIES, workers=2)
    assert steady["temporal_consistency"] >= 0.95
    assert flickering["temporal_consistency"] <= steady["temporal_consistency"] - 0.15
    assert flickering["flicker_rate"] >= 0.05
    assert flickering["temporal_consistency_per_class"]["human"] <= 0.1


def test_the_forward_backward_check_leaves_out_uncovered_pixels():
    """A textured square moves 8 px right over a static background: the 8 columns it uncovers
    have no counterpart in the previous frame."""
    background, square = texture(256, 512, seed=3), texture(96, 96, seed=9)

    def frame(x):
        image = background.copy()
        image[80:176, x:x + 96] = square
        return image

    def classes(x):
        prediction = np.full((256, 512), FLAT, np.uint8)
        prediction[80:176, x:x + 96] = VEHICLE
        return prediction

    _, ok, _ = consistent_flow(frame(208), frame(200))
    uncovered = ok[90:166, 200:208]
    assert uncovered.mean() <= 0.4  # most of the uncovered strip is left out
    assert ok[:, 20:150].mean() >= 0.97  # the static background away from it counts
    assert ok[90:166, 230:290].mean() >= 0.97  # and so does the square's inside
    checked = score_pair(frame(208), frame(200), classes(208), classes(200), 8, flow_width=512)
    unchecked = score_pair(frame(208), frame(200), classes(208), classes(200), 8, flow_width=512, beta=None)
    assert checked.inconsistent > 0 and unchecked.inconsistent == 0
    assert checked.changed <= unchecked.changed / 4  # the false flicker the strip made is gone
    # with the default flow (half this size here) edges blur more, and the check removes less
    halved = score_pair(frame(208), frame(200), classes(208), classes(200), 8)
    halved_unchecked = score_pair(frame(208), frame(200), classes(208), classes(200), 8, beta=None)
    assert halved.changed <= halved_unchecked.changed * 0.7


# ---------------------------------------------------------------------------- folders and names

def write_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(path), pixels)
    return path


def class_to_train_ids(classes: np.ndarray) -> np.ndarray:
    """categories8 class indices -> a trainId PNG whose labels are in those categories."""
    # road (0) flat, building (2) construction, pole (5) object, vegetation (8) nature, sky (10),
    # person (11) human, car (13) vehicle; void has no trainId: 255
    table = np.array([255, 0, 2, 5, 8, 10, 11, 13], np.uint8)
    return table[classes]


def write_drive(root: Path, city: str, seq: str, first: int, photos, predictions, pred_format="trainIds"):
    frames, preds = root / "frames" / city, root / "preds"
    for n, (photo, prediction) in enumerate(zip(photos, predictions)):
        key = f"{city}_{seq}_{first + n:06d}"
        write_png(frames / f"{key}_leftImg8bit.png", photo)
        if pred_format == "trainIds":
            write_png(preds / f"{key}_pred.png", class_to_train_ids(prediction))
        else:
            write_png(preds / f"{key}_gtFine_color.png", label_ids_to(_label_ids(prediction), "color"))
    return root / "frames", preds


def _label_ids(classes: np.ndarray) -> np.ndarray:
    table = np.array([0, 7, 11, 17, 21, 23, 24, 26], np.uint8)  # a labelId in each category
    return table[classes]


def test_demo_video_names_hold_an_underscore_and_gaps_split_sequences(tmp_path):
    folder = tmp_path / "leftImg8bit" / "demoVideo" / "stuttgart_00"
    for number in (0, 1, 2, 5, 6):
        (folder / f"stuttgart_00_000000_{number:06d}_leftImg8bit.png").parent.mkdir(parents=True, exist_ok=True)
        (folder / f"stuttgart_00_000000_{number:06d}_leftImg8bit.png").write_bytes(b"")
    (folder / "notes.txt").write_text("not a frame")
    frames = find_frames(tmp_path)
    assert {f.city for f in frames} == {"stuttgart_00"}
    runs = group_sequences(frames)
    assert [run.name for run in runs] == ["stuttgart_00_000000_000000", "stuttgart_00_000000_000005"]
    assert [len(run.frames) for run in runs] == [3, 2]
    preds = tmp_path / "preds"
    preds.mkdir()
    for frame in frames:
        (preds / f"{frame.key}_pred.png").write_bytes(b"")
    (preds / "ulm_000000_000001_pred.png").write_bytes(b"")  # another city: left out
    matched = match_frame_predictions(frames, preds)
    assert set(matched.paths) == {f.key for f in frames}
    assert matched.skipped == [preds / "ulm_000000_000001_pred.png"]
    (preds / "stuttgart_00_000000_000009.png").write_bytes(b"")  # a frame of the drive, no photo
    with pytest.raises(DatasetError, match=r"1 predictions of frames with no photo under the frames folder: "
                       r"stuttgart_00_000000_000009 \("):
        match_frame_predictions(frames, preds)


def test_frames_without_predictions_are_named_unless_partial(tmp_path):
    photos, labels = translated(32, 64, frames=4, step=2)
    frames_dir, preds = write_drive(tmp_path, "frankfurt", "000000", 10, photos, labels)
    (preds / "frankfurt_000000_000012_pred.png").unlink()
    with pytest.raises(DatasetError, match="no prediction for 1 of 4 frames: frankfurt_000000_000012"):
        evaluate_temporal(frames_dir, preds)
    result = evaluate_temporal(frames_dir, preds, partial=True, workers=1)
    # the missing frame splits the drive: 10-11 and 13 (a single frame, no pair)
    assert [s["name"] for s in result["sequences"]] == ["frankfurt_000000_000010", "frankfurt_000000_000013"]
    assert result["counts"]["pairs"] == 1 and result["counts"]["single_frame_sequences"] == 1
    assert result["sequences"][1]["temporal_consistency"] is None
    with pytest.raises(DatasetError, match="frames folder does not exist"):
        evaluate_temporal(tmp_path / "nowhere", preds)


def test_a_translated_drive_of_files_is_consistent_and_visibly_less_with_flicker(tmp_path):
    """The full-size check at 256x512 (bench/bench_temporal.py runs it at 2048x1024), through the
    files: PNG photos, colour PNG predictions detected as such."""
    photos, labels = translated(256, 512, frames=6, step=7)
    steady_frames, steady = write_drive(tmp_path / "steady", "bonn", "000001", 0, photos, labels, "color")
    flicker_frames, flicker = write_drive(tmp_path / "flicker", "bonn", "000001", 0, photos,
                                          with_flickering_blobs(labels), "color")
    calm = evaluate_temporal(steady_frames, steady, workers=2)
    jumpy = evaluate_temporal(flicker_frames, flicker, workers=2)
    assert calm["format"] == "color"
    assert calm["temporal_consistency"] >= 0.95
    assert jumpy["temporal_consistency"] <= calm["temporal_consistency"] - 0.15
    assert jumpy["flicker_rate"] > 5 * max(calm["flicker_rate"], 0.005)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "training", "-q", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=120)


def test_cli_writes_the_named_json_keys(tmp_path):
    photos, labels = translated(64, 128, frames=5, step=3)
    frames_dir, preds = write_drive(tmp_path, "lindau", "000000", 19, photos, labels)
    out = tmp_path / "tc.json"
    done = _cli("temporal", "--frames", str(frames_dir), "--pred-dir", str(preds), "--json", str(out),
                "--workers", "2")
    assert done.returncode == 0, done.stderr
    assert "temporal consistency" in done.stdout and "trainIds" in done.stdout
    result = json.loads(out.read_text())
    for key in ("temporal_consistency", "temporal_consistency_per_class", "flicker_rate", "counts", "sequences",
                "format", "flow", "classes", "class_names"):
        assert key in result
    sequence = result["sequences"][0]
    assert sequence["name"] == "lindau_000000_000019" and sequence["frames"] == 5
    assert len(sequence["pairs"]) == 4
    assert {"frame", "miou", "flicker_rate", "counted_pixels", "iou"} <= set(sequence["pairs"][0])
    assert set(result["counts"]) >= {"sequences", "frames", "pairs", "pixels", "counted_pixels", "counted_share"}


def test_cli_names_the_prediction_of_a_missing_frame_in_one_line(tmp_path):
    photos, labels = translated(32, 64, frames=3, step=2)
    frames_dir, preds = write_drive(tmp_path, "lindau", "000000", 0, photos, labels)
    write_png(preds / "lindau_000000_000007_pred.png", labels[0])
    done = _cli("temporal", "--frames", str(frames_dir), "--pred-dir", str(preds))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: 1 predictions of frames with no photo under the frames folder: lindau_000000_000007 "
        f"({preds / 'lindau_000000_000007_pred.png'})"]


def test_photos_too_small_for_the_flow_are_named():
    tiny = [np.zeros((4, 4, 3), np.uint8)] * 2
    with pytest.raises(DatasetError, match=r"too small for optical flow"):
        score_runs([("tiny", tiny, [np.zeros((4, 4), np.uint8)] * 2)], CATEGORIES, workers=1)
