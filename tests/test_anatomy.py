"""Error anatomy: iIoU against the official code on the embedded generator's instanceIds, a half
missed object by hand, the frame grid, and the anatomy of every run (trained, imported, old)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.data.cityscapes import DatasetError, instance_path, read_instance_ids, read_label_ids
from training.data.index import load_or_build_index
from training.data.labels import get_class_set, label_id
from training.data.synthetic import make_dataset
from training.evaluation.anatomy import Anatomy, frame_count, frame_counts
from training.evaluation.instances import AVERAGE_INSTANCE_SIZE, InstanceScores
from training.evaluation.masks import evaluate_masks
from training.evaluation.metrics import pair_counts
from training.runs.anatomy import ANATOMY_FILES
from training.runs.layout import ArtifactError
from training.runs.reader import get_run
from training.runs.rescore import anatomize_run

REPO = Path(__file__).resolve().parent.parent
CAR, PERSON, RIDER, ROAD, CARAVAN, BUILDING = (label_id(n) for n in
                                               ("car", "person", "rider", "road", "caravan", "building"))


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """The embedded generator's dataset (with its instanceIds), small."""
    root = tmp_path_factory.mktemp("anatomy") / "cityscapes"
    make_dataset(root, train=2, val=5, height=128, width=256, seed=11, workers=1, progress=False)
    return root


