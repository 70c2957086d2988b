"""Batches for Keras: a ``keras.utils.PyDataset`` over one split of the index.

Each batch is loaded when Keras asks for it, so memory is bounded by
``batch_size x max_queue_size`` whatever the size of the dataset. Loading runs in ``workers``
threads (Pillow's resizing, file reads and libspng's decoding release the GIL).
Per example: the pair at the sizes the augmentation reads (the training size; twice it too for
``scale``), from a ``FrameCache`` when given (decoded and resized once, then read back as small
arrays: a full-size PNG is decoded once per dataset, not once per epoch) or decoded, validated and
resized (bilinear image, nearest mask); then the augmentation, the class mapping, and float32 in
[0, 1]. Cached or not, the arrays are the same.

A batch is a pure function of ``(seed, epoch, batch index)``: the order of an epoch comes from
``(seed, epoch)`` and every example's augmentation from ``(epoch, image id)``, so any number of
worker threads, in any order, gives the same bytes.

``load_example`` holds all of that without Keras, so evaluation code and the API reuse it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np

from training.data.cache import FrameCache
from training.data.cityscapes import read_pair
from training.data.index import IndexEntry
from training.data.labels import ClassSet, get_class_set
from training.data.resize import Pair, resize_pair

# Called as ``augment(image, label_ids, epoch=e, image_id=i)``: the draws may depend only on those.
Augment = Callable[..., Pair]


def load_example(
    root: Path,
    entry: IndexEntry,
    class_set: ClassSet,
    size: tuple[int, int],
    augment: Augment | None = None,
    epoch: int = 0,
    cache: FrameCache | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One training example: ``(H, W, 3)`` float32 image in [0, 1], ``(H, W)`` uint8 classes;
    ``epoch`` (with the image's id) chooses the augmentation's draws. ``cache`` (of the dataset
    at ``root``) only makes it faster.

    Raises:
        DatasetError: the files are missing, corrupt or inconsistent (the message names them).
    """
    sizes = tuple(getattr(augment, "frame_sizes", (size,))) if augment is not None else (tuple(size),)
    if cache is not None:
        resized = cache.load(entry.image, entry.label, sizes)
    else:
        full = read_pair(root, entry.image, entry.label)
        resized = [resize_pair(*full, frame_size) for frame_size in sizes]
    if augment is None:
        image, label_ids = resized[0]
    elif hasattr(augment, "augment_resized"):
        image, label_ids = augment.augment_resized(resized, epoch=epoch, image_id=entry.id)
    else:  # any callable: it gets the pair at the training size
        image, label_ids = augment(*resized[0], epoch=epoch, image_id=entry.id)
    image, label_ids = resize_pair(image, label_ids, size)  # no-op when already at size
    return image.astype(np.float32) / 255.0, class_set.lut[label_ids]


def one_hot(classes: np.ndarray, num_classes: int) -> np.ndarray:
    """``(..., K)`` float32 one-hot; ignored pixels (255) are all zeros."""
    eye = np.zeros((256, num_classes), dtype=np.float32)
    eye[np.arange(num_classes), np.arange(num_classes)] = 1.0
    return eye[classes]


class SegmentationBatches(keras.utils.PyDataset):
    """Batches ``(images, masks)`` for ``model.fit``.

    Args:
        root: dataset root.
        entries: the index entries of one split.
        class_set: ``categories8``, ``cityscapes19`` or a ``ClassSet``.
        size: ``(height, width)`` of the batches.
        batch_size: examples per batch; the last batch may be smaller.
        shuffle: reshuffle the order every epoch (seeded: epoch e always has the same order).
        augment: ``(image, labelIds, epoch=, image_id=) -> (image, labelIds)`` at ``size``, given the
            pair at ``size`` (an ``Augmentation`` gets it at each of its ``frame_sizes``); ``None``
            only resizes.
        one_hot_masks: masks as ``(B, H, W, K)`` float32 instead of ``(B, H, W)`` uint8 indices.
        seed: seed of the shuffling (the augmentation has its own).
        cache: a ``FrameCache`` of the dataset at ``root``: the same batches, without decoding
            full-size PNGs after the first epoch; ``None`` decodes every time.
        workers, use_multiprocessing, max_queue_size: as in ``keras.utils.PyDataset``.
    """

    def __init__(
        self,
        root: Path,
        entries: Sequence[IndexEntry],
        class_set: ClassSet | str = "categories8",
        size: tuple[int, int] = (128, 256),
        batch_size: int = 8,
        shuffle: bool = False,
        augment: Augment | None = None,
        one_hot_masks: bool = False,
        seed: int = 0,
        workers: int = 2,
        use_multiprocessing: bool = False,
        max_queue_size: int = 4,
        cache: FrameCache | None = None,
    ):
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing,
                         max_queue_size=max_queue_size)
        if not entries:
            raise ValueError("no images in this split")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.root = Path(root)
        self.entries = list(entries)
        self.class_set = get_class_set(class_set) if isinstance(class_set, str) else class_set
        self.size = tuple(size)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.one_hot_masks = one_hot_masks
        self.seed = seed
        self.cache = cache
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Make the next batches those of ``epoch`` (``model.fit`` counts up from 0 by calling
        ``on_epoch_end``; a resumed run starts at its next epoch)."""
        # One assignment: a worker thread reads the epoch and its order together.
        self._epoch_and_order = (epoch, self._order_for_epoch(epoch))

    @property
    def epoch(self) -> int:
        return self._epoch_and_order[0]

    @property
    def order(self) -> np.ndarray:
        return self._epoch_and_order[1]

    def _order_for_epoch(self, epoch: int) -> np.ndarray:
        order = np.arange(len(self.entries))
        if self.shuffle:
            np.random.default_rng([self.seed, epoch]).shuffle(order)
        return order

    def __len__(self) -> int:
        return math.ceil(len(self.entries) / self.batch_size)

    def batch_ids(self, index: int) -> list[int]:
        """The image ids in batch ``index`` of the current epoch."""
        chosen = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return [self.entries[i].id for i in chosen]

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range (0..{len(self) - 1})")
        epoch, order = self._epoch_and_order
        chosen = order[index * self.batch_size:(index + 1) * self.batch_size]
        images = np.empty((len(chosen), *self.size, 3), dtype=np.float32)
        masks = np.empty((len(chosen), *self.size), dtype=np.uint8)
        for slot, i in enumerate(chosen):
            images[slot], masks[slot] = load_example(
                self.root, self.entries[i], self.class_set, self.size, self.augment, epoch, self.cache)
        if self.one_hot_masks:
            return images, one_hot(masks, self.class_set.num_classes)
        return images, masks

    def on_epoch_end(self):
        self.set_epoch(self.epoch + 1)

