"""Another tool's predictions of drive frames in a run: ``python -m training import-sequences`` and
``import-predictions --sequence-dir``, in real processes, on real PNG files named as the official
downloads name them (``tiny_00_000000_000001_leftImg8bit.png`` of a demo drive, ``gamma_000000_000015
_leftImg8bit.png`` of a snippet), in each prediction format; what they leave read back through the
store's readers, the dashboard's and the ``video`` command's.

The dataset is ``build_tiny_dataset`` with the drive tests' 5-frame demo drive and 5-frame snippet
(``sequence_fixtures.add_sequences``); no model is trained. The drive's "predictions" are a
thresholding of its photos (sky, road and building by brightness), so they move with the photos
and their temporal consistency is high; the flickering ones swap road and building on alternate
frames, and score far lower.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cityscapes_builder import BUILDING, ROAD, SKY, build_tiny_dataset, street_label_ids
from PIL import Image
from sequence_fixtures import DRIVE, DRIVE_FRAMES, SNIPPET, SNIPPET_FRAMES, add_sequences, panning_frame

from training.data.cityscapes import read_label_ids
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.evaluation.formats import label_ids_to
from training.files import FAULT_ENV
from training.runs.reader import get_run
from training.runs.sequences import (
    SEQUENCE_FAULTS,
    read_sequence_temporal,
    remove_stale,
    sequence_confidence,
    sequence_names,
    sequence_prediction,
)
from training.runs.writer import PUBLISH_FAULTS
from training.viz_video import CAPTION_HEIGHT, video_layout

REPO = Path(__file__).resolve().parents[1]
CLASSES = get_class_set("categories8")
TEST_IMAGES = 4  # build_tiny_dataset's val split (our "test")


# ---------------------------------------------------------------------------- the files

def drive_labels(step: int, flicker: bool = False) -> np.ndarray:
    """labelIds of drive frame ``step`` by the brightness of its photo: sky where it is lightest,
    road where it is light, building elsewhere (road and building swapped in odd frames when
    ``flicker``)."""
    grey = panning_frame(step).mean(axis=2)
    light, dark = (BUILDING, ROAD) if flicker and step % 2 else (ROAD, BUILDING)
    return np.select([grey > 136, grey > 124], [SKY, light], dark).astype(np.uint8)


def snippet_labels(root: Path, step: int) -> np.ndarray:
    """labelIds of the snippet's frame ``step``: the street its photo was drawn from; the annotated
    frame's are its ground truth."""
    if SNIPPET_FRAMES[step] == 19:
        return read_label_ids(root / "gtFine" / "val" / "gamma" / "gamma_000000_000019_gtFine_labelIds.png")
    return street_label_ids(16, 32, step)


