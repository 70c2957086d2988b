import math

import keras  # noqa: E402
import numpy as np
import pytest
import tensorflow as tf  # noqa: E402

import training  # noqa: F401  (environment first)
from training import losses as L  # noqa: E402
from training.losses import (  # noqa: E402
    LOSSES,
    build_loss,
    categorical_crossentropy,
    dice_loss,
    generalized_lovasz_softmax,
    get_distribution,
    lovasz_softmax,
    soft_iou_loss,
)

K = 3
GT_3X3 = np.array([[0, 0, 1], [0, 1, 1], [2, 2, 2]], dtype=np.uint8)


def one_hot(labels, num_classes=K):
    labels = np.asarray(labels)
    out = np.zeros(labels.shape + (num_classes,), np.float32)
    for k in range(num_classes):
        out[..., k] = labels == k
    return out


def random_probas(rng, shape, num_classes=K):
    logits = rng.normal(size=shape + (num_classes,)) * 2
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def value(loss_fn, y_true, y_pred, **kw):
    return float(loss_fn(tf.constant(y_true), tf.constant(y_pred), **kw))


FUNCTIONS = {
    "cce": categorical_crossentropy,
    "dice": dice_loss,
    "soft_iou": soft_iou_loss,
    "lovasz": lambda y, p: lovasz_softmax(p, y, ignore=255),
    "lovasz_step": lambda y, p: generalized_lovasz_softmax(p, y, "step", ignore=255),
    "lovasz_gaussian": lambda y, p: generalized_lovasz_softmax(p, y, ("gaussian", .5, .5), ignore=255),
}


# --------------------------------------------------------------------------- common properties


@pytest.mark.parametrize("name", FUNCTIONS)
def test_perfect_is_zero_wrong_is_positive(name):
    fn = FUNCTIONS[name]
    y = GT_3X3[None]
    assert value(fn, y, one_hot(y)) == pytest.approx(0.0, abs=1e-6)
    wrong = one_hot((y + 1) % K)
    assert value(fn, y, wrong) > 0.1


@pytest.mark.parametrize("name", FUNCTIONS)
def test_ignored_pixels_change_nothing(name):
    fn = FUNCTIONS[name]
    rng = np.random.default_rng(1)
    y = rng.integers(0, K, (2, 4, 4)).astype(np.uint8)
    p = random_probas(rng, (2, 4, 4))
    y_ignored = y.copy()
    y_ignored[:, :, 0] = 255
    p_other = p.copy()
    p_other[:, :, 0] = random_probas(rng, (2, 4))  # anything under the ignored pixels
    base = value(fn, y_ignored, p)
    assert value(fn, y_ignored, p_other) == pytest.approx(base, abs=1e-6)
    # Same as the loss on the kept pixels only.
    assert value(fn, y[:, :, 1:], p[:, :, 1:]) == pytest.approx(base, abs=1e-6)
    # No gradient reaches ignored pixels.
    pt = tf.Variable(p)
    with tf.GradientTape() as tape:
        loss = fn(tf.constant(y_ignored), pt)
    grad = tape.gradient(loss, pt).numpy()
    assert np.all(grad[:, :, 0] == 0) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_label_forms_agree(name):
    """uint8 (B,H,W), int (B,H,W,1) and float32 labels (as Keras casts them) give one value."""
    fn = FUNCTIONS[name]
    rng = np.random.default_rng(2)
    y = rng.integers(0, K, (2, 3, 3)).astype(np.uint8)
    y[0, 0] = 255
    p = random_probas(rng, (2, 3, 3))
    base = value(fn, y, p)
    assert value(fn, y[..., None].astype(np.int64), p) == pytest.approx(base, abs=1e-6)
    assert value(fn, y.astype(np.float32), p) == pytest.approx(base, abs=1e-6)


# --------------------------------------------------------------------------- hand-computed values

P_HALF = np.full((1, 2, 2, 2), 0.5, np.float32)
P_MIX = np.array([[[[0.8, 0.2], [0.4, 0.6]], [[0.5, 0.5], [0.1, 0.9]]]], np.float32)
Y_2X2 = np.array([[[0, 1], [0, 255]]], np.uint8)


