"""Shared set-up of the export tests: ``dashboard_store``'s two tiny runs, copied, with the first
(``tiny_simple``) exported to TFLite as float32 and int8 (built once per test session, then only
read: a test that changes it works on its own copy).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from types import SimpleNamespace

FLOAT32, INT8 = "tflite-float32", "tflite-int8"
CALIBRATION_IMAGES = 4
LATENCY_RUNS = 3
_STORES: dict[str, SimpleNamespace] = {}


def run_files(run_dir: Path) -> dict[str, str]:
    """sha256 of every file of a run folder but its exports."""
    files = [path for path in sorted(run_dir.rglob("*")) if path.is_file()]
    return {str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in files if path.relative_to(run_dir).parts[0] != "exports"}


def exported_store(tmp_path_factory, dashboard_store) -> SimpleNamespace:
    """The copied store with ``tiny_simple``'s float32 and int8 exports; ``before`` holds the run's
    files' hashes before the exports, ``reports`` the reports by export name."""
    if "store" not in _STORES:
        from training.fit.tflite_export import export_tflite

        artifacts = shutil.copytree(dashboard_store.artifacts, tmp_path_factory.mktemp("exported_store") / "artifacts")
        run = dashboard_store.runs[0]
        before = run_files(artifacts / "runs" / run)
        reports = {}
        for quantize in ("none", "int8"):
            report = export_tflite(run, quantize, artifacts=artifacts, calibration_images=CALIBRATION_IMAGES,
                                   latency_runs=LATENCY_RUNS, progress=False)
            reports[report["name"]] = report
        assert sorted(reports) == [FLOAT32, INT8]
        _STORES["store"] = SimpleNamespace(artifacts=artifacts, data_root=dashboard_store.data_root, run=run,
                                           runs=list(dashboard_store.runs), before=before, reports=reports)
    return _STORES["store"]
