"""Augmentation moves image and mask together, keeps masks valid, and draws from (seed, epoch, image) only."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from training.data.resize import resize_pair
from training.fit.augment import AUGMENTATIONS, build_augmentation, describe

# Pure colours (channels 0 or 255): gamma keeps them, blur and emboss only touch edges, so a
# pixel's class can be read back from its colour wherever it is not on a boundary.
CODEBOOK = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255]],
                    dtype=np.uint8)
LABEL_IDS = np.array([7, 8, 11, 21, 23, 26], dtype=np.uint8)  # road, sidewalk, building, ...


def encoded_pair(height=64, width=128):
    """Blocks of classes; the image colour encodes the class of each pixel."""
    rows, cols = np.mgrid[0:height, 0:width]
    block = ((rows // (height // 4)) * 3 + (cols // (width // 5))) % len(CODEBOOK)
    return CODEBOOK[block], LABEL_IDS[block]


def decode(image):
    distances = ((image[..., None, :].astype(int) - CODEBOOK[None, None].astype(int)) ** 2).sum(-1)
    return LABEL_IDS[distances.argmin(-1)]


def agreement(image, mask):
    return float((decode(image) == mask).mean())


@pytest.mark.parametrize("name", AUGMENTATIONS)
@pytest.mark.parametrize("seed", range(4))
def test_image_and_mask_stay_aligned(name, seed):
    image, mask = encoded_pair(128, 256)
    out_image, out_mask = build_augmentation(name, (64, 128), seed=seed)(image, mask)
    assert out_image.shape == (64, 128, 3) and out_image.dtype == np.uint8
    assert out_mask.shape == (64, 128) and out_mask.dtype == np.uint8
    assert set(np.unique(out_mask)) <= set(LABEL_IDS)  # masks keep valid labelIds
    assert agreement(out_image, out_mask) > 0.85


def test_the_alignment_check_catches_a_misaligned_pair():
    image, mask = encoded_pair()
    assert agreement(image, mask) == 1.0
    assert agreement(image, mask[:, ::-1]) < 0.5  # a mask flipped alone


def test_geometric_transforms_really_move_pixels():
    image, mask = encoded_pair()
    changed = 0
    for seed in range(8):
        out_image, out_mask = build_augmentation("v2", (64, 128), seed=seed)(image, mask)
        changed += not np.array_equal(out_mask, mask)
        assert agreement(out_image, out_mask) > 0.85
    assert changed >= 4  # p = 0.5 each for flip, elastic, grid distortion


def _windows(image, size):
    """Every ``size`` window of ``image``, and its mirror image."""
    height, width = size
    for top in range(image.shape[0] - height + 1):
        for left in range(image.shape[1] - width + 1):
            window = image[top:top + height, left:left + width]
            yield window
            yield window[:, ::-1]


def test_scale_shows_the_frame_at_the_evaluation_scale_or_twice_it():
    """The rule on a hand-made frame: 64x128, trained at 16x32, so evaluation shrinks it 4x and a
    16x16 car becomes 4x4. A ``scale`` example is the evaluation input (zoom 1) or a 16x32 window
    of the frame at 32x64 (zoom 2, the car 8x8), each possibly mirrored: never anything else."""
    rows, cols = np.mgrid[0:64, 0:128]
    frame = np.stack([rows * 4, cols * 2, (rows + cols) % 256], -1).astype(np.uint8)  # position encoded
    mask = np.full((64, 128), 7, np.uint8)
    mask[24:40, 56:72] = 26  # the car
    evaluated = resize_pair(frame, mask, (16, 32))
    assert (evaluated[1] == 26).sum() == 4 * 4
    zoomed = resize_pair(frame, mask, (32, 64))
    augment = build_augmentation("scale", (16, 32), seed=0)
    assert augment.frame_sizes == ((16, 32), (32, 64))
    zooms, car_sides = [], []
    for image_id in range(16):
        image, labels = augment(frame, mask, epoch=0, image_id=image_id)
        if any(np.array_equal(image, candidate) for candidate in (evaluated[0], evaluated[0][:, ::-1])):
            zooms.append(1)
            assert np.array_equal(labels, evaluated[1]) or np.array_equal(labels, evaluated[1][:, ::-1])
        else:
            pairs = zip(_windows(zoomed[0], (16, 32)), _windows(zoomed[1], (16, 32)))
            assert any(np.array_equal(image, w) and np.array_equal(labels, m) for w, m in pairs), image_id
            zooms.append(2)
            assert int(image[..., 1].max()) - int(image[..., 1].min()) < 130  # half the frame's 256 encoded
        car_rows = np.flatnonzero((labels == 26).any(1))
        car_sides.append(len(car_rows))
    assert set(zooms) == {1, 2}
    assert max(car_sides) == 8 and min(car_sides) == 4  # at most twice as large as evaluation shows it


@pytest.mark.parametrize("name", AUGMENTATIONS)
def test_augmenting_resized_frames_is_augmenting_the_frame(name):
    """What the training cache relies on: the frame at ``frame_sizes`` is all a policy reads."""
    image, mask = encoded_pair(128, 256)
    augment = build_augmentation(name, (32, 64), seed=4)
    for image_id in range(6):
        direct = augment(image, mask, epoch=1, image_id=image_id)
        resized = [resize_pair(image, mask, size) for size in augment.frame_sizes]
        via_sizes = augment.augment_resized(resized, epoch=1, image_id=image_id)
        assert direct[0].tobytes() == via_sizes[0].tobytes() and direct[1].tobytes() == via_sizes[1].tobytes()


def test_scale_on_an_image_smaller_than_the_crop():
    image, mask = encoded_pair(20, 40)
    out_image, out_mask = build_augmentation("scale", (32, 64), seed=1)(image, mask)
    assert out_image.shape == (32, 64, 3) and set(np.unique(out_mask)) <= set(LABEL_IDS)


def test_policies_are_those_of_the_source():
    assert describe("v1") == ["HorizontalFlip(p=0.25)", "RandomGamma(p=0.25)", "Blur(p=0.25)"]
    assert describe("v2") == ["ElasticTransform(p=0.5)", "HorizontalFlip(p=0.5)", "GridDistortion(p=0.5)",
                              "RandomGamma(p=0.5)", "Emboss(p=0.5)", "Blur(p=0.5)"]
    assert describe("none") == []
    with pytest.raises(ValueError, match="unknown augmentation"):
        build_augmentation("v3", (8, 8))


def test_same_seed_same_result():
    image, mask = encoded_pair()
    first = build_augmentation("v2", (32, 64), seed=3)(image, mask)
    second = build_augmentation("v2", (32, 64), seed=3)(image, mask)
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])


@pytest.mark.parametrize("name", ["v1", "v2", "scale"])
def test_draws_are_a_pure_function_of_seed_epoch_and_image(name):
    image, mask = encoded_pair()
    augment = build_augmentation(name, (32, 64), seed=7)
    keys = [(epoch, image_id) for epoch in range(3) for image_id in (0, 1, 12)]
    first = {key: augment(image, mask, epoch=key[0], image_id=key[1]) for key in keys}
    # Again, in reverse order, from 4 threads at once, and from another instance of the same seed.
    with ThreadPoolExecutor(4) as pool:
        threaded = dict(zip(keys[::-1], pool.map(lambda key: augment(image, mask, epoch=key[0], image_id=key[1]),
                                                 keys[::-1])))
    twin = build_augmentation(name, (32, 64), seed=7)
    for key in keys:
        for again in (threaded[key], twin(image, mask, epoch=key[0], image_id=key[1])):
            assert again[0].tobytes() == first[key][0].tobytes() and again[1].tobytes() == first[key][1].tobytes()
    # and the draws do change with the epoch, the image and the seed
    distinct = {first[key][0].tobytes() for key in keys}
    assert len(distinct) >= 4
    other_seed = build_augmentation(name, (32, 64), seed=8)
    assert any(other_seed(image, mask, epoch=e, image_id=i)[0].tobytes() != first[(e, i)][0].tobytes()
               for e, i in keys)
