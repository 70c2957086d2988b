"""The Lovász-softmax loss (Berman et al., CVPR 2018) and the report's generalisation.

:func:`lovasz_softmax` follows the reference implementation argument for argument;
:func:`generalized_lovasz_softmax` replaces the uniform threshold distribution of the Lovász
extension by any distribution of CDF F:

.. math::

    \\mathcal{L}_c = \\sum_i (F(e_i) - F(0))\\, g_i, \\qquad
    \\frac{\\partial \\mathcal{L}_c}{\\partial e_i} = f(e_i)\\,(IoU(E_i) - IoU(E_{i-1}))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import tensorflow as tf

from training.losses.functions import _probabilities, _safe_divide, _sparse_labels

# --------------------------------------------------------------------------- Lovász


def lovasz_grad(gt_sorted, valid_sorted=None) -> tf.Tensor:
    """Increments of the Jaccard loss along pixels sorted by decreasing error (Alg. 1, Berman).

    .. math::

        g_i = J(\\{1..i\\}) - J(\\{1..i-1\\}),\\quad
        J(\\{1..i\\}) = 1 - \\frac{|Y| - \\sum_{j \\le i} Y_j}{|Y| + \\sum_{j \\le i} (1 - Y_j)}

    Works on the last axis (batched). ``valid_sorted`` (same shape, 0/1) marks pixels that do not
    count: they change neither intersection nor union, so their increment is 0. A prefix of
    uncounted pixels has J = 0 (the value before the first pixel).

    Args:
        gt_sorted: ``(..., P)`` float 0/1 ground truth, sorted by decreasing error.
        valid_sorted: optional ``(..., P)`` float 0/1 mask in the same order.

    Returns:
        ``(..., P)`` float tensor of increments (they sum to the Jaccard loss of predicting all).
    """
    gt_sorted = tf.convert_to_tensor(gt_sorted)
    gts = tf.reduce_sum(gt_sorted, axis=-1, keepdims=True)
    false_positives = 1.0 - gt_sorted
    if valid_sorted is not None:
        false_positives = false_positives * valid_sorted
    intersection = gts - tf.cumsum(gt_sorted, axis=-1)
    union = gts + tf.cumsum(false_positives, axis=-1)
    jaccard = tf.where(union > 0, 1.0 - _safe_divide(intersection, union), tf.zeros_like(union))
    return tf.concat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], axis=-1)


def _lovasz_per_class(probas, labels, per_image, ignore, transform):
    """Per-(group, class) Lovász losses and presence: ``(G, C)`` each, G = B or 1."""
    x = _probabilities(probas)
    labels = _sparse_labels(labels, x.shape.rank)
    num_classes = x.shape[-1]
    if per_image:
        x = tf.reshape(x, [tf.shape(x)[0], -1, num_classes])
        labels = tf.reshape(labels, [tf.shape(labels)[0], -1])
    else:
        x = tf.reshape(x, [1, -1, num_classes])
        labels = tf.reshape(labels, [1, -1])
    if ignore is None:
        valid = tf.ones_like(labels, dtype=tf.bool)
    else:
        valid = tf.not_equal(labels, ignore)
    # Labels outside [0, C) (ignore=None and a 255 in the mask) are background for every class,
    # as in the reference (labels == c is false for every c).
    fg = tf.one_hot(tf.where(valid, labels, -tf.ones_like(labels)), num_classes, dtype=x.dtype)
    validf = tf.cast(valid, x.dtype)[..., None]
    errors = tf.abs(fg - x) * validf
    # (G, C, P): every class sorted at once; ignored pixels go last (they are removed in the
    # reference; here they sit at the end with error 0 and increment 0).
    errors = tf.transpose(errors, [0, 2, 1])
    fg = tf.transpose(fg, [0, 2, 1])
    validf = tf.broadcast_to(tf.transpose(validf, [0, 2, 1]), tf.shape(errors))
    sort_key = tf.where(validf > 0, errors, -tf.ones_like(errors))
    order = tf.argsort(tf.stop_gradient(sort_key), axis=-1, direction="DESCENDING", stable=True)
    errors_sorted = tf.gather(errors, order, batch_dims=2)
    fg_sorted = tf.gather(fg, order, batch_dims=2)
    valid_sorted = tf.gather(validf, order, batch_dims=2)
    grad = tf.stop_gradient(lovasz_grad(fg_sorted, valid_sorted))
    losses = tf.reduce_sum(transform(errors_sorted) * valid_sorted * grad, axis=-1)
    present = tf.reduce_sum(fg, axis=-1) > 0
    return losses, present


def _average_classes(losses, present, classes):
    """Mean over classes per group as the reference does; then mean over groups."""
    if isinstance(classes, str):
        if classes == "all":
            per_group = tf.reduce_mean(losses, axis=-1)
        elif classes == "present":
            presentf = tf.cast(present, losses.dtype)
            # No class present (every pixel ignored): 0, with zero gradient.
            per_group = _safe_divide(tf.reduce_sum(losses * presentf, axis=-1),
                                     tf.reduce_sum(presentf, axis=-1))
        else:
            raise ValueError(f"classes must be 'all', 'present' or a list of ids, got {classes!r}")
    else:
        class_ids = [int(c) for c in classes]
        if not class_ids:
            raise ValueError("classes is an empty list")
        per_group = tf.reduce_mean(tf.gather(losses, class_ids, axis=-1), axis=-1)
    return tf.reduce_mean(per_group)


def lovasz_softmax(probas, labels, classes="present", per_image=False, ignore=None) -> tf.Tensor:
    """Multi-class Lovász-softmax loss (Berman, Rannen Triki, Blaschko, CVPR 2018).

    Same arguments and semantics as the reference ``lovasz_softmax`` (bermanmaxim/LovaszSoftmax).
    Per class c, errors :math:`e_i = |Y_{ic} - X_{ic}|` sorted decreasingly, and

    .. math::

        \\ell_c = \\sum_i e_{(i)}\\, g_i,\\qquad g = \\text{lovasz\\_grad}(Y_{(\\cdot)c})

    the Lovász extension of the Jaccard loss, i.e. :math:`E_{\\Delta \\sim U[0,1]}` of the
    Jaccard loss of the thresholded errors. The class losses are averaged as ``classes`` says.

    Args:
        probas: ``(B, H, W, C)`` class probabilities (softmax).
        labels: ``(B, H, W)`` integer labels in ``[0, C)`` (``(B, H, W, 1)`` and float labels too).
        classes: ``"all"``, ``"present"`` (classes present in ``labels``; default) or a list of
            class ids to average over (present or not).
        per_image: loss per image, then mean over the batch (else one loss over all pixels).
        ignore: label whose pixels are removed (None: keep every pixel).

    Returns:
        scalar float tensor. Where no pixel is left (all ignored) the loss is 0 with zero
        gradient (the reference's "only void pixels" case); with ``per_image`` such an image
        counts as 0 in the mean over the batch.
    """
    losses, present = _lovasz_per_class(probas, labels, per_image, ignore, lambda e: e)
    return _average_classes(losses, present, classes)


@dataclass(frozen=True)
class ThresholdDistribution:
    """Distribution of the threshold :math:`\\Delta` of a generalised Lovász extension.

    Args:
        cdf: F, maps a float tensor of errors in [0, 1] to F(errors) (differentiable).
        pdf: f = F' (documentation and tests; the gradient comes from ``cdf``), or None.
        name: short identifier, used in loss names (letters, digits, ``._-``).
        spec: JSON-able description that :func:`get_distribution` turns back into this
            distribution (None for a custom one: it cannot be saved in a ``.keras`` file).
    """

    cdf: Callable[[tf.Tensor], tf.Tensor]
    pdf: Callable[[tf.Tensor], tf.Tensor] | None = None
    name: str = "custom"
    spec: object = None


def _uniform() -> ThresholdDistribution:
    return ThresholdDistribution(cdf=lambda e: e, pdf=lambda e: tf.ones_like(e), name="uniform",
                                 spec="uniform")


def _gaussian(mu: float, sigma: float) -> ThresholdDistribution:
    mu, sigma = float(mu), float(sigma)
    if sigma <= 0:
        raise ValueError(f"gaussian sigma must be positive, got {sigma}")

    def cdf(e):
        return 0.5 * (1.0 + tf.math.erf((e - mu) / (sigma * math.sqrt(2.0))))

    def pdf(e):
        return tf.exp(-0.5 * tf.square((e - mu) / sigma)) / (sigma * math.sqrt(2.0 * math.pi))

    return ThresholdDistribution(cdf=cdf, pdf=pdf, name=f"gaussian_{mu:g}_{sigma:g}",
                                 spec=["gaussian", mu, sigma])


def _step() -> ThresholdDistribution:
    """Density 4/3 on [0, .25] and [.75, 1], 2/3 on [.25, .75]; F(.25) = 1/3, F(.75) = 2/3."""

    def cdf(e):
        e = tf.clip_by_value(e, 0.0, 1.0)
        low = 4.0 / 3.0 * e
        middle = 1.0 / 3.0 + 2.0 / 3.0 * (e - 0.25)
        high = 2.0 / 3.0 + 4.0 / 3.0 * (e - 0.75)
        return tf.where(e < 0.25, low, tf.where(e < 0.75, middle, high))

    def pdf(e):
        inside = (e >= 0.0) & (e <= 1.0)
        middle = (e >= 0.25) & (e < 0.75)
        density = tf.where(middle, 2.0 / 3.0 * tf.ones_like(e), 4.0 / 3.0 * tf.ones_like(e))
        return tf.where(inside, density, tf.zeros_like(e))

    return ThresholdDistribution(cdf=cdf, pdf=pdf, name="step", spec="step")


def get_distribution(distribution) -> ThresholdDistribution:
    """A :class:`ThresholdDistribution` from its description.

    Args:
        distribution: ``"uniform"``, ``"step"``, ``("gaussian", mu, sigma)`` (tuple or list),
            a ``(cdf, pdf)`` pair of callables, or a :class:`ThresholdDistribution`.

    Raises:
        ValueError: an unknown description.
    """
    if isinstance(distribution, ThresholdDistribution):
        return distribution
    if isinstance(distribution, str):
        if distribution == "uniform":
            return _uniform()
        if distribution == "step":
            return _step()
        if distribution == "gaussian":
            raise ValueError("a gaussian needs its parameters: ('gaussian', mu, sigma)")
    elif isinstance(distribution, (tuple, list)):
        if len(distribution) == 3 and distribution[0] == "gaussian":
            return _gaussian(distribution[1], distribution[2])
        if len(distribution) == 2 and all(callable(f) for f in distribution):
            return ThresholdDistribution(cdf=distribution[0], pdf=distribution[1])
    raise ValueError(
        f"unknown threshold distribution {distribution!r}: expected 'uniform', 'step', "
        "('gaussian', mu, sigma), a (cdf, pdf) pair or a ThresholdDistribution"
    )


def generalized_lovasz_softmax(
    probas, labels, distribution="uniform", classes="present", per_image=False, ignore=None,
    normalize: bool = False,
) -> tf.Tensor:
    """Generalised Lovász-softmax: the threshold :math:`\\Delta` follows any distribution (report B).

    The Lovász extension is the expectation of the Jaccard loss over a uniform threshold on the
    errors. With a threshold of CDF F and density f, per class c (errors sorted decreasingly,
    g = :func:`lovasz_grad` of the sorted ground truth):

    .. math::

        \\ell_c = \\sum_i \\big(F(e_{(i)}) - F(0)\\big)\\, g_i,\\qquad
        \\frac{\\partial \\ell_c}{\\partial e_{(i)}} = f(e_{(i)})\\, g_i

    the report's eq. 3.16 (:math:`g_i = IoU(E_{i-1}) - IoU(E_i)`). Subtracting F(0) makes a
    perfect prediction give 0; ``"uniform"`` (F(x) = x) is exactly :func:`lovasz_softmax`.
    Without ``normalize`` the loss is bounded by F(1) - F(0), which is small for wide
    distributions (about 0.04 for N(0.5, 10)); ``normalize=True`` divides by F(1) - F(0).

    Args:
        probas, labels, classes, per_image, ignore: as :func:`lovasz_softmax`.
        distribution: ``"uniform"``, ``("gaussian", mu, sigma)``, ``"step"`` (density 4/3 on
            [0, .25] and [.75, 1], 2/3 on [.25, .75]), a ``(cdf, pdf)`` pair or a
            :class:`ThresholdDistribution`.
        normalize: divide by F(1) - F(0) so that the loss lies in [0, 1] like the plain one.

    Returns:
        scalar float tensor.
    """
    dist = get_distribution(distribution)
    if dist.spec == "uniform":
        transform = lambda e: e  # noqa: E731  (bit-identical to the plain loss)
    else:
        def transform(e):
            return dist.cdf(e) - dist.cdf(tf.zeros_like(e))
    losses, present = _lovasz_per_class(probas, labels, per_image, ignore, transform)
    loss = _average_classes(losses, present, classes)
    if normalize and dist.spec != "uniform":
        scale = dist.cdf(tf.ones([], loss.dtype)) - dist.cdf(tf.zeros([], loss.dtype))
        loss = loss / scale
    return loss
