"""Every bad file gets a message naming it; good files next to it are still used."""

import numpy as np
import pytest
from cityscapes_builder import image_path, label_path, street_label_ids, write_pair
from PIL import Image

from training.cli import main
from training.data.cityscapes import DatasetError, read_label_ids, read_pair, resolve_data_root
from training.data.index import load_or_build_index, update_index

STEM = "alpha_000000_000019"


def _problems(root):
    return update_index(root)[1]


def test_a_clean_dataset_has_no_problems(tiny_root):
    index, problems = update_index(tiny_root)
    assert problems == [] and len(index) == 14


def test_missing_partner_names_the_file(tiny_root):
    label_path(tiny_root, "train", STEM).unlink()
    problems = _problems(tiny_root)
    assert len(problems) == 1
    assert STEM in problems[0] and "missing partner" in problems[0]
    assert len(update_index(tiny_root)[0]) == 13  # the others are indexed


def test_size_mismatch(tiny_root):
    Image.fromarray(street_label_ids(16, 30)).save(label_path(tiny_root, "train", STEM))
    [problem] = _problems(tiny_root)
    assert f"{STEM}_gtFine_labelIds.png" in problem and "size 30x16 differs" in problem


@pytest.mark.parametrize("which, array, expected", [
    ("image", np.zeros((16, 32, 4), np.uint8), "mode RGBA, expected RGB"),
    ("label", np.zeros((16, 32, 3), np.uint8), "mode RGB, expected L"),
    ("label", np.zeros((16, 32), np.uint16), "expected L"),
])
def test_wrong_mode(tiny_root, which, array, expected):
    path = (image_path if which == "image" else label_path)(tiny_root, "train", STEM)
    Image.fromarray(array).save(path)
    [problem] = _problems(tiny_root)
    assert str(path) in problem and expected in problem


def test_label_ids_outside_the_table(tiny_root):
    label = street_label_ids()
    label[0, :3] = [34, 200, 34]
    Image.fromarray(label).save(label_path(tiny_root, "train", STEM))
    outside = r"gtFine_labelIds.png: label ids outside the Cityscapes table \(0..33\): 34, 200"
    with pytest.raises(DatasetError, match=outside):
        read_label_ids(label_path(tiny_root, "train", STEM))


def test_corrupt_png(tiny_root):
    path = image_path(tiny_root, "train", STEM)
    path.write_bytes(path.read_bytes()[:60])  # truncated: header survives, pixel data does not
    with pytest.raises(DatasetError, match=f"{STEM}_leftImg8bit.png: corrupt PNG"):
        read_pair(tiny_root, str(path.relative_to(tiny_root)),
                  str(label_path(tiny_root, "train", STEM).relative_to(tiny_root)))


def test_not_a_png_at_all(tiny_root):
    path = label_path(tiny_root, "train", STEM)
    path.write_bytes(b"this is not an image")
    [problem] = _problems(tiny_root)
    assert str(path) in problem and "not a readable PNG" in problem


def test_data_check_lists_every_bad_file_and_fails(tiny_root, capsys):
    corrupt = image_path(tiny_root, "train", STEM)
    load_or_build_index(tiny_root)  # indexed while still valid
    corrupt.write_bytes(corrupt.read_bytes()[:60])
    bad_ids = street_label_ids()
    bad_ids[3, 3] = 99
    write_pair(tiny_root, "train", "beta", 77, 19, bad_ids)
    status = main(["-q", "data", "check", "--data-root", str(tiny_root)])
    out = capsys.readouterr().out
    assert status == 1
    assert "2 bad file(s)" in out
    assert f"{STEM}_leftImg8bit.png: corrupt PNG" in out
    assert "beta_000077_000019_gtFine_labelIds.png: label ids outside the Cityscapes table" in out
    assert "images: train" in out and "class pixel frequency" in out


def test_data_root_resolution(tmp_path, monkeypatch, tiny_root):
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    assert resolve_data_root(tiny_root) == tiny_root
    monkeypatch.setenv("CITYSCAPES_DATASET", str(tiny_root))
    assert resolve_data_root(None) == tiny_root
    with pytest.raises(DatasetError, match="does not exist"):
        resolve_data_root(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="missing leftImg8bit/ and gtFine/"):
        resolve_data_root(tmp_path)


def test_cli_reports_errors_in_one_line(tmp_path, capsys):
    assert main(["data", "check", "--data-root", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "does not exist" in err and "Traceback" not in err