@pytest.mark.parametrize("y, p, expected", [
    (Y_2X2, P_HALF, math.log(2)),
    # pixels kept: p_true = 0.8, 0.6, 0.5 (the ignored 0.1/0.9 pixel does not count)
    (Y_2X2, P_MIX, -(math.log(0.8) + math.log(0.6) + math.log(0.5)) / 3),
    (np.array([[[1, 1], [1, 1]]], np.uint8), P_MIX, -(math.log(.2) + math.log(.6) + math.log(.5)
                                                       + math.log(.9)) / 4),
])
def test_cross_entropy_hand_computed(y, p, expected):
    assert value(categorical_crossentropy, y, p) == pytest.approx(expected, rel=1e-6)


def test_class_weighted_cross_entropy_hand_computed():
    # kept pixels: class 0 with p_true .8 and .5 (weight 1 each), class 1 with p_true .6 (weight 3);
    # the ignored pixel has no weight. Weighted mean: divided by the total weight 1 + 3 + 1.
    expected = -(math.log(0.8) + 3 * math.log(0.6) + math.log(0.5)) / 5
    assert value(categorical_crossentropy, Y_2X2, P_MIX, class_weights=[1, 3]) == pytest.approx(expected, rel=1e-6)
    plain = value(categorical_crossentropy, Y_2X2, P_MIX)
    assert value(categorical_crossentropy, Y_2X2, P_MIX, class_weights=[1, 1]) == pytest.approx(plain, rel=1e-6)
    assert value(categorical_crossentropy, Y_2X2, P_MIX, class_weights=[2, 6]) == pytest.approx(expected, rel=1e-6)
    only_ignored = np.full_like(Y_2X2, 255)
    assert value(categorical_crossentropy, only_ignored, P_MIX, class_weights=[1, 3]) == 0.0
    with pytest.raises(ValueError, match="3 values for 2 classes"):
        value(categorical_crossentropy, Y_2X2, P_MIX, class_weights=[1, 1, 1])


@pytest.mark.parametrize("weights", [[1, float("nan")], [float("inf"), 1], [0, 1], [-1, 2]])
def test_class_weights_that_train_nothing_are_refused_by_the_loss_itself(weights):
    """The config refuses them too; a loss built in Python must not take a NaN (nan <= 0 is False)."""
    from training.losses import CategoricalCrossentropy

    with pytest.raises(ValueError, match="positive finite numbers"):
        CategoricalCrossentropy(class_weights=weights)


def test_class_weights_in_the_keras_losses_and_the_registry():
    weighted = build_loss("cce", class_weights=[1, 3])
    assert float(weighted(Y_2X2, P_MIX)) == pytest.approx(
        -(math.log(0.8) + 3 * math.log(0.6) + math.log(0.5)) / 5, rel=1e-6)
    combined = build_loss("cce_dice", cce_class_weights=[1, 3], beta=2)
    cce_term, dice_term = (term for _, term in combined.terms)
    assert cce_term.class_weights == [1.0, 3.0] and dice_term.beta == 2 and dice_term.class_weights is None
    assert float(combined(Y_2X2, P_MIX)) == pytest.approx(
        float(weighted(Y_2X2, P_MIX)) + value(dice_loss, Y_2X2, P_MIX, beta=2), rel=1e-5)
    rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(combined))
    assert rebuilt.get_config() == combined.get_config()  # saved with the model, weights included
    for bad in ([], [1, 0], [1, "2"], "human", 3):
        with pytest.raises(ValueError, match="class_weights"):
            build_loss("cce", class_weights=bad)


