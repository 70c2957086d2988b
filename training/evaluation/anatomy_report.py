"""What a run's stored error anatomy says: recall by object size, the objects it missed, and the
error rate across the frame, for one run or run A against run B.

The inputs are the files ``training.runs.anatomy`` writes: the objects of ``instances.csv`` (one
row per object of the ground truth with its pixels, box, recall and whether it was missed) and
``frame_errors.npy`` ((2, rows, columns): pixels counted and pixels wrong per cell of a grid laid
over the frame). numpy only: the dashboard, the command line and tests share these functions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.evaluation.instances import INSTANCE_COLUMNS, MISSED_BELOW
from training.raster import shrink

SMALLEST_GRID = 8  # a coarser grid keeps at least this many cells on its shorter side


# ---------------------------------------------------------------------------- objects

TEXT_COLUMNS = ("label", "class")


def object_columns(rows: list[dict]) -> dict[str, np.ndarray]:
    """The rows of ``instances.csv`` as columns (``INSTANCE_COLUMNS``): text for the label and the
    class, int64 for the counts and the box, float64 for the recall. ValueError naming the column or
    the line of the file that keeps them from being read."""
    present = set(rows[0]) if rows else set(INSTANCE_COLUMNS)
    missing = [column for column in INSTANCE_COLUMNS if column not in present]
    if missing:
        raise ValueError(f"instances.csv lacks the columns {', '.join(missing)}")
    columns = {}
    for column in INSTANCE_COLUMNS:
        values = [row.get(column) for row in rows]
        if column in TEXT_COLUMNS:
            columns[column] = np.asarray([str(value) for value in values], dtype=object)
            continue
        numbers = [value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
                   for value in values]
        bad = next((number for number, value in enumerate(numbers) if value is None or value != value), None)
        if bad is not None:
            raise ValueError(f"instances.csv: line {bad + 2} holds {values[bad]!r} in {column}, not a number")
        kind = np.float64 if column == "recall" else np.int64
        columns[column] = np.asarray(numbers, dtype=np.float64).astype(kind)
    return columns


def missed_objects(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The missed objects of ``object_columns``, largest first (then the lowest recall, the image id,
    the instance)."""
    missed = np.flatnonzero(columns["missed"] == 1)
    keys = list(zip(columns["id"][missed].tolist(), columns["instance"][missed].tolist()))
    order = missed[missed_order(columns["pixels"][missed], columns["recall"][missed], keys)]
    return {name: values[order] for name, values in columns.items()}


def size_bins(pixels: np.ndarray) -> np.ndarray:
    """The log2 size bin of each object: bin ``b`` holds ``2^b <= pixels < 2^(b+1)``."""
    return np.floor(np.log2(np.maximum(np.asarray(pixels, dtype=np.float64), 1.0))).astype(np.int64)


def recall_by_size(classes: Sequence[str], pixels: np.ndarray, recall: np.ndarray, missed: np.ndarray) -> list[dict]:
    """Mean recall per class and size bin (objects binned by pixel count on a log2 scale), classes
    and bins in sorted order: ``class``, ``bin``, ``low`` and ``high`` (pixels, inclusive),
    ``centre`` (geometric), ``objects``, ``recall`` (their mean), ``missed`` (how many)."""
    classes = np.asarray(classes, dtype=object).astype(str)
    bins = size_bins(pixels)
    recall, missed = np.asarray(recall, dtype=np.float64), np.asarray(missed, dtype=np.int64)
    rows = []
    for name in sorted(set(classes.tolist())):
        of_class = classes == name
        for size in sorted(set(bins[of_class].tolist())):
            members = of_class & (bins == size)
            low, high = 2 ** size, 2 ** (size + 1) - 1
            rows.append({"class": name, "bin": size, "low": low, "high": high,
                         "centre": float(np.sqrt(low * (high + 1.0))), "objects": int(members.sum()),
                         "recall": float(recall[members].mean()), "missed": int(missed[members].sum())})
    return rows


def missed_share(objects, missed) -> float:
    """The share of a run's objects it missed (NaN without objects, or without numbers)."""
    numbers = all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                  for v in (objects, missed))
    return float(missed) / float(objects) if numbers and objects > 0 else float("nan")


def missed_order(pixels: np.ndarray, recall: np.ndarray, keys: Sequence[tuple]) -> np.ndarray:
    """The positions of the objects, largest first, then the lowest recall, then ``keys`` (e.g. run,
    image id, instance): the order a list of missed objects is read in."""
    order = sorted(range(len(keys)), key=lambda i: (-int(pixels[i]), float(recall[i]), *keys[i]))
    return np.asarray(order, dtype=np.int64)


# ---------------------------------------------------------------------------- the frame

def check_frame_counts(counts: np.ndarray) -> np.ndarray:
    """``frame_errors.npy`` as int64 counts; ValueError when it cannot be (pixels counted, pixels
    wrong) per cell: another shape, a negative count, more wrong than counted."""
    counts = np.asarray(counts)
    if counts.ndim != 3 or counts.shape[0] != 2 or counts.dtype.kind not in "iu":
        raise ValueError(f"frame_errors.npy holds {counts.dtype} {counts.shape}, not (2, rows, columns) counts")
    counts = counts.astype(np.int64)
    if (counts < 0).any() or (counts[1] > counts[0]).any():
        raise ValueError("frame_errors.npy does not hold (pixels counted, pixels wrong) per cell")
    return counts


