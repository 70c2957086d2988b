"""The data commands on a generated dataset: make -> index -> check -> preview."""

import json

from PIL import Image

from training.cli import main
from training.data.index import INDEX_FILENAME, load_index
from training.data.sequences import SEQUENCES_FILENAME, load_sequences

SEQUENCES_LINE = "sequences: 1 snippet (val 1; 30 frames), 1 drive (5 frames); 0 problems"


def test_make_check_preview(tmp_path, capsys):
    root = tmp_path / "synthetic"
    assert main(["-q", "data", "make", "--out", str(root), "--train", "6", "--val", "3",
                 "--height", "64", "--width", "128", "--workers", "1", "--sequences", "1", "--drive-frames", "5"]) == 0
    out = capsys.readouterr().out
    assert "wrote 9 images and 35 sequence frames" in out and SEQUENCES_LINE in out
    index = load_index(root / INDEX_FILENAME)
    assert index.counts()["test"] == 3 and len(index) == 9
    sequences, problems = load_sequences(root / SEQUENCES_FILENAME)
    assert problems == [] and [s.name for s in sequences] == ["ashcombe_000000_000019", "synthetic_00"]
    assert sequences[0].annotated_id == next(e.id for e in index.entries if e.stem == "ashcombe_000000_000019")

    summary_file = tmp_path / "summary.json"
    assert main(["-q", "data", "check", "--data-root", str(root), "--json", str(summary_file)]) == 0
    out = capsys.readouterr().out
    assert "all files decoded and valid" in out and SEQUENCES_LINE in out
    summary = json.loads(summary_file.read_text())
    assert summary["problems"] == [] and summary["sizes"] == {"128x64": 9}
    assert summary["sequences"] == {"snippets": 1, "drives": 1, "frames": 35, "problems": [],
                                    "names": ["ashcombe_000000_000019", "synthetic_00"]}
    frequencies = summary["class_pixel_frequency"]["train"]
    assert abs(sum(frequencies.values()) - 1.0) < 1e-9
    for category in ("flat", "construction", "sky", "vehicle"):
        assert frequencies[category] > 0.01, category
    assert set(summary["cities"]["test"]).isdisjoint(summary["cities"]["train"])

    sheet = tmp_path / "sheet.png"
    assert main(["-q", "data", "preview", "--data-root", str(root), "--out", str(sheet), "--count", "2"]) == 0
    with Image.open(sheet) as image:
        assert image.mode == "RGB" and image.width == 3 * 384 and image.height > 2 * 64


def test_sequence_problems_are_reported_by_index_and_check(tmp_path, capsys):
    root = tmp_path / "synthetic"
    assert main(["-q", "data", "make", "--out", str(root), "--train", "2", "--val", "2", "--height", "32",
                 "--width", "64", "--workers", "1", "--sequences", "2", "--drive-frames", "0"]) == 0
    assert "sequences: 2 snippets (val 2; 60 frames), 0 drives; 0 problems" in capsys.readouterr().out
    (root / "leftImg8bit_sequence/val/dunmore/dunmore_000000_000007_leftImg8bit.png").unlink()

    assert main(["-q", "data", "index", "--data-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "sequences: 2 snippets (val 2; 59 frames), 0 drives; 2 problems" in out
    assert "snippet dunmore_000000_000019: missing frame(s) 000007" in out
    assert len(load_sequences(root / SEQUENCES_FILENAME)[1]) == 2

    # the pairs are fine: the check passes and names the sequences' problems
    assert main(["-q", "data", "check", "--data-root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "all files decoded and valid" in out
    assert "snippet dunmore_000000_000019: 29 frames, expected 30" in out


def test_make_without_sequences(tmp_path, capsys):
    root = tmp_path / "plain"
    assert main(["-q", "data", "make", "--out", str(root), "--train", "1", "--val", "1", "--height", "32",
                 "--width", "64", "--workers", "1", "--sequences", "0", "--drive-frames", "0"]) == 0
    assert "sequences: 0 snippets, 0 drives; 0 problems" in capsys.readouterr().out
    assert not (root / SEQUENCES_FILENAME).exists() and not (root / "leftImg8bit_sequence").exists()
