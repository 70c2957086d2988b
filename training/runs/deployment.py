"""Deployment: which run (and which of its exports) the API serves, in ``artifacts/deployed.json``.

``deployed.json`` is written atomically and once per deployment: an API worker reading it sees the
old deployment or the new one, never the run without its export (``deploy_export``). The steps are
fault points (``DEPLOY_FAULTS``).
"""

from __future__ import annotations

import math
import os
from datetime import datetime, timezone

from training.files import fault_point, write_json_atomic
from training.runs.health import inspect_run, require_model
from training.runs.layout import DEPLOYED, IMPORTED, ArtifactError, artifacts_dir
from training.runs.reader import Run, get_run, list_runs, read_json_file
from training.runs.tflite_exports import EXPORTS, read_export

# Where a test kills a deployment (``training.files.fault_point``): the run (and export) checked;
# deployed.json's new content on disk, not yet renamed over it; renamed.
DEPLOY_FAULTS = ("deploy:checked", f"before_replace:{DEPLOYED}", "deploy:written")


def _record(run: Run) -> dict:
    return {"run": run.name, "uid": run.uid, "deployed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "miou_test": run.metrics.get("miou"), "classes": run.metrics.get("classes")}


def deploy(name: str, root: str | os.PathLike | None = None) -> dict:
    """Make ``name`` the run the API serves (``artifacts/deployed.json``, written atomically).

    Raises:
        ArtifactError: no such run, or it cannot serve (damaged, or imported: no model).
    """
    run = require_model(get_run(name, root), "deployed")
    return _write(_record(run), root)


def deploy_export(run_name: str, export: str, root: str | os.PathLike | None = None) -> dict:
    """Make export ``export`` of run ``run_name`` what the API serves (``deployed.json`` names the
    run as ``deploy`` does, plus the export and its file); the run must be deployable itself."""
    run = require_model(get_run(run_name, root), "deployed")
    report = read_export(run, export)
    # export_file: the export's model by the export's name, for people; the file itself is the one
    # its report names when it is served (an ``export --replace`` names a new one).
    record = {**_record(run), "export": export, "export_file": f"{EXPORTS}/{export}.tflite",
              "export_quantize": report.get("quantize"), "export_miou": report.get("miou")}
    return _write(record, root)


def _write(record: dict, root) -> dict:
    """``deployed.json`` := ``record``, in one atomic write (the only one of a deployment)."""
    fault_point("deploy:checked")
    write_json_atomic(artifacts_dir(root) / DEPLOYED, record)
    fault_point("deploy:written")
    return record


def best_run(root: str | os.PathLike | None = None, key: str = "val_miou") -> Run:
    """The deployable run with the highest ``key``; validation by default, never the test split (no
    leakage). Damaged runs (``training.runs.health``) and imported ones (no model) are skipped."""
    scored = []
    for run in list_runs(root):
        if not inspect_run(run).ok or run.metrics.get("source") == IMPORTED:
            continue
        score = run.metrics.get(key)
        if isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score):
            scored.append((score, run))
    if not scored:
        raise ArtifactError(f"no whole run with a model in {artifacts_dir(root)} has a {key}: train one first")
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
