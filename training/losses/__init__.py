"""Segmentation losses: a functional core (tensors in, scalar out) and thin Keras wrappers.

Every loss takes the same inputs:

- ``y_true``: sparse integer class indices, ``(B, H, W)`` or ``(B, H, W, 1)``, any integer dtype
  (uint8 masks as the batches deliver them) or float holding integers (``Loss.__call__`` of
  Keras casts labels to float32 before ``call``; they are rounded back). Pixels equal to
  ``ignore_index`` (255 by default, ``None`` for none) contribute nothing, neither to the value
  nor to the gradient.
- ``y_pred``: softmax probabilities ``(B, H, W, K)``.

Notation (source B): X = probabilities, Y = one-hot ground truth, n runs over the counted pixels,
k over the K classes.

.. math::

    CE = -\\frac{1}{N} \\sum_n \\sum_k Y_{nk} \\log X_{nk}
    \\qquad
    \\mathcal{L}_{IoU} = 1 - \\frac{1}{K} \\sum_k \\frac{I_k}{U_k},\\;
    I_k = \\sum_n Y_{nk} X_{nk},\\; U_k = \\sum_n X_{nk} + \\sum_n Y_{nk} - I_k

The Lovász-softmax loss follows the reference implementation of Berman et al. (CVPR 2018)
argument for argument; :func:`generalized_lovasz_softmax` replaces the uniform threshold
distribution of the Lovász extension by any distribution of CDF F (the report's own idea).

The classes only forward their settings to these functions. They compose as in
segmentation_models::

    loss = cce + 0.5 * dice          # a SumLoss, saved and reloaded with a .keras model
    model.compile(optimizer="adam", loss=build_loss("cce_dice"))

All the maths is written with fixed shapes (masks instead of ``boolean_mask``), so every loss
runs inside ``model.fit`` (``tf.function``, XLA) with a dynamic batch size.
"""

from __future__ import annotations

import math
from typing import Callable

import keras

from training.data.labels import IGNORE_INDEX
from training.losses.functions import categorical_crossentropy, dice_loss, soft_iou_loss
from training.losses.lovasz import (
    ThresholdDistribution,
    generalized_lovasz_softmax,
    get_distribution,
    lovasz_grad,
    lovasz_softmax,
)

__all__ = [
    "IGNORE_INDEX", "categorical_crossentropy", "dice_loss", "soft_iou_loss", "lovasz_grad",
    "lovasz_softmax", "generalized_lovasz_softmax", "ThresholdDistribution", "get_distribution",
    "Loss", "SumLoss", "CategoricalCrossentropy", "DiceLoss", "SoftIoULoss", "LovaszSoftmaxLoss",
    "GeneralizedLovaszLoss", "LOSSES", "build_loss", "cce", "dice", "cce_dice", "soft_iou", "lovasz",
]


# --------------------------------------------------------------------------- Keras wrappers


def _register(cls):
    return keras.saving.register_keras_serializable(package="training")(cls)


def _jsonable_classes(classes):
    return classes if isinstance(classes, str) else [int(c) for c in classes]


@_register
class Loss(keras.losses.Loss):
    """Base of the segmentation losses: a scalar ``call`` that composes with ``+`` and ``*``.

    ``a + b`` is a :class:`SumLoss`, ``0.5 * a`` a one-term :class:`SumLoss` with weight 0.5; both
    are saved with the model. Keras casts ``y_true`` to float32 before ``call``; the functions
    round the labels back, so ``ignore_index = 255`` keeps working.
    """

    def __add__(self, other):
        if not isinstance(other, Loss):
            return NotImplemented
        return SumLoss(terms=_terms(self) + _terms(other))

    def __radd__(self, other):
        if isinstance(other, (int, float)) and other == 0:  # sum([a, b, c])
            return self
        if not isinstance(other, Loss):
            return NotImplemented
        return SumLoss(terms=_terms(other) + _terms(self))

    def __mul__(self, weight):
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            return NotImplemented
        return SumLoss(terms=[(float(weight) * w, loss) for w, loss in _terms(self)])

    __rmul__ = __mul__

    def __repr__(self):
        return f"{type(self).__name__}(name={self.name!r})"


def _terms(loss: Loss) -> list[tuple[float, Loss]]:
    return list(loss.terms) if isinstance(loss, SumLoss) else [(1.0, loss)]


