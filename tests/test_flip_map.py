"""The flip map on hand-made masks: which pixels an export changed, coloured by the Keras class,
counted per class, and still visible when the picture is shown smaller."""

import numpy as np
import pytest

from training.data.labels import get_class_set
from training.viz import FLIP_BACKGROUND, FLIP_DIM, flip_counts, flip_map, flip_picture, flipped, shrink_flips

CAT8 = get_class_set("categories8")  # void 0 (black), flat 1, ..., vehicle 7

KERAS = np.array([[1, 1, 2, 2],
                  [1, 1, 2, 2],
                  [7, 7, 0, 0]], dtype=np.uint8)
EXPORT = np.array([[1, 4, 2, 2],   # flat -> nature
                   [1, 1, 2, 6],   # construction -> human
                   [7, 7, 0, 1]], dtype=np.uint8)  # void -> flat


def test_flipped_pixels_are_where_the_classes_differ():
    expected = np.zeros(KERAS.shape, bool)
    expected[0, 1] = expected[1, 3] = expected[2, 3] = True
    assert np.array_equal(flipped(KERAS, EXPORT), expected)
    with pytest.raises(ValueError, match="different sizes"):
        flipped(KERAS, EXPORT[:2])


def test_flip_map_colours_changed_pixels_by_the_keras_class_and_darkens_the_rest():
    picture = flip_map(KERAS, EXPORT, CAT8)
    assert picture.shape == (3, 4, 3) and picture.dtype == np.uint8
    assert tuple(picture[0, 1]) == tuple(CAT8.colors[1])  # flat's colour, not nature's
    assert tuple(picture[1, 3]) == tuple(CAT8.colors[2])  # construction's, not human's
    assert tuple(picture[2, 3]) == tuple(CAT8.colors[0])  # void's (black) on ...
    unchanged = ~flipped(KERAS, EXPORT)
    assert (picture[unchanged] == FLIP_BACKGROUND).all()  # ... a dark grey that is not black
    assert FLIP_BACKGROUND > 0


def test_flip_map_over_a_photo_dims_the_unchanged_pixels():
    photo = np.full((3, 4, 3), 200, np.uint8)
    photo[..., 0] = 50  # grey mean (50 + 200 + 200) / 3 = 150
    picture = flip_map(KERAS, EXPORT, CAT8, photo)
    assert (picture[~flipped(KERAS, EXPORT)] == round(150 * FLIP_DIM)).all()
    assert tuple(picture[0, 1]) == tuple(CAT8.colors[1])


def test_flip_counts_per_keras_class():
    changed, pixels = flip_counts(KERAS, EXPORT, CAT8.num_classes)
    assert pixels.tolist() == [2, 4, 4, 0, 0, 0, 0, 2]
    assert changed.tolist() == [1, 1, 1, 0, 0, 0, 0, 0]
    same_changed, _ = flip_counts(KERAS, KERAS, CAT8.num_classes)
    assert not same_changed.any()


def test_shrinking_keeps_every_flip_visible():
    keras = np.full((4, 6), 1, np.uint8)
    keras[:, 3:] = 5
    export = keras.copy()
    export[1, 0] = 3   # one flipped pixel in the first 2x2 block: flat
    export[2, 4] = 2   # one in the last: sky
    classes, changed = shrink_flips(keras, export, 2)
    assert changed.tolist() == [[True, False, False], [False, False, True]]
    assert classes.tolist() == [[1, 5, 5], [1, 5, 5]]  # the middle block's centre pixel is in column 3
    # nearest would take each block's pixel (1, 1) and lose both flips
    assert not flipped(keras[1::2, 1::2], export[1::2, 1::2]).any()
    small = flip_picture(changed, classes, CAT8)
    assert tuple(small[0, 0]) == tuple(CAT8.colors[1]) and tuple(small[1, 2]) == tuple(CAT8.colors[5])
    # a block's first flipped pixel names its class; unchanged blocks take their centre (nearest)
    keras[0, 1], export[0, 1] = 7, 0
    classes, changed = shrink_flips(keras, export, 2)
    assert classes[0, 0] == 7 and changed[0, 0]


def test_shrinking_drops_partial_blocks_and_factor_one_is_the_full_map():
    keras = np.zeros((5, 7), np.uint8)
    export = keras.copy()
    export[4, 6] = 1  # in the partial edge blocks only
    classes, changed = shrink_flips(keras, export, 2)
    assert classes.shape == changed.shape == (2, 3) and not changed.any()
    classes, changed = shrink_flips(keras, export, 1)
    assert classes is keras and changed.sum() == 1