@pytest.mark.parametrize("y, p, expected", [
    # class 0: tp = .8 + .5 = 1.3, sum X = 1.3 + .4 = 1.7, |Y| = 2 -> dice 2.6 / 3.7
    # class 1: tp = .6, sum X = .2 + .6 + .5 = 1.3, |Y| = 1 -> dice 1.2 / 2.3
    (Y_2X2, P_MIX, 1 - (2.6 / 3.7 + 1.2 / 2.3) / 2),
    (Y_2X2, P_HALF, 1 - (2 * 1.0 / (1.5 + 2) + 2 * 0.5 / (1.5 + 1)) / 2),
    # class 1 absent and never predicted: scores s / s = 1, as segmentation_models
    (np.zeros((1, 2, 2), np.uint8), np.stack([np.ones((1, 2, 2)), np.zeros((1, 2, 2))], -1)
     .astype(np.float32), 0.0),
])
def test_dice_hand_computed(y, p, expected):
    assert value(dice_loss, y, p) == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_dice_beta_weights_recall():
    # beta = 2 on P_MIX class 0: (5 * 1.3) / (5 * 1.3 + 4 * 0.7 + 0.4)
    # class 1: tp .6, fn .4, fp .7 -> 3 / (3 + 1.6 + .7)
    expected = 1 - (6.5 / 9.7 + 3.0 / 5.3) / 2
    assert value(dice_loss, Y_2X2, P_MIX, beta=2) == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("y, p, expected", [
    # class 0: I = 1.3, U = 1.7 + 2 - 1.3 = 2.4; class 1: I = .6, U = 1.3 + 1 - .6 = 1.7
    (Y_2X2, P_MIX, 1 - (1.3 / 2.4 + 0.6 / 1.7) / 2),
    (Y_2X2, P_HALF, 1 - (1.0 / 2.5 + 0.5 / 2.0) / 2),
    # 3x3, K = 3, a uniform prediction: I_k = 1, U_k = 3 + 3 - 1 = 5 for every class
    (GT_3X3[None], np.full((1, 3, 3, 3), 1 / 3, np.float32), 1 - 1 / 5),
])
def test_soft_iou_hand_computed(y, p, expected):
    assert value(soft_iou_loss, y, p) == pytest.approx(expected, rel=1e-5)


def test_soft_iou_absent_class_counts_as_in_the_source_formula():
    y = np.zeros((1, 2, 2), np.uint8)  # only class 0; class 1 absent
    p = np.stack([np.full((1, 2, 2), .9), np.full((1, 2, 2), .1)], -1).astype(np.float32)
    # class 0: I = 3.6, U = 3.6 + 4 - 3.6 = 4; class 1: I = 0, U = .4 -> ratio 0
    assert value(soft_iou_loss, y, p) == pytest.approx(1 - (3.6 / 4) / 2, rel=1e-5)
    assert value(soft_iou_loss, y, p, classes="present") == pytest.approx(1 - 3.6 / 4, rel=1e-5)