def write_png(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def write_frame_predictions(root: Path, folder: Path, format: str, flicker: bool = False,
                            scale: float = 1.0) -> Path:
    """Predictions of every frame of the drive and the snippet in ``format``, named and laid out as
    the official photos are (``demoVideo/<video>/`` and ``leftImg8bit_sequence/val/<city>/``)."""
    def save(path: Path, label_ids: np.ndarray) -> None:
        pixels = label_ids_to(label_ids, format)
        if scale != 1.0:
            size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
            pixels = np.asarray(Image.fromarray(pixels).resize(size, Image.NEAREST))
        write_png(path, pixels)

    for step, frame in enumerate(DRIVE_FRAMES):
        save(folder / "demoVideo" / DRIVE / f"{DRIVE}_000000_{frame:06d}_leftImg8bit.png", drive_labels(step, flicker))
    for step, frame in enumerate(SNIPPET_FRAMES):
        save(folder / "leftImg8bit_sequence" / "val" / "gamma" / f"gamma_000000_{frame:06d}_leftImg8bit.png",
             snippet_labels(root, step))
    return folder


def expected_classes(root: Path, sequence: str, position: int, flicker: bool = False) -> np.ndarray:
    labels = drive_labels(position, flicker) if sequence == DRIVE else snippet_labels(root, position)
    return CLASSES.lut[labels]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """The tiny dataset with the drive and the snippet, its index written, and another tool's
    labelIds of its 4 test images (their ground truth) under ``<dataset>/../images``."""
    base = tmp_path_factory.mktemp("import_sequences")
    root = build_tiny_dataset(base / "cityscapes")
    add_sequences(root)
    index = load_or_build_index(root)
    for entry in index.split("test"):
        stem = Path(entry.image).name.removesuffix("_leftImg8bit.png")
        write_png(base / "images" / f"{stem}_leftImg8bit.png", read_label_ids(root / entry.label))
    return root


@pytest.fixture(scope="module")
def imported(dataset, tmp_path_factory) -> Path:
    """A run store holding run ``other``, imported from the test images' predictions, no frames."""
    base = tmp_path_factory.mktemp("imported")
    store = _Store(dataset, base / "artifacts", base / "frames")
    done = store.import_run()
    assert done.returncode == 0, done.stderr
    return store.artifacts


@pytest.fixture
def store(dataset, imported, tmp_path):
    """This test's copy of ``imported``, and the frame predictions (labelIds) under ``frames``."""
    shutil.copytree(imported, tmp_path / "artifacts")
    return _Store(dataset, tmp_path / "artifacts", write_frame_predictions(dataset, tmp_path / "frames", "labelIds"))


class _Store:
    def __init__(self, root: Path, artifacts: Path, frames: Path):
        self.root, self.artifacts, self.frames = root, artifacts, frames
        self.images = root.parent / "images"

    def command(self, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
        """``python -m training --quiet ARGS`` on this store and dataset, in a real process."""
        environment = {key: value for key, value in os.environ.items() if key != FAULT_ENV}
        environment.update(ARTIFACTS_DIR=str(self.artifacts), CITYSCAPES_DATASET=str(self.root))
        if fault:
            environment[FAULT_ENV] = fault
        return subprocess.run([sys.executable, "-m", "training", "--quiet", *args], cwd=REPO, env=environment,
                              capture_output=True, text=True, timeout=300)

    def import_run(self, name: str = "other", *more: str, fault: str | None = None) -> subprocess.CompletedProcess:
        return self.command("import-predictions", "--pred-dir", str(self.images), "--name", name,
                            "--data-root", str(self.root), *more, fault=fault)

    def hidden(self, run: str) -> list[str]:
        """Hidden entries of the run's sequences/ but the writers' lock files."""
        folder = self.artifacts / "runs" / run / "sequences"
        return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and not p.name.startswith(".lock-"))


# ---------------------------------------------------------------------------- importing

def test_import_predictions_takes_the_frames_with_the_run(store):
    done = store.import_run("drives", "--sequence-dir", str(store.frames))
    assert done.returncode == 0, done.stderr
    assert f"sequences: {SNIPPET}, {DRIVE}" in done.stdout and "published" in done.stdout
    run = get_run("drives", store.artifacts)
    assert run.metrics["source"] == "imported" and run.metrics["import"]["sequences"] == [SNIPPET, DRIVE]
    assert sequence_names(run) == [SNIPPET, DRIVE]
    for name, frames in ((DRIVE, DRIVE_FRAMES), (SNIPPET, SNIPPET_FRAMES)):
        document = read_sequence_temporal(run, name)
        assert document["frames"] == frames and document["source"] == "imported"
        assert document["run_uid"] == run.uid and document["classes"] == "categories8"
        assert document["import"]["format"] == "labelIds"
        assert document["import"]["format_reason"].startswith("as the images' predictions")
        for position, frame in enumerate(frames):
            assert np.array_equal(sequence_prediction(run, name, frame), expected_classes(store.root, name, position))
    drive = read_sequence_temporal(run, DRIVE)
    assert len(drive["pairs"]) == 4 and drive["counts"]["counted_pixels"] > 0
    assert drive["temporal_consistency"] > 0.9  # the labels move with the photos
    assert not (run.path / "sequences" / DRIVE / "confidence").exists()  # another tool's classes only
    with pytest.raises(Exception, match="confidence/000001.png: missing"):
        sequence_confidence(run, DRIVE, 1)
    assert store.hidden("drives") == []


@pytest.mark.parametrize("format", ["labelIds", "trainIds", "color"])
def test_each_format_is_detected_and_read(store, tmp_path, format):
    frames = write_frame_predictions(store.root, tmp_path / format, format, flicker=True)
    done = store.command("import-sequences", "other", "--pred-dir", str(frames), "--sequence", DRIVE)
    assert done.returncode == 0, done.stderr
    assert f"predictions: {format} (detected from {DRIVE}_000000_000001_leftImg8bit.png" in done.stdout
    assert f"other / {DRIVE}: 5 frames, temporal consistency" in done.stdout
    run = get_run("other", store.artifacts)
    assert sequence_names(run) == [DRIVE]  # only the sequence asked for
    for position, frame in enumerate(DRIVE_FRAMES):
        assert np.array_equal(sequence_prediction(run, DRIVE, frame), expected_classes(store.root, DRIVE, position,
                                                                                       flicker=True))
    assert read_sequence_temporal(run, DRIVE)["temporal_consistency"] < 0.5  # classes swapped every other frame


def test_a_run_of_any_source_takes_frames_and_a_second_import_replaces_the_first(store, tmp_path):
    trained = store.artifacts / "runs" / "other"
    metrics = json.loads((trained / "metrics.json").read_text())
    (trained / "metrics.json").write_text(json.dumps({**metrics, "source": "trained"}))  # all the command reads of it
    assert store.command("import-sequences", "other", "--pred-dir", str(store.frames)).returncode == 0
    run = get_run("other", store.artifacts)
    steady = read_sequence_temporal(run, DRIVE)["temporal_consistency"]
    frames = write_frame_predictions(store.root, tmp_path / "flicker", "labelIds", flicker=True)
    again = store.command("import-sequences", "other", "--pred-dir", str(frames), "--format", "labelIds")
    assert again.returncode == 0, again.stderr
    assert "predictions: labelIds (given)" in again.stdout
    assert read_sequence_temporal(run, DRIVE)["temporal_consistency"] < steady
    assert sequence_names(run) == [SNIPPET, DRIVE] and store.hidden("other") == []


def test_predictions_of_another_size_are_refused_or_resized(store, tmp_path):
    small = write_frame_predictions(store.root, tmp_path / "small", "trainIds", scale=0.5)
    refused = store.command("import-sequences", "other", "--pred-dir", str(small), "--sequence", DRIVE)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "size 64x32, the photos of tiny_00 are 128x64 (--resize nearest" in refused.stderr
    assert f"{DRIVE}_000000_00000" in refused.stderr
    assert sequence_names(get_run("other", store.artifacts)) == [] and store.hidden("other") == []
    done = store.command("import-sequences", "other", "--pred-dir", str(small), "--sequence", DRIVE,
                         "--resize", "nearest")
    assert done.returncode == 0, done.stderr
    assert "5 frames (5 scaled to the photos)" in done.stdout
    run = get_run("other", store.artifacts)
    assert sequence_prediction(run, DRIVE, 3).shape == (64, 128)
    assert read_sequence_temporal(run, DRIVE)["import"]["resized_frames"] == 5


# ---------------------------------------------------------------------------- refused, and named

def test_a_missing_frame_is_named_and_nothing_is_imported(store):
    (store.frames / "demoVideo" / DRIVE / f"{DRIVE}_000000_000003_leftImg8bit.png").unlink()
    done = store.import_run("drives", "--sequence-dir", str(store.frames))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"sequence {DRIVE}: no prediction for 1 of its 5 frames: {DRIVE}_000000_000003" in done.stderr
    assert not (store.artifacts / "runs" / "drives").exists()  # checked before the run was published
    done = store.command("import-sequences", "other", "--pred-dir", str(store.frames))
    assert done.returncode == 2 and f"{DRIVE}_000000_000003" in done.stderr
    assert sequence_names(get_run("other", store.artifacts)) == []
    # the complete sequence alone is fine
    done = store.command("import-sequences", "other", "--pred-dir", str(store.frames), "--sequence", SNIPPET)
    assert done.returncode == 0, done.stderr
    assert sequence_names(get_run("other", store.artifacts)) == [SNIPPET]


@pytest.mark.parametrize("stray, message", [
    (f"demoVideo/{DRIVE}/{DRIVE}_000000_000009_leftImg8bit.png", "predictions of frames with no photo in the "
     f"dataset's sequences: {DRIVE}_000000_000009"),
    ("munich/munich_000000_000001_leftImg8bit.png", "1 file names no frame of the dataset's sequences"),
    ("notes.png", "1 file names no frame of the dataset's sequences"),
])
def test_a_file_for_no_frame_of_the_dataset_is_named(store, stray, message):
    write_png(store.frames / stray, np.full((64, 128), ROAD, np.uint8))
    done = store.command("import-sequences", "other", "--pred-dir", str(store.frames))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert message in done.stderr and Path(stray).name in done.stderr
    assert sequence_names(get_run("other", store.artifacts)) == []


def test_an_unknown_sequence_and_an_empty_folder_are_named(store, tmp_path):
    done = store.command("import-sequences", "other", "--pred-dir", str(store.frames), "--sequence", "nowhere_00")
    assert done.returncode == 2 and "no sequence named 'nowhere_00'" in done.stderr and DRIVE in done.stderr
    (tmp_path / "empty").mkdir()
    done = store.command("import-sequences", "other", "--pred-dir", str(tmp_path / "empty"))
    assert done.returncode == 2 and "no prediction for any of the 10 frames" in done.stderr


def test_predict_sequence_points_an_imported_run_at_import_sequences(store):
    done = store.command("predict-sequence", "other", "--sequence", DRIVE)
    assert done.returncode == 2
    assert "python -m training import-sequences other --pred-dir DIR" in done.stderr


# ---------------------------------------------------------------------------- interrupted

@pytest.mark.parametrize("moment", SEQUENCE_FAULTS)
def test_a_killed_import_leaves_the_old_sequence_or_the_new_one_whole(store, tmp_path, moment):
    assert store.import_run("drives", "--sequence-dir", str(store.frames)).returncode == 0
    run = get_run("drives", store.artifacts)
    old = read_sequence_temporal(run, DRIVE)
    frames = write_frame_predictions(store.root, tmp_path / "new", "trainIds", flicker=True)
    killed = store.command("import-sequences", "drives", "--pred-dir", str(frames), "--sequence", DRIVE, fault=moment)
    assert killed.returncode == -signal.SIGKILL
    parent = run.path / "sequences"
    if moment == "sequence:moved_aside":  # between the two renames: neither, until the next writer
        assert DRIVE not in sequence_names(run)
        remove_stale(parent)  # what the next writer of the run's sequences does first
    now = read_sequence_temporal(run, DRIVE)
    if moment == "sequence:renamed":  # the new one, whole
        assert now["import"]["format"] == "trainIds" and now["temporal_consistency"] < old["temporal_consistency"]
    else:
        assert now == old
    for frame in DRIVE_FRAMES:  # every frame of the one that is there reads
        assert sequence_prediction(run, DRIVE, frame).shape == (64, 128)
    assert sequence_names(run) == [SNIPPET, DRIVE]
    again = store.command("import-sequences", "drives", "--pred-dir", str(frames), "--sequence", DRIVE)
    assert again.returncode == 0, again.stderr
    assert read_sequence_temporal(run, DRIVE)["import"]["format"] == "trainIds"
    assert store.hidden("drives") == []  # the killed process's folders are gone


@pytest.mark.parametrize("moment", ["sequence:staged", *PUBLISH_FAULTS[:1]])
def test_a_killed_import_predictions_publishes_no_run(store, moment):
    killed = store.import_run("drives", "--sequence-dir", str(store.frames), fault=moment)
    assert killed.returncode == -signal.SIGKILL
    assert [p.name for p in (store.artifacts / "runs").iterdir() if not p.name.startswith(".")] == ["other"]
    done = store.import_run("drives", "--sequence-dir", str(store.frames))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (store.artifacts / "runs").iterdir()) == ["drives", "other"]  # no staging left
    assert sequence_names(get_run("drives", store.artifacts)) == [SNIPPET, DRIVE]


