"""Is run B really better than run A, or is it noise? A paired bootstrap over images.

Images are the unit of sampling (the pixels of one image are far from independent). A resample
draws N image indices with replacement, the same draw for A and B: paired, so an image hard for
both stays hard for both and the interval measures what differs between the models. Resample r
takes the images ``numpy.random.default_rng(seed).integers(0, N, size=(R, N))[r]``.

Two modes, both from the same resamples:

* pooled: the IoU of the resample's summed confusion counts, how a run's own ``miou`` is computed
  from confusion.npy (frequent classes and big objects weigh more);
* per-image: the mean over images of each image's own mIoU.

The 95% interval is the 2.5 and 97.5 percentiles of the resampled differences B - A;
``significant`` means it excludes 0. ``b_wins`` and ``ties`` are shares of the resamples.

A class with an empty union (absent from ground truth and prediction) has no IoU and is left out
of a mean, as in ``metrics.mean_iou``. A class's interval uses the resamples where it has an IoU in
both runs (``resamples_used``); its numbers are None where there is none. Every result is ready for
JSON: numbers that would be NaN are None.
"""

from __future__ import annotations

import numpy as np

from training.data.labels import get_class_set
from training.files import finite_or_none

MAX_RESAMPLES = 100_000  # the (R x N) draws are held in memory at once


def paired_bootstrap(confusions_a, confusions_b, resamples: int = 1000, seed: int = 0,
                     num_classes: int | None = None) -> dict:
    """Bootstrap B - A over the images of two ``(N, E, E)`` stacks of per-image confusion counts
    (rows = ground truth, the same images in the same order); the IoU classes are the first
    ``num_classes`` (default: all E; the others, such as a sink column, count as misses only).

    Returns ``images``, ``resamples``, ``seed``, ``num_classes``, the pooled summary
    (``miou_a``, ``miou_b``, ``miou_difference`` on all images, ``ci95_low``, ``ci95_high``,
    ``b_wins``, ``ties``, ``significant``, ``resamples_used``), ``per_image`` (the same keys for the
    mean of per-image mIoUs, plus ``images``: those with an mIoU in both runs) and ``per_class`` (a
    list, index = class: ``class`` and the same keys with ``iou_`` for ``miou_``).

    Raises:
        ValueError: shapes differ or are not stacks of square matrices, fewer than 2 images, or
            ``resamples`` / ``num_classes`` out of range.
    """
    a, b = np.asarray(confusions_a), np.asarray(confusions_b)
    if a.ndim != 3 or a.shape[1] != a.shape[2] or a.shape != b.shape:
        raise ValueError(f"need two stacks of N square confusion matrices of one shape, got {a.shape} and {b.shape}")
    n, k = len(a), a.shape[1] if num_classes is None else num_classes
    if n < 2:
        raise ValueError(f"a bootstrap needs at least 2 images, got {n}")
    if not 1 <= resamples <= MAX_RESAMPLES:
        raise ValueError(f"resamples must be within 1..{MAX_RESAMPLES}, got {resamples}")
    if not 1 <= k <= a.shape[1]:
        raise ValueError(f"num_classes must be within 1..{a.shape[1]}, got {k}")

    counts_a, counts_b = _class_counts(a, k), _class_counts(b, k)
    image_a, image_b = _mean_rows(_iou(counts_a, k)), _mean_rows(_iou(counts_b, k))
    both = np.isfinite(image_a) & np.isfinite(image_b)  # an image with no scored pixel has no mIoU
    per_image_columns = np.stack([np.where(both, image_a, 0.0), np.where(both, image_b, 0.0), both], axis=1)
    # Row 0 weighs every image once (the estimate on all images), the others are the resamples:
    # one matrix product gives every resample's sums. float64 adds integer counts exactly below 2**53.
    weights = np.vstack([np.ones((1, n)), _multiplicities(n, resamples, seed)])
    sums = weights @ np.hstack([counts_a, counts_b, per_image_columns])

    iou_a, iou_b = _iou(sums[:, :3 * k], k), _iou(sums[:, 3 * k:6 * k], k)
    with np.errstate(invalid="ignore", divide="ignore"):  # a resample of images without an mIoU
        per_image_a, per_image_b = sums[:, -3] / sums[:, -1], sums[:, -2] / sums[:, -1]
    return {
        "images": n, "resamples": resamples, "seed": seed, "num_classes": k,
        **_summary(_mean_rows(iou_a), _mean_rows(iou_b), "miou"),
        "per_image": {**_summary(per_image_a, per_image_b, "miou"), "images": int(both.sum())},
        "per_class": [{"class": c, **_summary(iou_a[:, c], iou_b[:, c], "iou")} for c in range(k)],
    }


def _multiplicities(n: int, resamples: int, seed: int) -> np.ndarray:
    """``(R, N)``: how often each image is drawn in each resample (rows sum to N)."""
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    flat = (draws + n * np.arange(resamples)[:, None]).ravel()  # resample r counts in bins r*N..r*N+N-1
    return np.bincount(flat, minlength=resamples * n).reshape(resamples, n).astype(np.float64)


def _class_counts(confusions: np.ndarray, k: int) -> np.ndarray:
    """``(N, 3K)`` true positives, ground-truth and predicted pixels of each class: all an IoU needs,
    so a resample sums 3K numbers per image instead of E x E. Rows and columns beyond K (a sink)
    still count as misses of the true class, as in ``metrics.iou_per_class``."""
    counts = confusions.astype(np.float64)
    true_positive = np.diagonal(counts, axis1=1, axis2=2)[:, :k]
    return np.hstack([true_positive, counts.sum(axis=2)[:, :k], counts.sum(axis=1)[:, :k]])


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