def test_soft_iou_gradient_is_the_closed_form_of_the_source():
    rng = np.random.default_rng(3)
    y = rng.integers(0, K, (2, 3, 4)).astype(np.uint8)
    y[0, 0, 0] = 255
    x = rng.uniform(0.05, 1.0, (2, 3, 4, K)).astype(np.float64)  # unnormalised, no softmax
    xt = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = soft_iou_loss(tf.constant(y), xt)
    grad = tape.gradient(loss, xt).numpy()

    valid = (y != 255)[..., None]
    Y = one_hot(np.where(y == 255, 0, y)) * valid
    X = x * valid
    inter = (X * Y).sum((0, 1, 2))
    union = X.sum((0, 1, 2)) + Y.sum((0, 1, 2)) - inter
    expected = np.where(Y == 1, -1 / (K * union), inter / (K * union ** 2)) * valid
    np.testing.assert_allclose(grad, expected, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- Lovász vs numpy reference


def np_lovasz_grad(gt_sorted):
    gts = gt_sorted.sum()
    intersection = gts - np.cumsum(gt_sorted)
    union = gts + np.cumsum(1.0 - gt_sorted)
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def np_lovasz_flat(probas, labels, classes, cdf=lambda e: e):
    if len(labels) == 0:
        return 0.0
    C = probas.shape[1]
    losses = []
    for c in (range(C) if classes in ("all", "present") else classes):
        fg = (labels == c).astype(np.float64)
        if classes == "present" and fg.sum() == 0:
            continue
        errors = np.abs(fg - probas[:, c])
        order = np.argsort(-errors, kind="stable")
        losses.append(np.dot(cdf(errors[order]) - cdf(0.0), np_lovasz_grad(fg[order])))
    return float(np.mean(losses)) if losses else 0.0


def np_lovasz_softmax(probas, labels, classes="present", per_image=False, ignore=None,
                      cdf=lambda e: e):
    def flat(p, lab):
        p, lab = p.reshape(-1, p.shape[-1]).astype(np.float64), lab.reshape(-1)
        if ignore is not None:
            keep = lab != ignore
            p, lab = p[keep], lab[keep]
        return np_lovasz_flat(p, lab, classes, cdf)

    if per_image:
        return float(np.mean([flat(p, lab) for p, lab in zip(probas, labels)]))
    return flat(probas, labels)


LOVASZ_CASES = [
    dict(classes="present"), dict(classes="all"), dict(classes=[0, 2]), dict(classes=[1]),
    dict(per_image=True), dict(per_image=True, classes="all"),
    dict(ignore=255), dict(ignore=255, per_image=True, classes=[2, 3]),
    dict(ignore=None, classes="all"),  # 255 kept: background for every class
]


@pytest.mark.parametrize("options", LOVASZ_CASES, ids=str)
@pytest.mark.parametrize("seed", [0, 1])
def test_lovasz_matches_numpy_reference(options, seed):
    rng = np.random.default_rng(seed)
    C = 4
    labels = rng.integers(0, C - 1, (3, 5, 6))  # class 3 absent: 'present' and 'all' differ
    labels[0, 0, :3] = 255
    probas = random_probas(rng, (3, 5, 6), C)
    got = float(lovasz_softmax(tf.constant(probas), tf.constant(labels), **options))
    assert got == pytest.approx(np_lovasz_softmax(probas, labels, **options), rel=1e-5, abs=1e-6)


def test_lovasz_only_ignored_pixels_is_zero_with_zero_gradient():
    labels = np.full((2, 3, 3), 255, np.uint8)
    pt = tf.Variable(random_probas(np.random.default_rng(4), (2, 3, 3)))
    for per_image in (False, True):
        with tf.GradientTape() as tape:
            loss = lovasz_softmax(pt, tf.constant(labels), per_image=per_image, ignore=255)
        assert float(loss) == 0.0
        assert np.all(tape.gradient(loss, pt).numpy() == 0)


# --------------------------------------------------------------------------- generalised Lovász


@pytest.mark.parametrize("options", LOVASZ_CASES[:4] + [dict(ignore=255, per_image=True)], ids=str)
def test_uniform_reproduces_plain_lovasz_exactly(options):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, (2, 4, 5))
    labels[1, 1] = 255
    probas = tf.constant(random_probas(rng, (2, 4, 5), 3))
    plain = lovasz_softmax(probas, tf.constant(labels), **options)
    general = generalized_lovasz_softmax(probas, tf.constant(labels), "uniform", **options)
    assert float(general) == float(plain)


def test_step_distribution_cdf():
    step = get_distribution("step")
    points = tf.constant([0.0, 0.25, 0.5, 0.75, 1.0, 1.5, -1.0])
    np.testing.assert_allclose(step.cdf(points).numpy(), [0, 1 / 3, 0.5, 2 / 3, 1, 1, 0], atol=1e-6)
    np.testing.assert_allclose(step.pdf(tf.constant([.1, .3, .7, .9])).numpy(),
                               [4 / 3, 2 / 3, 2 / 3, 4 / 3], atol=1e-6)


def test_gaussian_cdf_matches_erf():
    dist = get_distribution(("gaussian", 0.9, 0.5))
    for e in (0.0, 0.3, 0.9, 1.0):
        expected = 0.5 * (1 + math.erf((e - 0.9) / (0.5 * math.sqrt(2))))
        assert float(dist.cdf(tf.constant(e))) == pytest.approx(expected, rel=1e-6)


