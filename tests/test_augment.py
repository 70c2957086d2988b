"""Augmentation moves image and mask together, keeps masks valid, and draws from (seed, epoch, image) only."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

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


def test_scale_crops_at_one_and_two_times_the_training_size():
    height, width = 64, 128
    rows, cols = np.mgrid[0:height * 2, 0:width * 2]
    image = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.uint8)  # position encoded
    mask = np.zeros((height * 2, width * 2), np.uint8)
    spans = set()
    for seed in range(12):
        out, _ = build_augmentation("scale", (32, 64), seed=seed)(image, mask)
        spans.add(int(out[:, :, 1].max()) - int(out[:, :, 1].min()))
    # a 64-wide crop spans ~63 columns, a 128-wide one ~127: both scales occur
    assert min(spans) < 70 and max(spans) > 110


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
