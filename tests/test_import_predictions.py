"""``python -m training import-predictions``: another tool's PNGs become a run with the numbers of
``evaluate-masks``, in each format, whole or partial, and bad files are named."""

import json
import subprocess
import sys

import numpy as np
import pytest
from cityscapes_builder import CAR, PERSON, ROAD, SKY, label_path
from PIL import Image

from training.cli import main
from training.data.cityscapes import DatasetError, read_label_ids
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.evaluation.formats import label_ids_to
from training.evaluation.masks import evaluate_masks
from training.runs.deployment import deploy
from training.runs.health import inspect_run
from training.runs.imported import import_predictions
from training.runs.layout import ArtifactError
from training.runs.reader import get_run, list_runs
from training.runs.summary import run_summaries

PARKING_ID, GROUND_ID = 9, 6  # labels the official evaluation ignores (a prediction of them is wrong)


def _perturbed(label_ids: np.ndarray, variant: int) -> np.ndarray:
    """The ground truth with known mistakes: cars called road, a sky strip called person, and (in
    every other image) a block of a label no class evaluates."""
    prediction = label_ids.copy()
    prediction[label_ids == CAR] = ROAD
    prediction[:2, : 4 + variant] = PERSON
    if variant % 2:
        prediction[3:5, 10:14] = PARKING_ID
    return prediction


def _write_predictions(root, out, format_name: str, skip: int = 0, name="{stem}_leftImg8bit.png"):
    """Predictions of the test split in ``format_name`` under ``out/<city>/``; the first ``skip``
    images left out. Returns the stems written."""
    index = load_or_build_index(root)
    written = []
    for variant, entry in enumerate(index.split("test")):
        if variant < skip:
            continue
        pixels = label_ids_to(_perturbed(read_label_ids(root / entry.label), variant), format_name)
        folder = out / entry.city
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / name.format(stem=entry.stem))
        written.append(entry.stem)
    return written


@pytest.mark.parametrize("format_name", ["labelIds", "trainIds", "color"])
@pytest.mark.parametrize("classes", ["categories8", "cityscapes19"])
def test_each_format_gives_the_numbers_of_evaluate_masks(tiny_root, tmp_path, format_name, classes):
    pred_dir = tmp_path / "pred"
    _write_predictions(tiny_root, pred_dir, format_name)
    run_dir, metrics = import_predictions(pred_dir, "mmseg_run", tiny_root, classes=classes,
                                          artifacts=tmp_path / "art", progress=False)
    expected = evaluate_masks(tiny_root, pred_dir, "test", classes, workers=1, progress=False)

    for key in ("miou", "miou_official", "pixel_accuracy", "iou", "iou_official", "images", "pixels"):
        assert metrics[key] == expected[key], key
    assert np.load(run_dir / "confusion.npy").tolist() == expected["confusion"]
    assert metrics["import"]["format"] == expected["format"] == format_name
    assert metrics["source"] == "imported" and metrics["coverage"] == {"images": 4, "split_images": 4}
    per_image = np.load(run_dir / "per_image_confusion.npy")
    assert per_image.sum(axis=0).tolist() == expected["confusion"]
    assert not (run_dir / "model.keras").exists() and inspect_run(get_run("mmseg_run", tmp_path / "art")).ok


def test_the_numbers_are_the_hand_computed_ones(tiny_root, tmp_path):
    """4 test images of 16x32; car pixels predicted as road: vehicle IoU 0, flat loses precision."""
    pred_dir = tmp_path / "pred"
    _write_predictions(tiny_root, pred_dir, "trainIds")
    _, metrics = import_predictions(pred_dir, "hand", tiny_root, artifacts=tmp_path / "art", progress=False)
    truth = [read_label_ids(label_path(tiny_root, "val", f"gamma_{seq:06d}_000019")) for seq in range(4)]
    cars = sum(int((t == CAR).sum()) for t in truth)
    flat_truth = sum(int(np.isin(t, (ROAD, 8)).sum()) for t in truth)
    assert metrics["iou"]["vehicle"] == 0.0
    assert metrics["iou"]["flat"] == pytest.approx(flat_truth / (flat_truth + cars))
    person_strips = sum(2 * (4 + v) for v in range(4))
    parking_on_sky = 2 * 4  # row 3 of the parking block is sky, in images 1 and 3
    assert metrics["iou"]["sky"] == pytest.approx(
        1 - (person_strips + parking_on_sky) / sum(int((t == SKY).sum()) for t in truth))


def test_stored_predictions_are_classes_of_the_run_and_255_for_no_class(tiny_root, tmp_path):
    pred_dir = tmp_path / "pred"
    _write_predictions(tiny_root, pred_dir, "labelIds")
    run_dir, _ = import_predictions(pred_dir, "city19", tiny_root, classes="cityscapes19",
                                    artifacts=tmp_path / "art", progress=False)
    class_set = get_class_set("cityscapes19")
    index = load_or_build_index(tiny_root)
    entry = index.split("test")[1]
    stored = np.asarray(Image.open(run_dir / "predictions" / f"{entry.id}.png"))
    expected = class_set.lut[_perturbed(read_label_ids(tiny_root / entry.label), 1)]
    assert (stored == expected).all()
    assert (stored[3:5, 10:14] == 255).all()  # parking: no class of the 19