def _perturbed_predictions(root: Path, out: Path) -> None:
    """labelIds predictions that miss half of some objects, call others by a sibling label
    (rider for person, caravan for car: same category, another class), and scatter noise."""
    rng = np.random.default_rng(0)
    for entry in load_or_build_index(root).split("test"):
        truth = read_label_ids(root / entry.label)
        objects = read_instance_ids(root / entry.label)
        predicted = truth.copy()
        for k, instance in enumerate(np.unique(objects[objects > 1000])):
            mask = objects == instance
            if k % 3 == 0:  # the left half of the object becomes road
                columns = np.nonzero(mask.any(axis=0))[0]
                mask[:, columns[len(columns) // 2]:] = False
                predicted[mask] = ROAD
            elif k % 3 == 1:
                predicted[mask & (truth == PERSON)] = RIDER
                predicted[mask & (truth == CAR)] = CARAVAN
        noise = rng.random(truth.shape) < 0.05
        predicted[noise] = rng.choice([CAR, PERSON, BUILDING, CARAVAN, ROAD], noise.sum())
        (out / entry.city).mkdir(parents=True, exist_ok=True)
        Image.fromarray(predicted).save(out / entry.city / f"{entry.stem}_pred.png")


def _official(root: Path, results: Path, monkeypatch) -> dict:
    import numpy

    if not hasattr(numpy, "in1d"):  # cityscapesscripts 2.3.0 still calls it; numpy 2.4 removed it
        monkeypatch.setattr(numpy, "in1d", numpy.isin, raising=False)
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    gt_files = [str(root / e.label) for e in load_or_build_index(root).split("test")]
    args = official.args
    for key, value in (("predictionPath", str(results)), ("predictionWalk", None), ("evalInstLevelScore", True),
                       ("JSONOutput", False), ("quiet", True)):
        monkeypatch.setattr(args, key, value)
    return official.evaluateImgLists([official.getPrediction(args, gt) for gt in gt_files], gt_files, args)


def test_iiou_equals_the_official_code(generated, tmp_path, monkeypatch):
    results = tmp_path / "results"
    _perturbed_predictions(generated, results)
    official = _official(generated, results, monkeypatch)
    city19 = evaluate_masks(generated, results, classes="cityscapes19", progress=False)
    categories = evaluate_masks(generated, results, classes="categories8", progress=False)
    assert city19["instances"]["objects"] > 20  # the generator's objects are used, many of them
    for name, ours in city19["iiou"].items():
        theirs = official["classInstScores"][name]
        assert (ours is None and np.isnan(theirs)) or ours == pytest.approx(theirs, abs=1e-12), name
    assert city19["mean_iiou"] == pytest.approx(official["averageScoreInstClasses"], abs=1e-12)
    for result in (city19, {"iiou_categories": categories["iiou"], "mean_iiou_categories": categories["mean_iiou"]}):
        for name, ours in result["iiou_categories"].items():
            assert ours == pytest.approx(official["categoryInstScores"][name], abs=1e-12), name
        assert result["mean_iiou_categories"] == pytest.approx(official["averageScoreInstCategories"], abs=1e-12)
    assert 0.2 < city19["mean_iiou"] < 0.9  # the perturbations cost something, not everything


def test_a_half_missed_object_by_hand():
    """One car of 40 pixels, its left 20 predicted as road; 6 road pixels predicted as car."""
    class_set = get_class_set("cityscapes19")
    label_ids = np.full((10, 20), ROAD, dtype=np.uint8)
    label_ids[2:6, 5:15] = CAR
    instance_ids = label_ids.astype(np.int32)
    instance_ids[2:6, 5:15] = CAR * 1000 + 7
    truth_classes = class_set.lut[label_ids]
    predicted = truth_classes.copy()
    predicted[2:6, 5:10] = class_set.names.index("road")
    predicted[8, 0:6] = class_set.names.index("car")
    scores = InstanceScores(class_set)
    scores.add(3, instance_ids, predicted, pair_counts(label_ids, predicted))
    (row,) = scores.rows
    assert row == {"id": 3, "instance": 26007, "label": "car", "class": "car", "pixels": 40,
                   "x0": 5, "y0": 2, "x1": 15, "y1": 6, "recall": 0.5, "missed": 0}
    weight = AVERAGE_INSTANCE_SIZE["car"] / 40
    expected = 20 * weight / (20 * weight + 20 * weight + 6)  # tp, fn weighted; fp not weighted
    summary = scores.summary()
    assert summary["iiou"]["car"] == pytest.approx(expected)
    assert summary["iiou"]["person"] is None  # no person, no false positive: no score
    assert summary["mean_iiou"] == pytest.approx(expected)
    predicted[2:6, 10] = class_set.names.index("road")  # one column more: recall 0.4, missed
    scores = InstanceScores(class_set)
    scores.add(3, instance_ids, predicted, pair_counts(label_ids, predicted))
    assert scores.rows[0]["recall"] == 0.4 and scores.rows[0]["missed"] == 1


def test_the_frame_grid_counts_where_errors_are():
    counted = np.ones((8, 16), dtype=bool)
    wrong = np.zeros((8, 16), dtype=bool)
    wrong[:, :2] = True  # the left border
    wrong[7, 15] = True
    grid = frame_count(wrong, (4, 4))
    assert grid.tolist() == [[4, 0, 0, 0], [4, 0, 0, 0], [4, 0, 0, 0], [4, 0, 0, 1]]
    assert frame_count(counted, (4, 4)).sum() == 128 and (frame_count(counted, (4, 4)) == 8).all()
    small = frame_count(np.ones((2, 3), dtype=bool), (4, 4))  # a smaller image: cells by position
    assert small.sum() == 6 and small[0, 0] == 1 and small[2, 2] == 1 and small[1].sum() == 0


@pytest.mark.parametrize("shape, grid", [((1024, 2048), (128, 256)), ((256, 512), (128, 256)), ((30, 40), (3, 4)),
                                         ((33, 47), (4, 5)), ((256, 256), (2, 2))])
def test_the_counted_and_wrong_cells_of_one_pass_are_those_of_two(shape, grid):
    """Whole blocks of 64, 4 and 100 pixels (one pass), none (the integral image) and
    of 16384 (too many pixels for one pass)."""
    rng = np.random.default_rng(shape[0])
    truth = rng.integers(0, 4, shape, dtype=np.uint8)
    truth[rng.random(shape) < 0.2] = 255  # no class: never counted
    predicted = np.where(rng.random(shape) < 0.3, rng.integers(0, 4, shape, dtype=np.uint8), truth).astype(np.uint8)
    counted, wrong = frame_counts(truth, predicted, grid)
    assert np.array_equal(counted, frame_count(truth != 255, grid))
    assert np.array_equal(wrong, frame_count((truth != 255) & (predicted != truth), grid))
    assert wrong.sum() > 0 and counted.sum() > wrong.sum()


def test_no_instance_files_means_no_iiou_but_everything_else(generated, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(generated, copy)
    for path in copy.glob("gtFine/val/*/*_instanceIds.png"):
        path.unlink()
    anatomy = Anatomy(get_class_set("categories8"))
    for entry in load_or_build_index(copy).split("test"):
        label_ids = read_label_ids(copy / entry.label)
        assert read_instance_ids(copy / entry.label) is None
        anatomy.add(entry.id, anatomy.truth(label_ids, None), get_class_set("categories8").lut[label_ids])
    summary = anatomy.summary()
    assert summary["mean_iiou"] is None and "no gtFine_instanceIds for 5 of 5" in summary["instances_note"]
    assert summary["mean_boundary_iou"] == 1.0  # a perfect prediction has perfect boundaries
    assert instance_path("a/x_gtFine_labelIds.png").name == "x_gtFine_instanceIds.png"


def test_every_trained_run_has_its_anatomy(api_store):
    run = get_run(api_store.run, api_store.artifacts)
    assert run.has_anatomy
    anatomy = run.anatomy()
    assert anatomy["images"] == len(run.per_image()) and anatomy["classes"] == "categories8"
    instances = run.instances()
    assert {row["label"] for row in instances} == {"car", "person"}  # the tiny dataset's objects
    assert len(instances) == 2 * anatomy["images"] == anatomy["instances"]["objects"]
    frame = run.frame_errors()
    assert frame.shape == (2, 128, 256) and frame[0].sum() == run.confusion().sum()
    assert frame[1].sum() == run.confusion().sum() - np.trace(run.confusion())
    per_image = run.per_image_anatomy()
    assert [row["id"] for row in per_image] == [row["id"] for row in run.per_image()]


def test_an_old_run_gets_the_same_anatomy_in_a_new_process(api_store, tmp_path):
    """A run published before the anatomy: the command adds exactly what evaluation writes, from
    the stored predictions, and changes none of the run's files."""
    artifacts = tmp_path / "artifacts"
    shutil.copytree(api_store.artifacts, artifacts)
    run_dir = artifacts / "runs" / api_store.run
    original = json.loads((run_dir / "anatomy.json").read_text())
    for name in ANATOMY_FILES:
        (run_dir / name).unlink()
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert not get_run(api_store.run, artifacts).has_anatomy
    completed = subprocess.run([sys.executable, "-m", "training", "-q", "anatomy", api_store.run,
                                "--artifacts", str(artifacts)], capture_output=True, text=True, cwd=REPO)
    assert completed.returncode == 0, completed.stderr
    assert "Boundary mIoU, all classes" in completed.stdout and "objects missed" in completed.stdout
    assert {p: p.read_bytes() for p in before} == before
    added = json.loads((run_dir / "anatomy.json").read_text())
    assert {k: v for k, v in added.items() if k != "seconds"} == original
    # Asked again, the command reports the stored anatomy (no new computation: the files stay as they are).
    stored = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    again = subprocess.run([sys.executable, "-m", "training", "anatomy", api_store.run, "--artifacts",
                            str(artifacts)], capture_output=True, text=True, cwd=REPO)
    assert again.returncode == 0, again.stderr
    assert "(stored; --replace computes it again)" in again.stdout
    assert "recall by object size" in again.stdout and "error rate across the frame" in again.stdout
    assert {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == stored


def test_an_imported_run_has_the_anatomy_of_its_files(imported_store, tmp_path):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(imported_store.artifacts, artifacts)
    run = get_run("imported_c8", artifacts)
    assert run.has_anatomy and run.anatomy()["images"] == len(run.per_image())
    stored = run.anatomy()
    with pytest.raises(ArtifactError, match="already has"):
        anatomize_run(run, progress=False)
    recomputed = anatomize_run(run, replace=True, progress=False)
    assert recomputed["mean_boundary_iou"] == pytest.approx(stored["mean_boundary_iou"])
    assert recomputed["mean_iiou"] == pytest.approx(stored["mean_iiou"])


def test_the_official_band_is_the_band_of_the_official_map(generated):
    """``prepare_truth`` reuses the all-classes band when both modes cut the same regions; it must
    equal the band computed from the official map, with and without a parking lot in the way."""
    from training.evaluation.boundary import boundary_band

    class_set = get_class_set("categories8")
    anatomy = Anatomy(class_set)
    for entry in load_or_build_index(generated).split("test"):
        label_ids = read_label_ids(generated / entry.label)
        with_parking = label_ids.copy()
        with_parking[:20, :30] = label_id("parking")
        for labels in (label_ids, with_parking):
            truth = anatomy.truth(labels, None)
            assert np.array_equal(truth.official_band, boundary_band(class_set.eval_gt_lut[labels], truth.width))


def test_a_damaged_instance_file_is_an_error_naming_it(generated, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(generated, copy)
    entry = load_or_build_index(copy).split("test")[0]
    damaged = instance_path(copy / entry.label)
    damaged.write_bytes(damaged.read_bytes()[:300])
    with pytest.raises(DatasetError, match=re.escape(f"{damaged}: corrupt PNG")):
        read_instance_ids(copy / entry.label)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(damaged)
    with pytest.raises(DatasetError, match=re.escape(f"{damaged}: mode RGB, expected I;16 or L")):
        read_instance_ids(copy / entry.label)
