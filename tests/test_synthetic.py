"""The synthetic Cityscapes-layout generator: layout, determinism, label conventions."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from cityscapesscripts.helpers.labels import labels as official_labels
from cityscapesscripts.helpers.labels import name2label
from PIL import Image

from training.data.synthetic import CITY_STYLES, make_dataset, render_scene

H, W = 64, 128
TRAIN, VAL = 4, 2
VALID_IDS = {label.id for label in official_labels if label.id >= 0}
INSTANCE_IDS = {label.id for label in official_labels if label.hasInstances and label.id >= 0}
SUFFIXES = ("_gtFine_labelIds.png", "_gtFine_color.png", "_gtFine_instanceIds.png")


def _digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "a"
    summary = make_dataset(out, train=TRAIN, val=VAL, height=H, width=W, seed=3, workers=1, progress=False)
    assert summary["images"] == TRAIN + VAL
    assert summary["out_dir"] == str(out)
    assert summary["images_per_second"] > 0
    return out


def _stems(root: Path, split: str) -> list[tuple[str, str]]:
    files = sorted((root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))
    return [(f.parent.name, f.name[: -len("_leftImg8bit.png")]) for f in files]


def test_layout_names_and_modes(dataset):
    assert (dataset / "README.txt").read_text().startswith("Synthetic")
    for split, count in (("train", TRAIN), ("val", VAL)):
        stems = _stems(dataset, split)
        assert len(stems) == count
        for city, stem in stems:
            name, seq, frame = stem.split("_")
            assert name == city and city.isalpha() and city.islower() and city in CITY_STYLES
            assert len(seq) == 6 and len(frame) == 6 and seq.isdigit() and frame.isdigit()
            with Image.open(dataset / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png") as rgb:
                assert rgb.format == "PNG" and rgb.mode == "RGB" and rgb.size == (W, H)
            gt = dataset / "gtFine" / split / city
            modes = [_mode(gt / f"{stem}{suffix}") for suffix in SUFFIXES]
            assert modes[0] == "L" and modes[1] == "RGBA" and modes[2] in ("I;16", "I")
    gt_files = sorted(p.name for p in (dataset / "gtFine").rglob("*.png"))
    assert len(gt_files) == 3 * (TRAIN + VAL)


def test_train_and_val_use_different_cities(dataset):
    train = {city for city, _ in _stems(dataset, "train")}
    val = {city for city, _ in _stems(dataset, "val")}
    assert len(train) >= 3 and len(val) >= 2 and not train & val
    assert len({s.split for s in CITY_STYLES.values()}) == 2


def _mode(path: Path) -> str:
    with Image.open(path) as img:
        return img.mode


def _array(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.array(img)


def _load(dataset: Path, split: str, city: str, stem: str):
    gt = dataset / "gtFine" / split / city
    labels = _array(gt / f"{stem}_gtFine_labelIds.png")
    color = _array(gt / f"{stem}_gtFine_color.png")
    inst = _array(gt / f"{stem}_gtFine_instanceIds.png").astype(np.int64)
    return labels, color, inst


def test_labels_colors_and_instances_follow_cityscapes(dataset):
    palette = np.zeros((256, 3), np.uint8)
    for label in official_labels:
        if label.id >= 0:
            palette[label.id] = label.color
    for split in ("train", "val"):
        for city, stem in _stems(dataset, split):
            labels, color, inst = _load(dataset, split, city, stem)
            assert set(np.unique(labels).tolist()) <= VALID_IDS
            for name in ("road", "sidewalk", "building", "sky"):
                assert (labels == name2label[name].id).any(), (stem, name)
            np.testing.assert_array_equal(color[..., :3], palette[labels])
            assert (color[..., 3] == 255).all()
            objects = inst >= 1000
            np.testing.assert_array_equal(inst[objects] // 1000, labels[objects])
            np.testing.assert_array_equal(inst[~objects], labels[~objects])
            assert set(np.unique(inst[objects] // 1000).tolist()) <= INSTANCE_IDS


def test_same_seed_is_byte_identical_across_runs_and_workers(dataset, tmp_path):
    again = tmp_path / "b"
    make_dataset(again, train=TRAIN, val=VAL, height=H, width=W, seed=3, workers=2, progress=False)
    assert _digests(dataset) == _digests(again)


def test_different_seed_gives_different_images(dataset, tmp_path):
    other = tmp_path / "c"
    make_dataset(other, train=TRAIN, val=VAL, height=H, width=W, seed=4, workers=1, progress=False)
    a, b = _digests(dataset), _digests(other)
    assert a.keys() == b.keys()
    images = [k for k in a if k.endswith("_leftImg8bit.png")]
    assert all(a[k] != b[k] for k in images)


def test_render_scene_contract():
    city = next(iter(CITY_STYLES))
    rgb, labels, inst = render_scene(11, city, height=H, width=W)
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    assert labels.shape == (H, W) and labels.dtype == np.uint8
    assert inst.shape == (H, W) and inst.dtype == np.int32
    rgb2, labels2, inst2 = render_scene(11, city, height=H, width=W)
    assert np.array_equal(rgb, rgb2) and np.array_equal(labels, labels2) and np.array_equal(inst, inst2)
    assert not np.array_equal(rgb, render_scene(12, city, height=H, width=W)[0])


def test_scenes_contain_objects_on_average():
    cities = list(CITY_STYLES)
    instances = 0
    for i in range(6):
        _, labels, inst = render_scene(100 + i, cities[i % len(cities)], height=128, width=256)
        instances += len(np.unique(inst[inst >= 1000]))
        assert (labels == name2label["ego vehicle"].id).any()
    assert instances / 6 >= 3


def test_unknown_city_is_rejected():
    with pytest.raises(KeyError):
        render_scene(0, "nowhere")


def test_a_full_size_frame_weighs_and_decodes_like_a_cityscapes_photo(tmp_path):
    """The 2048x1024 stand-in must cost what a genuine frame costs (2.1-2.2 MB of sensor noise),
    or every full-resolution benchmark measures an easier problem than our users have."""
    from training.data.synthetic.writer import Job, write_image

    write_image(Job("val", "dunmore", "dunmore_000000_000019", 5, 1024, 2048, str(tmp_path)))
    photo = next((tmp_path / "leftImg8bit").rglob("*.png"))
    assert 1.8e6 < photo.stat().st_size < 3.2e6
    with Image.open(photo) as image:
        assert (image.mode, image.size) == ("RGB", (2048, 1024))
        pixels = np.asarray(image).astype(np.int16)
    # Noise shared by neighbours (a blur after the sensor), yet present everywhere.
    assert 0.5 < np.abs(np.diff(pixels[300:700, 100:1900], axis=1)).mean() < 8
