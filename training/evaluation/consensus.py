"""Ground truth that looks wrong: regions where every chosen run agrees with the others and not
with the ground truth.

Annotators make mistakes (a tree labelled building, a parked car left as road); a model trained
on many images may get such a region right, and when several runs all say the same other class
there, the label deserves a look. The rule, per pixel of an image:

* every prediction names the same class, and it is a class of the set (not 255, "no class");
* the ground truth names a class (255, a label the class set leaves out, is never a candidate);
* the two differ.

Such pixels are grouped into connected regions (8-connected by default) and a region counts when
it has at least ``min_pixels`` pixels. These are **candidates, not verdicts**: runs trained on
the same data share its biases (and may all have learnt the annotators' habit), similar models
agreeing is weak evidence, and the size rule leaves out small regions and the thin slivers along
class boundaries where labels and models disagree most.

**Connected components** are OpenCV's (``cv2.connectedComponents``, in C, outside the GIL, so
that the scan's reader threads keep decoding meanwhile). A region's pixels are kept as runs
(maximal horizontal stretches of set pixels, row by row, found by comparing the padded mask with
itself shifted by a pixel), each run taking the label of its first pixel; a region's size and
bounding box are summed from its runs. OpenCV numbers the regions in the order its algorithm
meets them (2 x 2 blocks, stripes of rows labelled in parallel), so they are renumbered in raster
order of their first pixel: the order ties of size are listed in.
``tests/test_consensus.py`` checks the components against ``scipy.ndimage.label`` and against the
numpy labelling used before (runs joined by a vectorised union-find).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from training.data.cityscapes import DatasetError, read_label_ids
from training.data.labels import IGNORE_INDEX, ClassSet
from training.evaluation.masks import ordered_map

CONNECTIVITIES = (4, 8)
DEFAULT_CONNECTIVITY = 8
VALUES = 256  # class indices are uint8


# ---------------------------------------------------------------------------- the rule

def consensus_errors(truth_classes: np.ndarray, predictions: Sequence[np.ndarray],
                     num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(mask, agreed_class)``, both ``(H, W)``: ``mask`` is True where every prediction names the
    same class of the set (below ``num_classes`` when given, else anything but 255), the ground
    truth names a class (not 255) and the two differ; ``agreed_class`` is that class (meaningful
    where ``mask`` is set: the first prediction)."""
    if not predictions:
        raise ValueError("consensus_errors needs at least one prediction")
    agreed = predictions[0]
    for predicted in predictions:
        if predicted.shape != truth_classes.shape:
            raise ValueError(f"a prediction of shape {predicted.shape} for ground truth of shape "
                             f"{truth_classes.shape}")
    mask = agreed < num_classes if num_classes is not None else agreed != IGNORE_INDEX
    for predicted in predictions[1:]:
        mask &= predicted == agreed
    mask &= truth_classes != IGNORE_INDEX
    mask &= truth_classes != agreed
    return mask, agreed


# ---------------------------------------------------------------------------- connected components

@dataclass(frozen=True)
class Region:
    """A connected region of a mask: its size, its bounding box (``x1``, ``y1`` exclusive) and its
    pixels as runs, one row of ``runs`` per horizontal stretch: (row, first column, column after
    the last)."""

    pixels: int
    box: tuple[int, int, int, int]
    runs: np.ndarray

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """``(H, W)`` bool: the region's pixels in a picture of ``shape``."""
        return runs_mask(self.runs, shape)


