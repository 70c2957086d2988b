"""``training.raster``: the one shrink by a whole factor and the one square dilation, checked
against the rules they state and against the code they replace (kept here as references: every
number must stay what it was): Pillow's ``Image.reduce`` for photos, the centre-pixel slicing of
``dashboard.display``, the block "any" and first-changed-pixel choice of ``training.viz.shrink_flips``,
the padded block sums of ``dashboard.anatomy.pooled``, and the region shrink and the repeated 3x3
growth of ``dashboard.outline``. ``bench/bench_raster.py`` times them against these references."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from training.data.synthetic import CITY_STYLES, render_scene
from training.raster import dilate_square, first_set, shrink
from training.viz import shrink_flips

# ---------------------------------------------------------------------------- the code replaced


def reference_photo(photo: np.ndarray, factor: int) -> np.ndarray:
    """``dashboard.display.shrink_photo`` before: Pillow's reduce over the full blocks."""
    height, width = photo.shape[0] // factor * factor, photo.shape[1] // factor * factor
    return np.asarray(Image.fromarray(photo).reduce(factor, box=(0, 0, width, height)))


def reference_centre(classes: np.ndarray, factor: int) -> np.ndarray:
    """``dashboard.display.shrink_classes`` before."""
    height, width = classes.shape[0] // factor * factor, classes.shape[1] // factor * factor
    return np.ascontiguousarray(classes[factor // 2:height:factor, factor // 2:width:factor])


def reference_region(mask: np.ndarray, factor: int) -> np.ndarray:
    """``dashboard.outline.shrink_region`` before: "any", but a pixel of a partial block joined the
    last row or column (the one rule now drops it, as the photo's shrink does)."""
    height, width = max(1, mask.shape[0] // factor), max(1, mask.shape[1] // factor)
    small = np.zeros((height, width), dtype=bool)
    rows, columns = np.nonzero(mask)
    small[np.minimum(rows // factor, height - 1), np.minimum(columns // factor, width - 1)] = True
    return small


def reference_flips(before: np.ndarray, after: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """``training.viz.shrink_flips`` before: each block's pixels row by row, "any" and argmax."""
    changed = before != after
    if factor == 1:
        return before, changed
    height, width = before.shape[0] // factor, before.shape[1] // factor

    def blocks(values: np.ndarray) -> np.ndarray:
        cropped = values[:height * factor, :width * factor]
        return cropped.reshape(height, factor, width, factor).transpose(0, 2, 1, 3).reshape(height, width, -1)

    changed_blocks, class_blocks = blocks(changed), blocks(before)
    first = changed_blocks.argmax(axis=-1)
    any_changed = changed_blocks.any(axis=-1)
    centre = (factor // 2) * factor + factor // 2
    index = np.where(any_changed, first, centre)
    return np.take_along_axis(class_blocks, index[..., None], axis=-1)[..., 0], any_changed


def reference_pooled(counts: np.ndarray, factor: int) -> np.ndarray:
    """``dashboard.anatomy.pooled`` before: zero-padded to whole blocks, then summed."""
    if factor == 1:
        return counts
    _, rows, columns = counts.shape
    padded = np.zeros((2, -(-rows // factor) * factor, -(-columns // factor) * factor), dtype=np.int64)
    padded[:, :rows, :columns] = counts
    return padded.reshape(2, padded.shape[1] // factor, factor, padded.shape[2] // factor, factor).sum(axis=(2, 4))


def reference_dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    """``dashboard.outline._dilate`` before: ``steps`` times the 3x3 "any", zeros outside."""
    grown = mask
    for _ in range(steps):
        padded = np.pad(grown, 1)
        height, width = grown.shape
        grown = np.zeros_like(grown)
        for dy in range(3):
            for dx in range(3):
                grown |= padded[dy:dy + height, dx:dx + width]
    return grown


@pytest.fixture(scope="module")
def street_scene() -> tuple[np.ndarray, np.ndarray]:
    """A generated 2048x1024 street scene: its photo and labelIds."""
    photo, label_ids, _ = render_scene(4, next(iter(CITY_STYLES)), height=1024, width=2048)
    return photo, label_ids


# ---------------------------------------------------------------------------- mean

@pytest.mark.parametrize("factor", [2, 3, 4, 5, 7, 8, 16])
def test_the_mean_is_pillow_s_reduce_byte_for_byte(factor):
    rng = np.random.default_rng(factor)
    for shape in ((6 * factor + 1, 11 * factor - 1, 3), (5 * factor, 3 * factor, 3), (4 * factor + 3, 9 * factor)):
        photo = rng.integers(0, 256, shape, dtype=np.uint8)
        shrunk = shrink(photo, factor, "mean")
        assert shrunk.dtype == np.uint8 and shrunk.shape == (shape[0] // factor, shape[1] // factor, *shape[2:])
        assert np.array_equal(shrunk, reference_photo(photo, factor))
        # The rule as the module states it: Pillow's fixed point, half up for powers of two.
        blocks = photo[:shrunk.shape[0] * factor, :shrunk.shape[1] * factor]
        sums = blocks.reshape(shrunk.shape[0], factor, shrunk.shape[1], factor, *shape[2:]).sum(axis=(1, 3))
        area = factor * factor
        assert np.array_equal(shrunk, ((sums + area // 2) * (2**24 // area)) >> 24)


def test_the_mean_is_pillow_s_reduce_on_a_generated_photo(street_scene):
    photo, _ = street_scene
    for factor in (2, 3, 4, 5, 8):
        assert np.array_equal(shrink(photo, factor, "mean"), reference_photo(photo, factor)), factor
    odd = np.ascontiguousarray(photo[:1023, :2047])  # partial blocks at both edges
    for factor in (2, 4):
        assert np.array_equal(shrink(odd, factor, "mean"), reference_photo(odd, factor)), factor
    grey = np.ascontiguousarray(photo[..., 1])
    assert np.array_equal(shrink(grey, 2, "mean"), reference_photo(grey, 2))


def test_the_mean_of_a_strided_view_is_the_one_of_its_copy(street_scene):
    photo, _ = street_scene
    view = photo[::2, 1::3]
    for factor in (2, 4):
        assert np.array_equal(shrink(view, factor, "mean"), reference_photo(np.ascontiguousarray(view), factor))


# ---------------------------------------------------------------------------- centre

@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64, np.float32,
                                   np.float64, bool])
def test_the_centre_pixel_of_each_block_for_any_type_and_channels(dtype):
    rng = np.random.default_rng(np.dtype(dtype).num)
    for shape in ((37, 53), (37, 53, 1), (37, 53, 3), (37, 53, 4), (37, 53, 5), (8, 8)):
        values = rng.integers(0, 2 if dtype is bool else 100, shape).astype(dtype)
        for factor in (2, 3, 4, 5, 7, 8):
            shrunk = shrink(values, factor, "centre")
            expected = reference_centre(values, factor)
            assert shrunk.dtype == values.dtype and shrunk.shape == expected.shape, (shape, factor)
            assert np.array_equal(shrunk, expected), (shape, factor)
            assert shrunk.flags.c_contiguous and not np.shares_memory(shrunk, values)  # never a view


def test_the_centre_of_a_full_size_class_map_and_of_its_colours(street_scene):
    _, label_ids = street_scene
    colours = np.stack([label_ids, label_ids * 3, 255 - label_ids], axis=-1)
    for factor in (2, 3, 4, 5):
        assert np.array_equal(shrink(label_ids, factor, "centre"), reference_centre(label_ids, factor))
        assert np.array_equal(shrink(colours, factor, "centre"), reference_centre(colours, factor))


# ---------------------------------------------------------------------------- any, first set, flips

def test_any_is_set_where_a_pixel_of_the_full_block_is():
    rng = np.random.default_rng(0)
    for shape in ((37, 53), (64, 96), (1024, 2048)):
        for density in (0.001, 0.05, 0.5):
            mask = rng.random(shape) < density
            for factor in (2, 3, 4, 5, 8):
                height, width = shape[0] // factor, shape[1] // factor
                blocks = mask[:height * factor, :width * factor].reshape(height, factor, width, factor)
                expected = blocks.any(axis=(1, 3))
                shrunk = shrink(mask, factor, "any")
                assert shrunk.dtype == bool and np.array_equal(shrunk, expected), (shape, density, factor)
    inside = rng.random((41, 67)) < 0.05
    inside[40:] = inside[:, 64:] = False  # nothing in the partial blocks: the region's shrink of before
    assert np.array_equal(shrink(inside, 4, "any"), reference_region(inside, 4))
    counts = rng.integers(0, 3, (20, 30))  # not bool: set where non-zero
    assert np.array_equal(shrink(counts, 4, "any"), shrink(counts != 0, 4, "any"))


def test_first_set_is_the_first_set_pixel_of_each_block_row_by_row():
    rng = np.random.default_rng(1)
    for factor in (2, 3, 4, 16, 17):
        mask = rng.random((6 * factor - 1, 8 * factor - 1)) < 0.02  # 5 x 7 full blocks, partial ones
        blocks = mask[:5 * factor, :7 * factor].reshape(5, factor, 7, factor).transpose(0, 2, 1, 3).reshape(5, 7, -1)
        expected = np.where(blocks.any(axis=-1), blocks.argmax(axis=-1), factor * factor)
        assert np.array_equal(first_set(mask, factor), expected), factor


def test_flips_shrink_as_before_on_random_and_on_street_masks(street_scene):
    rng = np.random.default_rng(2)
    for shape in ((37, 53), (256, 512)):
        before = rng.integers(0, 19, shape, dtype=np.uint8)
        for density in (0.0, 0.01, 0.3, 1.0):
            after = np.where(rng.random(shape) < density, (before + 1) % 19, before).astype(np.uint8)
            for factor in (1, 2, 3, 4):
                classes, changed = shrink_flips(before, after, factor)
                expected_classes, expected_changed = reference_flips(before, after, factor)
                assert np.array_equal(changed, expected_changed) and np.array_equal(classes, expected_classes)
    _, label_ids = street_scene
    after = label_ids.copy()
    after[np.roll(label_ids, 1, axis=1) != label_ids] = 0  # flips along every class edge, as an export makes them
    for factor in (2, 4):
        classes, changed = shrink_flips(label_ids, after, factor)
        expected_classes, expected_changed = reference_flips(label_ids, after, factor)
        assert changed.any() and np.array_equal(changed, expected_changed)
        assert np.array_equal(classes, expected_classes)


# ---------------------------------------------------------------------------- sum

def test_sums_are_the_block_sums_of_before_when_the_factor_divides_the_grid():
    rng = np.random.default_rng(3)
    counted = rng.integers(0, 5000, (128, 256))
    counts = np.stack([counted, rng.integers(0, counted + 1)]).astype(np.int64)
    for factor in (2, 4, 8, 16):
        pooled = np.stack([shrink(channel, factor, "sum") for channel in counts])
        assert pooled.dtype == np.int64 and np.array_equal(pooled, reference_pooled(counts, factor)), factor
    ragged = rng.integers(0, 9, (10, 13))  # partial blocks: dropped (before, they were summed as they were)
    assert np.array_equal(shrink(ragged, 4, "sum"), reference_pooled(np.stack([ragged, ragged]), 4)[0, :2, :3])


# ---------------------------------------------------------------------------- one rule for everything

def test_factor_one_partial_blocks_and_bad_arguments():
    values = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for how in ("mean", "centre", "sum"):
        assert shrink(values, 1, how) is values
    assert shrink(values.astype(bool), 1, "any").dtype == bool
    assert shrink(values, 5, "centre").shape == (0, 0)  # every block partial: nothing left
    assert shrink(values, 4, "sum").shape == (0, 1) and shrink(values, 4, "any").dtype == bool
    assert shrink(np.zeros((3, 4, 3), np.uint8), 4, "mean").shape == (0, 1, 3)
    with pytest.raises(ValueError, match="how"):
        shrink(values, 2, "median")
    with pytest.raises(ValueError, match="factor"):
        shrink(values, 0, "centre")
    with pytest.raises(ValueError, match="uint8"):
        shrink(values.astype(np.float32), 2, "mean")
    with pytest.raises(ValueError, match="shape"):
        shrink(np.zeros((4, 4, 3), bool), 2, "any")


# ---------------------------------------------------------------------------- dilation

def test_the_square_dilation_is_the_repeated_3x3_growth_of_before():
    rng = np.random.default_rng(4)
    for shape in ((1, 1), (1, 7), (7, 1), (5, 6), (37, 53), (256, 512)):
        for density in (0.0, 0.002, 0.05, 0.5):
            mask = rng.random(shape) < density
            for radius in (0, 1, 2, 3, 6):
                grown = dilate_square(mask, radius)
                assert grown.dtype == bool and np.array_equal(grown, reference_dilate(mask, radius)), (shape, radius)


def test_the_dilation_leaves_the_border_unset_and_grows_a_square():
    mask = np.zeros((9, 9), dtype=bool)
    mask[4, 4] = True
    assert np.argwhere(dilate_square(mask, 2)).tolist() == [[y, x] for y in range(2, 7) for x in range(2, 7)]
    corner = np.zeros((6, 6), dtype=bool)
    corner[0, 0] = True
    assert dilate_square(corner, 1).sum() == 4  # outside the picture counts as unset, not as set
    with pytest.raises(ValueError, match="radius"):
        dilate_square(mask, -1)
