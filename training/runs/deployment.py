"""Deployment: which run (and which of its exports) the API serves, in ``artifacts/deployed.json``.

``deployed.json`` is written atomically and once per deployment: an API worker reading it sees the
old deployment or the new one, never the run without its export (``deploy_export``).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone

from training.files import write_json_atomic
from training.runs.health import require_model
from training.runs.layout import DEPLOYED, ArtifactError, artifacts_dir
from training.runs.reader import Run, get_run, list_runs, read_json_file
from training.runs.tflite_exports import EXPORTS, read_export


def _record(run: Run) -> dict:
    return {"run": run.name, "uid": run.uid, "deployed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "miou_test": run.metrics.get("miou"), "classes": run.metrics.get("classes")}


def deploy(name: str, root: str | os.PathLike | None = None) -> dict:
    """Make ``name`` the run the API serves (``artifacts/deployed.json``, written atomically).

    Raises:
        ArtifactError: no such run, or it cannot serve (damaged, or imported: no model).
    """
    run = require_model(get_run(name, root), "deployed")
    record = _record(run)
    write_json_atomic(artifacts_dir(root) / DEPLOYED, record)
    return record


def deploy_export(run_name: str, export: str, root: str | os.PathLike | None = None) -> dict:
    """Make export ``export`` of run ``run_name`` what the API serves (``deployed.json`` names the
    run as ``deploy`` does, plus the export and its file); the run must be deployable itself."""
    run = require_model(get_run(run_name, root), "deployed")
    report = read_export(run, export)
    record = {**_record(run), "export": export, "export_file": f"{EXPORTS}/{export}.tflite",
              "export_quantize": report.get("quantize"), "export_miou": report.get("miou")}
    write_json_atomic(artifacts_dir(root) / DEPLOYED, record)
    return record


def best_run(root: str | os.PathLike | None = None, key: str = "val_miou") -> Run:
    """The run with the highest ``key``; validation by default, never the test split (no leakage)."""
    scored = []
    for run in list_runs(root):
        try:
            score = run.metrics.get(key)
        except ArtifactError:
            continue  # a damaged run is never deployed
        if isinstance(score, (int, float)) and not isinstance(score, bool) and (run.path / "model.keras").exists():
            scored.append((score, run))
    if not scored:
        raise ArtifactError(f"no run in {artifacts_dir(root)} has a {key}: train one first")
    return max(scored, key=lambda pair: pair[0])[1]


def deployed_record(root: str | os.PathLike | None = None) -> dict | None:
    """What ``deployed.json`` says (``run``, ``uid``, ...), or None when nothing is deployed.

    Raises:
        ArtifactError: deployed.json is damaged (not an object naming a run).
    """
    path = artifacts_dir(root) / DEPLOYED
    if not path.exists():
        return None
    try:
        record = read_json_file(path)
    except ArtifactError:
        record = None
    if not isinstance(record, dict) or not isinstance(record.get("run"), str):
        raise ArtifactError(f"{DEPLOYED} is damaged; redeploy with `python -m training deploy RUN`")
    return record


def deployed_run(root: str | os.PathLike | None = None) -> Run | None:
    """The deployed run, or None when nothing is deployed."""
    record = deployed_record(root)
    return None if record is None else get_run(record["run"], root)


def deployed_export(root: str | os.PathLike | None = None) -> str | None:
    """The export ``deployed.json`` names, or None (the run's Keras model is served)."""
    record = deployed_record(root)
    export = None if record is None else record.get("export")
    return export if isinstance(export, str) and export else None