def grid_factors(grid: tuple[int, int], smallest: int = SMALLEST_GRID) -> list[int]:
    """The coarsenings of a frame grid: 1, 2, 4, ... while the factor divides both sides (no cell is
    part of a block) and the shorter side keeps ``smallest`` cells."""
    factors, factor = [1], 2
    while grid[0] % factor == 0 and grid[1] % factor == 0 and min(grid) // factor >= smallest:
        factors.append(factor)
        factor *= 2
    return factors


def pooled_cells(counts: np.ndarray, factor: int) -> np.ndarray:
    """``(2, rows / factor, columns / factor)``: the counts summed over ``factor x factor`` blocks of
    cells (a factor of ``grid_factors``)."""
    if factor == 1:
        return counts
    return np.stack([shrink(channel, factor, "sum") for channel in counts])


def error_rate(counts: np.ndarray) -> np.ndarray:
    """Wrong / counted per cell; NaN where nothing was counted."""
    counted, wrong = counts[0].astype(np.float64), counts[1].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counted > 0, wrong / counted, np.nan)


def overall_error_rate(counts: np.ndarray) -> float:
    """The share of wrong pixels over the whole frame (NaN if none was counted)."""
    counted = int(counts[0].sum())
    return float(counts[1].sum()) / counted if counted else float("nan")


def rate_difference(counts_a: np.ndarray, counts_b: np.ndarray) -> np.ndarray:
    """A's error rate minus B's per cell (positive: A is wrong more often there); NaN where either
    counted nothing. ValueError when the grids differ."""
    if counts_a.shape != counts_b.shape:
        raise ValueError(f"the runs' frame grids differ: {counts_a.shape[1:]} and {counts_b.shape[1:]}")
    return error_rate(counts_a) - error_rate(counts_b)


def band_rates(counts: np.ndarray, bands: int = 4, border: float = 0.1) -> dict:
    """Where in the frame a run fails, in a few numbers: the error rate in ``bands`` equal strips from
    the top down (``rows``) and from the left to the right (``columns``), within ``border`` of the
    frame's size from its edges (``border``) and elsewhere (``centre``)."""
    rows, columns = counts.shape[1:]
    edge = np.zeros((rows, columns), dtype=bool)
    depth_r, depth_c = max(1, int(round(rows * border))), max(1, int(round(columns * border)))
    edge[:depth_r], edge[-depth_r:], edge[:, :depth_c], edge[:, -depth_c:] = True, True, True, True
    return {"rows": [overall_error_rate(counts[:, strip, :]) for strip in np.array_split(np.arange(rows), bands)],
            "columns": [overall_error_rate(counts[:, :, strip])
                        for strip in np.array_split(np.arange(columns), bands)],
            "border": overall_error_rate(counts[:, edge]), "centre": overall_error_rate(counts[:, ~edge])}


# ---------------------------------------------------------------------------- the report

def format_anatomy_report(by_size: list[dict], missed: dict[str, np.ndarray] | None, frame: np.ndarray | None,
                          limit: int = 10) -> str:
    """The lines ``python -m training anatomy RUN`` prints after the scores: recall by object size
    per class (``recall_by_size``), the largest missed objects (``missed_objects``), the error rate
    across the frame (``frame_errors.npy``)."""
    lines = [f"recall by object size (pixels; missed: recall < {MISSED_BELOW})"]
    if not by_size:
        lines.append("  no object in the evaluated images")
    for name in dict.fromkeys(row["class"] for row in by_size):
        cells = [f"{row['low']:,}-{row['high']:,}: {row['recall']:.2f} ({row['missed']}/{row['objects']})"
                 for row in by_size if row["class"] == name]
        lines.append(f"  {name:<14}" + "  ".join(cells))
    count = 0 if missed is None else len(missed["id"])
    if count:
        lines += ["", f"largest missed objects ({min(limit, count)} of {count})"]
        for i in range(min(limit, count)):
            lines.append(f"  image {missed['id'][i]:<6} {missed['label'][i]:<14} instance {missed['instance'][i]:<8} "
                         f"{missed['pixels'][i]:>8,} pixels  recall {missed['recall'][i]:.2f}  box x {missed['x0'][i]}-"
                         f"{missed['x1'][i] - 1}, y {missed['y0'][i]}-{missed['y1'][i] - 1}")
    if frame is not None:
        rates = band_rates(frame)
        lines += ["", f"error rate across the frame: {overall_error_rate(frame):.1%} of the counted pixels wrong",
                  "  top to bottom (quarters):  " + "  ".join(f"{rate:.1%}" for rate in rates["rows"]),
                  "  left to right (quarters):  " + "  ".join(f"{rate:.1%}" for rate in rates["columns"]),
                  f"  within 10% of the border:  {rates['border']:.1%}    elsewhere: {rates['centre']:.1%}"]
    return "\n".join(lines)
