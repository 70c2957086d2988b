import numpy as np
import pytest
from cityscapesscripts.helpers.labels import id2label
from cityscapesscripts.helpers.labels import labels as official_labels

from training.data.labels import CATEGORY_NAMES, IGNORE_INDEX, get_class_set, label_id


def test_categories8_lut_is_the_official_category_of_every_label():
    cs = get_class_set("categories8")
    assert cs.names == CATEGORY_NAMES
    assert cs.lut.shape == (256,) and cs.lut.dtype == np.uint8
    for label in official_labels:
        if label.id >= 0:
            assert cs.lut[label.id] == label.categoryId, label.name
            assert CATEGORY_NAMES[cs.lut[label.id]] == label.category
    assert (cs.lut[34:] == IGNORE_INDEX).all()


def test_cityscapes19_lut_is_the_official_train_id_with_ignore():
    cs = get_class_set("cityscapes19")
    assert cs.num_classes == 19
    for label in official_labels:
        if label.id < 0:
            continue
        expected = IGNORE_INDEX if label.trainId in (255, -1) else label.trainId
        assert cs.lut[label.id] == expected, label.name
    for train_id, name in enumerate(cs.names):
        official = next(label for label in official_labels if label.trainId == train_id)
        assert name == official.name
        assert tuple(cs.colors[train_id]) == official.color


@pytest.mark.parametrize("name, category, train_id", [
    ("road", "flat", 0), ("car", "vehicle", 13), ("person", "human", 11), ("sky", "sky", 10),
    ("traffic sign", "object", 7), ("ego vehicle", "void", 255), ("parking", "flat", 255),
])
def test_known_labels(name, category, train_id):
    lid = label_id(name)
    assert id2label[lid].name == name
    assert CATEGORY_NAMES[get_class_set("categories8").lut[lid]] == category
    assert get_class_set("cityscapes19").lut[lid] == train_id


def test_category_colours_are_those_of_their_first_evaluated_label():
    colors = {n: tuple(int(v) for v in c) for n, c in zip(CATEGORY_NAMES, get_class_set().colors)}
    assert colors["flat"] == (128, 64, 128)  # road
    assert colors["human"] == (220, 20, 60)  # person
    assert colors["vehicle"] == (0, 0, 142)  # car
    assert colors["void"] == (0, 0, 0)


def test_mapping_a_full_resolution_mask_is_one_indexing_operation():
    rng = np.random.default_rng(0)
    mask = rng.integers(0, 34, (1024, 2048), dtype=np.uint8)
    cs = get_class_set("categories8")
    mapped = cs.lut[mask]
    assert mapped.shape == (1024, 2048) and mapped.dtype == np.uint8
    assert mapped[0, 0] == id2label[int(mask[0, 0])].categoryId
    assert cs.colorize(mapped).shape == (1024, 2048, 3)


def test_evaluation_tables_follow_the_official_ignore_rules():
    cat8, cs19 = get_class_set("categories8"), get_class_set("cityscapes19")
    parking, road, ego = label_id("parking"), label_id("road"), label_id("ego vehicle")
    # ground truth of a label ignored in evaluation is dropped
    assert cat8.eval_gt_lut[parking] == IGNORE_INDEX and cat8.eval_gt_lut[road] == 1
    # a predicted ignored label goes to the sink (void for categories, an extra column for 19)
    assert cat8.eval_pred_lut[parking] == cat8.sink == 0
    assert cs19.eval_pred_lut[ego] == cs19.sink == 19 and cs19.num_eval_classes == 20
    assert cat8.scored == (1, 2, 3, 4, 5, 6, 7)


def test_palette_and_unknown_names():
    cs19 = get_class_set("cityscapes19")
    assert tuple(cs19.palette()[cs19.lut[label_id("car")]]) == (0, 0, 142)
    with pytest.raises(KeyError, match="unknown Cityscapes label"):
        label_id("spaceship")
    with pytest.raises(ValueError, match="categories8, cityscapes19"):
        get_class_set("coco")