# ---------------------------------------------------------------------------- read like a trained run's

def test_the_dashboard_reads_imported_frames_as_it_reads_predicted_ones(store, monkeypatch, tmp_path):
    import dashboard.readers.drives as drives
    import dashboard.readers.store as dashboard_store

    assert store.import_run("drives", "--sequence-dir", str(store.frames)).returncode == 0
    shutil.copytree(store.artifacts / "runs" / "drives", store.artifacts / "runs" / "plain")
    metrics = json.loads((store.artifacts / "runs" / "plain" / "metrics.json").read_text())
    (store.artifacts / "runs" / "plain" / "metrics.json").write_text(json.dumps({**metrics, "uid": "plain-uid"}))
    shutil.rmtree(store.artifacts / "runs" / "plain" / "sequences")
    monkeypatch.setenv("ARTIFACTS_DIR", str(store.artifacts))
    monkeypatch.setenv("CITYSCAPES_DATASET", str(store.root))
    key = dashboard_store.store_key()
    names = [sequence.name for sequence in drives.sequences(key)[0]]
    assert DRIVE in names and SNIPPET in names
    assert drives.runs_with(key, ["plain", "drives"], DRIVE) == ["drives"]
    document = drives.temporal(key, "drives", DRIVE)
    assert document["source"] == "imported" and len(document["pairs"]) == 4
    assert drives.temporal_consistency(key, "drives") is not None and drives.temporal_consistency(key, "plain") is None
    assert np.array_equal(drives.frame_prediction(key, "drives", DRIVE, 2), expected_classes(store.root, DRIVE, 1))
    sequence = next(s for s in drives.sequences(key)[0] if s.name == DRIVE)
    video = drives.render(key, sequence, ["drives"], "categories8", 17.0, "grid", width=256)
    assert video.is_file() and video.stat().st_size > 0


