"""``kill -9`` of a real process at every step of every commit of the run store but training's
(tests/test_faults.py): ``export --replace``, ``anatomy --replace``, ``import-predictions``,
``deploy`` and ``deploy --export``.

Each case runs ``python -m training ...`` with the test hook ``SEGMENTATION_FAULT_AT``
(``training.files.fault_point``) naming one step of the command's commit (the tuples of fault
points the writers declare: a step added there is a case here), then reads the store afresh in
this process, which never ran the command: through the store's own readers and health check, the
old state or the new one is there, whole, never a mix and never nothing; which one is fixed by the
step (before the switch the old, after it the new). Then the same command, run again, succeeds and
leaves nothing of the killed one behind.

All cases share one small store (the API's trained run, one export of it, a second copy of it) and
work on a copy. The exports' cases start TensorFlow in their process (about 10 s each on 2 cores);
the others take about a second.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from training.cli import main
from training.data.cityscapes import read_label_ids
from training.data.index import load_or_build_index
from training.files import FAULT_ENV
from training.runs.anatomy import ANATOMY_FAULTS, COMPANIONS
from training.runs.deployment import DEPLOY_FAULTS, deploy, deployed_record, deployed_run
from training.runs.health import inspect_run, inspect_store
from training.runs.layout import STAGING_PREFIX
from training.runs.reader import get_run
from training.runs.tflite_exports import (
    EXPORT_FAULTS,
    export_model_path,
    export_names,
    export_prediction,
    read_export,
)
from training.runs.writer import PUBLISH_FAULTS

REPO = Path(__file__).resolve().parents[1]
EXPORT, OTHER_RUN, IMPORTED = "edge", "tiny_b", "imported_tiny"
NEW_RATIO = 0.1  # anatomy --replace: boundaries 4 px wide on the 16x32 images, not the run's 1 px (0.005)


@pytest.fixture(scope="module")
def base(tmp_path_factory, api_store):
    """The API's store, copied, with export ``edge`` (float32) of its run ``tiny`` (deployed), a
    second run ``tiny_b`` (a copy with its own uid), and prediction PNGs of another tool for
    ``import-predictions``; ``anatomy``: the run's anatomy ("old") and the one ``anatomy --replace
    --ratio 0.1`` gives it ("new")."""
    from training.fit.tflite_export import export_tflite
    from training.runs.rescore import anatomize_run

    folder = tmp_path_factory.mktemp("faults_commits")
    artifacts = shutil.copytree(api_store.artifacts, folder / "artifacts")
    run = api_store.run
    export_tflite(run, "none", EXPORT, artifacts=artifacts, latency_runs=1, progress=False)
    other = shutil.copytree(artifacts / "runs" / run, artifacts / "runs" / OTHER_RUN)
    metrics = json.loads((other / "metrics.json").read_text())
    (other / "metrics.json").write_text(json.dumps({**metrics, "run": OTHER_RUN, "uid": "uid-of-tiny-b"}))
    predictions = folder / "predictions"
    index = load_or_build_index(api_store.data_root, write=False, report=lambda message: None)
    for entry in index.split("test"):  # the ground truth itself, as another tool's labelIds
        folder_of = predictions / entry.city
        folder_of.mkdir(parents=True, exist_ok=True)
        Image.fromarray(read_label_ids(api_store.data_root / entry.label)).save(folder_of / f"{entry.stem}.png")
    reference = shutil.copytree(artifacts, folder / "reference")
    anatomize_run(get_run(run, reference), ratio=NEW_RATIO, replace=True, workers=1, progress=False)
    assert inspect_store(artifacts) and all(health.ok for health in inspect_store(artifacts))
    anatomy = {"old": anatomy_state(get_run(run, artifacts)), "new": anatomy_state(get_run(run, reference))}
    assert anatomy["old"]["per_image"] != anatomy["new"]["per_image"]  # a mix of the two would show
    return dict(artifacts=artifacts, data_root=api_store.data_root, run=run, predictions=predictions, anatomy=anatomy)


@pytest.fixture
def store(base, tmp_path) -> dict:
    return {**base, "artifacts": shutil.copytree(base["artifacts"], tmp_path / "artifacts")}


def killed(store: dict, moment: str, *command: str) -> None:
    """``python -m training -q <command> --artifacts ...`` in a new process, killed at ``moment``."""
    env = {**os.environ, FAULT_ENV: moment}
    done = subprocess.run([sys.executable, "-m", "training", "-q", *command, "--artifacts", str(store["artifacts"])],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, f"not killed at {moment}: {done.returncode}\n{done.stderr[-3000:]}"


def runs_whole(store: dict) -> list[str]:
    """The store's runs (every one whole, by the health check), by name."""
    healths = inspect_store(store["artifacts"])
    assert [health.reason for health in healths if not health.ok] == []
    return sorted(health.run.name for health in healths)


def state_at(moment: str, points: tuple[str, ...], switch: str) -> str:
    """"old" for the steps before ``switch`` (the commit's one rename), "new" from it on."""
    return "new" if points.index(moment) >= points.index(switch) else "old"


# ---------------------------------------------------------------------------- export --replace

def export_state(run) -> str:
    """"old" (float32) or "new" (float16) for a whole export ``edge``: its report read, its model file
    the one the report measured, a prediction of every evaluated image readable."""
    report = read_export(run, EXPORT)
    assert export_names(run) == [EXPORT]
    assert export_model_path(run, EXPORT).stat().st_size == report["file_bytes"]
    ids = [int(row["id"]) for row in run.per_image()]
    assert report["images"] == len(ids)
    for image_id in ids:
        assert export_prediction(run, EXPORT, image_id).shape == run.prediction(image_id).shape
    return {"none": "old", "float16": "new"}[report["quantize"]]


