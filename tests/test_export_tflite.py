"""TFLite exports of a tiny trained run: float32 agrees with Keras, int8 runs and reports every
field, a model TFLite cannot take is refused naming its layer, and a failed or repeated export
leaves the store as it was."""

import json
import shutil

import numpy as np
import pytest
from export_fixtures import FLOAT32, INT8, exported_store, run_files

from training.cli import main
from training.runs.layout import ArtifactError
from training.runs.reader import get_run
from training.runs.tflite_exports import (
    REPORT_FIELDS,
    export_model_path,
    export_names,
    export_prediction,
    has_export_prediction,
    read_export,
)

# What int8 (calibrated on the training images) may cost a model with clear margins between its classes:
# a bound that fails if quantisation breaks (its input scale, a collapsed output), not a tolerance for noise.
INT8_MAX_CHANGED, INT8_MAX_MIOU_DELTA = 0.02, 0.02


@pytest.fixture(scope="module")
def store(tmp_path_factory, dashboard_store):
    return exported_store(tmp_path_factory, dashboard_store)


def test_the_run_itself_is_unchanged_and_lists_its_exports(store):
    run = get_run(store.run, store.artifacts)
    assert run_files(run.path) == store.before
    assert export_names(run) == [FLOAT32, INT8]
    assert not [p for p in (run.path / "exports").iterdir() if p.name.startswith(".")]  # no staging left


def test_float32_export_predicts_the_keras_classes(store):
    from training.fit.predict import Predictor
    from training.fit.tflite import TFLitePredictor

    run = get_run(store.run, store.artifacts)
    report = read_export(run, FLOAT32)
    changed = report["changed_pixels"]
    assert changed["images"] == report["images"] == len(run.per_image())
    assert changed["compared_pixels"] == report["pixels"]
    assert changed["share"] <= 0.001
    assert report["miou"] == pytest.approx(run.metrics["miou"], abs=2e-3)

    # the same photos through both predictors, as the API runs them
    dataset = run.data_settings.open()
    keras, lite = Predictor.load(run), TFLitePredictor.load(run, FLOAT32)
    same = total = 0
    for entry in dataset.index.split("test"):
        photo, _ = dataset.read(entry.id)
        same += int(np.count_nonzero(keras.classes(photo) == lite.classes(photo)))
        total += photo.shape[0] * photo.shape[1]
        assert np.array_equal(lite.classes(photo), export_prediction(run, FLOAT32, entry.id))
    assert same / total >= 0.999


def test_int8_export_runs_and_its_report_has_every_field(store):
    run = get_run(store.run, store.artifacts)
    report = read_export(run, INT8)
    assert [field for field in REPORT_FIELDS if field not in report] == []
    assert report["quantize"] == "int8" and report["format"] == "tflite" and report["run_uid"] == run.uid
    assert report["file_bytes"] == export_model_path(run, INT8).stat().st_size > 0
    assert report["input"]["dtype"] == "uint8" and report["output_dtype"] == "uint8"
    latency = report["latency"]
    assert latency["ms_per_image"] > 0 and latency["runs"] == 3 and latency["threads"] >= 1
    assert latency["batch"] == 1 and latency["input_size"] == list(run.input_size) and latency["statistic"] == "median"
    # calibrated on the training split, never on the evaluation split
    calibration = report["calibration"]
    dataset = run.data_settings.open()
    train_ids = {e.id for e in dataset.index.split("train")}
    assert calibration["split"] == "train" and calibration["images"] == 4 and set(calibration["ids"]) <= train_ids
    assert not set(calibration["ids"]) & {e.id for e in dataset.index.split(report["split"])}
    # scores at ground-truth resolution, deltas against the run's stored IoU
    assert report["split"] == run.metrics["split"] and report["images"] == len(run.per_image())
    for name in run.metrics["class_names"]:
        export_iou, keras_iou = report["iou"][name], run.metrics["iou"][name]
        if export_iou is None or keras_iou is None:
            assert report["delta"][name] is None
        else:
            assert report["delta"][name] == pytest.approx(export_iou - keras_iou)
    assert report["delta_miou"] == pytest.approx(report["miou"] - run.metrics["miou"])
    # the report's share of changed pixels is the stored predictions' (a one-epoch model's near-uniform
    # probabilities may all tie in uint8: ``test_int8_keeps_a_confident_model_s_classes`` bounds the change)
    changed = sum(int((export_prediction(run, INT8, image_id) != run.prediction(image_id)).sum())
                  for image_id in (int(row["id"]) for row in run.per_image()))
    pixels = sum(run.prediction(int(row["id"])).size for row in run.per_image())
    assert report["changed_pixels"]["share"] == pytest.approx(changed / pixels)
    assert len(list((run.path / "exports" / INT8 / "predictions").glob("*.png"))) == report["images"]
    # the stored predictions are the report's: their confusion is the report's
    from training.evaluation.evaluator import Evaluator

    evaluator = Evaluator(report["classes"])
    for entry in dataset.index.split(report["split"]):
        evaluator.add(dataset.read(entry.id)[1], export_prediction(run, INT8, entry.id))
    assert evaluator.summary()["confusion"] == report["confusion"]