def gaussian_pdf(mu, sigma):
    return lambda e: np.exp(-0.5 * ((e - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


DISTRIBUTIONS = {
    "gaussian": (("gaussian", 0.5, 0.5), gaussian_pdf(0.5, 0.5)),
    "gaussian_fp": (("gaussian", 0.9, 0.5), gaussian_pdf(0.9, 0.5)),
    "step": ("step", lambda e: np.where((e >= .25) & (e < .75), 2 / 3, 4 / 3)),
}


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_generalized_gradient_is_density_times_iou_increments(name):
    """Eq. 3.16: d loss / d e_(i) = f(e_(i)) g_i, g = IoU increments along the sorted errors."""
    spec, pdf = DISTRIBUTIONS[name]
    rng = np.random.default_rng(6)
    c = 1
    labels = rng.integers(0, 3, (2, 4, 4))
    probas = random_probas(rng, (2, 4, 4), 3).astype(np.float64)
    pt = tf.Variable(probas)
    with tf.GradientTape() as tape:
        loss = generalized_lovasz_softmax(pt, tf.constant(labels), spec, classes=[c])
    grad = tape.gradient(loss, pt).numpy()[..., c].reshape(-1)

    fg = (labels.reshape(-1) == c).astype(np.float64)
    errors = np.abs(fg - probas[..., c].reshape(-1))
    order = np.argsort(-errors, kind="stable")
    increments = np.empty_like(errors)
    increments[order] = np_lovasz_grad(fg[order])
    d_loss_d_errors = pdf(errors) * increments
    d_errors_d_probas = np.where(fg == 1, -1.0, 1.0)
    np.testing.assert_allclose(grad, d_loss_d_errors * d_errors_d_probas, rtol=1e-6, atol=1e-9)

    # and the value is sum (F(e) - F(0)) g over the sorted errors
    cdf = get_distribution(spec).cdf
    expected_value = float(tf.reduce_sum((cdf(tf.constant(errors)) - cdf(tf.constant(0.0, tf.float64)))
                                         * increments))
    assert float(loss) == pytest.approx(expected_value, rel=1e-9)


def test_generalized_values_match_numpy_with_ignore_and_per_image():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 3, (3, 4, 4))
    labels[0, 0] = 255
    probas = random_probas(rng, (3, 4, 4), 3)
    mu, sigma = 0.5, 0.5
    np_cdf = np.vectorize(lambda e: 0.5 * (1 + math.erf((e - mu) / (sigma * math.sqrt(2)))))
    got = generalized_lovasz_softmax(tf.constant(probas), tf.constant(labels), ("gaussian", mu, sigma),
                                     per_image=True, ignore=255)
    expected = np_lovasz_softmax(probas, labels, per_image=True, ignore=255, cdf=np_cdf)
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_custom_distribution_pair_and_normalize():
    rng = np.random.default_rng(8)
    labels = tf.constant(rng.integers(0, 3, (1, 4, 4)))
    probas = tf.constant(random_probas(rng, (1, 4, 4), 3))
    # F(x) = 2x: twice the plain loss; normalize divides by F(1) - F(0) = 2.
    pair = (lambda e: 2 * e, lambda e: 2 * tf.ones_like(e))
    plain = float(lovasz_softmax(probas, labels))
    assert float(generalized_lovasz_softmax(probas, labels, pair)) == pytest.approx(2 * plain, rel=1e-6)
    assert float(generalized_lovasz_softmax(probas, labels, pair, normalize=True)) == pytest.approx(
        plain, rel=1e-6)
    with pytest.raises(ValueError, match="unknown threshold distribution"):
        get_distribution("cauchy")


# --------------------------------------------------------------------------- composition and registry


def test_sum_and_weight_compose():
    rng = np.random.default_rng(9)
    y = tf.constant(rng.integers(0, K, (2, 4, 4)).astype(np.uint8))
    p = tf.constant(random_probas(rng, (2, 4, 4)))
    c, d = float(L.cce(y, p)), float(L.dice(y, p))
    assert float(L.cce_dice(y, p)) == pytest.approx(c + d, rel=1e-6)
    assert float((L.cce + L.dice)(y, p)) == pytest.approx(c + d, rel=1e-6)
    assert float((0.5 * L.dice)(y, p)) == pytest.approx(d / 2, rel=1e-6)
    assert float((L.dice * 0.5)(y, p)) == pytest.approx(d / 2, rel=1e-6)
    assert float(sum([L.cce, L.dice, L.lovasz])(y, p)) == pytest.approx(
        c + d + float(L.lovasz(y, p)), rel=1e-6)
    assert L.cce_dice.name == "categorical_crossentropy_plus_dice_loss"
    assert (L.cce + 0.5 * L.dice).name == "categorical_crossentropy_plus_0.5x_dice_loss"
    assert isinstance(L.cce_dice, L.Loss) and isinstance(L.cce_dice, keras.losses.Loss)


def test_build_loss_registry():
    assert set(LOSSES) == {"cce", "dice", "cce_dice", "soft_iou", "lovasz", "lovasz_gaussian",
                           "lovasz_gaussian_wide", "lovasz_fp", "lovasz_step"}
    assert build_loss("lovasz", per_image=True).per_image is True
    assert build_loss("lovasz_fp").distribution.spec == ["gaussian", 0.9, 0.5]
    assert build_loss("lovasz_gaussian_wide").distribution.spec == ["gaussian", 0.5, 10.0]
    assert build_loss("cce") is not build_loss("cce")
    with pytest.raises(ValueError, match="Unknown loss: 'focal'.*cce_dice"):
        build_loss("focal")


def tiny_model():
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Conv2D(4, 3, padding="same", activation="softmax", name="classes")(inputs)
    return keras.Model(inputs, outputs)


def tiny_data(seed=10):
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(4, 8, 8, 3)).astype(np.float32)
    y = rng.integers(0, 4, (4, 8, 8)).astype(np.uint8)
    y[:, :2] = 255
    return x, y


# numpy references of the registry's losses (the Keras classes' defaults: ignore 255, smooth 1e-5)


def np_cross_entropy(y, p, ignore=255):
    valid = y != ignore
    truth = np.take_along_axis(p.astype(np.float64), np.where(valid, y, 0)[..., None].astype(int), -1)[..., 0]
    return float(-np.log(np.clip(truth, 1e-7, 1.0))[valid].mean())


def np_counts(y, p, ignore=255):
    """Soft true positives, sum of probabilities and sum of one-hot truth per class."""
    valid = (y != ignore)[..., None]
    truth = one_hot(np.where(y == ignore, 0, y), p.shape[-1]) * valid
    x = p.astype(np.float64) * valid
    return (x * truth).sum((0, 1, 2)), x.sum((0, 1, 2)), truth.sum((0, 1, 2))


def np_dice(y, p, smooth=1e-5):
    tp, x_sum, y_sum = np_counts(y, p)
    return float(1 - np.mean((2 * tp + smooth) / (x_sum + y_sum + smooth)))  # 2TP + FN + FP = sum X + sum Y


def np_soft_iou(y, p):
    intersection, x_sum, y_sum = np_counts(y, p)
    union = x_sum + y_sum - intersection
    return float(1 - np.mean(intersection[union > 0] / union[union > 0]))


def np_gaussian_cdf(mu, sigma):
    return np.vectorize(lambda e: 0.5 * (1 + math.erf((e - mu) / (sigma * math.sqrt(2)))))


def np_step_cdf(e):
    e = np.clip(e, 0.0, 1.0)
    return np.where(e < .25, 4 / 3 * e, np.where(e < .75, 1 / 3 + 2 / 3 * (e - .25), 2 / 3 + 4 / 3 * (e - .75)))


def np_lovasz(cdf=lambda e: e, **options):
    return lambda y, p: np_lovasz_softmax(p, y, ignore=255, cdf=cdf, **options)


NUMPY_LOSSES = {
    "cce": np_cross_entropy,
    "dice": np_dice,
    "cce_dice": lambda y, p: np_cross_entropy(y, p) + np_dice(y, p),
    "soft_iou": np_soft_iou,
    "lovasz": np_lovasz(),
    "lovasz_gaussian": np_lovasz(np_gaussian_cdf(0.5, 0.5)),
    "lovasz_gaussian_wide": np_lovasz(np_gaussian_cdf(0.5, 10.0)),
    "lovasz_fp": np_lovasz(np_gaussian_cdf(0.9, 0.5)),
    "lovasz_step": np_lovasz(np_step_cdf),
}


def batch_weighted(reference, y, p, batch_size):
    """What ``model.evaluate`` reports: the loss of each batch, weighted by the batch's size."""
    starts = range(0, len(y), batch_size)
    return sum(reference(y[i:i + batch_size], p[i:i + batch_size]) * len(y[i:i + batch_size])
               for i in starts) / len(y)


def test_the_numpy_references_agree_with_the_hand_computed_values():
    assert np_cross_entropy(Y_2X2, P_MIX) == pytest.approx(-(math.log(.8) + math.log(.6) + math.log(.5)) / 3)
    assert np_dice(Y_2X2, P_MIX) == pytest.approx(1 - (2.6 / 3.7 + 1.2 / 2.3) / 2, rel=1e-4)
    assert np_soft_iou(Y_2X2, P_MIX) == pytest.approx(1 - (1.3 / 2.4 + 0.6 / 1.7) / 2)
    assert np_step_cdf(np.array([0.0, 0.25, 0.5, 0.75, 1.0, 1.5])) == pytest.approx([0, 1 / 3, .5, 2 / 3, 1, 1])


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_registry_loss_fits_in_graph_mode(name):
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=build_loss(name))
    x, y = tiny_data()
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    probabilities = model.predict(x, batch_size=4, verbose=0)
    reference = NUMPY_LOSSES[name]
    # the compiled loss is the numpy one, on a whole batch and on batches of 2 then 1 (dynamic size)
    assert model.evaluate(x, y, batch_size=4, verbose=0) == pytest.approx(reference(y, probabilities), rel=1e-4)
    assert model.evaluate(x[:3], y[:3], batch_size=2, verbose=0) == pytest.approx(
        batch_weighted(reference, y[:3], probabilities[:3], 2), rel=1e-4)