def _term_name(weight: float, loss: Loss) -> str:
    return loss.name if weight == 1.0 else f"{weight:g}x_{loss.name}"


@_register
class SumLoss(Loss):
    """Weighted sum of losses: :math:`L = \\sum_j w_j L_j` (built by ``+`` and ``*``).

    Args:
        terms: ``(weight, loss)`` pairs (or ``{"weight", "loss"}`` dicts as in the config).
    """

    def __init__(self, terms, name=None, **kwargs):
        parsed = []
        for term in terms:
            if isinstance(term, dict):
                weight, loss = term["weight"], term["loss"]
            else:
                weight, loss = term
            if isinstance(loss, dict):
                loss = keras.saving.deserialize_keras_object(loss)
            parsed.append((float(weight), loss))
        if not parsed:
            raise ValueError("a SumLoss needs at least one term")
        self.terms = parsed
        name = name or "_plus_".join(_term_name(w, loss) for w, loss in parsed)
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        total = None
        for weight, loss in self.terms:
            value = loss.call(y_true, y_pred)
            value = value if weight == 1.0 else weight * value
            total = value if total is None else total + value
        return total

    def get_config(self):
        return {
            **super().get_config(),
            "terms": [{"weight": w, "loss": keras.saving.serialize_keras_object(loss)}
                      for w, loss in self.terms],
        }


def _checked_class_weights(class_weights) -> list[float] | None:
    """``None`` or a list of positive numbers (the length is checked against K at the first call)."""
    if class_weights is None:
        return None
    if isinstance(class_weights, (str, bytes)) or not hasattr(class_weights, "__iter__"):
        raise ValueError(f"class_weights: expected a list of numbers, one per class, got {class_weights!r}")
    weights = list(class_weights)
    if not weights or any(isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 < w < math.inf
                          for w in weights):  # NaN fails "0 < w": a NaN weight trains nothing
        raise ValueError(f"class_weights: expected positive finite numbers, one per class, got {weights!r}")
    return [float(w) for w in weights]


@_register
class CategoricalCrossentropy(Loss):
    """Keras wrapper of :func:`categorical_crossentropy` on sparse labels (optionally class-weighted)."""

    def __init__(self, ignore_index: int | None = IGNORE_INDEX, class_weights=None,
                 name="categorical_crossentropy", **kwargs):
        self.ignore_index = ignore_index
        self.class_weights = _checked_class_weights(class_weights)
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return categorical_crossentropy(y_true, y_pred, ignore_index=self.ignore_index,
                                        class_weights=self.class_weights)

    def get_config(self):
        return {**super().get_config(), "ignore_index": self.ignore_index,
                "class_weights": self.class_weights}


@_register
class DiceLoss(Loss):
    """Keras wrapper of :func:`dice_loss` (segmentation_models' ``DiceLoss`` with ignored pixels)."""

    def __init__(self, beta: float = 1, class_weights=None, class_indexes=None, per_image=False,
                 smooth: float = 1e-5, ignore_index: int | None = IGNORE_INDEX, name="dice_loss",
                 **kwargs):
        self.beta = beta
        self.class_weights = class_weights
        self.class_indexes = None if class_indexes is None else [int(c) for c in class_indexes]
        self.per_image = per_image
        self.smooth = smooth
        self.ignore_index = ignore_index
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return dice_loss(
            y_true, y_pred, ignore_index=self.ignore_index, smooth=self.smooth, beta=self.beta,
            class_weights=1.0 if self.class_weights is None else self.class_weights,
            class_indexes=self.class_indexes, per_image=self.per_image,
        )

    def get_config(self):
        weights = self.class_weights
        if weights is not None and not isinstance(weights, (int, float)):
            weights = [float(w) for w in weights]
        return {**super().get_config(), "beta": self.beta, "class_weights": weights,
                "class_indexes": self.class_indexes, "per_image": self.per_image,
                "smooth": self.smooth, "ignore_index": self.ignore_index}


@_register
class SoftIoULoss(Loss):
    """Keras wrapper of :func:`soft_iou_loss` (continuous mIoU of the report)."""

    def __init__(self, classes: str = "all", ignore_index: int | None = IGNORE_INDEX,
                 name="soft_iou_loss", **kwargs):
        self.classes = classes
        self.ignore_index = ignore_index
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return soft_iou_loss(y_true, y_pred, ignore_index=self.ignore_index, classes=self.classes)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes, "ignore_index": self.ignore_index}


