"""What ``deploy`` writes and picks: ``deploy RUN --export NAME`` writes deployed.json once (never
the run without its export first, which the API would serve meanwhile), and ``deploy --best``
skips the runs it could not deploy (damaged, or imported: no model) instead of refusing the best."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from training.cli import main
from training.runs.deployment import best_run, deploy_export, deployed_record
from training.runs.layout import DEPLOYED
from training.runs.reader import get_run

EXPORT = "edge"


@pytest.fixture
def artifacts(api_store, tmp_path):
    return shutil.copytree(api_store.artifacts, tmp_path / "artifacts")


def _copy_run(artifacts, original: str, name: str, **metrics) -> None:
    """Run ``original`` copied as ``name``, with its own uid and ``metrics`` changed."""
    folder = shutil.copytree(artifacts / "runs" / original, artifacts / "runs" / name)
    stored = json.loads((folder / "metrics.json").read_text())
    (folder / "metrics.json").write_text(json.dumps({**stored, "run": name, "uid": f"uid-of-{name}", **metrics}))


def _fake_export(artifacts, run: str) -> None:
    """Export ``edge`` of ``run`` as its files say it (deploying reads the report, never the model)."""
    exports = artifacts / "runs" / run / "exports"
    (exports / EXPORT / "predictions").mkdir(parents=True)
    (exports / f"{EXPORT}.tflite").write_bytes(b"TFL3")
    report = {"name": EXPORT, "quantize": "int8", "miou": 0.5, "iou": {}, "file": f"{EXPORT}.tflite"}
    (exports / f"{EXPORT}.json").write_text(json.dumps(report))


def test_deploying_an_export_writes_deployed_json_once_with_the_export(api_store, artifacts, monkeypatch):
    _fake_export(artifacts, api_store.run)
    written = []
    replace = os.replace

    def recording_replace(source, target):
        if os.path.basename(target) == DEPLOYED:
            written.append(json.loads(Path(source).read_text()))
        replace(source, target)

    monkeypatch.setattr(os, "replace", recording_replace)
    record = deploy_export(api_store.run, EXPORT, artifacts)
    assert [(content["run"], content.get("export")) for content in written] == [(api_store.run, EXPORT)]
    assert deployed_record(artifacts) == record and record["export_quantize"] == "int8"


def test_deploy_best_skips_damaged_and_imported_runs(api_store, artifacts, capsys):
    whole = get_run(api_store.run, artifacts).metrics["val_miou"]
    _copy_run(artifacts, api_store.run, "damaged_best", val_miou=whole + 0.3)
    (artifacts / "runs" / "damaged_best" / "per_image.csv").unlink()
    _copy_run(artifacts, api_store.run, "imported_best", val_miou=whole + 0.2, source="imported")
    (artifacts / "runs" / "imported_best" / "model.keras").unlink()
    _copy_run(artifacts, api_store.run, "second", val_miou=whole + 0.1)
    (artifacts / "runs" / "second" / "config.yaml").write_text("data: [unclosed")  # damaged too

    assert best_run(artifacts).name == api_store.run
    assert main(["deploy", "--best", "--artifacts", str(artifacts)]) == 0
    assert f"deployed {api_store.run}" in capsys.readouterr().out
    assert deployed_record(artifacts)["run"] == api_store.run

    _copy_run(artifacts, api_store.run, "better", val_miou=whole + 0.05)
    assert best_run(artifacts).name == "better"  # the best whole run with a model wins