def test_model_with_composed_loss_saves_and_reloads(tmp_path):
    keras.utils.set_random_seed(0)
    model = tiny_model()
    loss = L.cce + 0.5 * L.LovaszSoftmaxLoss(per_image=True) + build_loss("lovasz_step")
    model.compile(optimizer="adam", loss=loss)
    x, y = tiny_data()
    model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.loss, L.SumLoss)
    assert reloaded.loss.name == loss.name
    assert reloaded.loss.get_config() == loss.get_config()
    assert [type(term) for _, term in reloaded.loss.terms] == [
        L.CategoricalCrossentropy, L.LovaszSoftmaxLoss, L.GeneralizedLovaszLoss]
    assert reloaded.evaluate(x, y, verbose=0) == pytest.approx(model.evaluate(x, y, verbose=0),
                                                               rel=1e-5)


def test_lovasz_and_soft_iou_compile_with_xla():
    keras.utils.set_random_seed(0)
    model = tiny_model()
    model.compile(optimizer="adam", loss=L.cce + L.soft_iou + build_loss("lovasz_fp", per_image=True),
                  jit_compile=True)
    x, y = tiny_data()
    model.fit(x, y, batch_size=3, epochs=1, verbose=0)  # batches of 3 then 1

    def reference(labels, probabilities):
        return (np_cross_entropy(labels, probabilities) + np_soft_iou(labels, probabilities)
                + np_lovasz(np_gaussian_cdf(0.9, 0.5), per_image=True)(labels, probabilities))

    probabilities = model.predict(x, batch_size=4, verbose=0)
    assert model.evaluate(x, y, batch_size=3, verbose=0) == pytest.approx(
        batch_weighted(reference, y, probabilities, 3), rel=1e-4)