@_register
class LovaszSoftmaxLoss(Loss):
    """Keras wrapper of :func:`lovasz_softmax`; pixels labelled ``ignore_index`` are removed."""

    def __init__(self, classes="present", per_image: bool = False,
                 ignore_index: int | None = IGNORE_INDEX, name="lovasz_softmax", **kwargs):
        self.classes = _jsonable_classes(classes)
        self.per_image = per_image
        self.ignore_index = ignore_index
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        return lovasz_softmax(y_pred, y_true, classes=self.classes, per_image=self.per_image,
                              ignore=self.ignore_index)

    def get_config(self):
        return {**super().get_config(), "classes": self.classes, "per_image": self.per_image,
                "ignore_index": self.ignore_index}


@_register
class GeneralizedLovaszLoss(Loss):
    """Keras wrapper of :func:`generalized_lovasz_softmax`.

    Only described distributions (``"uniform"``, ``"step"``, ``("gaussian", mu, sigma)``) can be
    saved with a model; a custom :class:`ThresholdDistribution` trains but ``get_config`` raises.
    """

    def __init__(self, distribution="uniform", classes="present", per_image: bool = False,
                 ignore_index: int | None = IGNORE_INDEX, normalize: bool = False, name=None,
                 **kwargs):
        self.distribution = get_distribution(distribution)
        self.classes = _jsonable_classes(classes)
        self.per_image = per_image
        self.ignore_index = ignore_index
        self.normalize = normalize
        super().__init__(name=name or f"generalized_lovasz_{self.distribution.name}", **kwargs)

    def call(self, y_true, y_pred):
        return generalized_lovasz_softmax(
            y_pred, y_true, distribution=self.distribution, classes=self.classes,
            per_image=self.per_image, ignore=self.ignore_index, normalize=self.normalize,
        )

    def get_config(self):
        if self.distribution.spec is None:
            raise NotImplementedError(
                f"loss {self.name!r} uses a custom threshold distribution, which cannot be saved; "
                "use 'uniform', 'step' or ('gaussian', mu, sigma)"
            )
        return {**super().get_config(), "distribution": self.distribution.spec,
                "classes": self.classes, "per_image": self.per_image,
                "ignore_index": self.ignore_index, "normalize": self.normalize}


# --------------------------------------------------------------------------- registry


def _cce_dice(ignore_index: int | None = IGNORE_INDEX, cce_class_weights=None, **dice_options) -> Loss:
    """CE + Dice; ``cce_class_weights`` weighs the CE term's pixels, the rest goes to the Dice term."""
    return (CategoricalCrossentropy(ignore_index=ignore_index, class_weights=cce_class_weights)
            + DiceLoss(ignore_index=ignore_index, **dice_options))


def _generalized(distribution) -> Callable[..., Loss]:
    def factory(**options) -> Loss:
        return GeneralizedLovaszLoss(distribution=distribution, **options)
    return factory


LossFactory = Callable[..., Loss]

#: Loss names usable in experiment configs; each value builds a fresh loss from keyword options.
LOSSES: dict[str, LossFactory] = {
    "cce": CategoricalCrossentropy,
    "dice": DiceLoss,
    "cce_dice": _cce_dice,
    "soft_iou": SoftIoULoss,
    "lovasz": LovaszSoftmaxLoss,
    "lovasz_gaussian": _generalized(("gaussian", 0.5, 0.5)),
    "lovasz_gaussian_wide": _generalized(("gaussian", 0.5, 10.0)),
    "lovasz_fp": _generalized(("gaussian", 0.9, 0.5)),  # punishes false positives
    "lovasz_step": _generalized("step"),
}


def build_loss(name: str, **options) -> Loss:
    """A fresh loss from its registry name, e.g. ``build_loss("lovasz", per_image=True)``.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    try:
        factory = LOSSES[name]
    except KeyError:
        raise ValueError(f"Unknown loss: {name!r}; known losses: {', '.join(LOSSES)}") from None
    return factory(**options)



cce = CategoricalCrossentropy()
dice = DiceLoss()
cce_dice = cce + dice
soft_iou = SoftIoULoss()
lovasz = LovaszSoftmaxLoss()
