"""The data commands on a generated dataset: make -> index -> check -> preview."""

import json

from PIL import Image

from training.cli import main
from training.data.index import INDEX_FILENAME, load_index


def test_make_check_preview(tmp_path, capsys):
    root = tmp_path / "synthetic"
    assert main(["-q", "data", "make", "--out", str(root), "--train", "6", "--val", "3",
                 "--height", "64", "--width", "128", "--workers", "1"]) == 0
    assert "wrote 9 images" in capsys.readouterr().out
    index = load_index(root / INDEX_FILENAME)
    assert index.counts()["test"] == 3 and len(index) == 9

    summary_file = tmp_path / "summary.json"
    assert main(["-q", "data", "check", "--data-root", str(root), "--json", str(summary_file)]) == 0
    out = capsys.readouterr().out
    assert "all files decoded and valid" in out
    summary = json.loads(summary_file.read_text())
    assert summary["problems"] == [] and summary["sizes"] == {"128x64": 9}
    frequencies = summary["class_pixel_frequency"]["train"]
    assert abs(sum(frequencies.values()) - 1.0) < 1e-9
    for category in ("flat", "construction", "sky", "vehicle"):
        assert frequencies[category] > 0.01, category
    assert set(summary["cities"]["test"]).isdisjoint(summary["cities"]["train"])

    sheet = tmp_path / "sheet.png"
    assert main(["-q", "data", "preview", "--data-root", str(root), "--out", str(sheet), "--count", "2"]) == 0
    with Image.open(sheet) as image:
        assert image.mode == "RGB" and image.width == 3 * 384 and image.height > 2 * 64
