"""Resizing and augmentation of (image, labelIds) pairs, always applied jointly.

Four policies:

* ``none``: resize only.
* ``v1`` (the source's light set, which helped): HorizontalFlip, RandomGamma, Blur, p = 0.25 each.
* ``v2`` (the source's heavy set, which hurt): ElasticTransform, HorizontalFlip, GridDistortion,
  RandomGamma, Emboss, Blur, p = 0.5 each.
* ``scale`` (the second source's multi-scale crops, measured from the evaluation scale), then a
  horizontal flip with p = 0.5.

The ``scale`` rule. Evaluation shows the model the whole frame resized to the training size;
call that zoom 1. A ``scale`` example draws a zoom z in {1, 2} (p = 0.5 each) and shows a window
covering 1/z of the frame's height and width, at a uniform random position, resized to the
training size: objects appear z times as large as at evaluation, never smaller, never more than
twice as large, whatever the resolution of the frames. Concretely, zoom 1 is the frame resized
to the training size (the evaluation input itself) and zoom 2 a training-size window of the frame
resized to twice the training size. On the embedded dataset (256x512 frames, training at 128x256)
this is the source's rule, "a crop at the training size or one twice as large downscaled"; the
source's rule taken literally on 2048x1024 frames would crop 1/8 of their width and show objects
8x larger than evaluation does.

Every policy reads the frame only at ``Augmentation.frame_sizes`` (the training size, and twice
it for ``scale``), so the loader can hand it cached arrays at those sizes
(``training.data.cache``) instead of decoding the full-size PNGs; ``augment(frame)`` and
``augment.augment_resized([resize_pair(frame, s) for s in frame_sizes])`` are the same.

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
    return [A.HorizontalFlip(p=0.5)]  # after the zoom, which is drawn here


SCALE_ZOOMS = (1, 2)  # p = 0.5 each; see the module's docstring


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

    ``frame_sizes``: the sizes of the frame the policy reads (see ``augment_resized``).
    """

    def __init__(self, name: str, size: tuple[int, int], seed: int | None = None):
        if name not in AUGMENTATIONS:
            raise ValueError(f"unknown augmentation {name!r}; choose one of {', '.join(AUGMENTATIONS)}")
        self.name, self.size, self.seed = name, tuple(size), seed
        self._entropy = np.random.SeedSequence().entropy if seed is None else int(seed) % 2**64
        # Albumentations' transforms keep their random state in themselves: each loading thread
        # gets its own pipeline, re-seeded for every example.
        self._per_thread = threading.local()
        height, width = self.size
        self.frame_sizes = tuple((height * zoom, width * zoom) for zoom in SCALE_ZOOMS) \
            if name == "scale" else (self.size,)

    def __repr__(self) -> str:
        return f"Augmentation({self.name!r}, size={self.size}, seed={self.seed})"

    def __call__(self, image: np.ndarray, mask: np.ndarray, *, epoch: int = 0, image_id: int = 0) -> Pair:
        """Augment a frame of any size."""
        resized = [resize_pair(image, mask, size) for size in self.frame_sizes]
        return self.augment_resized(resized, epoch=epoch, image_id=image_id)

    def augment_resized(self, resized: list[Pair], *, epoch: int = 0, image_id: int = 0) -> Pair:
        """Augment a frame given as ``resize_pair(image, mask, size)`` for each of ``frame_sizes``
        (from ``training.data.cache``, say); the result is that of ``self(image, mask)``."""
        rng = np.random.default_rng([self._entropy, int(epoch), int(image_id)])
        if self.name == "scale":
            image, mask = self._zoom(resized, rng)
        else:
            image, mask = resized[0]
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

    def _zoom(self, resized: list[Pair], rng: np.random.Generator) -> Pair:
        """Zoom 1: the frame at the training size; zoom 2: a training-size window of the frame
        at twice the training size."""
        if rng.random() < 0.5:
            return resized[0]
        height, width = self.size
        image, mask = resized[1]
        top = int(rng.integers(0, image.shape[0] - height + 1))
        left = int(rng.integers(0, image.shape[1] - width + 1))
        window = (slice(top, top + height), slice(left, left + width))
        return np.ascontiguousarray(image[window]), np.ascontiguousarray(mask[window])


@lru_cache(maxsize=None)
def describe(name: str) -> list[str]:
    """Human-readable list of the transforms of a policy (for configs and reports)."""
    if name == "scale":
        return ["Zoom(1x: the whole frame, as evaluated | 2x: a random quarter of the frame, p=0.5 each)",
                "HorizontalFlip(p=0.5)"]
    if name == "none":
        return []
    return [f"{type(t).__name__}(p={t.p})" for t in TRANSFORMS[name]()]


def build_augmentation(name: str | None, size: tuple[int, int], seed: int | None = None
                       ) -> Callable[..., Pair]:
    """The augmentation called ``name`` (``None`` means ``none``) at training ``size``."""
    return Augmentation(name or "none", size, seed)
