"""Is run B really better than run A, or is it noise? A paired bootstrap over images.

Images are the unit of sampling (the pixels of one image are far from independent). A resample
draws N image indices with replacement, the same draw for A and B: paired, so an image hard for
both stays hard for both and the interval measures what differs between the models. Resample r
takes the images ``numpy.random.default_rng(seed).integers(0, N, size=(R, N))[r]``.

Every mIoU of ``training.evaluation.variants`` gets an interval from the same resamples: both
classes variants (all classes, from ``per_image_confusion.npy``; official, from
``per_image_official_confusion.npy``), each averaged both ways:

* pooled: the IoU of the resample's summed confusion counts, how a run's own ``miou`` and
  ``miou_official`` are computed (frequent classes and big objects weigh more);
* per image: the mean over images of each image's own mIoU.

A block of numbers (``a``, ``b``, ``difference`` on all the images; ``ci95_low`` and ``ci95_high``,
the 2.5 and 97.5 percentiles of the resampled differences B - A; ``significant`` when they exclude
0; ``b_wins`` and ``ties``, shares of the resamples) is given for each variant pooled, per image,
and per class (pooled IoU).

A class with an empty union (absent from ground truth and prediction) has no IoU and is left out of
a mean, as in ``metrics.mean_iou``. A class's interval uses the resamples where it has an IoU in
both runs (``resamples_used``); its numbers are None where there is none. Every result is ready for
JSON: numbers that would be NaN are None.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.data.labels import get_class_set
from training.evaluation.variants import MIOU, MIOU_OFFICIAL, PER_IMAGE, POOLED, VARIANTS, MiouVariant
from training.files import finite_or_none

MAX_RESAMPLES = 100_000  # the (R x N) draws are held in memory at once
MIN_RESAMPLES = 100  # fewer make the 2.5 and 97.5 percentiles meaningless


def paired_bootstrap(confusions_a, confusions_b, classes: Sequence[int] | None = None, resamples: int = 1000,
                     seed: int = 0) -> dict:
    """Bootstrap B - A over the images of two ``(N, E, E)`` stacks of per-image confusion counts
    (rows = ground truth, the same images in the same order), the mIoU being the mean over
    ``classes`` (class indices; default: all E; the others, such as a sink column, count as misses
    only).

    Returns ``images``, ``resamples``, ``seed``, ``classes`` and the pooled block (``a``, ``b``,
    ``difference`` on all images, ``ci95_low``, ``ci95_high``, ``b_wins``, ``ties``, ``significant``,
    ``resamples_used``), ``per_image`` (the same keys for the mean of per-image mIoUs, plus
    ``images``: those with an mIoU in both runs) and ``per_class`` (a list in ``classes`` order:
    ``class`` and the same keys for its pooled IoU).

    Raises:
        ValueError: shapes differ or are not stacks of square matrices, fewer than 2 images, or
            ``resamples`` / ``classes`` out of range.
    """
    a, b = _check_stacks(confusions_a, confusions_b)
    picked = tuple(range(a.shape[1])) if classes is None else tuple(int(c) for c in classes)
    if not picked or min(picked) < 0 or max(picked) >= a.shape[1]:
        raise ValueError(f"classes must be indices within 0..{a.shape[1] - 1}, got {list(picked)}")
    weights = resample_weights(len(a), resamples, seed)
    return {"images": len(a), "resamples": resamples, "seed": seed, "classes": list(picked),
            **variant_block(a, b, picked, weights)}


def _check_stacks(confusions_a, confusions_b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(confusions_a), np.asarray(confusions_b)
    if a.ndim != 3 or a.shape[1] != a.shape[2] or a.shape != b.shape:
        raise ValueError(f"need two stacks of N square confusion matrices of one shape, got {a.shape} and {b.shape}")
    if len(a) < 2:
        raise ValueError(f"a bootstrap needs at least 2 images, got {len(a)}")
    return a, b


def resample_weights(n: int, resamples: int, seed: int) -> np.ndarray:
    """``(1 + R, N)``: row 0 weighs every image once (the estimate on all images), row r how often
    resample r draws each image (rows sum to N)."""
    if not MIN_RESAMPLES <= resamples <= MAX_RESAMPLES:
        raise ValueError(f"resamples must be within {MIN_RESAMPLES}..{MAX_RESAMPLES}, got {resamples} (fewer "
                         f"than {MIN_RESAMPLES} cannot give a 95% interval worth the name)")
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    flat = (draws + n * np.arange(resamples)[:, None]).ravel()  # resample r counts in bins r*N..r*N+N-1
    counts = np.bincount(flat, minlength=resamples * n).reshape(resamples, n).astype(np.float64)
    return np.vstack([np.ones((1, n)), counts])


def variant_block(a: np.ndarray, b: np.ndarray, classes: tuple[int, ...], weights: np.ndarray) -> dict:
    """The pooled block, ``per_image`` and ``per_class`` of two stacks for the mean over ``classes``,
    over the resamples of ``weights`` (``resample_weights``)."""
    k = len(classes)
    counts_a, counts_b = _class_counts(a, classes), _class_counts(b, classes)
    image_a, image_b = _mean_rows(_iou(counts_a, k)), _mean_rows(_iou(counts_b, k))
    both = np.isfinite(image_a) & np.isfinite(image_b)  # an image with no scored pixel has no mIoU
    per_image_columns = np.stack([np.where(both, image_a, 0.0), np.where(both, image_b, 0.0), both], axis=1)
    # One matrix product gives every resample's sums; float64 adds integer counts exactly below 2**53.
    sums = weights @ np.hstack([counts_a, counts_b, per_image_columns])
    iou_a, iou_b = _iou(sums[:, :3 * k], k), _iou(sums[:, 3 * k:6 * k], k)
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample of images without an mIoU
        per_image_a, per_image_b = sums[:, -3] / sums[:, -1], sums[:, -2] / sums[:, -1]
    return {
        **_summary(_mean_rows(iou_a), _mean_rows(iou_b)),
        "per_image": {**_summary(per_image_a, per_image_b), "images": int(both.sum())},
        "per_class": [{"class": c, **_summary(iou_a[:, i], iou_b[:, i])} for i, c in enumerate(classes)],
    }


def _class_counts(confusions: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    """``(N, 3K)`` true positives, ground-truth and predicted pixels of each class: all an IoU needs,
    so a resample sums 3K numbers per image instead of E x E. Rows and columns of other classes (a
    sink) still count as misses of the true class, as in ``metrics.iou_per_class``."""
    counts = confusions.astype(np.float64)
    picked = list(classes)
    true_positive = np.diagonal(counts, axis1=1, axis2=2)[:, picked]
    return np.hstack([true_positive, counts.sum(axis=2)[:, picked], counts.sum(axis=1)[:, picked]])


def _iou(counts: np.ndarray, k: int) -> np.ndarray:
    """Rows of ``_class_counts`` (or their sums) -> ``(rows, K)`` IoU, NaN for an empty union."""
    true_positive, truth, predicted = counts[:, :k], counts[:, k:2 * k], counts[:, 2 * k:3 * k]
    union = truth + predicted - true_positive
    return np.where(union > 0, true_positive / np.where(union > 0, union, 1.0), np.nan)


def _mean_rows(values: np.ndarray) -> np.ndarray:
    """Mean of each row over its finite entries, NaN for a row without any (``mean_iou`` of rows,
    without numpy's warning for an empty mean)."""
    finite = np.isfinite(values)
    present = finite.sum(axis=1)
    total = np.where(finite, values, 0.0).sum(axis=1)
    return np.where(present > 0, total / np.maximum(present, 1), np.nan)


def _summary(values_a: np.ndarray, values_b: np.ndarray) -> dict:
    """Row 0: on all images; the other rows: resamples (differences undefined in one are left out)."""
    difference = values_b - values_a
    resampled = difference[1:][np.isfinite(difference[1:])]
    low, high = np.percentile(resampled, [2.5, 97.5]) if resampled.size else (np.nan, np.nan)
    return {
        "a": finite_or_none(values_a[0]), "b": finite_or_none(values_b[0]),
        "difference": finite_or_none(difference[0]),
        "ci95_low": finite_or_none(low), "ci95_high": finite_or_none(high),
        "b_wins": finite_or_none(np.mean(resampled > 0)) if resampled.size else None,
        "ties": finite_or_none(np.mean(resampled == 0)) if resampled.size else None,
        "significant": bool(low > 0 or high < 0), "resamples_used": int(resampled.size),
    }


def compare_runs(run_a, run_b, resamples: int = 1000, seed: int = 0) -> dict:
    """``paired_bootstrap`` of two published runs (``training.runs.reader.Run``) on the images both
    evaluated, matched by id and taken in increasing id order (so A vs B mirrors B vs A), for every
    mIoU variant from the same resamples.

    Returns ``run_a`` and ``run_b`` (``name``, ``uid``, ``images`` evaluated, the published ``miou``
    and ``miou_official`` on all of them), ``classes``, ``split``, ``images`` (shared), ``resamples``,
    ``seed``, and per variant key (``miou``, ``miou_official``) its ``label`` and block (as
    ``paired_bootstrap``'s, each ``per_class`` row with its ``name``); a run that lacks the
    variant's per-image confusions (stored before they were) gives ``{"label", "missing": why}``.

    Raises:
        ValueError: the runs predict different class sets, were scored on different splits or
            dataset indexes, share fewer than 2 images, or hold inconsistent per-image files.
    """
    names = f"runs {run_a.name} and {run_b.name}"
    metrics_a, metrics_b = run_a.metrics, run_b.metrics
    for key, what in (("classes", "predict different class sets"), ("split", "were scored on different splits")):
        if metrics_a.get(key) != metrics_b.get(key):
            raise ValueError(f"{names} {what} ({metrics_a.get(key)} and {metrics_b.get(key)}): not comparable")
    fingerprints = [(metrics.get("dataset") or {}).get("fingerprint") for metrics in (metrics_a, metrics_b)]
    if all(fingerprints) and fingerprints[0] != fingerprints[1]:
        raise ValueError(f"{names} were scored on different dataset indexes (fingerprints {fingerprints[0]} and "
                         f"{fingerprints[1]}): the same image id names different images")
    class_set = get_class_set(metrics_a.get("classes"))
    ids_a, ids_b = _image_positions(run_a), _image_positions(run_b)
    shared = sorted(ids_a.keys() & ids_b.keys())
    if len(shared) < 2:
        raise ValueError(f"{names} share {len(shared)} image(s) (A evaluated {len(ids_a)}, B {len(ids_b)}); "
                         "a bootstrap needs at least 2")
    weights = resample_weights(len(shared), resamples, seed)
    described = [{"name": run.name, "uid": run.uid, "images": len(ids),
                  **{v.key: finite_or_none(run.metrics.get(v.key)) for v in VARIANTS}}
                 for run, ids in ((run_a, ids_a), (run_b, ids_b))]
    result = {"run_a": described[0], "run_b": described[1], "classes": class_set.name,
              "split": metrics_a.get("split"), "images": len(shared), "resamples": resamples, "seed": seed}
    for which in VARIANTS:
        missing = [run for run in (run_a, run_b) if not has_confusions(run, which, class_set)]
        if missing:
            result[which.key] = {"label": which.label(), "missing": _missing_text(missing, which)}
            continue
        stacks = [_confusions(run, which, class_set, ids, shared) for run, ids in ((run_a, ids_a), (run_b, ids_b))]
        block = variant_block(*stacks, which.scored(class_set), weights)
        for row in block["per_class"]:
            row["name"] = class_set.names[row["class"]]
        result[which.key] = {"label": which.label(), **block}
    return result


def has_confusions(run, which: MiouVariant, class_set) -> bool:
    """Whether ``run`` holds the per-image confusions of ``which``: all classes always; official in
    its own file, or (cityscapes19, where both rules give the same matrices) the all-classes ones."""
    return which is MIOU or run.has_official_confusion or class_set.official_is_all_classes


def _missing_text(runs, which: MiouVariant) -> str:
    named = " and ".join(run.name for run in runs)
    return (f"{named} {'was' if len(runs) == 1 else 'were'} evaluated before per-image confusions under the "
            f"{which.classes} rules were stored: no interval for the {which.label()} "
            f"(`python -m training rescore RUN` adds them to a trained run)")


def run_confusions(run, which: MiouVariant, class_set, mmap: bool = True) -> np.ndarray:
    """``(N, E, E)`` per-image confusions of ``run`` under ``which``, in per_image.csv order (see
    ``has_confusions``)."""
    if which is MIOU_OFFICIAL and run.has_official_confusion:
        return run.per_image_official_confusion(mmap=mmap)
    return run.per_image_confusion(mmap=mmap)


def _image_positions(run) -> dict[int, int]:
    """Image id -> row of per_image.csv (= index in the per-image confusion files)."""
    try:
        ids = [int(row["id"]) for row in run.per_image()]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"run {run.name}: per_image.csv lacks integer image ids") from None
    if len(set(ids)) != len(ids):
        raise ValueError(f"run {run.name}: per_image.csv lists an image id twice")
    return {image_id: row for row, image_id in enumerate(ids)}