def test_a_partial_import_records_and_shows_its_coverage(tiny_root, tmp_path, capsys):
    pred_dir = tmp_path / "pred"
    written = _write_predictions(tiny_root, pred_dir, "labelIds", skip=1)
    artifacts = tmp_path / "art"
    assert main(["-q", "import-predictions", "--pred-dir", str(pred_dir), "--name", "part",
                 "--data-root", str(tiny_root), "--artifacts", str(artifacts), "--model", "torch net",
                 "--inference-ms", "12.5"]) == 0
    assert "scored 3 of 4 test images" in capsys.readouterr().out
    run = get_run("part", artifacts)
    assert run.metrics["coverage"] == {"images": 3, "split_images": 4}
    assert run.metrics["inference_ms"] == 12.5 and run.metrics["model"] == "torch net"
    assert [row["id"] for row in run.per_image()] == [e.id for e in load_or_build_index(tiny_root).split("test")
                                                      if e.stem in written]
    assert len(list((run.path / "predictions").iterdir())) == 3
    expected = evaluate_masks(tiny_root, pred_dir, "test", partial=True, workers=1, progress=False)
    assert run.metrics["miou"] == expected["miou"] and expected["coverage"] == run.metrics["coverage"]

    assert main(["runs", "--artifacts", str(artifacts)]) == 0
    assert "imported, 3 of 4 images" in capsys.readouterr().out
    assert main(["table", "--artifacts", str(artifacts)]) == 0
    assert "| 3 of 4 |" in capsys.readouterr().out
    summary, = run_summaries(artifacts)
    assert summary["source"] == "imported" and summary["params"] is None


def test_evaluate_masks_refuses_a_partial_folder_unless_asked(tiny_root, tmp_path):
    pred_dir = tmp_path / "pred"
    _write_predictions(tiny_root, pred_dir, "labelIds", skip=1)
    with pytest.raises(DatasetError, match="no prediction for 1 of 4 test images.*--partial"):
        evaluate_masks(tiny_root, pred_dir, "test", workers=1, progress=False)


def _import_error(tiny_root, tmp_path, capsys, *extra):
    status = main(["-q", "import-predictions", "--pred-dir", str(tmp_path / "pred"), "--name", "bad",
                   "--data-root", str(tiny_root), "--artifacts", str(tmp_path / "art"), *extra])
    err = capsys.readouterr().err
    runs = tmp_path / "art" / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a failed import must leave nothing in runs/"
    return status, err


def test_a_wrong_size_file_is_named_and_can_be_resized(tiny_root, tmp_path, capsys):
    pred_dir = tmp_path / "pred"
    _write_predictions(tiny_root, pred_dir, "labelIds")
    victim = sorted(pred_dir.rglob("*.png"))[2]
    small = np.asarray(Image.open(victim))[::2, ::2]
    Image.fromarray(small).save(victim)
    status, err = _import_error(tiny_root, tmp_path, capsys)
    assert status == 2 and victim.name in err and "size 16x8, the ground truth is 32x16" in err
    assert "--resize nearest" in err

    _, metrics = import_predictions(pred_dir, "scaled", tiny_root, resize="nearest", artifacts=tmp_path / "art",
                                    progress=False)
    assert metrics["import"]["resized_images"] == 1 and metrics["images"] == 4


def test_a_file_of_no_image_and_a_file_of_another_split_are_named(tiny_root, tmp_path, capsys):
    pred_dir = tmp_path / "pred"
    _write_predictions(tiny_root, pred_dir, "labelIds")
    stray = pred_dir / "gamma" / "gamma_000099_000019_leftImg8bit.png"
    stray.write_bytes(next(pred_dir.rglob("*.png")).read_bytes())
    status, err = _import_error(tiny_root, tmp_path, capsys)
    assert status == 2 and stray.name in err and "no image gamma_000099_000019" in err

    stray.unlink()
    train = pred_dir / "alpha_000000_000019_pred.png"
    train.write_bytes(next(pred_dir.rglob("*.png")).read_bytes())
    status, err = _import_error(tiny_root, tmp_path, capsys)
    assert status == 2 and train.name in err and "is a train image, not test (--split train?)" in err


@pytest.mark.parametrize("damage, expected", [
    (lambda a: np.full_like(a, 40), "values 40 are not labelIds 0..33"),
    (lambda a: np.dstack([a, a, a]), "a colour PNG, but the predictions are labelIds"),
])
def test_a_file_not_in_the_format_is_named(tiny_root, tmp_path, capsys, damage, expected):
    pred_dir = tmp_path / "pred"
    _write_predictions(tiny_root, pred_dir, "labelIds")
    victim = sorted(pred_dir.rglob("*.png"))[3]
    Image.fromarray(damage(np.asarray(Image.open(victim)))).save(victim)
    status, err = _import_error(tiny_root, tmp_path, capsys)
    assert status == 2 and victim.name in err and expected in err


