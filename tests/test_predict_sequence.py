"""``python -m training predict-sequence``: a tiny trained run over a 5-frame drive, in a real
process; the run store's readers of what it leaves (``training.runs.sequences``)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sequence_fixtures import DRIVE, DRIVE_FRAMES, SNIPPET, SNIPPET_FRAMES, copy_store, predict_sequence_command

from training.runs.layout import ArtifactError
from training.runs.reader import get_run
from training.runs.sequences import (
    FORMAT,
    overall_temporal_consistency,
    read_sequence_temporal,
    read_temporal,
    sequence_confidence,
    sequence_dir,
    sequence_names,
    sequence_prediction,
)


def _hidden(folder) -> list[str]:
    """Hidden entries of a sequences folder other than the writers' lock files (staging folders)."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".") and not p.name.startswith(".lock-")]


@pytest.fixture
def store(api_store, tmp_path):
    return copy_store(api_store, tmp_path)


def test_a_drive_is_predicted_and_scored(store):
    done = predict_sequence_command(store, store.run, "--sequence", DRIVE, "--data-root", str(store.data_root))
    assert done.returncode == 0, done.stderr
    assert f"{store.run} / {DRIVE}: 5 frames, temporal consistency" in done.stdout
    run = get_run(store.run, store.artifacts)
    assert sequence_names(run) == [DRIVE]
    folder = sequence_dir(run, DRIVE)
    assert sorted(p.name for p in folder.glob("*.png")) == [f"{n:06d}.png" for n in DRIVE_FRAMES]
    assert _hidden(folder.parent) == []  # staging renamed away
    prediction = sequence_prediction(run, DRIVE, 3)
    assert prediction.shape == (64, 128) and prediction.dtype == np.uint8 and prediction.max() < 8
    confidence = sequence_confidence(run, DRIVE, 3)
    assert confidence.shape == (64, 128) and 0 < confidence.min() <= confidence.max() <= 1
    document = read_sequence_temporal(run, DRIVE)
    assert document["format"] == FORMAT and document["frames"] == DRIVE_FRAMES
    assert document["counts"]["counted_pixels"] > 0
    assert document["kind"] == "drive" and document["run_uid"] == run.uid and document["model"] == "model.keras"
    assert 0 <= document["temporal_consistency"] <= 1 and 0 <= document["flicker_rate"] <= 1
    assert len(document["pairs"]) == 4 and set(document["temporal_consistency_per_class"]) == set(
        document["class_names"])
    assert read_temporal(run) == {DRIVE: document}
    assert overall_temporal_consistency(read_temporal(run)) == pytest.approx(document["temporal_consistency"])


def test_all_sequences_and_a_second_prediction_replaces_the_first(store):
    done = predict_sequence_command(store, store.run, "--all")
    assert done.returncode == 0, done.stderr
    run = get_run(store.run, store.artifacts)
    assert sequence_names(run) == [SNIPPET, DRIVE] or sequence_names(run) == sorted([SNIPPET, DRIVE])
    snippet = read_sequence_temporal(run, SNIPPET)
    assert snippet["frames"] == SNIPPET_FRAMES and snippet["annotated_stem"] == SNIPPET
    assert snippet["annotated_id"] is not None
    first = read_sequence_temporal(run, DRIVE)
    again = predict_sequence_command(store, store.run, "--sequence", DRIVE)
    assert again.returncode == 0, again.stderr
    assert read_sequence_temporal(run, DRIVE)["frames"] == first["frames"]
    assert _hidden(run.path / "sequences") == []


def test_unknown_sequence_and_imported_run_are_one_line_errors(store):
    done = predict_sequence_command(store, store.run, "--sequence", "nowhere_00")
    assert done.returncode == 2
    assert "no sequence named 'nowhere_00'" in done.stderr and DRIVE in done.stderr
    assert "Traceback" not in done.stderr
    metrics_path = store.artifacts / "runs" / store.run / "metrics.json"
    metrics = json.loads(metrics_path.read_text())
    metrics_path.write_text(json.dumps({**metrics, "source": "imported"}))
    done = predict_sequence_command(store, store.run, "--sequence", DRIVE)
    assert done.returncode == 2 and "imported" in done.stderr and "import-sequences" in done.stderr


def test_damaged_files_are_named(store):
    done = predict_sequence_command(store, store.run, "--sequence", DRIVE)
    assert done.returncode == 0, done.stderr
    run = get_run(store.run, store.artifacts)
    folder = sequence_dir(run, DRIVE)
    (folder / "000002.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    with pytest.raises(ArtifactError, match=rf"run {store.run}: sequences/{DRIVE}/000002.png"):
        sequence_prediction(run, DRIVE, 2)
    with pytest.raises(ArtifactError, match=rf"sequences/{DRIVE}/000009.png: missing"):
        sequence_prediction(run, DRIVE, 9)
    (folder / "temporal.json").write_text('{"format": ')
    with pytest.raises(ArtifactError, match=rf"sequences/{DRIVE}/temporal.json is not valid JSON"):
        read_temporal(run)
    (folder / "temporal.json").write_text(json.dumps({"format": FORMAT}))
    with pytest.raises(ArtifactError, match="temporal.json lacks sequence, frames"):
        read_sequence_temporal(run, DRIVE)
    with pytest.raises(ArtifactError, match="not a sequence name"):
        sequence_prediction(run, "../x", 1)


def test_one_writer_of_a_sequence_at_a_time(store):
    from training.runs.sequences import SequenceWriter

    run = get_run(store.run, store.artifacts)
    first = SequenceWriter(run, DRIVE)
    with pytest.raises(ArtifactError, match=f"sequence {DRIVE} is being predicted by process"):
        SequenceWriter(run, DRIVE)
    first.abort()
    SequenceWriter(run, DRIVE).abort()  # free again
    assert _hidden(run.path / "sequences") == [] and sequence_names(run) == []


def test_a_damaged_frame_is_named_and_nothing_is_published(store):
    photo = store.data_root / "leftImg8bit" / "demoVideo" / DRIVE / f"{DRIVE}_000000_000004_leftImg8bit.png"
    photo.write_bytes(b"not a png")
    done = predict_sequence_command(store, store.run, "--sequence", DRIVE)
    assert done.returncode == 2 and photo.name in done.stderr and "Traceback" not in done.stderr
    run = get_run(store.run, store.artifacts)
    assert sequence_names(run) == []
    assert [p.name for p in (run.path / "sequences").iterdir() if not p.name.startswith(".lock-")] == []


def test_a_tflite_export_predicts_the_drive(store):
    from training.fit.tflite_export import export_tflite

    report = export_tflite(store.run, "none", artifacts=store.artifacts, calibration_images=2, latency_runs=2,
                           progress=False)
    done = predict_sequence_command(store, store.run, "--sequence", DRIVE, "--export", report["name"])
    assert done.returncode == 0, done.stderr
    run = get_run(store.run, store.artifacts)
    document = read_sequence_temporal(run, DRIVE)
    assert document["model"] == f"exports/{report['name']}.tflite" and len(document["pairs"]) == 4
    assert sequence_prediction(run, DRIVE, 5).shape == (64, 128)
