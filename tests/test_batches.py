"""Batches for Keras: shapes, dtypes, class mapping, order, errors naming the file, and the same
bytes whatever the number of loading threads."""

import hashlib

import numpy as np
import pytest
from cityscapes_builder import CAR, EGO, ROAD, SKY, image_path

from training.data.cityscapes import DatasetError
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.fit.augment import build_augmentation
from training.fit.batches import SegmentationBatches, load_example, one_hot


@pytest.fixture
def index(tiny_root):
    return load_or_build_index(tiny_root)


def test_batch_shapes_dtypes_and_values(index):
    batches = SegmentationBatches(index.root, index.split("train"), "categories8", size=(8, 16), batch_size=3)
    assert len(batches) == 3  # 8 images: 3 + 3 + 2
    images, masks = batches[0]
    assert images.shape == (3, 8, 16, 3) and images.dtype == np.float32
    assert masks.shape == (3, 8, 16) and masks.dtype == np.uint8
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert set(np.unique(masks)) <= set(range(8))
    assert batches[2][0].shape[0] == 2
    with pytest.raises(IndexError):
        batches[3]


def test_masks_are_mapped_to_the_class_set(index):
    entry = index.split("test")[0]
    cat8 = get_class_set("categories8")
    _, classes = load_example(index.root, entry, cat8, (16, 32))  # native size: no resampling
    assert classes[0, 0] == cat8.lut[SKY] == 5
    assert classes[-1, 0] == cat8.lut[EGO] == 0  # void is a class for categories8
    cs19 = get_class_set("cityscapes19")
    _, train_ids = load_example(index.root, entry, cs19, (16, 32))
    assert train_ids[-1, 0] == 255 and train_ids[12, 20] in (cs19.lut[ROAD], cs19.lut[CAR])


def test_resizing_keeps_masks_valid(index):
    entry = index.split("train")[0]
    image, classes = load_example(index.root, entry, get_class_set(), (7, 13))
    assert image.shape == (7, 13, 3) and classes.shape == (7, 13)
    _, native = load_example(index.root, entry, get_class_set(), (16, 32))
    assert set(np.unique(classes)) <= set(np.unique(native))  # nearest: no invented class


def test_one_hot_masks(index):
    batches = SegmentationBatches(index.root, index.split("test"), "cityscapes19", size=(8, 16),
                                  batch_size=2, one_hot_masks=True)
    _, masks = batches[0]
    assert masks.shape == (2, 8, 16, 19) and masks.dtype == np.float32
    assert set(np.unique(masks.sum(-1))) <= {0.0, 1.0}  # ignored pixels are all zeros
    encoded = one_hot(np.array([[0, 18, 255]], np.uint8), 19)
    assert encoded[0, 0, 0] == 1 and encoded[0, 1, 18] == 1 and encoded[0, 2].sum() == 0


def test_shuffling_is_seeded_per_epoch_and_covers_every_image(index):
    entries = index.split("train")
    first = SegmentationBatches(index.root, entries, size=(8, 16), batch_size=3, shuffle=True, seed=5)
    second = SegmentationBatches(index.root, entries, size=(8, 16), batch_size=3, shuffle=True, seed=5)
    epoch0 = [i for b in range(len(first)) for i in first.batch_ids(b)]
    assert epoch0 == [i for b in range(len(second)) for i in second.batch_ids(b)]
    assert sorted(epoch0) == sorted(e.id for e in entries)
    first.on_epoch_end()
    epoch1 = [i for b in range(len(first)) for i in first.batch_ids(b)]
    assert sorted(epoch1) == sorted(epoch0) and epoch1 != epoch0
    ordered = SegmentationBatches(index.root, entries, size=(8, 16), batch_size=3)
    assert ordered.batch_ids(0) == [e.id for e in entries[:3]]