def test_colours_outside_the_official_palette_are_named(tiny_root, tmp_path, capsys):
    pred_dir = tmp_path / "pred"
    _write_predictions(tiny_root, pred_dir, "color")
    victim = sorted(pred_dir.rglob("*.png"))[0]
    pixels = np.asarray(Image.open(victim)).copy()
    pixels[0, 0] = (1, 2, 3)
    Image.fromarray(pixels).save(victim)
    status, err = _import_error(tiny_root, tmp_path, capsys)
    assert status == 2 and victim.name in err and "outside the official palette: #010203" in err


def test_a_given_format_is_checked_not_guessed(tiny_root, tmp_path, capsys):
    pred_dir = tmp_path / "pred"
    _write_predictions(tiny_root, pred_dir, "labelIds")
    status, err = _import_error(tiny_root, tmp_path, capsys, "--format", "trainIds")
    assert status == 2 and "are not trainIds 0..18 and 255" in err


def test_values_0_to_18_only_are_read_the_way_that_agrees_with_the_ground_truth(tiny_root, tmp_path):
    """A trainIds file without 255 holds only 0..18, which could be labelIds too."""
    pred_dir = tmp_path / "pred"
    index = load_or_build_index(tiny_root)
    for entry in index.split("test"):
        truth = read_label_ids(tiny_root / entry.label)
        train_ids = label_ids_to(truth, "trainIds")
        train_ids[train_ids == 255] = 0  # road instead of "no class": no value says trainIds
        (pred_dir / entry.city).mkdir(parents=True, exist_ok=True)
        Image.fromarray(train_ids).save(pred_dir / entry.city / f"{entry.stem}.png")
    _, metrics = import_predictions(pred_dir, "guess", tiny_root, artifacts=tmp_path / "art", progress=False)
    assert metrics["import"]["format"] == "trainIds"
    assert "agrees more with the ground truth" in metrics["import"]["format_reason"]


def test_an_imported_run_cannot_be_deployed(tiny_root, tmp_path, capsys):
    pred_dir = tmp_path / "pred"
    _write_predictions(tiny_root, pred_dir, "labelIds")
    import_predictions(pred_dir, "foreign", tiny_root, artifacts=tmp_path / "art", progress=False)
    with pytest.raises(ArtifactError, match="imported predictions, not a model"):
        deploy("foreign", tmp_path / "art")
    assert main(["deploy", "foreign", "--artifacts", str(tmp_path / "art")]) == 2
    assert "holds imported predictions" in capsys.readouterr().err
    assert not (tmp_path / "art" / "deployed.json").exists()


def test_the_command_in_a_real_process(tiny_root, tmp_path):
    pred_dir = tmp_path / "pred"
    _write_predictions(tiny_root, pred_dir, "color")
    completed = subprocess.run(
        [sys.executable, "-m", "training", "-q", "import-predictions", "--pred-dir", str(pred_dir),
         "--name", "colours", "--data-root", str(tiny_root), "--artifacts", str(tmp_path / "art"),
         "--classes", "cityscapes19"], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert "predictions: color (detected from" in completed.stdout
    metrics = json.loads((tmp_path / "art" / "runs" / "colours" / "metrics.json").read_text())
    assert metrics["classes"] == "cityscapes19" and isinstance(metrics["uid"], str)


def test_a_reader_that_stops_early_is_not_an_error(tiny_root, tmp_path):
    """`python -m training runs | head -1`: the pipe closes before the listing is written."""
    pred_dir = tmp_path / "pred"
    _write_predictions(tiny_root, pred_dir, "labelIds")
    for name in ("one", "two"):
        import_predictions(pred_dir, name, tiny_root, artifacts=tmp_path / "art", progress=False)
    process = subprocess.Popen([sys.executable, "-m", "training", "runs", "--artifacts", str(tmp_path / "art")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # long before the interpreter has started
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0 and b"Broken pipe" not in err and b"error" not in err


@pytest.mark.parametrize("length", [127, 128])
def test_a_long_name_published_again_is_cut_to_stay_a_run_name(tiny_root, tmp_path, capsys, length):
    """The second run of a name is ``<name>-2``: with 127 or 128 characters that is cut so that it stays
    within the 128 of a run name, and so listed, opened and shown like any run."""
    pred_dir = tmp_path / "pred"
    _write_predictions(tiny_root, pred_dir, "labelIds")
    artifacts = tmp_path / "art"
    name = ("long_name." * 13)[:length]
    published = [import_predictions(pred_dir, name, tiny_root, artifacts=artifacts, progress=False)[0].name
                 for _ in range(3)]
    assert published == [name, name[:126] + "-2", name[:126] + "-3"]
    assert sorted(run.name for run in list_runs(artifacts)) == sorted(published)
    assert all(inspect_run(get_run(run, artifacts)).ok for run in published)
    assert main(["runs", "--artifacts", str(artifacts)]) == 0
    listed = capsys.readouterr().out
    assert all(run in listed for run in published)
