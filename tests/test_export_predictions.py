"""``python -m training export-predictions``: a trained run in the official submission layout,
scored by the official ``evalPixelLevelSemanticLabeling`` as the run scored itself, and read back
by ``import-predictions`` unchanged."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from training.cli import main
from training.data.index import load_or_build_index
from training.runs.imported import import_predictions
from training.runs.layout import ArtifactError
from training.runs.reader import get_run
from training.runs.submission import export_predictions


@pytest.fixture(params=["categories8", "cityscapes19"])
def trained_run(request, api_store, class_sets_store):
    """A run trained here (tiny, on the tiny dataset) of each class set."""
    if request.param == "categories8":
        return get_run(api_store.run, api_store.artifacts), api_store.data_root
    return get_run("tiny_city19", class_sets_store.artifacts), class_sets_store.data_root


def _official_scores(data_root, results):
    """The official script run as its users run it: it finds each prediction under ``results``
    by ``<city>_<seq>_<frame>*.png``."""
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as official

    gt_files = [str(data_root / e.label) for e in load_or_build_index(data_root).split("test")]
    args = official.args
    saved = {key: getattr(args, key) for key in ("predictionPath", "predictionWalk", "evalInstLevelScore",
                                                  "JSONOutput", "quiet")}
    try:
        args.predictionPath, args.predictionWalk = str(results), None
        args.evalInstLevelScore, args.JSONOutput, args.quiet = False, False, True
        prediction_files = [official.getPrediction(args, gt) for gt in gt_files]
        return official.evaluateImgLists(prediction_files, gt_files, args)
    finally:
        for key, value in saved.items():
            setattr(args, key, value)


def test_the_official_script_scores_the_export_as_the_run(trained_run, tmp_path):
    run, data_root = trained_run
    done = export_predictions(run.name, tmp_path / "results", "labelIds", run.path.parent.parent, progress=False)
    assert done["images"] == len(run.per_image()) == 4
    official = _official_scores(data_root, tmp_path / "results")
    metrics = run.metrics
    if metrics["classes"] == "categories8":
        assert official["averageScoreCategories"] == pytest.approx(metrics["miou_official"], abs=1e-12)
        scores = official["categoryScores"]
    else:
        assert official["averageScoreClasses"] == pytest.approx(metrics["miou_official"], abs=1e-12)
        scores = official["classScores"]
    for name, ours in metrics["iou_official"].items():
        theirs = scores.get(name)
        if ours is None:
            assert theirs is None or np.isnan(theirs), name
        else:
            assert theirs == pytest.approx(ours, abs=1e-12), name


@pytest.mark.parametrize("format_name", ["labelIds", "trainIds", "color"])
def test_an_export_imports_back_to_the_same_run(trained_run, tmp_path, format_name):
    run, data_root = trained_run
    out = tmp_path / "export"
    export_predictions(run.name, out, format_name, run.path.parent.parent, progress=False)
    suffix = f"_pred_{format_name}.png"
    assert all(path.name.endswith(suffix) and path.parent.name == "gamma" for path in out.rglob("*.png"))

    back_dir, metrics = import_predictions(out, "back", data_root, classes=run.metrics["classes"],
                                           format=format_name, artifacts=tmp_path / "art", progress=False)
    assert metrics["miou"] == run.metrics["miou"] and metrics["miou_official"] == run.metrics["miou_official"]
    assert (np.load(back_dir / "confusion.npy") == run.confusion()).all()
    assert (np.load(back_dir / "per_image_confusion.npy") == run.per_image_confusion()).all()
    back = get_run("back", tmp_path / "art")
    for row in run.per_image():
        assert (back.prediction(row["id"]) == run.prediction(row["id"])).all()


def test_an_existing_folder_is_never_written_into(api_store, tmp_path, capsys):
    out = tmp_path / "results"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["export-predictions", api_store.run, "--out", str(out), "--artifacts",
                 str(api_store.artifacts)]) == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
    assert not list(tmp_path.glob(".results.partial-*"))


def test_a_run_without_predictions_says_so(api_store, tmp_path):
    artifacts = shutil.copytree(api_store.artifacts, tmp_path / "artifacts")
    for path in (artifacts / "runs" / api_store.run / "predictions").iterdir():
        path.unlink()
    with pytest.raises(ArtifactError, match="kept no predictions"):
        export_predictions(api_store.run, tmp_path / "out", artifacts=artifacts, progress=False)
    assert not (tmp_path / "out").exists()


def test_the_command_in_a_real_process(api_store, tmp_path):
    out = tmp_path / "results"
    completed = subprocess.run(
        [sys.executable, "-m", "training", "-q", "export-predictions", api_store.run, "--out", str(out),
         "--artifacts", str(api_store.artifacts)], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert f"wrote 4 test predictions of {api_store.run} as labelIds" in completed.stdout
    assert "scripts/official_pixel_eval.py" in completed.stdout
    assert len(list(out.rglob("*_pred_labelIds.png"))) == 4


@pytest.mark.parametrize("classes", ["categories8", "cityscapes19"])
def test_void_and_no_class_predictions_keep_their_official_meaning(tiny_root, tmp_path, classes):
    """A prediction of void (categories8) or of no class (cityscapes19, trainId 255) is a false
    negative for the official script; exported as "unlabeled" it stays one."""
    from PIL import Image

    from training.data.cityscapes import read_label_ids
    from training.evaluation.formats import label_ids_to

    pred_dir = tmp_path / "pred"
    for variant, entry in enumerate(load_or_build_index(tiny_root).split("test")):
        prediction = read_label_ids(tiny_root / entry.label).copy()
        prediction[4:8, 2 + variant: 12 + variant] = 1  # ego vehicle: void, ignored in evaluation
        prediction[10:12, :6] = 26  # car on the road
        (pred_dir / entry.city).mkdir(parents=True, exist_ok=True)
        Image.fromarray(label_ids_to(prediction, "trainIds")).save(pred_dir / entry.city / f"{entry.stem}.png")
    _, metrics = import_predictions(pred_dir, "voids", tiny_root, classes=classes, artifacts=tmp_path / "art",
                                    progress=False)
    export_predictions("voids", tmp_path / "results", artifacts=tmp_path / "art", progress=False)
    official = _official_scores(tiny_root, tmp_path / "results")
    key = "averageScoreCategories" if classes == "categories8" else "averageScoreClasses"
    assert official[key] == pytest.approx(metrics["miou_official"], abs=1e-12)
    assert metrics["miou_official"] < 0.95  # the voids and cars cost something


def test_the_official_command_line_scores_the_export(api_store, tmp_path):
    """The official script's own main (its ground-truth search and prediction lookup), in a real
    process, through scripts/official_pixel_eval.py."""
    import json
    from pathlib import Path

    out = tmp_path / "results"
    export_predictions(api_store.run, out, artifacts=api_store.artifacts, progress=False)
    script = Path(__file__).resolve().parent.parent / "scripts" / "official_pixel_eval.py"
    completed = subprocess.run([sys.executable, str(script), "--data-root", str(api_store.data_root),
                                "--results", str(out)], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    result = json.loads((out / "resultPixelLevelSemanticLabeling.json").read_text())
    run = get_run(api_store.run, api_store.artifacts)
    assert result["averageScoreCategories"] == pytest.approx(run.metrics["miou_official"], abs=1e-12)
    assert "Score Average" in completed.stdout
