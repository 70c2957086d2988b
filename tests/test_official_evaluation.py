"""Our IoU against the official ``cityscapesscripts`` evaluation on the same label files."""

import math

import numpy as np
import pytest
from cityscapes_builder import label_path, street_label_ids, write_pair
from PIL import Image

from training.data.labels import CATEGORY_NAMES, get_class_set
from training.evaluation.masks import evaluate_masks

HEIGHT, WIDTH = 48, 96


def _perturbed(label_ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A prediction: the ground truth with wrong blocks and noise, any labelId 0..33
    (including labels the official evaluation ignores, e.g. parking, ego vehicle)."""
    prediction = label_ids.copy()
    for _ in range(6):
        top, left = rng.integers(0, HEIGHT - 8), rng.integers(0, WIDTH - 16)
        prediction[top:top + rng.integers(2, 8), left:left + rng.integers(2, 16)] = rng.integers(0, 34)
    noise = rng.random(label_ids.shape) < 0.1
    prediction[noise] = rng.integers(0, 34, noise.sum())
    return prediction


@pytest.fixture(scope="module")
def evaluated_pair_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("gt")
    pred_dir = tmp_path_factory.mktemp("pred")
    rng = np.random.default_rng(7)
    gt_files, pred_files = [], []
    for seq in range(6):
        gt = street_label_ids(HEIGHT, WIDTH, seq)
        gt[rng.random(gt.shape) < 0.05] = rng.integers(0, 34)  # some rare and ignored labels
        stem = write_pair(root, "val", "frankfurt", seq, 19, gt)
        prediction_file = pred_dir / "nested" / f"{stem}_prediction.png"
        prediction_file.parent.mkdir(exist_ok=True)
        Image.fromarray(_perturbed(gt, rng)).save(prediction_file)
        gt_files.append(str(label_path(root, "val", stem)))
        pred_files.append(str(prediction_file))
    return root, pred_dir, gt_files, pred_files


@pytest.fixture(scope="module")
def official_result(evaluated_pair_files):
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    _, _, gt_files, pred_files = evaluated_pair_files
    official.args.evalInstLevelScore = False
    official.args.JSONOutput = False
    official.args.quiet = True
    return official.evaluateImgLists(pred_files, gt_files, official.args)


def _same(ours, theirs):
    if theirs is None or math.isnan(theirs):
        return ours is None
    return ours == pytest.approx(theirs, abs=1e-12)


def test_19_classes_match_the_official_class_scores(evaluated_pair_files, official_result):
    root, pred_dir, _, _ = evaluated_pair_files
    ours = evaluate_masks(root, pred_dir, split="test", classes="cityscapes19", workers=2, progress=False)
    for name in get_class_set("cityscapes19").names:
        assert _same(ours["iou_official"][name], official_result["classScores"][name]), name
        assert _same(ours["iou"][name], official_result["classScores"][name]), name
    assert ours["miou_official"] == pytest.approx(official_result["averageScoreClasses"], abs=1e-12)
    assert ours["miou"] == pytest.approx(official_result["averageScoreClasses"], abs=1e-12)


def test_categories_match_the_official_category_scores(evaluated_pair_files, official_result):
    root, pred_dir, _, _ = evaluated_pair_files
    ours = evaluate_masks(root, pred_dir, split="val", classes="categories8", workers=1, progress=False)
    for name in CATEGORY_NAMES:
        assert _same(ours["iou_official"][name], official_result["categoryScores"][name]), name
    assert ours["iou_official"]["void"] is None  # the official category score leaves void out
    assert ours["miou_official"] == pytest.approx(official_result["averageScoreCategories"], abs=1e-12)
    # the all-classes variant counts every pixel, void included, so it differs
    assert ours["iou"]["void"] is not None
    assert ours["miou"] != pytest.approx(ours["miou_official"])