def runs_mask(runs: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool with the pixels of ``runs`` ((row, start, end) rows) set."""
    mask = np.zeros(shape, dtype=bool)
    for row, start, end in np.asarray(runs, dtype=np.int64).reshape(-1, 3):
        mask[row, start:end] = True
    return mask


@dataclass(frozen=True)
class _Labelled:
    """The runs of a mask (raster order), the component of each (0.. in raster order of their
    first pixel), and per component its pixel count and bounding box (``x0, y0, x1, y1`` rows)."""

    rows: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    component: np.ndarray
    count: int
    pixels: np.ndarray
    boxes: np.ndarray


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows, starts, ends) of the horizontal runs of ``mask``, in raster order."""
    height, width = mask.shape
    stride = width + 2  # a zero column on both sides: no run crosses from a row to the next
    padded = np.zeros((height, stride), dtype=bool)
    padded[:, 1:-1] = mask
    flat = padded.ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1  # a run's first pixel, the pixel after it, ...
    first, after = changes[0::2], changes[1::2]  # positions in ``padded``
    return first // stride, first % stride - 1, after % stride - 1


def _opencv_labels(mask: np.ndarray, connectivity: int) -> tuple[int, np.ndarray]:
    """OpenCV's labels of ``mask`` (0: background) and how many there are, background included."""
    flags = np.ascontiguousarray(mask).view(np.uint8)
    try:  # 16-bit labels: twice as fast as 32-bit on a 2048x1024 mask
        return cv2.connectedComponents(flags, connectivity=connectivity, ltype=cv2.CV_16U)
    except cv2.error:  # more than 65535 provisional labels (OpenCV checks, and says so)
        return cv2.connectedComponents(flags, connectivity=connectivity, ltype=cv2.CV_32S)


def _label(mask: np.ndarray, connectivity: int) -> _Labelled:
    if connectivity not in CONNECTIVITIES:
        raise ValueError(f"connectivity must be 4 or 8, not {connectivity!r}")
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"a mask is (H, W), not {mask.shape}")
    rows, starts, ends = _runs(mask)
    if not len(rows):
        none = np.zeros(0, dtype=np.int64)
        return _Labelled(rows, starts, ends, none, 0, none, np.zeros((0, 4), dtype=np.int64))
    labels_found, labels = _opencv_labels(mask, connectivity)
    run_label = labels[rows, starts]
    # OpenCV's numbering is its algorithm's; ours is the raster order of each component's first
    # run (np.unique's index is the first occurrence), which lies in the component's top row.
    first_runs = np.sort(np.unique(run_label, return_index=True)[1])
    rank = np.zeros(labels_found, dtype=np.int64)
    rank[run_label[first_runs]] = np.arange(len(first_runs))
    component, count = rank[run_label], len(first_runs)
    # Sizes and boxes from the runs (far fewer than the pixels): OpenCV's own statistics
    # (connectedComponentsWithStats) visit every pixel, background too, and cost 3x the labelling.
    pixels = np.bincount(component, weights=ends - starts, minlength=count).astype(np.int64)
    x0 = np.full(count, np.iinfo(np.int64).max)
    x1 = np.zeros(count, dtype=np.int64)
    y1 = np.zeros(count, dtype=np.int64)
    np.minimum.at(x0, component, starts)
    np.maximum.at(x1, component, ends)
    np.maximum.at(y1, component, rows + 1)
    boxes = np.stack([x0, rows[first_runs], x1, y1], axis=1)
    return _Labelled(rows, starts, ends, component, count, pixels, boxes)


def _regions(labelled: _Labelled, min_pixels: int) -> tuple[list[Region], np.ndarray]:
    """The regions of at least ``min_pixels`` pixels (largest first, then in raster order) and,
    per component, its position in that list (-1: too small)."""
    component, count, pixels = labelled.component, labelled.count, labelled.pixels
    kept = np.flatnonzero(pixels >= max(1, int(min_pixels)))
    kept = kept[np.argsort(-pixels[kept], kind="stable")]
    position = np.full(count, -1, dtype=np.int64)
    position[kept] = np.arange(len(kept))
    if not len(kept):
        return [], position
    region_of_run = position[component]
    order = np.flatnonzero(region_of_run >= 0)  # the runs of the regions kept, raster order
    order = order[np.argsort(region_of_run[order], kind="stable")]  # grouped by region, raster order within
    runs = np.stack([labelled.rows[order], labelled.starts[order], labelled.ends[order]], axis=1).astype(np.int32)
    bounds = np.cumsum(np.bincount(region_of_run[order], minlength=len(kept)))
    regions = [Region(int(pixels[c]), tuple(int(v) for v in labelled.boxes[c]), part)
               for c, part in zip(kept, np.split(runs, bounds[:-1]))]
    return regions, position


def connected_regions(mask: np.ndarray, min_pixels: int = 1, connectivity: int = DEFAULT_CONNECTIVITY) -> list[Region]:
    """The connected regions of ``mask`` (``connectivity`` 4 or 8) with at least ``min_pixels``
    pixels, largest first (ties in raster order of their first pixel)."""
    return _regions(_label(mask, connectivity), min_pixels)[0]


# ---------------------------------------------------------------------------- one image

@dataclass(frozen=True)
class Candidate:
    """A region where the runs agree against the ground truth: the region, the class the ground
    truth gives most of its pixels and the class the runs agree on most, each with its share."""

    region: Region
    truth_class: int
    truth_share: float
    agreed_class: int
    agreed_share: float


def _dominant(values: np.ndarray, region_of_pixel: np.ndarray, regions: int) -> tuple[np.ndarray, np.ndarray]:
    """Per region, the most frequent value of its pixels and its share."""
    counts = np.bincount(region_of_pixel * VALUES + values, minlength=regions * VALUES).reshape(regions, VALUES)
    top = counts.argmax(axis=1)
    return top, counts[np.arange(regions), top] / counts.sum(axis=1)