REPLACE_EXPORT = ("export", "tiny", "--name", EXPORT, "--quantize", "float16", "--replace", "--latency-runs", "1")


@pytest.mark.parametrize("moment", EXPORT_FAULTS)
def test_export_replace_killed_at_each_step_leaves_one_whole_export(store, moment):
    killed(store, moment, *REPLACE_EXPORT)
    assert runs_whole(store) == ["tiny", OTHER_RUN]
    run = get_run("tiny", store["artifacts"])
    assert export_state(run) == state_at(moment, EXPORT_FAULTS, "export:switched")

    assert main(["-q", *REPLACE_EXPORT, "--artifacts", str(store["artifacts"])]) == 0
    assert export_state(get_run("tiny", store["artifacts"])) == "new"
    report = read_export(run, EXPORT)
    left = sorted(path.name for path in (run.path / "exports").iterdir())
    assert left == sorted([f"{EXPORT}.json", report["file"], report["predictions"].partition("/")[0]])


# ---------------------------------------------------------------------------- anatomy --replace

def anatomy_state(run) -> dict:
    """What a reader gets of the run's anatomy: anatomy.json (but its cost and file names) and the
    three files it names."""
    document = {key: value for key, value in run.anatomy().items() if key not in ("seconds", "files")}
    return {"document": document, "instances": run.instances(), "per_image": run.per_image_anatomy(),
            "frame": run.frame_errors().tolist()}


REPLACE_ANATOMY = ("anatomy", "tiny", "--replace", "--ratio", str(NEW_RATIO))


@pytest.mark.parametrize("moment", ANATOMY_FAULTS)
def test_anatomy_replace_killed_at_each_step_leaves_one_whole_anatomy(store, moment):
    killed(store, moment, *REPLACE_ANATOMY)
    assert runs_whole(store) == ["tiny", OTHER_RUN]
    expected = state_at(moment, ANATOMY_FAULTS, "anatomy:switched")
    assert anatomy_state(get_run("tiny", store["artifacts"])) == store["anatomy"][expected]

    assert main(["-q", *REPLACE_ANATOMY, "--artifacts", str(store["artifacts"])]) == 0
    run = get_run("tiny", store["artifacts"])
    assert anatomy_state(run) == store["anatomy"]["new"]
    anatomy_files = {path.name for path in run.path.iterdir() if not path.name.startswith(".")
                     and path.name.partition(".")[0].partition("-")[0] in {"instances", "per_image_anatomy",
                                                                             "frame_errors"}}
    assert anatomy_files == set(run.anatomy()["files"].values())  # the killed one's files are gone
    assert set(run.anatomy()["files"]) == set(COMPANIONS)


# ---------------------------------------------------------------------------- import-predictions

@pytest.mark.parametrize("moment", PUBLISH_FAULTS)
def test_import_predictions_killed_at_each_step_publishes_a_whole_run_or_none(store, moment):
    command = ("import-predictions", "--pred-dir", str(store["predictions"]), "--name", IMPORTED,
               "--data-root", str(store["data_root"]), "--format", "labelIds", "--workers", "1")
    killed(store, moment, *command)
    published = state_at(moment, PUBLISH_FAULTS, "publish:renamed") == "new"
    assert runs_whole(store) == sorted([OTHER_RUN, "tiny"] + ([IMPORTED] if published else []))
    if published:
        run = get_run(IMPORTED, store["artifacts"])
        assert run.metrics["source"] == "imported" and run.metrics["coverage"]["images"] == 4 and run.uid

    assert main(["-q", *command, "--artifacts", str(store["artifacts"])]) == 0
    again = [IMPORTED, f"{IMPORTED}-2"] if published else [IMPORTED]
    assert runs_whole(store) == sorted([OTHER_RUN, "tiny", *again])
    assert not [p.name for p in (store["artifacts"] / "runs").iterdir() if p.name.startswith(STAGING_PREFIX)]


# ---------------------------------------------------------------------------- deploy

def deployment(store: dict) -> tuple[str, str | None]:
    """(run, export) deployed.json names, the run whole and the export readable."""
    record = deployed_record(store["artifacts"])
    run = deployed_run(store["artifacts"])
    assert run.uid == record["uid"] and inspect_run(run).ok
    if record.get("export"):
        read_export(run, record["export"])
        assert record["export_file"] == f"exports/{record['export']}.tflite"
    return record["run"], record.get("export")


@pytest.mark.parametrize("moment", DEPLOY_FAULTS)
@pytest.mark.parametrize("command, before, after", [
    (("deploy", OTHER_RUN), ("tiny", None), (OTHER_RUN, None)),
    (("deploy", "tiny", "--export", EXPORT), (OTHER_RUN, None), ("tiny", EXPORT)),
], ids=["plain", "export"])
def test_deploy_killed_at_each_step_leaves_the_old_deployment_or_the_new(store, moment, command, before, after):
    deploy(before[0], store["artifacts"])
    killed(store, moment, *command)
    runs_whole(store)
    expected = {"old": before, "new": after}[state_at(moment, DEPLOY_FAULTS, "deploy:written")]
    assert deployment(store) == expected

    assert main([*command, "--artifacts", str(store["artifacts"])]) == 0
    assert deployment(store) == after