def _confident_model(height: int, width: int):
    """A model with clear margins between its classes, as a trained one has: a 3x3 convolution whose
    hand-set weights score each of 8 classes by a colour contrast, then a softmax."""
    import keras

    rng = np.random.default_rng(3)
    inputs = keras.Input((height, width, 3))
    conv = keras.layers.Conv2D(8, 3, padding="same", name="colours")
    model = keras.Model(inputs, keras.layers.Softmax(name="probabilities")(conv(inputs)), name="confident")
    conv.set_weights([rng.normal(0, 4, (3, 3, 3, 8)).astype(np.float32), rng.normal(0, 1, 8).astype(np.float32)])
    return model


def test_int8_keeps_a_confident_model_s_classes(tiny_root):
    """Full-integer int8, calibrated on training images, against the float32 Keras model on the test
    images: few pixels change class and the mIoU (all classes) against the ground truth barely moves."""
    from training.data.dataset import DataSettings
    from training.evaluation.evaluator import Evaluator
    from training.fit.predict import predict_classes
    from training.fit.tflite import TFLiteModel, convert

    dataset = DataSettings(str(tiny_root)).open()
    model = _confident_model(16, 32)
    train = [dataset.read(entry.id)[0] for entry in dataset.index.split("train")]
    content = convert(model, "int8", lambda: (image[None].astype(np.float32) / 255.0 for image in train))
    exported = TFLiteModel(content)
    changed = pixels = 0
    keras_scores, int8_scores = Evaluator(dataset.class_set), Evaluator(dataset.class_set)
    for entry in dataset.index.split("test"):
        image, label_ids = dataset.read(entry.id)
        keras_classes = predict_classes(model, image, (16, 32))
        int8_classes = predict_classes(exported, image, (16, 32))
        changed, pixels = changed + int((keras_classes != int8_classes).sum()), pixels + keras_classes.size
        keras_scores.add(label_ids, keras_classes)
        int8_scores.add(label_ids, int8_classes)
    assert len(set(np.unique(keras_classes))) > 1  # the premise: the model does not predict one class
    assert changed / pixels <= INT8_MAX_CHANGED
    assert abs(int8_scores.summary()["miou"] - keras_scores.summary()["miou"]) <= INT8_MAX_MIOU_DELTA


