"""``python -m training evaluate-masks`` end to end on real PNG files."""

import json
import subprocess
import sys

import numpy as np
import pytest
from cityscapes_builder import CAR, ROAD, label_path
from PIL import Image

from training.cli import main
from training.data.index import load_or_build_index

# Test split of the tiny dataset: 4 images of 16x32; each has 15 car pixels and 174 flat
# (road + sidewalk) pixels that are not covered by anything else.
CAR_PIXELS, FLAT_PIXELS, IMAGES = 15, 174, 4


@pytest.fixture
def predictions(tiny_root, tmp_path):
    """Perfect predictions, except that the cars of the first test image are predicted road."""
    pred_dir = tmp_path / "predictions"
    for n, entry in enumerate(load_or_build_index(tiny_root).split("test")):
        prediction = np.array(Image.open(label_path(tiny_root, "val", entry.stem)))
        if n == 0:
            assert (prediction == CAR).sum() == CAR_PIXELS
            prediction[prediction == CAR] = ROAD
        folder = pred_dir / entry.city
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(prediction).save(folder / f"{entry.stem}_pred_labelIds.png")
    return pred_dir


def test_end_to_end_hand_computed(tiny_root, predictions, tmp_path):
    out = tmp_path / "result.json"
    completed = subprocess.run(
        [sys.executable, "-m", "training", "-q", "evaluate-masks", "--gt-root", str(tiny_root),
         "--pred-dir", str(predictions), "--json", str(out)], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    result = json.loads(out.read_text())

    vehicle = (IMAGES * CAR_PIXELS - CAR_PIXELS) / (IMAGES * CAR_PIXELS)  # 45 / 60
    flat = IMAGES * FLAT_PIXELS / (IMAGES * FLAT_PIXELS + CAR_PIXELS)  # 696 / 711
    assert result["iou"]["vehicle"] == pytest.approx(0.75) == pytest.approx(vehicle)
    assert result["iou"]["flat"] == pytest.approx(flat)
    assert result["iou"]["object"] is None and result["iou"]["nature"] is None  # absent: NaN
    assert result["miou"] == pytest.approx((1 + flat + 1 + 1 + 1 + vehicle) / 6)  # void counts
    assert result["miou_official"] == pytest.approx((flat + 1 + 1 + 1 + vehicle) / 5)  # void left out
    assert result["images"] == 4 and len(result["per_image"]) == 4
    scores = {row["stem"]: row["miou"] for row in result["per_image"]}
    assert sorted(scores.values())[0] < 1.0 and sorted(scores.values())[1:] == [1.0, 1.0, 1.0]
    assert "mIoU (official-compatible)" in completed.stdout and "vehicle" in completed.stdout


def test_19_classes_option(tiny_root, predictions, capsys):
    assert main(["-q", "evaluate-masks", "--gt-root", str(tiny_root), "--pred-dir", str(predictions),
                 "--classes", "cityscapes19"]) == 0
    out = capsys.readouterr().out
    assert "car" in out and "traffic sign" in out and "classes cityscapes19" in out


def _run(tiny_root, predictions, capsys):
    status = main(["-q", "evaluate-masks", "--gt-root", str(tiny_root), "--pred-dir", str(predictions)])
    return status, capsys.readouterr().err


def test_missing_predictions_are_listed(tiny_root, predictions, capsys):
    victim = next(predictions.rglob("*.png"))
    victim.unlink()
    status, err = _run(tiny_root, predictions, capsys)
    assert status == 2
    assert "no prediction for 1 of 4 test images" in err and victim.name.split("_pred")[0] in err


@pytest.mark.parametrize("array, expected", [
    (np.zeros((16, 31), np.uint8), "size 31x16, the ground truth is 32x16"),
    (np.zeros((16, 32, 3), np.uint8), "a colour PNG, but the predictions are labelIds"),
    (np.full((16, 32), 40, np.uint8), "values 40 are not labelIds 0..33"),
    (np.full((16, 32, 2), 7, np.uint8), "mode LA, expected L or P or RGB or RGBA"),
])
def test_bad_prediction_files_are_named(tiny_root, predictions, capsys, array, expected):
    victim = sorted(predictions.rglob("*.png"))[1]
    Image.fromarray(array).save(victim)
    status, err = _run(tiny_root, predictions, capsys)
    assert status == 2 and victim.name in err and expected in err


def test_two_predictions_for_one_image(tiny_root, predictions, capsys):
    first = sorted(predictions.rglob("*.png"))[0]
    (first.parent / ("copy_" + first.name)).write_bytes(first.read_bytes())
    status, err = _run(tiny_root, predictions, capsys)
    assert status == 2 and "a second prediction for" in err


@pytest.mark.parametrize("ratio", ["inf", "nan", "2"])
def test_a_boundary_ratio_out_of_range_is_a_usage_error_not_a_traceback(tiny_root, predictions, ratio):
    completed = subprocess.run(
        [sys.executable, "-m", "training", "-q", "evaluate-masks", "--gt-root", str(tiny_root),
         "--pred-dir", str(predictions), f"--boundary-ratio={ratio}"], capture_output=True, text=True)
    assert completed.returncode == 2 and "Traceback" not in completed.stderr, completed.stderr
    assert f"argument --boundary-ratio: must be a number above 0 and at most 1 (a share of the image diagonal), " \
           f"got '{ratio}'" in completed.stderr