def test_augmentation_hook_is_applied(index):
    flip = build_augmentation("v1", (16, 32), seed=0)
    calls = []

    def spy(image, mask, epoch, image_id):
        calls.append((image.shape, epoch, image_id))
        return flip(image, mask, epoch=epoch, image_id=image_id)

    batches = SegmentationBatches(index.root, index.split("train"), size=(16, 32), batch_size=4, augment=spy)
    batches[0]
    assert calls == [((16, 32, 3), 0, entry.id) for entry in index.split("train")[:4]]
    batches.on_epoch_end()
    batches[0]
    assert [epoch for _, epoch, _ in calls[4:]] == [1] * 4


def test_a_corrupt_file_names_itself_when_its_batch_is_loaded(index):
    entry = index.split("train")[1]
    path = image_path(index.root, "train", entry.stem)
    path.write_bytes(path.read_bytes()[:60])
    batches = SegmentationBatches(index.root, index.split("train"), size=(8, 16), batch_size=4)
    with pytest.raises(DatasetError, match=f"{entry.stem}_leftImg8bit.png: corrupt PNG"):
        batches[0]


def test_fit_consumes_the_batches_with_parallel_workers(index):
    import keras

    batches = SegmentationBatches(index.root, index.split("train"), size=(16, 32), batch_size=4,
                                  shuffle=True, workers=2)
    inputs = keras.Input((16, 32, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(8, 1, activation="softmax")(inputs))
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(batches, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()


def test_empty_split_and_bad_batch_size(index):
    with pytest.raises(ValueError, match="no images"):
        SegmentationBatches(index.root, [], size=(8, 16))
    with pytest.raises(ValueError, match="batch_size"):
        SegmentationBatches(index.root, index.split("train"), batch_size=0)


# ---------------------------------------------------------------------------- determinism

def _augmented_batches(index, workers=1):
    return SegmentationBatches(index.root, index.split("train"), size=(16, 32), batch_size=2, shuffle=True,
                               seed=3, augment=build_augmentation("v2", (16, 32), seed=3), workers=workers)


def _digest(images, masks) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).tobytes() + np.ascontiguousarray(masks).tobytes()).hexdigest()


def _epochs_through_keras(batches, epochs=2):
    """The bytes of every batch of ``epochs`` epochs, loaded as ``model.fit`` loads them: by
    Keras' PyDataset adapter, in ``batches.workers`` threads."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    adapter = PyDatasetAdapter(batches, shuffle=False)
    loaded = []
    for _ in range(epochs):
        adapter.on_epoch_begin()
        loaded.append([_digest(images, masks) for images, masks in adapter.get_numpy_iterator()])
        adapter.on_epoch_end()
    return loaded


def test_one_or_four_workers_give_byte_identical_batches(index):
    one, four = _epochs_through_keras(_augmented_batches(index, workers=1)), \
        _epochs_through_keras(_augmented_batches(index, workers=4))
    assert [len(epoch) for epoch in one] == [4, 4]
    assert one == four
    assert set(one[0]).isdisjoint(one[1])  # another epoch: another order and other draws


def test_a_batch_does_not_depend_on_the_order_batches_are_loaded_in(index):
    batches = _augmented_batches(index)
    forward = [_digest(*batches[i]) for i in range(len(batches))]
    backward = [_digest(*batches[i]) for i in reversed(range(len(batches)))][::-1]
    assert forward == backward


def test_a_loader_set_to_an_epoch_gives_that_epochs_batches(index):
    """What --resume relies on: starting at epoch 2 gives the batches an uninterrupted run sees."""
    continuous = _augmented_batches(index)
    continuous.on_epoch_end()
    continuous.on_epoch_end()
    resumed = _augmented_batches(index)
    resumed.set_epoch(2)
    assert resumed.epoch == 2
    assert [resumed.batch_ids(b) for b in range(4)] == [continuous.batch_ids(b) for b in range(4)]
    assert [_digest(*resumed[b]) for b in range(4)] == [_digest(*continuous[b]) for b in range(4)]