def image_candidates(truth_classes: np.ndarray, predictions: Sequence[np.ndarray], min_pixels: int,
                     num_classes: int | None = None, connectivity: int = DEFAULT_CONNECTIVITY) -> list[Candidate]:
    """The regions of ``consensus_errors`` with at least ``min_pixels`` pixels, largest first."""
    mask, agreed = consensus_errors(truth_classes, predictions, num_classes)
    labelled = _label(mask, connectivity)
    regions, position = _regions(labelled, min_pixels)
    if not regions:
        return []
    # The pixels of the regions kept, from their runs (far fewer than the image's).
    region_of_run = position[labelled.component]
    kept = region_of_run >= 0
    lengths = (labelled.ends - labelled.starts)[kept]
    firsts = labelled.rows[kept] * mask.shape[1] + labelled.starts[kept]
    flat = np.repeat(firsts - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
    region_of_pixel = np.repeat(region_of_run[kept], lengths)
    truth, said = truth_classes.ravel()[flat].astype(np.int64), agreed.ravel()[flat].astype(np.int64)
    truth_top, truth_share = _dominant(truth, region_of_pixel, len(regions))
    said_top, said_share = _dominant(said, region_of_pixel, len(regions))
    return [Candidate(region, int(truth_top[n]), float(truth_share[n]), int(said_top[n]), float(said_share[n]))
            for n, region in enumerate(regions)]


# ---------------------------------------------------------------------------- a split

CANDIDATE_COLUMNS = ("id", "pixels", "x0", "y0", "x1", "y1", "truth_class", "ground_truth", "truth_share",
                     "agreed_class", "runs_say", "agreed_share")


@dataclass(frozen=True)
class Scan:
    """What ``scan_images`` found: ``rows`` (``CANDIDATE_COLUMNS`` and ``runs``, the region's pixels
    as (row, start, end) runs), largest first; how many images were scanned; the images left out,
    with why (a file that cannot be read, a prediction of another size)."""

    rows: list[dict]
    images: int
    skipped: list[tuple[int, str]]


def scan_document(scan: Scan) -> dict:
    """``scan`` as JSON-able data (``training.runs.derived`` keeps it on disk)."""
    rows = [{**row, "runs": np.asarray(row["runs"]).tolist()} for row in scan.rows]
    return {"rows": rows, "images": int(scan.images), "skipped": [[int(i), str(why)] for i, why in scan.skipped]}


def scan_from_document(document: dict) -> Scan:
    """The ``Scan`` of ``scan_document``; ValueError when ``document`` is not one."""
    try:
        rows = [{**row, "runs": np.asarray(row["runs"], dtype=np.int64).reshape(-1, 3)} for row in document["rows"]]
        if any(set(CANDIDATE_COLUMNS) - set(row) for row in rows):
            raise ValueError("a row without every column")
        return Scan(rows, int(document["images"]), [(int(i), str(why)) for i, why in document["skipped"]])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"not a scan: {error}") from error


def scan_images(images: Sequence[tuple[int, Path]], predictors: Sequence[Callable[[int], np.ndarray]],
                class_set: ClassSet, min_pixels: int, connectivity: int = DEFAULT_CONNECTIVITY,
                workers: int = 4, skip_errors: tuple[type[Exception], ...] = (),
                progress: Callable[[int, int], None] | None = None) -> Scan:
    """The candidates of every image: ``images`` are (image id, its labelIds PNG), ``predictors``
    one function per run giving its class-index mask of an image id (at ground-truth size).
    Files are read ``workers`` images ahead in threads (PNG decoding releases the GIL); an image
    whose files raise ``DatasetError`` or one of ``skip_errors`` is left out and named in
    ``skipped``; ``progress(done, total)`` after each image."""
    names = class_set.names
    catch = (DatasetError, *skip_errors)

    def read(item: tuple[int, Path]):
        image_id, label = item
        try:
            truth = class_set.lut[read_label_ids(label, check_values=False)]
            predictions = [predict(image_id) for predict in predictors]
        except catch as error:
            return image_id, str(error)
        for predicted in predictions:
            if predicted.shape != truth.shape:
                return image_id, (f"a prediction of {predicted.shape[1]}x{predicted.shape[0]} for ground truth "
                                  f"of {truth.shape[1]}x{truth.shape[0]}")
        return image_id, image_candidates(truth, predictions, min_pixels, class_set.num_classes, connectivity)

    rows, skipped = [], []
    for done, (image_id, found) in enumerate(ordered_map(read, list(images), max(1, workers)), 1):
        if isinstance(found, str):
            skipped.append((image_id, found))
        else:
            rows += [_row(image_id, candidate, names) for candidate in found]
        if progress is not None:
            progress(done, len(images))
    rows.sort(key=lambda row: (-row["pixels"], row["id"], row["y0"], row["x0"]))
    return Scan(rows, len(images) - len(skipped), skipped)


def _row(image_id: int, candidate: Candidate, names: Sequence[str]) -> dict:
    region = candidate.region
    x0, y0, x1, y1 = region.box

    def name(index: int) -> str:
        return names[index] if index < len(names) else str(index)

    return {"id": int(image_id), "pixels": region.pixels, "x0": x0, "y0": y0, "x1": x1, "y1": y1,
            "truth_class": candidate.truth_class, "ground_truth": name(candidate.truth_class),
            "truth_share": candidate.truth_share, "agreed_class": candidate.agreed_class,
            "runs_say": name(candidate.agreed_class), "agreed_share": candidate.agreed_share, "runs": region.runs}
