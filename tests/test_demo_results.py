"""``python -m training results`` (``training.runs.results``): the demo runs' numbers in one file for
the docs, on a tiny real run store: every number is the one the run's own files hold, a drive's
temporal consistency is there once the run predicted it, and a damaged run is listed with its
problem instead of stopping the file."""

from __future__ import annotations

import csv
import datetime
import json
import shutil

import numpy as np
import pytest
from sequence_fixtures import DRIVE, add_sequences

from training.cli import main
from training.evaluation.variants import MIOU, MIOU_OFFICIAL, PER_IMAGE, POOLED
from training.runs.reader import get_run
from training.runs.results import FORMAT, demo_results, machine_text
from training.runs.sequences import SequenceWriter

TEMPORAL = {"frames": [1, 2, 3, 4, 5], "temporal_consistency": 0.875,
            "temporal_consistency_per_class": {"flat": 0.9375, "vehicle": 0.625},
            "flicker_rate": 0.125, "pairs": [{}, {}, {}, {}]}


@pytest.fixture
def store(dashboard_store, tmp_path):
    """The dashboard's two tiny runs, copied with their dataset (given a demo drive), the first
    having predicted the drive."""
    artifacts = shutil.copytree(dashboard_store.artifacts, tmp_path / "artifacts")
    data_root = shutil.copytree(dashboard_store.data_root, tmp_path / "cityscapes")
    add_sequences(data_root)
    SequenceWriter(get_run(dashboard_store.runs[0], artifacts), DRIVE).commit(TEMPORAL)
    return artifacts, data_root, list(dashboard_store.runs)


def by_name(document: dict) -> dict:
    return {run["run"]: run for run in document["runs"]}


def test_every_number_is_the_runs_own(store):
    artifacts, data_root, names = store
    now = datetime.datetime(2026, 12, 4, 12, 30, tzinfo=datetime.timezone.utc)
    document = demo_results(artifacts, data_root, "make models", now)

    assert document["format"] == FORMAT
    assert document["measured"] == {"date": "2026-12-04T12:30:00Z", "machine": machine_text(),
                                    "command": "make models"}
    assert document["deployed"] == names[0]
    runs = by_name(document)
    assert list(runs) == sorted(names)
    for name in names:
        run, metrics = runs[name], json.loads((artifacts / "runs" / name / "metrics.json").read_text())
        assert "error" not in run and run["problems"] == []
        assert run["uid"] == metrics["uid"]
        for key in ("model", "params", "epochs", "best_epoch", "val_miou", "loss", "loss_name"):
            assert run[key] == metrics[key]
        assert run["iou"] == metrics["iou"]
        assert run["ece"] == metrics["calibration"]["ece"]
        assert run["deployed"] == (name == names[0])
        assert run["miou"][MIOU.label(POOLED)] == metrics["miou"]
        assert run["miou"][MIOU_OFFICIAL.label(POOLED)] == metrics["miou_official"]
        with open(artifacts / "runs" / name / "per_image.csv") as rows:
            per_image = [float(row["miou"]) for row in csv.DictReader(rows)]
        assert run["miou"][MIOU.label(PER_IMAGE)] == pytest.approx(np.mean(per_image), abs=1e-5)
        assert isinstance(run["miou"][MIOU_OFFICIAL.label(PER_IMAGE)], float)
        anatomy = json.loads((artifacts / "runs" / name / "anatomy.json").read_text())
        assert run["anatomy"]["boundary_miou"] == anatomy["mean_boundary_iou"]
        assert run["anatomy"]["iiou"] == {key: anatomy["iiou"][key] for key in ("human", "vehicle")}
        assert run["anatomy"]["objects_missed"] == anatomy["instances"]["missed"]
        latency = json.loads((artifacts / "runs" / name / "latency.json").read_text())
        assert run["inference_ms"] == pytest.approx(latency["median_ms"], abs=1e-3)
    assert runs[names[0]]["temporal"] == {DRIVE: {"drive": True, "frames": 5, "pairs": 4,
                                                  "temporal_consistency": 0.875, "flicker_rate": 0.125,
                                                  "temporal_consistency_per_class": {"flat": 0.9375, "vehicle": 0.625}}}
    assert runs[names[1]]["temporal"] == {}

    dataset = document["dataset"]
    assert dataset["classes"] == ["categories8"] and dataset["drives"] == [DRIVE]
    assert dataset["fingerprint"] == runs[names[0]]["dataset_fingerprint"]
    assert dataset["images"]["all"] == sum(dataset["images"][s] for s in ("train", "validation", "test"))


def test_a_damaged_run_is_listed_with_its_problem(store, tmp_path, capsys):
    artifacts, data_root, names = store
    broken = shutil.copytree(artifacts / "runs" / names[1], artifacts / "runs" / "broken_copy")
    (broken / "metrics.json").write_text('{"cut short')
    (artifacts / "runs" / names[1] / "anatomy.json").write_text("[]")
    out = tmp_path / "results" / "demo_runs.json"

    assert main(["results", "--artifacts", str(artifacts), "--data-root", str(data_root), "--out", str(out)]) == 0

    runs = by_name(json.loads(out.read_text()))
    assert "metrics.json" in runs["broken_copy"]["error"]
    assert runs[names[1]]["anatomy"] is None and "anatomy.json" in runs[names[1]]["problems"][0]
    assert runs[names[0]]["problems"] == []
    assert "unreadable run broken_copy" in capsys.readouterr().out
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_without_a_dataset_the_runs_still_count(store, tmp_path):
    artifacts, _, names = store
    document = demo_results(artifacts, tmp_path / "no-such-data", "x")
    assert [run["run"] for run in document["runs"]] == sorted(names)
    assert document["dataset"]["images"] is None and document["dataset"]["problems"]
    recorded = {run["dataset_fingerprint"] for run in document["runs"]}
    assert [document["dataset"]["fingerprint"]] == list(recorded)  # the one the runs agree on
