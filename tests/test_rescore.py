"""``python -m training rescore RUN``: a run evaluated before the official per-image confusions (and the
error anatomy) gets exactly the files today's evaluation writes, from its stored predictions, in a
new process; a run whose predictions or dataset changed gets nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training.evaluation.significance import block, compare_runs
from training.runs.anatomy import ANATOMY_FILES, COMPANIONS
from training.runs.layout import PER_IMAGE_OFFICIAL_CONFUSION, ArtifactError
from training.runs.reader import get_run
from training.runs.rescore import anatomize_run, missing_files, rescore_run

REPO = Path(__file__).resolve().parent.parent


def _old_copy(api_store, tmp_path, name: str = "old") -> tuple[Path, Path]:
    """A copy of the trained run as an older version published it: no official per-image
    confusions, no anatomy. Returns (artifacts, run folder)."""
    artifacts = tmp_path / "artifacts"
    if not artifacts.exists():
        shutil.copytree(api_store.artifacts, artifacts)
    run_dir = artifacts / "runs" / name
    shutil.copytree(artifacts / "runs" / api_store.run, run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    (run_dir / "metrics.json").write_text(json.dumps({**metrics, "uid": f"uid-of-{name}"}))
    for file_name in (PER_IMAGE_OFFICIAL_CONFUSION, *ANATOMY_FILES):
        (run_dir / file_name).unlink()
    return artifacts, run_dir


def test_a_new_process_adds_what_the_evaluation_wrote(api_store, tmp_path):
    artifacts, run_dir = _old_copy(api_store, tmp_path)
    trained = artifacts / "runs" / api_store.run
    assert missing_files(get_run("old", artifacts)) == [PER_IMAGE_OFFICIAL_CONFUSION, "anatomy.json"]
    before = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    done = subprocess.run([sys.executable, "-m", "training", "-q", "rescore", "old", "--artifacts", str(artifacts)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"added {PER_IMAGE_OFFICIAL_CONFUSION}, anatomy.json from the stored predictions" in done.stdout
    # The official confusions are those the training's evaluation wrote, image by image.
    assert (np.load(run_dir / PER_IMAGE_OFFICIAL_CONFUSION) == np.load(trained / PER_IMAGE_OFFICIAL_CONFUSION)).all()
    added = json.loads((run_dir / "anatomy.json").read_text())
    original = json.loads((trained / "anatomy.json").read_text())
    assert {k: v for k, v in added.items() if k != "seconds"} == {k: v for k, v in original.items() if k != "seconds"}
    # Nothing of the run's own changed.
    assert {p: (run_dir / p).read_bytes() for p in before} == before
    # Now the official interval exists for it.
    result = compare_runs(get_run(api_store.run, artifacts), get_run("old", artifacts), resamples=200)
    assert block(result, "miou_official")["difference"] == 0
    again = subprocess.run([sys.executable, "-m", "training", "rescore", "old", "--artifacts", str(artifacts)],
                           capture_output=True, text=True, cwd=REPO, timeout=300)
    assert again.returncode == 0 and "nothing to add" in again.stdout


def test_predictions_that_no_longer_give_the_stored_counts_write_nothing(api_store, tmp_path):
    artifacts, run_dir = _old_copy(api_store, tmp_path)
    confusions = np.load(run_dir / "per_image_confusion.npy")
    confusions[1, 0, 0] += 7  # as if the dataset's labels changed after the evaluation
    np.save(run_dir / "per_image_confusion.npy", confusions)
    run = get_run("old", artifacts)
    image_id = run.per_image()[1]["id"]
    with pytest.raises(ArtifactError, match=f"the stored prediction of image {image_id} and its ground truth no "
                                            "longer give the counts of per_image_confusion.npy"):
        rescore_run(run, progress=False)
    assert not (run_dir / PER_IMAGE_OFFICIAL_CONFUSION).exists() and not (run_dir / "anatomy.json").exists()


def test_an_imported_run_lacking_official_confusions_is_refused(imported_store, tmp_path):
    artifacts = tmp_path / "artifacts"
    shutil.copytree(imported_store.artifacts, artifacts)
    (artifacts / "runs" / "imported_c8" / PER_IMAGE_OFFICIAL_CONFUSION).unlink()
    with pytest.raises(ArtifactError, match="import the predictions again"):
        rescore_run(get_run("imported_c8", artifacts), progress=False)


def test_an_anatomy_computed_again_is_switched_whole_by_anatomy_json(api_store, tmp_path):
    """``anatomy RUN --replace`` writes the new files beside the old ones under new names, anatomy.json
    names them (the switch), then the old ones go; the next one takes the plain names back."""
    artifacts = shutil.copytree(api_store.artifacts, tmp_path / "artifacts")
    run_dir = artifacts / "runs" / api_store.run
    first = get_run(api_store.run, artifacts)
    assert first.anatomy()["files"] == COMPANIONS  # as the evaluation staged them
    old_per_image = first.per_image_anatomy()
    leftover = run_dir / "per_image_anatomy-0123abcd.csv"  # as a replacement killed before its switch leaves it
    leftover.write_text("id,boundary_miou\n")

    document = anatomize_run(first, ratio=0.1, replace=True, workers=1, progress=False)
    run = get_run(api_store.run, artifacts)
    named = run.anatomy()["files"]
    assert named == document["files"] and run.anatomy()["boundary_ratio"] == 0.1
    generation = named["instances"].removeprefix("instances-").removesuffix(".csv")
    assert named == {"instances": f"instances-{generation}.csv", "per_image": f"per_image_anatomy-{generation}.csv",
                     "frame": f"frame_errors-{generation}.npy"}
    assert run.per_image_anatomy() != old_per_image  # 4 px boundaries, not 1
    assert _anatomy_files(run_dir) == sorted([*named.values(), "anatomy.json"])  # the old ones and the leftover went

    anatomize_run(run, replace=True, workers=1, progress=False)
    again = get_run(api_store.run, artifacts)
    assert again.anatomy()["files"] == COMPANIONS and again.per_image_anatomy() == old_per_image
    assert _anatomy_files(run_dir) == sorted([*COMPANIONS.values(), "anatomy.json"])


def _anatomy_files(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir()
                  if p.name.startswith(("instances", "per_image_anatomy", "frame_errors", "anatomy")))