def _confusions(run, which: MiouVariant, class_set, positions: dict[int, int], shared: list[int]) -> np.ndarray:
    """The shared images' confusions, read from the memory-mapped file (only those rows are loaded)."""
    matrices = run_confusions(run, which, class_set)
    size = class_set.num_eval_classes
    if len(matrices) != len(positions) or matrices.shape[1] != size:
        raise ValueError(f"run {run.name}: its per-image confusions ({which.classes}) hold {matrices.shape}, "
                         f"expected {len(positions)} x {size} x {size} (per_image.csv rows x the class set's "
                         "evaluation space)")
    return np.asarray(matrices[[positions[image_id] for image_id in shared]])


def block(result: dict, key: str = MIOU.key, averaging: str = POOLED) -> dict | None:
    """The block of a ``compare_runs`` result for variant ``key`` averaged ``averaging``; None when
    the variant is missing from a run."""
    found = result.get(key) or {}
    if "missing" in found or not found:
        return None
    return found["per_image"] if averaging == PER_IMAGE else found


def verdict(summary: dict) -> str:
    """B better / worse than A, or not significant, from a summary's 95% interval."""
    low, high = summary["ci95_low"], summary["ci95_high"]
    if low is None or high is None:
        return "undefined (no resample where both runs have a value)"
    if summary["significant"]:
        return "B better than A" if low > 0 else "B worse than A"
    return "not significant (the interval holds 0)"