def _spectral_model():
    import keras
    import tensorflow as tf

    class Spectral(keras.layers.Layer):  # SVD: no TFLite kernel
        def call(self, x):
            return x * tf.reduce_mean(tf.linalg.svd(x, compute_uv=False))

    inputs = keras.Input((16, 32, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    x = Spectral(name="odd_one")(x)
    return keras.Model(inputs, keras.layers.Softmax(name="probabilities")(x), name="spectral_net")


def test_a_model_that_cannot_convert_is_refused_naming_its_layer():
    from training.fit.tflite import ConversionError, convert

    with pytest.raises(ConversionError) as raised:
        convert(_spectral_model(), "none")
    message = str(raised.value)
    assert "layer 'odd_one' (Spectral)" in message and "Svd" in message
    assert "layer 'conv'" not in message  # the convertible layers are not blamed


def test_an_unreadable_calibration_image_is_not_blamed_on_the_model():
    import keras

    from training.data.cityscapes import DatasetError
    from training.fit.tflite import convert

    inputs = keras.Input((16, 32, 3))
    model = keras.Model(inputs, keras.layers.Softmax()(keras.layers.Conv2D(4, 3, padding="same")(inputs)))

    def images():
        yield np.zeros((1, 16, 32, 3), np.float32)
        raise DatasetError("leftImg8bit/train/alpha/x.png: not a readable PNG")

    with pytest.raises(DatasetError, match="not a readable PNG"):
        convert(model, "int8", images)


def test_a_failed_export_leaves_nothing_and_says_why(store, tmp_path, monkeypatch, capsys):
    import training.fit.tflite_export as tflite_export
    from training.fit.tflite import ConversionError

    artifacts = shutil.copytree(store.artifacts, tmp_path / "artifacts")

    def refuse(model, quantize, representative=None):
        raise ConversionError("cannot convert spectral_net to TFLite (none): layer 'odd_one' (Spectral) uses Svd")

    monkeypatch.setattr(tflite_export, "convert", refuse)
    for run in store.runs:  # one with exports, one without (no empty exports/ is left behind)
        run_dir = artifacts / "runs" / run
        before = sorted(p.relative_to(run_dir) for p in run_dir.rglob("*"))
        assert main(["-q", "export", run, "--name", "broken", "--artifacts", str(artifacts)]) == 2
        assert "layer 'odd_one' (Spectral)" in capsys.readouterr().err
        assert sorted(p.relative_to(run_dir) for p in run_dir.rglob("*")) == before
    assert not (artifacts / "runs" / store.runs[1] / "exports").exists()


def test_an_existing_export_is_kept_unless_replaced(store, tmp_path, capsys):
    artifacts = shutil.copytree(store.artifacts, tmp_path / "artifacts")
    run = get_run(store.run, artifacts)
    old = read_export(run, FLOAT32)
    assert main(["-q", "export", store.run, "--artifacts", str(artifacts)]) == 2
    assert "already has an export 'tflite-float32'" in capsys.readouterr().err
    assert main(["-q", "export", store.run, "--artifacts", str(artifacts), "--replace", "--latency-runs", "2",
                 "--quantize", "none"]) == 0
    out = capsys.readouterr().out
    new = read_export(run, FLOAT32)
    # The new files got a new generation's names (the old ones were whole until the report switched),
    # then the old ones went.
    generation = new["file"].removeprefix(f"{FLOAT32}@").removesuffix(".tflite")
    assert len(generation) == 12 and generation.isalnum() and old["file"] == f"{FLOAT32}.tflite"
    assert new["predictions"] == f"{FLOAT32}@{generation}/predictions"
    assert f"{new['file']}: " in out and "per class, IoU export - Keras" in out
    assert new["created"] >= old["created"] and new["latency"]["runs"] == 2
    assert export_names(run) == [FLOAT32, INT8]
    assert export_model_path(run, FLOAT32).name == new["file"]
    assert np.array_equal(export_prediction(run, FLOAT32, run.per_image()[0]["id"]),
                          _png(run.path / "exports" / new["predictions"] / f"{run.per_image()[0]['id']}.png"))
    assert _files_of(run, FLOAT32) == sorted([f"{FLOAT32}.json", new["file"], f"{FLOAT32}@{generation}"])
    assert not [p for p in (run.path / "exports").iterdir() if p.name.startswith(".")]
    # Replaced again: the export's own names are free, so back to them.
    assert main(["-q", "export", store.run, "--artifacts", str(artifacts), "--replace", "--latency-runs", "1"]) == 0
    assert read_export(run, FLOAT32)["file"] == f"{FLOAT32}.tflite"
    assert _files_of(run, FLOAT32) == sorted([f"{FLOAT32}.json", f"{FLOAT32}.tflite", FLOAT32])


def _files_of(run, name: str) -> list[str]:
    return sorted(p.name for p in (run.path / "exports").iterdir() if p.name.startswith(name))


def _png(path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image)


def test_a_report_that_names_no_files_is_read_as_its_export_s_own_and_a_foreign_file_is_refused(store, tmp_path):
    artifacts = shutil.copytree(store.artifacts, tmp_path / "artifacts")
    run = get_run(store.run, artifacts)
    report_file = run.path / "exports" / f"{INT8}.json"
    report = json.loads(report_file.read_text())
    image_id = run.per_image()[0]["id"]
    expected = export_prediction(run, INT8, image_id)
    legacy = {key: value for key, value in report.items() if key != "predictions"}  # as exports were written
    report_file.write_text(json.dumps(legacy))
    assert np.array_equal(export_prediction(run, INT8, image_id), expected)
    assert export_model_path(run, INT8).name == f"{INT8}.tflite" and read_export(run, INT8)["quantize"] == "int8"
    for field, value, what in (("file", "../../tiny_unet/model.keras", "model file"),
                               ("file", f"{FLOAT32}.tflite", "model file"),
                               ("predictions", "../predictions", "predictions"),
                               ("predictions", f"{INT8}@x/y/predictions", "predictions")):
        report_file.write_text(json.dumps({**report, field: value}))
        with pytest.raises(ArtifactError, match=f"exports/{INT8}.json names the {what} "):
            read_export(run, INT8)
        assert not has_export_prediction(run, INT8, image_id)


def test_damaged_exports_name_their_file(store, tmp_path):
    artifacts = shutil.copytree(store.artifacts, tmp_path / "artifacts")
    run = get_run(store.run, artifacts)
    (run.path / "exports" / f"{INT8}.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="exports/tflite-int8.json is not valid JSON"):
        read_export(run, INT8)
    (run.path / "exports" / f"{FLOAT32}.tflite").unlink()
    with pytest.raises(ArtifactError, match="missing exports/tflite-float32.tflite"):
        read_export(run, FLOAT32)
    with pytest.raises(ArtifactError, match="has no export 'ghost'"):
        read_export(run, "ghost")
    with pytest.raises(ArtifactError, match="not an export name"):
        read_export(run, "../runs")
    json.loads((store.artifacts / "runs" / store.run / "exports" / f"{INT8}.json").read_text())  # the shared one


def test_calibration_never_comes_from_the_evaluation_split(store):
    from training.fit.tflite_export import calibration_entries

    dataset = get_run(store.run, store.artifacts).data_settings.open()
    with pytest.raises(ValueError, match="not 'test'"):
        calibration_entries(dataset, "test", 4, "test")
    chosen = calibration_entries(dataset, "train", 100, "test", seed=1)
    assert [e.id for e in chosen] == sorted(e.id for e in chosen)
    assert {e.id for e in chosen} == {e.id for e in dataset.index.split("train")}  # fewer than asked: all
