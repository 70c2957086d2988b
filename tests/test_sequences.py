"""Drive sequences: the official snippet and demo-video layouts, their problems, the sidecar, and the
embedded generator's snippets and drive."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.data.cityscapes import discover_pairs
from training.data.index import update_index
from training.data.sequences import (
    DRIVE,
    SNIPPET,
    DatasetError,
    Sequence,
    discover_sequences,
    format_sequences,
    load_sequences,
    save_sequences,
    summary_line,
)

SEQ_VAL = "leftImg8bit_sequence/val/frankfurt"
DEMO = "leftImg8bit/demoVideo/stuttgart_00"


def _png(path: Path, value: int = 0, mode: str = "RGB") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (4, 8, 3) if mode == "RGB" else (4, 8)
    Image.fromarray(np.full(shape, value, np.uint8), mode).save(path)
    return path


def _snippet(root: Path, annotated: int, city: str = "frankfurt", seq: str = "000000", split: str = "val",
             skip=(), still: bool = True) -> None:
    for frame in range(annotated - 19, annotated + 11):
        if frame not in skip:
            _png(root / f"leftImg8bit_sequence/{split}/{city}/{city}_{seq}_{frame:06d}_leftImg8bit.png", frame % 256)
    if still:
        _png(root / f"leftImg8bit/{split}/{city}/{city}_{seq}_{annotated:06d}_leftImg8bit.png")
        _png(root / f"gtFine/{split}/{city}/{city}_{seq}_{annotated:06d}_gtFine_labelIds.png", 7, "L")


def _drive(root: Path, frames=range(1, 6), video: str = "stuttgart_00") -> None:
    for frame in frames:
        _png(root / f"leftImg8bit/demoVideo/{video}/{video}_000000_{frame:06d}_leftImg8bit.png", frame)


@pytest.fixture
def official(tmp_path) -> Path:
    """Two snippets of frankfurt_000000 (as in the download, one seq holds many), one of lindau, a
    train snippet, and the first frames of demo video stuttgart_00, all named as the zips name them."""
    _snippet(tmp_path, 294)
    _snippet(tmp_path, 576)
    _snippet(tmp_path, 19, city="lindau")
    _snippet(tmp_path, 19, city="aachen", split="train")
    _drive(tmp_path)
    return tmp_path


def test_official_snippets_and_demo_video_are_parsed(official):
    index, index_problems = update_index(official)
    assert index_problems == []
    sequences, problems = discover_sequences(official, index)
    assert problems == []
    by_name = {s.name: s for s in sequences}
    assert list(by_name) == ["aachen_000000_000019", "frankfurt_000000_000294", "frankfurt_000000_000576",
                             "lindau_000000_000019", "stuttgart_00"]
    snippet = by_name["frankfurt_000000_000294"]
    assert (snippet.kind, snippet.split, snippet.city) == (SNIPPET, "val", "frankfurt")
    assert snippet.frame_numbers == list(range(275, 305)) and len(snippet) == 30
    assert snippet.paths[0] == f"{SEQ_VAL}/frankfurt_000000_000275_leftImg8bit.png"
    assert snippet.paths[-1] == f"{SEQ_VAL}/frankfurt_000000_000304_leftImg8bit.png"
    assert snippet.annotated_stem == "frankfurt_000000_000294" and snippet.annotated_position == 19
    assert snippet.paths[19] == f"{SEQ_VAL}/frankfurt_000000_000294_leftImg8bit.png"
    ids = {entry.stem: entry.id for entry in index.entries}
    assert snippet.annotated_id == ids["frankfurt_000000_000294"]
    assert by_name["frankfurt_000000_000576"].frame_numbers == list(range(557, 587))
    assert by_name["aachen_000000_000019"].split == "train"
    assert by_name["aachen_000000_000019"].annotated_id == ids["aachen_000000_000019"]
    drive = by_name["stuttgart_00"]
    assert (drive.kind, drive.split, drive.city, drive.annotated_id, drive.annotated_stem) == (
        DRIVE, "demoVideo", "stuttgart", None, None)
    assert drive.frame_numbers == [1, 2, 3, 4, 5]
    assert drive.paths[0] == f"{DEMO}/stuttgart_00_000000_000001_leftImg8bit.png"
    assert all((official / p).is_file() for s in sequences for p in s.paths)
    assert snippet.frame_paths(official)[0] == official / snippet.paths[0]
    # no index: the same sequences without ids
    plain, _ = discover_sequences(official)
    assert [s.name for s in plain] == list(by_name) and all(s.annotated_id is None for s in plain)


def test_training_ignores_sequences_and_demo_video(official):
    pairs, problems = discover_pairs(official)
    assert problems == []
    assert sorted(p.stem for p in pairs) == ["aachen_000000_000019", "frankfurt_000000_000294",
                                             "frankfurt_000000_000576", "lindau_000000_000019"]
    assert all(p.image.startswith(("leftImg8bit/train/", "leftImg8bit/val/")) for p in pairs)
    index, _ = update_index(official)
    assert len(index) == 4 and {e.official_split for e in index.entries} == {"train", "val"}


def test_gaps_duplicates_counts_and_odd_files_are_named_not_fatal(tmp_path):
    _snippet(tmp_path, 294, skip={280, 281})  # two frames missing
    seq_dir = tmp_path / SEQ_VAL
    _png(seq_dir / "frankfurt_000000_0000290_leftImg8bit.png")  # frame 290 a second time
    _snippet(tmp_path, 1019, still=False)  # no annotated frame in leftImg8bit/
    for frame in range(2000, 2005):  # a stray run of 5 frames
        _png(seq_dir / f"frankfurt_000000_{frame:06d}_leftImg8bit.png")
    os.mkfifo(seq_dir / "frankfurt_000000_000299_leftImg8bit.png.tmp_leftImg8bit.png")
    os.symlink(tmp_path / "nowhere.png", seq_dir / "frankfurt_000001_000019_leftImg8bit.png")
    _png(seq_dir / "not-a-frame_leftImg8bit.png")
    _png(seq_dir / "lindau_000000_000019_leftImg8bit.png")  # a lindau frame in frankfurt's folder
    _drive(tmp_path, frames=[1, 2, 4, 5])  # frame 3 missing
    _png(tmp_path / DEMO / "stuttgart_01_000000_000006_leftImg8bit.png")  # another video's frame
    _drive(tmp_path, frames=[1], video="bad name")

    sequences, problems = discover_sequences(tmp_path)
    text = "\n".join(problems)
    by_name = {s.name: s for s in sequences}
    gappy = by_name["frankfurt_000000_000294"]
    assert len(gappy) == 28 and 280 not in gappy.frame_numbers and gappy.annotated_position == 17
    assert "snippet frankfurt_000000_000294: 28 frames, expected 30" in text
    assert "snippet frankfurt_000000_000294: missing frame(s) 000280, 000281" in text
    assert "frankfurt_000000_0000290_leftImg8bit.png: frankfurt_000000: frame 000290 appears twice" in text
    unannotated = by_name["frankfurt_000000_001019"]
    assert unannotated.annotated_stem is None and unannotated.annotated_position is None
    assert len(unannotated) == 30
    assert "snippet frankfurt_000000_001019: no annotated frame in leftImg8bit/val/frankfurt/" in text
    stray = by_name["frankfurt_000000_002019"]
    assert stray.frame_numbers == list(range(2000, 2005))
    assert "snippet frankfurt_000000_002019: 5 frames, expected 30" in text
    assert "000299_leftImg8bit.png.tmp_leftImg8bit.png: not a regular file (skipped)" in text
    assert "frankfurt_000001_000019_leftImg8bit.png: not a regular file (skipped)" in text
    assert "not-a-frame_leftImg8bit.png: name is not <city>_<seq>_<frame>" in text
    assert "lindau_000000_000019_leftImg8bit.png: city 'lindau' in folder 'frankfurt'" in text
    assert "drive stuttgart_00: missing frame(s) 000003" in text
    assert "stuttgart_01_000000_000006_leftImg8bit.png: name is not stuttgart_00_<seq>_<frame>" in text
    assert "bad name: video name is not URL-safe" in text
    assert by_name["stuttgart_00"].frame_numbers == [1, 2, 4, 5]
    assert "bad name" not in by_name
    assert summary_line(sequences, problems).startswith("sequences: 3 snippets (val 3; 63 frames), 1 drive (4 frames)")
    assert format_sequences(sequences, problems).count("\n") == len(problems)


def test_no_sequences_at_all(tmp_path):
    assert discover_sequences(tmp_path) == ([], [])
    assert summary_line([], []) == "sequences: 0 snippets, 0 drives; 0 problems"


def test_sidecar_round_trip_and_fresh_ids(official, tmp_path):
    index, _ = update_index(official)
    sequences, problems = discover_sequences(official, index)
    path = save_sequences(tmp_path / "out" / "sequences.json", sequences, problems + ["a problem"], index)
    loaded, loaded_problems = load_sequences(path)
    assert loaded == sequences and loaded_problems == ["a problem"]
    assert isinstance(loaded[0], Sequence) and loaded[0].frames[0][1] == sequences[0].frames[0][1]
    stale = [s.with_annotated_id(999) for s in sequences]
    save_sequences(path, stale, [], None)
    assert load_sequences(path, index)[0] == sequences  # ids looked up again in the given index
    path.write_text('{"format": "something else"}')
    with pytest.raises(DatasetError, match="not a sequences file"):
        load_sequences(path)
    with pytest.raises(DatasetError, match="cannot be read"):
        load_sequences(tmp_path / "missing.json")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the embedded generator ------------------------------------------------------------------------

H, W = 64, 128


def _make(out: Path, workers: int = 1, seed: int = 3) -> Path:
    from training.data.synthetic import make_dataset

    summary = make_dataset(out, train=2, val=3, height=H, width=W, seed=seed, workers=workers, progress=False,
                           sequences=2, drive_frames=12)
    assert summary["sequence_frames"] == 2 * 30 + 12 and summary["snippets"] == 2
    return out


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    return _make(tmp_path_factory.mktemp("generated") / "a")


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_generated_sequences_follow_the_official_layout(generated):
    index, problems = update_index(generated)
    assert problems == [] and len(index) == 5  # no frame of a sequence became a pair
    sequences, problems = discover_sequences(generated, index)
    assert problems == []
    snippets = [s for s in sequences if s.kind == SNIPPET]
    drives = [s for s in sequences if s.kind == DRIVE]
    assert [s.name for s in snippets] == ["ashcombe_000000_000019", "dunmore_000000_000019"]
    assert [(d.name, d.city, d.split, len(d)) for d in drives] == [("synthetic_00", "synthetic", "demoVideo", 12)]
    assert drives[0].paths[0] == "leftImg8bit/demoVideo/synthetic_00/synthetic_00_000000_000000_leftImg8bit.png"
    ids = {entry.stem: entry.id for entry in index.entries}
    for snippet in snippets:
        assert snippet.split == "val" and snippet.frame_numbers == list(range(30))
        assert snippet.paths[0] == (f"leftImg8bit_sequence/val/{snippet.city}/"
                                    f"{snippet.city}_000000_000000_leftImg8bit.png")
        assert snippet.annotated_position == 19 and snippet.annotated_id == ids[snippet.name]
        still = generated / "leftImg8bit" / "val" / snippet.city / f"{snippet.name}_leftImg8bit.png"
        assert (generated / snippet.paths[19]).read_bytes() == still.read_bytes()
    # the official download has no labels for the frames of a sequence: neither do we
    assert not (generated / "gtFine" / "demoVideo").exists()
    assert sorted(p.name for p in (generated / "gtFine").rglob("*labelIds.png")) == sorted(
        f"{e.stem}_gtFine_labelIds.png" for e in index.entries)
    assert "sequences: 2 snippets" in (generated / "README.txt").read_text()


def test_consecutive_frames_move_a_little(generated):
    sequences, _ = discover_sequences(generated)
    still_a = _rgb(generated / "leftImg8bit/val/ashcombe/ashcombe_000000_000019_leftImg8bit.png")
    still_b = _rgb(generated / "leftImg8bit/val/dunmore/dunmore_000000_000019_leftImg8bit.png")
    unrelated = np.abs(still_a - still_b).mean()
    for sequence in sequences:
        frames = [_rgb(p) for p in sequence.frame_paths(generated)]
        steps = [np.abs(a - b).mean() for a, b in zip(frames, frames[1:])]
        assert min(steps) > 0.5, sequence.name  # the camera drives and the noise changes
        assert max(steps) < 0.4 * unrelated, (sequence.name, max(steps), unrelated)
        assert np.abs(frames[0] - frames[-1]).mean() > np.mean(steps)  # it goes somewhere


def test_generated_sequences_are_deterministic(generated, tmp_path):
    again = _make(tmp_path / "b", workers=2)
    names = sorted(str(p.relative_to(generated)) for p in generated.rglob("*.png"))
    assert names == sorted(str(p.relative_to(again)) for p in again.rglob("*.png"))
    assert all(_digest(generated / name) == _digest(again / name) for name in names)
    other = _make(tmp_path / "c", seed=4)
    drive = "leftImg8bit/demoVideo/synthetic_00/synthetic_00_000000_000005_leftImg8bit.png"
    assert _digest(other / drive) != _digest(generated / drive)


def test_sequence_options_are_checked(tmp_path):
    from training.data.synthetic import make_dataset

    with pytest.raises(ValueError, match="3 snippets need as many val images"):
        make_dataset(tmp_path, train=1, val=2, height=H, width=W, workers=1, progress=False, sequences=3)
    summary = make_dataset(tmp_path / "none", train=1, val=1, height=H, width=W, workers=1, progress=False)
    assert summary["sequence_frames"] == 0
    assert not (tmp_path / "none" / "leftImg8bit_sequence").exists()
    assert not (tmp_path / "none" / "leftImg8bit" / "demoVideo").exists()


@pytest.mark.parametrize("seed", range(12))
def test_the_camera_never_drives_through_anything(seed):
    """Vehicles and cyclists in the camera's path stay ahead of it over a snippet and over a drive,
    and the road always reaches the camera."""
    from training.data.synthetic.motion import FRAME_RATE_HZ, sample_motion, scene_at
    from training.data.synthetic.scene import sample_scene
    from training.data.synthetic.styles import CITY_STYLES

    style = CITY_STYLES[list(CITY_STYLES)[seed % len(CITY_STYLES)]]
    for extra, frames in ((0.0, range(-19, 11)), (90.0, range(0, 120))):
        scene = sample_scene(np.random.default_rng(seed), style, extra)
        motion = sample_motion(np.random.default_rng(1000 + seed), scene)
        assert scene_at(scene, motion, 0.0) is scene
        for frame in frames:
            moved = scene_at(scene, motion, frame / FRAME_RATE_HZ, (1, 2, 3))
            assert moved.street.near_z <= 0.0
            in_path = [t for t in moved.things if abs(t.x) < 0.9
                       and t.kind in ("car", "truck", "bus", "motorcycle", "bicycle")]
            assert all(t.z > 1.5 for t in in_path), (seed, frame, [(t.kind, t.z) for t in in_path])