def test_the_drive_page_plays_imported_frames_and_says_how_to_import_more(store, monkeypatch):
    from dashboard_fixtures import point_dashboard_at
    from streamlit.testing.v1 import AppTest

    assert store.import_run("drives", "--sequence-dir", str(store.frames)).returncode == 0
    point_dashboard_at(monkeypatch, store.artifacts, store.root)
    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=120)
    at.query_params.update({"sequence": DRIVE, "runs": "drives"})
    at.run()
    at.switch_page("app_pages/drive.py").run()
    assert not at.exception, at.exception
    assert at.multiselect(key="drive_runs").value == ["drives"]
    assert len(at.get("video")) == 1 and len(at.image) == 2  # the video; the photo and the run's frame
    commands = "\n".join(block.value for block in at.code)
    assert f"python -m training import-sequences other --pred-dir DIR --sequence {DRIVE}" in commands


def test_the_video_command_plays_the_runs_frames_side_by_side(store, tmp_path):
    import av

    assert store.import_run("drives", "--sequence-dir", str(store.frames)).returncode == 0
    flicker = write_frame_predictions(store.root, tmp_path / "flicker", "labelIds", flicker=True)
    assert store.command("import-sequences", "other", "--pred-dir", str(flicker), "--sequence", DRIVE).returncode == 0
    out = tmp_path / "drive.mp4"
    done = store.command("video", "drives", "other", "--sequence", DRIVE, "--out", str(out), "--width", "256")
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}: {len(DRIVE_FRAMES)} frames of {DRIVE}, 256x" in done.stdout
    with av.open(str(out)) as container:
        pictures = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(pictures) == len(DRIVE_FRAMES)
    # in the runs' order; alike in even frames, apart in odd ones (where "other" swapped road and building)
    layout = video_layout(["drives", "other"], panning_frame(0).shape[:2], CLASSES, "grid", 256)

    def panel(picture: np.ndarray, number: int) -> np.ndarray:
        box = layout.panels[number]
        return picture[box.y + CAPTION_HEIGHT:box.y + CAPTION_HEIGHT + box.height, box.x:box.x + box.width].astype(int)

    apart = [np.abs(panel(picture, 1) - panel(picture, 2)).mean() for picture in pictures]
    assert max(apart[0::2]) < 6 and min(apart[1::2]) > 12, apart  # H.264 leaves a few levels of noise

    refused = [store.command("video", "other", "--sequence", SNIPPET, "--out", str(out)),  # only the drive
               store.command("video", "drives", "--frames", str(store.frames), "--sequence", DRIVE, "--out", str(out)),
               store.command("video", "--sequence", DRIVE, "--out", str(out))]
    assert [r.returncode for r in refused] == [2, 2, 2]
    assert f"run other has not predicted sequence {SNIPPET}: python -m training import-sequences other" in (
        refused[0].stderr)
    assert "not both" in refused[1].stderr and "name the runs" in refused[2].stderr
