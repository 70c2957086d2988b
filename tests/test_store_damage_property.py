"""Property: any damage to any one file of a run leaves the rest of the store readable, and names
the file.

Hypothesis cuts, garbles, re-encodes, empties or swaps one file of a copied run (or puts a folder
in its place), then reads the store as every surface does: the health check, the summaries and the
table of ``python -m training runs`` / ``table``, each accessor of the damaged run, and the API's
``/api/runs`` and ``/api/model`` through real requests of the Flask test client. None may raise
anything but an ``ArtifactError`` naming the file; the whole run beside it must stay whole.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training.runs.deployment import deploy
from training.runs.health import inspect_store
from training.runs.latency import read_latency
from training.runs.layout import ArtifactError
from training.runs.reader import Run, get_run
from training.runs.summary import run_summaries, table_rows, to_csv, to_markdown

WHOLE, VICTIM = "whole", "victim"
DAMAGES = ("truncate", "garble", "utf16", "invalid utf8", "empty", "swap", "folder")


@pytest.fixture(scope="module")
def damage_store(api_store, tmp_path_factory):
    """A store of two copies of the API's tiny run: ``whole`` and the deployed ``victim``, with a
    pristine copy of the victim to restore before each example."""
    base = tmp_path_factory.mktemp("damage")
    artifacts = base / "artifacts"
    source = next(path for path in (api_store.artifacts / "runs").iterdir() if path.is_dir())
    for name in (WHOLE, VICTIM):
        shutil.copytree(source, artifacts / "runs" / name)
    pristine = shutil.copytree(source, base / "pristine")
    deploy(VICTIM, artifacts)
    from api import create_app

    app = create_app({"TESTING": True, "ARTIFACTS_DIR": str(artifacts), "DATA_ROOT": str(api_store.data_root)})
    files = sorted(path.relative_to(pristine).as_posix() for path in pristine.rglob("*") if path.is_file())
    return artifacts, pristine, app.test_client(), files


def _damaged(data: bytes, damage: str, position: float, seed: int, other: bytes) -> bytes:
    rng = np.random.default_rng(seed)
    cut = int(len(data) * position)
    if damage == "truncate":
        return data[:cut]
    if damage == "garble":
        garbled = bytearray(data)
        for where in rng.integers(0, max(1, len(data)), size=max(1, len(data) // 50)):
            if garbled:
                garbled[where] = int(rng.integers(0, 256))
        return bytes(garbled)
    if damage == "utf16":
        return data.decode("latin-1").encode("utf-16")
    if damage == "invalid utf8":
        return data[:cut] + b"\xff\xfe\xc3" + data[cut:]
    if damage == "empty":
        return b""
    return other  # swap


def _read_everything(run: Run) -> None:
    """Every accessor a page or the API uses; only ArtifactError may come out."""
    accessors = [lambda: run.metrics, lambda: run.config, lambda: run.uid, lambda: run.data_settings,
                 lambda: run.input_size, run.confusion, run.per_image, run.history, run.per_image_confusion,
                 lambda: run.per_image_official_confusion() if run.has_official_confusion else None,
                 lambda: read_latency(run), lambda: run.anatomy() if run.has_anatomy else None,
                 lambda: run.instances() if run.has_anatomy else None,
                 lambda: run.per_image_anatomy() if run.has_anatomy else None,
                 lambda: run.frame_errors() if run.has_anatomy else None]
    accessors += [lambda path=path: run.prediction(int(path.stem))
                  for path in sorted((run.path / "predictions").glob("*.png")) if path.stem.isdigit()]
    for read in accessors:
        try:
            read()
        except ArtifactError:
            pass


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(data=st.data())
def test_damaging_any_file_of_a_run_never_crashes_a_reader_and_names_the_file(damage_store, data):
    artifacts, pristine, client, files = damage_store
    victim_dir = artifacts / "runs" / VICTIM
    shutil.rmtree(victim_dir)
    shutil.copytree(pristine, victim_dir)

    name = data.draw(st.sampled_from(files), label="file")
    damage = data.draw(st.sampled_from(DAMAGES), label="damage")
    target = victim_dir / name
    if damage == "folder":
        target.unlink()
        target.mkdir()
    else:
        other = data.draw(st.sampled_from([f for f in files if f != name]), label="swapped with")
        target.write_bytes(_damaged(target.read_bytes(), damage, data.draw(st.floats(0, 1), label="position"),
                                    data.draw(st.integers(0, 2**16), label="seed"),
                                    (pristine / other).read_bytes()))

    health = {h.run.name: h for h in inspect_store(artifacts)}
    assert health[WHOLE].ok, health[WHOLE].reason
    if not health[VICTIM].ok:
        assert Path(name).name in health[VICTIM].reason, (name, damage, health[VICTIM].reason)

    rows = table_rows(run_summaries(artifacts))
    assert to_markdown(rows) and to_csv(rows)
    _read_everything(get_run(VICTIM, artifacts))

    listed = client.get("/api/runs")
    assert listed.status_code == 200, listed.get_data(as_text=True)
    entries = {entry["run"]: entry for entry in listed.get_json()["runs"]}
    assert WHOLE in entries and VICTIM in entries
    if "error" in entries[VICTIM]:
        assert Path(name).name in entries[VICTIM]["error"]
    assert client.get("/api/model").status_code in (200, 503)