def _summary(values_a: np.ndarray, values_b: np.ndarray, prefix: str) -> dict:
    """Row 0: on all images; the other rows: resamples (differences undefined in one are left out)."""
    difference = values_b - values_a
    resampled = difference[1:][np.isfinite(difference[1:])]
    low, high = np.percentile(resampled, [2.5, 97.5]) if resampled.size else (np.nan, np.nan)
    return {
        f"{prefix}_a": finite_or_none(values_a[0]), f"{prefix}_b": finite_or_none(values_b[0]),
        f"{prefix}_difference": finite_or_none(difference[0]),
        "ci95_low": finite_or_none(low), "ci95_high": finite_or_none(high),
        "b_wins": finite_or_none(np.mean(resampled > 0)) if resampled.size else None,
        "ties": finite_or_none(np.mean(resampled == 0)) if resampled.size else None,
        "significant": bool(low > 0 or high < 0), "resamples_used": int(resampled.size),
    }


def compare_runs(run_a, run_b, resamples: int = 1000, seed: int = 0) -> dict:
    """``paired_bootstrap`` of two published runs (``training.runs.store.Run``) on the images both
    evaluated, matched by id and taken in increasing id order (so A vs B mirrors B vs A).

    Returns its result plus ``run_a`` and ``run_b`` (``name``, ``uid``, ``images`` evaluated, the
    published ``miou`` on all of them), ``classes``, ``split``, and a ``name`` in each ``per_class``.

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
    confusions = [_confusions(run, ids, shared, class_set.num_eval_classes)
                  for run, ids in ((run_a, ids_a), (run_b, ids_b))]
    result = paired_bootstrap(*confusions, resamples=resamples, seed=seed, num_classes=class_set.num_classes)
    for row in result["per_class"]:
        row["name"] = class_set.names[row["class"]]
    described = [{"name": run.name, "uid": run.uid, "images": len(ids),
                  "miou": finite_or_none(run.metrics.get("miou"))} for run, ids in ((run_a, ids_a), (run_b, ids_b))]
    return {"run_a": described[0], "run_b": described[1], "classes": class_set.name,
            "split": metrics_a.get("split"), **result}


def _image_positions(run) -> dict[int, int]:
    """Image id -> row of per_image.csv (= index in per_image_confusion.npy)."""
    try:
        ids = [int(row["id"]) for row in run.per_image()]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"run {run.name}: per_image.csv lacks integer image ids") from None
    if len(set(ids)) != len(ids):
        raise ValueError(f"run {run.name}: per_image.csv lists an image id twice")
    return {image_id: row for row, image_id in enumerate(ids)}


def _confusions(run, positions: dict[int, int], shared: list[int], size: int) -> np.ndarray:
    """The shared images' confusions, read from the memory-mapped file (only those rows are loaded)."""
    matrices = run.per_image_confusion(mmap=True)
    if len(matrices) != len(positions) or matrices.shape[1] != size:
        raise ValueError(f"run {run.name}: per_image_confusion.npy holds {matrices.shape}, expected "
                         f"{len(positions)} x {size} x {size} (per_image.csv rows x the class set's evaluation space)")
    return np.asarray(matrices[[positions[image_id] for image_id in shared]])


def verdict(summary: dict) -> str:
    """B better / worse than A, or not significant, from a summary's 95% interval."""
    low, high = summary["ci95_low"], summary["ci95_high"]
    if low is None or high is None:
        return "undefined (no resample where both runs have a value)"
    if summary["significant"]:
        return "B better than A" if low > 0 else "B worse than A"
    return "not significant (the interval holds 0)"


def format_comparison(result: dict) -> str:
    """The report of ``python -m training compare``: both mIoU modes, then a per-class table."""
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
                     f"B {b['images']}; published mIoU on all their images: A {number(a['miou'])}, "
                     f"B {number(b['miou'])})")
    lines += [f"paired bootstrap: {result['resamples']} resamples of the images, seed {result['seed']}", ""]
    for label, summary in (("pooled mIoU", result), ("per-image mIoU", result["per_image"])):
        lines += [f"{label:<15} A {number(summary['miou_a'])}  B {number(summary['miou_b'])}  "
                  f"B - A {number(summary['miou_difference'], True)}  95% interval {interval(summary)}",
                  f"{'':<15} {verdict(summary)}; B wins in {share(summary['b_wins'])} of resamples"
                  + (f", ties in {share(summary['ties'])}" if summary["ties"] else "")]
    width = max(len(row["name"]) for row in result["per_class"]) + 2
    lines += ["", "pooled IoU per class (* = the interval excludes 0)",
              f"{'class':<{width}}{'IoU A':>8}{'IoU B':>8}{'B - A':>9}  {'95% interval':<20}{'B wins':>8}"]
    for row in result["per_class"]:
        lines.append(f"{row['name']:<{width}}{number(row['iou_a']):>8}{number(row['iou_b']):>8}"
                     f"{number(row['iou_difference'], True):>9}  {interval(row):<20}{wins(row):>8}"
                     + (" *" if row["significant"] else ""))
    return "\n".join(lines)
