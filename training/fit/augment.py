"""Resizing and augmentation of (image, labelIds) pairs, always applied jointly.

Four policies:

* ``none``: resize only.
* ``v1`` (the source's light set, which helped): HorizontalFlip, RandomGamma, Blur, p = 0.25 each.
* ``v2`` (the source's heavy set, which hurt): ElasticTransform, HorizontalFlip, GridDistortion,
  RandomGamma, Emboss, Blur, p = 0.5 each.
* ``scale`` (the second source's multi-scale crops): a crop of the training size at full
  resolution, or, half of the time, a crop twice as large downscaled to the training size
  (objects 4x smaller in area), then a horizontal flip with p = 0.5.

Masks hold labelIds here (class mapping comes after), are only ever resampled with nearest
neighbour, and geometric fills use reflection, so every mask value stays a valid labelId.

Every random draw is a pure function of ``(seed, epoch, image_id)``: the loader's threads may
augment examples in any order, and a resumed run sees the draws of an uninterrupted one.
"""

from __future__ import annotations

import random
import threading
from functools import lru_cache
from typing import Callable

import albumentations as A  # after training/__init__: no update check at import
import cv2
import numpy as np

from training.data.resize import Pair, resize_pair

AUGMENTATIONS = ("none", "v1", "v2", "scale")


def _v1() -> list:
    return [A.HorizontalFlip(p=0.25), A.RandomGamma(p=0.25), A.Blur(p=0.25)]


def _v2() -> list:
    # Albumentations 1.x (the source's) reflected at the borders; 2.x fills with a constant,
    # which would paint labelId 0 into masks. Reflection keeps the source's behaviour.
    reflect = {"border_mode": cv2.BORDER_REFLECT_101}
    return [A.ElasticTransform(p=0.5, **reflect), A.HorizontalFlip(p=0.5), A.GridDistortion(p=0.5, **reflect),
            A.RandomGamma(p=0.5), A.Emboss(p=0.5), A.Blur(p=0.5)]


def _scale() -> list:
    return [A.HorizontalFlip(p=0.5)]  # after the crop, which is drawn here


TRANSFORMS = {"none": list, "v1": _v1, "v2": _v2, "scale": _scale}


class Augmentation:
    """A callable ``(image, mask, epoch=, image_id=) -> (image, mask)`` at the training size.

    Args:
        name: one of ``AUGMENTATIONS``.
        size: training ``(height, width)``.
        seed: with ``epoch`` and ``image_id``, fixes every draw; ``None``: a random seed,
            drawn once per instance.

    The same ``(epoch, image_id)`` always gives the same result, so an example is augmented the
    same way whichever thread loads it, and a new epoch draws anew.
    """

    def __init__(self, name: str, size: tuple[int, int], seed: int | None = None):
        if name not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {name!r}; choose one of {', '.join(AUGMENTATIONS)}")
        self.name, self.size, self.seed = name, tuple(size), seed
        self._entropy = np.random.SeedSequence().entropy if seed is None else int(seed) % 2**64
        # Albumentations' transforms keep their random state in themselves: each loading thread
        # gets its own pipeline, re-seeded for every example.
        self._per_thread = threading.local()

    def __repr__(self) -> str:
        return f"Augmentation({self.name!r}, size={self.size}, seed={self.seed})"

    def __call__(self, image: np.ndarray, mask: np.ndarray, *, epoch: int = 0, image_id: int = 0) -> Pair:
        rng = np.random.default_rng([self._entropy, int(epoch), int(image_id)])
        if self.name == "scale":
            image, mask = self._multi_scale_crop(image, mask, rng)
        else:
            image, mask = resize_pair(image, mask, self.size)
        pipeline = self._pipeline()
        if pipeline is not None:
            pipeline.set_random_state(rng, random.Random(int(rng.integers(2**63))))
            out = pipeline(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        return image, mask

    def _pipeline(self) -> A.Compose | None:
        """This thread's Albumentations pipeline (None when the policy has no transform)."""
        if not hasattr(self._per_thread, "pipeline"):
            transforms = TRANSFORMS[self.name]()
            self._per_thread.pipeline = A.Compose(transforms) if transforms else None
        return self._per_thread.pipeline

    def _multi_scale_crop(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> Pair:
        height, width = self.size
        scale = 2 if rng.random() < 0.5 else 1
        # An image smaller than the crop is cropped as large as it allows (keeping the aspect
        # of the training size), then resized: the crop never pads with invented pixels.
        crop_h, crop_w = _fit_crop(image.shape[:2], (height * scale, width * scale))
        top = int(rng.integers(0, image.shape[0] - crop_h + 1))
        left = int(rng.integers(0, image.shape[1] - crop_w + 1))
        window = (slice(top, top + crop_h), slice(left, left + crop_w))
        return resize_pair(image[window], mask[window], self.size)


def _fit_crop(shape: tuple[int, int], crop: tuple[int, int]) -> tuple[int, int]:
    factor = min(1.0, shape[0] / crop[0], shape[1] / crop[1])
    return max(1, int(crop[0] * factor)), max(1, int(crop[1] * factor))


@lru_cache(maxsize=None)
def describe(name: str) -> list[str]:
    """Human-readable list of the transforms of a policy (for configs and reports)."""
    if name == "scale":
        return ["RandomCrop(1x or 2x training size, p=0.5 each) -> resize", "HorizontalFlip(p=0.5)"]
    if name == "none":
        return []
    return [f"{type(t).__name__}(p={t.p})" for t in TRANSFORMS[name]()]


def build_augmentation(name: str | None, size: tuple[int, int], seed: int | None = None
                       ) -> Callable[..., Pair]:
    """The augmentation called ``name`` (``None`` means ``none``) at training ``size``."""
    return Augmentation(name or "none", size, seed)