def format_comparison(result: dict) -> str:
    """The report of ``python -m training compare``: every mIoU variant both ways, then per class."""
    def number(value, sign=False):
        return "n/a" if value is None else f"{value:{'+' if sign else ''}.4f}"

    def interval(summary):
        return f"[{number(summary['ci95_low'], True)}, {number(summary['ci95_high'], True)}]"

    def share(value):
        return "n/a" if value is None else f"{value:.1%}"

    def wins(summary):  # "0.0%" would read as "A wins" where both runs are equal in every resample
        return "all tie" if summary["ties"] == 1 else share(summary["b_wins"])

    a, b = result["run_a"], result["run_b"]
    lines = [f"A = {a['name']}, B = {b['name']}: {result['classes']}, {result['split']} split"]
    if a["images"] == b["images"] == result["images"]:
        lines.append(f"{result['images']} images, evaluated by both runs")
    else:
        lines.append(f"compared on the {result['images']} images both runs evaluated (A evaluated {a['images']}, "
                     f"B {b['images']}; published {MIOU.label()} on all their images: A {number(a['miou'])}, "
                     f"B {number(b['miou'])})")
    lines += [f"paired bootstrap: {result['resamples']} resamples of the images, seed {result['seed']}", ""]
    width = max(len(which.label(PER_IMAGE)) for which in VARIANTS) + 2
    for which in VARIANTS:
        if "missing" in result[which.key]:
            lines.append(f"{which.label():<{width}}{result[which.key]['missing']}")
            continue
        for averaging in (POOLED, PER_IMAGE):
            summary = block(result, which.key, averaging)
            lines += [f"{which.label(averaging):<{width}}A {number(summary['a'])}  B {number(summary['b'])}  "
                      f"B - A {number(summary['difference'], True)}  95% interval {interval(summary)}",
                      f"{'':<{width}}{verdict(summary)}; B wins in {share(summary['b_wins'])} of resamples"
                      + (f", ties in {share(summary['ties'])}" if summary["ties"] else "")]
    shown = [MIOU] + ([] if get_class_set(result["classes"]).official_is_all_classes else [MIOU_OFFICIAL])
    for which in shown:
        rows = result[which.key].get("per_class")
        if not rows:
            continue
        column = max(len(row["name"]) for row in rows) + 2
        lines += ["", f"pooled IoU per class, {which.classes} (* = the interval excludes 0)",
                  f"{'class':<{column}}{'IoU A':>8}{'IoU B':>8}{'B - A':>9}  {'95% interval':<20}{'B wins':>8}"]
        for row in rows:
            lines.append(f"{row['name']:<{column}}{number(row['a']):>8}{number(row['b']):>8}"
                         f"{number(row['difference'], True):>9}  {interval(row):<20}{wins(row):>8}"
                         + (" *" if row["significant"] else ""))
    return "\n".join(lines)
