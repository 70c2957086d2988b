"""The run store: atomic publication, lazy reading, deployment, errors naming the file."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from training.data.labels import get_class_set
from training.runs.deployment import deploy, deployed_run
from training.runs.layout import ArtifactError
from training.runs.reader import get_run, list_runs, store_version
from training.runs.writer import RunWriter


def _complete_writer(tmp_path, name="demo_run", miou=0.5):
    writer = RunWriter(name, tmp_path)
    writer.path("model.keras").write_bytes(b"not really a model")
    writer.write_text("config.yaml", "name: demo_run\n")
    writer.write_csv("history.csv", [{"epoch": 1, "loss": 0.9, "val_miou": 0.4}])
    writer.write_json("metrics.json", {"miou": miou, "split": "test", "classes": "categories8",
                                       "iou": {"void": float("nan")}})
    writer.write_array("confusion.npy", np.eye(3, dtype=np.int64))
    writer.write_csv("per_image.csv", [{"id": 4, "miou": 0.25}, {"id": 9, "miou": ""}])
    writer.write_array("per_image_confusion.npy", np.stack([np.eye(3, dtype=np.int64)] * 2))
    writer.write_prediction(4, np.array([[0, 1], [7, 2]], np.uint8), get_class_set().palette())
    return writer


def test_a_run_appears_only_when_complete(tmp_path):
    writer = _complete_writer(tmp_path)
    assert list_runs(tmp_path) == []  # staged, not published
    path = writer.commit()
    assert path == tmp_path / "runs" / "demo_run"
    assert [run.name for run in list_runs(tmp_path)] == ["demo_run"]
    assert not any(p.name.startswith(".staging") for p in (tmp_path / "runs").iterdir())


def test_an_incomplete_run_cannot_be_published_and_abort_cleans(tmp_path):
    writer = RunWriter("half", tmp_path)
    writer.write_json("metrics.json", {})
    with pytest.raises(ArtifactError, match="missing config.yaml, model.keras, history.csv"):
        writer.commit()
    writer.abort()
    assert list((tmp_path / "runs").iterdir()) == []


def test_names_are_never_overwritten(tmp_path):
    _complete_writer(tmp_path).commit()
    second = _complete_writer(tmp_path).commit()
    assert second.name == "demo_run-2"


def test_reading_a_run(tmp_path):
    _complete_writer(tmp_path).commit()
    run = get_run("demo_run", tmp_path)
    assert run.metrics["miou"] == 0.5 and run.metrics["iou"]["void"] is None  # NaN -> null
    assert run.history() == [{"epoch": 1, "loss": 0.9, "val_miou": 0.4}]
    assert run.per_image() == [{"id": 4, "miou": 0.25}, {"id": 9, "miou": ""}]
    np.testing.assert_array_equal(run.confusion(), np.eye(3))
    assert run.prediction(4).tolist() == [[0, 1], [7, 2]]  # class indices, not colours
    with pytest.raises(ArtifactError, match="run demo_run: missing predictions/5.png"):
        run.prediction(5)


def test_errors_name_the_run_and_file(tmp_path):
    _complete_writer(tmp_path).commit()
    with pytest.raises(ArtifactError, match="no run named 'other'.*runs: demo_run"):
        get_run("other", tmp_path)
    with pytest.raises(ArtifactError, match="not a run name"):
        get_run("../etc", tmp_path)
    (tmp_path / "runs" / "demo_run" / "metrics.json").write_text("{broken")
    with pytest.raises(ArtifactError, match="metrics.json is not valid JSON"):
        _ = get_run("demo_run", tmp_path).metrics


def test_deploy(tmp_path):
    assert deployed_run(tmp_path) is None
    _complete_writer(tmp_path).commit()
    before = store_version(tmp_path)
    record = deploy("demo_run", tmp_path)
    assert record["run"] == "demo_run" and record["miou_test"] == 0.5
    assert json.loads((tmp_path / "deployed.json").read_text())["run"] == "demo_run"
    assert deployed_run(tmp_path).name == "demo_run"
    assert store_version(tmp_path) != before
    with pytest.raises(ArtifactError, match="no run named 'ghost'"):
        deploy("ghost", tmp_path)
    (tmp_path / "deployed.json").write_text("[]")
    with pytest.raises(ArtifactError, match="damaged; redeploy"):
        deployed_run(tmp_path)


def test_store_version_follows_publication_replacement_anatomy_and_deployment_only(tmp_path):
    writer = _complete_writer(tmp_path)
    staged = store_version(tmp_path)  # a staging folder is not a run: nothing to show yet
    assert staged == store_version(tmp_path) and staged[0] == ()
    first = writer.commit()
    published = store_version(tmp_path)
    assert published != staged and [name for name, *_ in published[0]] == ["demo_run"]
    _complete_writer(tmp_path, name="other")  # staged only
    assert store_version(tmp_path) == published
    # the same name, another run: delete it and publish a new one under the name
    uid = get_run("demo_run", tmp_path).uid
    shutil.rmtree(first)
    _complete_writer(tmp_path, miou=0.75).commit()
    replaced = store_version(tmp_path)
    assert replaced != published and get_run("demo_run", tmp_path).uid != uid
    (tmp_path / "runs" / "demo_run" / "anatomy.json").write_text("{}")  # `anatomy RUN` added it
    with_anatomy = store_version(tmp_path)
    assert with_anatomy != replaced
    deploy("demo_run", tmp_path)
    assert store_version(tmp_path) != with_anatomy


def test_uids_are_stamped_at_publication_and_derived_for_older_runs(tmp_path):
    writer = _complete_writer(tmp_path)
    path = writer.commit()
    run = get_run("demo_run", tmp_path)
    assert run.uid == writer.uid == json.loads((path / "metrics.json").read_text())["uid"]
    assert deploy("demo_run", tmp_path)["uid"] == run.uid
    legacy = json.loads((path / "metrics.json").read_text())
    del legacy["uid"]
    (path / "metrics.json").write_text(json.dumps(legacy))
    derived = get_run("demo_run", tmp_path).uid
    assert derived.startswith("content-") and derived == get_run("demo_run", tmp_path).uid
    (path / "metrics.json").write_text(json.dumps({**legacy, "miou": 0.1}))
    assert get_run("demo_run", tmp_path).uid != derived  # other content, other identity


def test_reading_the_store_never_imports_tensorflow():
    code = ("import sys, training.runs.reader, training.runs.writer, training.runs.deployment, training.runs.summary; "
            "sys.exit('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_a_run_config_is_parsed_once_and_damage_is_named(tmp_path):
    writer = _complete_writer(tmp_path)
    writer.write_text("config.yaml", "name: demo_run\n"
                                     "data: {root: /gpu/cs, classes: cityscapes19, height: 64, width: 128}\n")
    writer.commit()
    run = get_run("demo_run", tmp_path)
    assert run.config["data"]["classes"] == "cityscapes19"
    assert run.data_settings.root == "/gpu/cs" and run.data_settings.classes == "cityscapes19"
    assert run.input_size == (64, 128)
    for text, problem in (("name: [unclosed", "config.yaml is not valid YAML"),
                          ("- a list\n", "config.yaml holds a list, not a mapping"),
                          ("name: x\n", "config.yaml has no data.height and data.width")):
        (run.path / "config.yaml").write_text(text)
        with pytest.raises(ArtifactError, match=problem):
            fresh = get_run("demo_run", tmp_path)
            _ = fresh.config, fresh.input_size


def test_metrics_that_are_not_an_object_are_named(tmp_path):
    _complete_writer(tmp_path).commit()
    (tmp_path / "runs" / "demo_run" / "metrics.json").write_text("[]")
    with pytest.raises(ArtifactError, match="metrics.json holds a list, not an object"):
        _ = get_run("demo_run", tmp_path).metrics


def test_a_run_without_its_model_cannot_be_deployed(tmp_path):
    _complete_writer(tmp_path).commit()
    (tmp_path / "runs" / "demo_run" / "model.keras").unlink()
    with pytest.raises(ArtifactError, match="cannot be deployed: missing model.keras"):
        deploy("demo_run", tmp_path)
    assert deployed_run(tmp_path) is None
