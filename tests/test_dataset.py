"""What readers of a run see of its data: ``DataSettings`` (where, which classes) and ``Dataset``."""

import numpy as np
import pytest
from cityscapes_builder import CAR, EGO, PERSON, ROAD, SIDEWALK, SKY

from training.data.cityscapes import DatasetError
from training.data.dataset import Dataset, DataSettings
from training.data.index import load_or_build_index
from training.data.labels import IGNORE_INDEX, get_class_set


def test_settings_come_from_a_run_config_with_defaults():
    config = {"data": {"root": "/data/cs", "index": "/tmp/i.csv", "classes": "cityscapes19", "height": 8}}
    assert DataSettings.from_config(config) == DataSettings("/data/cs", "/tmp/i.csv", "cityscapes19")
    assert DataSettings.from_config({}) == DataSettings(None, None, "categories8")
    assert DataSettings.from_config(None) == DataSettings()


def test_the_run_root_is_used_when_it_exists_here(tiny_root, monkeypatch):
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    assert DataSettings(str(tiny_root)).resolve_root() == tiny_root


def test_a_store_from_another_machine_falls_back_to_cityscapes_dataset(tiny_root, monkeypatch):
    monkeypatch.setenv("CITYSCAPES_DATASET", str(tiny_root))
    assert DataSettings("/gpu-box/cityscapes").resolve_root() == tiny_root


def test_an_override_wins_and_is_checked(tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("CITYSCAPES_DATASET", str(tmp_path))
    assert DataSettings("/elsewhere").resolve_root(tiny_root) == tiny_root
    with pytest.raises(DatasetError, match="not in the Cityscapes layout"):
        DataSettings(str(tiny_root)).resolve_root(tmp_path)


def test_open_reads_the_index_without_writing_it(tiny_root):
    index_file = tiny_root / "segmentation_index.csv"
    assert not index_file.exists()
    dataset = DataSettings(str(tiny_root), classes="cityscapes19").open()
    assert not index_file.exists()
    assert len(dataset.index) == 14 and dataset.class_set.name == "cityscapes19"


def test_reading_an_image_and_its_classes(tiny_root):
    index = load_or_build_index(tiny_root)
    dataset = Dataset(tiny_root, index, get_class_set("categories8"))
    image_id = index.split("test")[0].id
    photo, label_ids = dataset.read(image_id)
    assert photo.shape == (16, 32, 3) and label_ids.shape == (16, 32)
    assert set(np.unique(label_ids)) == {SKY, 11, ROAD, SIDEWALK, CAR, PERSON, EGO}
    truth = dataset.truth(label_ids)
    assert truth[0, 0] == 5 and truth[-1, -1] == 0  # sky; the ego vehicle is void, a class of categories8
    assert dataset.classes_present(label_ids) == ["void", "flat", "construction", "sky", "human", "vehicle"]
    cs19 = Dataset(tiny_root, index, get_class_set("cityscapes19"))
    assert cs19.truth(label_ids)[-1, -1] == IGNORE_INDEX  # not evaluated among the 19 classes
    assert cs19.classes_present(label_ids) == ["road", "sidewalk", "building", "sky", "person", "car"]
    with pytest.raises(KeyError, match="unknown image id 999"):
        dataset.read(999)
