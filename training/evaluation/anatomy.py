"""Error anatomy: what pixel mIoU hides, counted in the same pass as the IoU.

Per evaluated image, next to the confusion counts:

* **objects** (``training.evaluation.instances``): the official iIoU and one row per object
  with its recall, from ``gtFine_instanceIds`` when the dataset has them;
* **boundaries** (``training.evaluation.boundary``): Boundary IoU per class, in both modes of
  the IoU: all classes (the class set's training table; for ``categories8`` void is a class) and
  official (labels ignored in evaluation have no ground truth; the mean over the scored classes);
* **where in the frame**: pixels counted and pixels wrong (all-classes mode) on a fixed grid of
  ``FRAME_GRID`` cells, every image mapped onto it by relative position, so runs can be
  subtracted cell by cell.

At the cost of the IoU, or close (issue 24; ``bench/bench_anatomy.py``): the ground truth's share
(class maps, boundary bands, counted cells) is ``prepare_truth``; the prediction's is
``Anatomy.score``, where one OpenCV histogram of (labelId, prediction value, which bands hold the
pixel) gives every Boundary IoU count of both modes and the image's pair counts, which the IoU
reuses. Both run in worker threads, several images at once (OpenCV's calls release the GIL);
``Anatomy.add_scored`` adds the small results up in image order. The numbers are those of the
per-pixel code before it (``tests/test_anatomy_reference.py``, at 2048x1024).

The files are read by ``training.data.png`` (libspng through its C API, which lets other threads run).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.data.labels import IGNORE_INDEX, LUT_SIZE, ClassSet
from training.evaluation.boundary import (
    DEFAULT_RATIO,
    boundary_iou,
    boundary_width,
    counts_from_tuples,
    mean_boundary_iou,
    packed_bands,
    pixel_histogram,
    scratch,
    tuple_counts,
)
from training.evaluation.instances import ImageObjects, InstanceScores
from training.files import finite_or_none

FRAME_GRID = (128, 256)  # rows x columns: 8x8 pixels per cell at 2048x1024
PER_IMAGE_COLUMNS = ("id", "boundary_miou", "objects", "missed")


@dataclass
class Truth:
    """One image's ground truth, ready for the anatomy: its maps; their boundary bands are made in
    ``Anatomy.score``, in one pass with the prediction's."""

    label_ids: np.ndarray
    instance_ids: np.ndarray | None
    all_classes: np.ndarray  # class indices, 255 = no class
    official: np.ndarray  # evaluation space, 255 = label ignored in evaluation
    band_maps: list[np.ndarray]  # all_classes, and official when its regions differ (else its band is the same)
    width: int  # the boundary width d at this image's size
    grid: tuple[int, int] = FRAME_GRID

    @property
    def all_band(self) -> np.ndarray:
        return packed_bands(self.band_maps[:1], self.width).view(bool)

    @property
    def official_band(self) -> np.ndarray:
        return packed_bands(self.band_maps[-1:], self.width).view(bool)

    @property
    def counted_cells(self) -> np.ndarray:
        """``frame_count`` of the pixels that have a class."""
        return frame_count(self.all_classes != IGNORE_INDEX, self.grid)


def lookup(table: np.ndarray, values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``table[values]`` (into ``out`` when given): with ``cv2.LUT`` for a uint8 map and a 256-entry
    uint8 table (8x numpy's speed, without the GIL), else with numpy."""
    if values.dtype == np.uint8 and table.dtype == np.uint8 and table.shape == (LUT_SIZE,) and values.ndim == 2:
        return cv2.LUT(np.ascontiguousarray(values), table, dst=out)
    if out is None:
        return table[values]
    return np.take(table, values, out=out)


def pair_table(label_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``training.evaluation.metrics.pair_counts(label_ids, values)`` of two uint8 maps, with one
    OpenCV histogram (half of numpy's time, without the GIL)."""
    return pixel_histogram([np.ascontiguousarray(label_ids), np.ascontiguousarray(values)],
                           [LUT_SIZE, LUT_SIZE]).astype(np.int64)


def prepare_truth(class_set: ClassSet, label_ids: np.ndarray, instance_ids: np.ndarray | None,
                  ratio: float = DEFAULT_RATIO, grid: tuple[int, int] = FRAME_GRID) -> Truth:
    width = boundary_width(label_ids.shape, ratio)
    all_classes = lookup(class_set.lut, label_ids)
    if np.array_equal(class_set.lut, class_set.eval_gt_lut):
        official, maps = all_classes, [all_classes]
    else:
        official = lookup(class_set.eval_gt_lut, label_ids)
        same = _same_regions(class_set.lut, class_set.eval_gt_lut, _present(label_ids))
        maps = [all_classes] if same else [all_classes, official]
    if instance_ids is not None and instance_ids.shape != label_ids.shape:
        raise ValueError(f"instanceIds {instance_ids.shape} and labelIds {label_ids.shape} differ in shape")
    return Truth(label_ids, instance_ids, all_classes, official, maps, width, grid)


def _present(values: np.ndarray) -> np.ndarray:
    """The values that occur in an integer map."""
    if values.dtype == np.uint8 and values.ndim == 2:
        return np.flatnonzero(pixel_histogram([np.ascontiguousarray(values)], [LUT_SIZE]))
    return np.flatnonzero(np.bincount(values.ravel(), minlength=LUT_SIZE))


def _same_regions(first: np.ndarray, second: np.ndarray, present: np.ndarray) -> bool:
    """Whether two lookup tables cut a map holding the values ``present`` into the same regions (the
    values differ, the boundaries do not): true when, over those values, each value of ``first``
    goes with one value of ``second`` and back (for ``categories8``' ground truth: no label that is
    ignored yet not void, such as parking or a guard rail, whose pixels leave their category's region)."""
    pairs = set(zip(first[present].tolist(), second[present].tolist()))
    return len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})


def _cell_edges(length: int, cells: int) -> np.ndarray:
    """Where each of ``cells`` cells starts along an axis of ``length`` pixels, and the end: pixel
    ``y`` is in cell ``y x cells // length``, so cell ``r`` starts at ``ceil(r x length / cells)``."""
    return -(-np.arange(cells + 1) * length // cells)


def frame_count(flags: np.ndarray, grid: tuple[int, int] = FRAME_GRID) -> np.ndarray:
    """``(rows, columns)`` int64: how many pixels of each grid cell are set in ``flags`` (row ``y``
    is in cell row ``y x rows // H``, column ``x`` in cell column ``x x columns // W``)."""
    return _cell_sums(np.ascontiguousarray(flags, dtype=bool).view(np.uint8), grid, 1)


def _block_pixels(shape: tuple[int, int], grid: tuple[int, int]) -> int:
    """Pixels per cell where the cells are whole blocks of the map, else 0."""
    (height, width), (rows, columns) = shape, grid
    return height * width // (rows * columns) if height % rows == 0 and width % columns == 0 else 0


def _cell_sums(values: np.ndarray, grid: tuple[int, int], largest: int) -> np.ndarray:
    """``(rows, columns)`` int64: the sum of each grid cell's values (a uint8 map, none above
    ``largest``). Block sums where the cells are whole blocks, else differences of OpenCV's
    integral image (exact integers either way), rather than a ``bincount`` of every pixel's cell."""
    (height, width), (rows, columns) = values.shape, grid
    if values.size == 0:
        return np.zeros(grid, dtype=np.int64)
    block = _block_pixels(values.shape, grid)
    if block and block * largest < 2**16:
        # Whole blocks (8x8 pixels at 2048x1024): sum the rows of each block, then its columns.
        tall, wide = height // rows, width // columns
        rows_summed = values.reshape(rows, tall, width).sum(axis=1, dtype=np.uint16)
        return rows_summed.reshape(rows, columns, wide).sum(axis=2, dtype=np.int64)
    depth = cv2.CV_32S if values.size * largest < 2**31 else cv2.CV_64F
    sums = cv2.integral(values, sdepth=depth)
    corners = sums[np.ix_(_cell_edges(height, rows), _cell_edges(width, columns))].astype(np.int64)
    return corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]


def frame_counts(truth_classes: np.ndarray, predicted_classes: np.ndarray, grid: tuple[int, int] = FRAME_GRID
                 ) -> tuple[np.ndarray, np.ndarray]:
    """``frame_count`` of the pixels that have a class (``truth_classes`` not 255) and of those
    that are wrong (counted, and ``predicted_classes`` differs), two uint8 maps: in one pass of
    block sums where a cell's two counts fit in 16 bits as ``counted + wrong x (pixels + 1)``."""
    shape = truth_classes.shape
    counted = cv2.compare(truth_classes, IGNORE_INDEX, cv2.CMP_NE, dst=scratch("counted", shape, np.uint8))
    wrong = cv2.compare(predicted_classes, truth_classes, cv2.CMP_NE, dst=scratch("wrong", shape, np.uint8))
    cv2.bitwise_and(wrong, counted, dst=wrong)  # 255 where wrong, 0 elsewhere
    base = _block_pixels(shape, grid) + 1  # above any cell's count of counted pixels
    if base == 1 or base + 1 > 255:  # no whole blocks, or counted + wrong x base past a byte
        return _cell_sums(cv2.bitwise_and(counted, 1), grid, 1), _cell_sums(cv2.bitwise_and(wrong, 1), grid, 1)
    cv2.bitwise_and(counted, 1, dst=counted)
    cv2.bitwise_and(wrong, base, dst=wrong)  # 255 & base = base
    both = _cell_sums(cv2.add(counted, wrong, dst=counted), grid, base + 1)
    return both % base, both // base


@dataclass
class ImageAnatomy:
    """One image's share of the anatomy (``Anatomy.score``), to be added in order (``Anatomy.add_scored``)."""

    image_id: int
    size: str  # "HxW"
    width: int
    boundary: np.ndarray  # (2, 2, K): mode (all, official) x (intersection, union)
    counted_cells: np.ndarray
    wrong_cells: np.ndarray
    objects: ImageObjects | None
    counts: np.ndarray  # (256, 256) (labelId, prediction value) pairs: pair_counts of the image


def _band_tuples(label_ids: np.ndarray, prediction: np.ndarray, bits: np.ndarray, combinations: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (labelId, prediction value, band bits) of an image and their pixel counts.

    One OpenCV histogram spanning only the values present (labelIds stop at 33: a few thousand
    bins); the bits ride in the labelIds' byte (or the prediction's) when they fit, as a 2-D
    histogram takes half the time of a 3-D one."""
    sizes = [int(cv2.minMaxLoc(label_ids)[1]) + 1, int(cv2.minMaxLoc(prediction)[1]) + 1]
    if sizes[0] * combinations <= 256:
        code = cv2.scaleAdd(label_ids, combinations, bits, dst=scratch("code", label_ids.shape, np.uint8))
        index, count = tuple_counts([code, prediction],
                                    [sizes[0] * combinations, sizes[1]])
        code, value = np.divmod(index, sizes[1])
        label, bit = np.divmod(code, combinations)
    elif sizes[1] * combinations <= 256:
        code = cv2.scaleAdd(prediction, combinations, bits, dst=scratch("code", label_ids.shape, np.uint8))
        index, count = tuple_counts([label_ids, code],
                                    [sizes[0], sizes[1] * combinations])
        label, code = np.divmod(index, sizes[1] * combinations)
        value, bit = np.divmod(code, combinations)
    else:
        index, count = tuple_counts([label_ids, prediction, bits], [*sizes, combinations])
        label, value, bit = np.unravel_index(index, [*sizes, combinations])
    return label, value, bit, count


class Anatomy:
    """Streaming error anatomy of one class set.

    Example::

        anatomy = Anatomy(get_class_set("categories8"))
        for image_id, label_ids, instance_ids, predicted in images:
            anatomy.add(image_id, anatomy.truth(label_ids, instance_ids), predicted)
        anatomy.summary(), anatomy.instance_rows, anatomy.frame, anatomy.per_image

    ``add`` is ``score`` (the per-pixel work: thread-safe, run it in a worker) then
    ``add_scored`` (the sums, in image order).
    """

    def __init__(self, class_set: ClassSet, prediction_kind: str = "classes", ratio: float = DEFAULT_RATIO,
                 grid: tuple[int, int] = FRAME_GRID):
        self.class_set, self.prediction_kind, self.ratio, self.grid = class_set, prediction_kind, ratio, grid
        k = class_set.num_classes
        self.boundary = np.zeros((2, 2, k), dtype=np.int64)  # mode (all, official) x (intersection, union)
        self.frame = np.zeros((2, *grid), dtype=np.int64)
        self.objects = InstanceScores(class_set, prediction_kind)
        self.per_image: list[dict] = []
        self.widths: dict[str, int] = {}
        self.images = 0
        # Prediction value -> its class in each mode (values of no class of the set are kept as a
        # region of their own, never anybody's boundary), and whether the two cut the same regions
        # whatever the image (cityscapes19's labelIds: 255 and the sink are both "no class").
        if prediction_kind == "label_ids":
            self._value_tables = (class_set.lut, class_set.eval_pred_lut)
        else:
            identity = np.arange(LUT_SIZE, dtype=np.uint8)
            self._value_tables = (identity, identity)
        self._same_prediction_regions = _same_regions(*self._value_tables, np.arange(LUT_SIZE))

    def truth(self, label_ids: np.ndarray, instance_ids: np.ndarray | None) -> Truth:
        """``prepare_truth`` with this anatomy's settings (safe to run in another thread)."""
        return prepare_truth(self.class_set, label_ids, instance_ids, self.ratio, self.grid)

    def add(self, image_id: int, truth: Truth, prediction: np.ndarray, counts: np.ndarray | None = None) -> None:
        """Add one image (``counts``: its ``pair_counts(label_ids, prediction)`` if already made)."""
        self.add_scored(self.score(image_id, truth, prediction, counts))

    def score(self, image_id: int, truth: Truth, prediction: np.ndarray,
              counts: np.ndarray | None = None) -> ImageAnatomy:
        """One image's anatomy, not yet added (safe to run in several threads at once).

        Every per-class count of both modes and the image's ``pair_counts`` come from one
        histogram of (labelId, prediction value, which boundary bands hold the pixel), a few
        hundred distinct tuples that the lookup tables then fold, never the pixels again."""
        if prediction.shape != truth.label_ids.shape:
            raise ValueError(f"ground truth {truth.label_ids.shape} and prediction {prediction.shape} differ in shape")
        k = self.class_set.num_classes
        prediction = np.ascontiguousarray(prediction)
        shape = prediction.shape
        predicted_all = (lookup(self._value_tables[0], prediction, scratch("classes", shape, np.uint8))
                         if self.prediction_kind == "label_ids" else prediction)
        maps = [predicted_all]
        if not (self._same_prediction_regions or _same_regions(*self._value_tables, _present(prediction))):
            maps.append(lookup(self._value_tables[1], prediction, scratch("official classes", shape, np.uint8)))
        label_ids = np.ascontiguousarray(truth.label_ids)
        if label_ids.dtype != np.uint8 or prediction.dtype != np.uint8:
            raise ValueError("the anatomy counts uint8 labelIds against a uint8 prediction")
        # One byte of band bits, all made in one pass: the truth's (all, official if its own), then
        # the prediction's.
        first = len(truth.band_maps)
        bits = packed_bands(truth.band_maps + maps, truth.width, reuse=True, out=scratch("bits", shape, np.uint8))
        bit = [0, first - 1, first, first + len(maps) - 1]  # of truth all, truth official, predicted all, official
        label, value, bits, count = _band_tuples(label_ids, prediction, bits, 1 << (first + len(maps)))
        if counts is None:
            counts = np.bincount(label * LUT_SIZE + value, weights=count,
                                 minlength=LUT_SIZE * LUT_SIZE).astype(np.int64).reshape(LUT_SIZE, LUT_SIZE)
        truth_tables = (self.class_set.lut, self.class_set.eval_gt_lut)
        boundary = np.stack([
            np.stack(counts_from_tuples(truth_tables[mode][label], self._value_tables[mode][value],
                                        (bits >> bit[mode]) & 1, (bits >> bit[2 + mode]) & 1, count, k))
            for mode in (0, 1)])
        counted_cells, wrong_cells = frame_counts(truth.all_classes, predicted_all, self.grid)
        objects = (self.objects.score(image_id, truth.instance_ids, prediction, counts)
                   if truth.instance_ids is not None else None)
        return ImageAnatomy(image_id, f"{prediction.shape[0]}x{prediction.shape[1]}", truth.width, boundary,
                            counted_cells, wrong_cells, objects, counts)

    def add_scored(self, scored: ImageAnatomy) -> None:
        """Add an image ``score`` made: images are added in the order they are given."""
        self.boundary += scored.boundary
        self.widths[scored.size] = scored.width
        self.frame[0] += scored.counted_cells
        self.frame[1] += scored.wrong_cells
        objects_before = len(self.objects.rows)
        if scored.objects is not None:
            self.objects.add_scored(scored.objects)
        new_rows = self.objects.rows[objects_before:]
        has_objects = scored.objects is not None
        self.per_image.append({
            "id": scored.image_id, "boundary_miou": finite_or_none(mean_boundary_iou(*scored.boundary[0]), 6),
            "objects": len(new_rows) if has_objects else None,
            "missed": sum(r["missed"] for r in new_rows) if has_objects else None})
        self.images += 1

    @property
    def instance_rows(self) -> list[dict]:
        return self.objects.rows

    def summary(self) -> dict:
        """The JSON-ready numbers: ``boundary_iou`` / ``mean_boundary_iou`` (all classes),
        ``boundary_iou_official`` / ``mean_boundary_iou_official``, the iIoU block of
        ``InstanceScores.summary`` (None when some image has no instanceIds), the settings."""
        cs = self.class_set
        all_iou = boundary_iou(*self.boundary[0])
        official_iou = boundary_iou(*self.boundary[1])
        scored = set(cs.scored)
        official_iou = np.where([i in scored for i in range(cs.num_classes)], official_iou, np.nan)
        result = {
            "boundary_ratio": self.ratio,
            "boundary_width_px": dict(self.widths),
            "boundary_iou": {name: finite_or_none(v) for name, v in zip(cs.names, all_iou)},
            "mean_boundary_iou": finite_or_none(mean_boundary_iou(*self.boundary[0])),
            "boundary_iou_official": {name: finite_or_none(v) for name, v in zip(cs.names, official_iou)},
            "mean_boundary_iou_official": finite_or_none(mean_boundary_iou(*self.boundary[1], cs.scored)),
            "frame_grid": list(self.grid),
            "instance_images": self.objects.images,
        }
        objects = self.objects.summary()
        if self.objects.images < self.images:
            objects = {key: None if key.startswith(("iiou", "mean_iiou")) else value
                       for key, value in objects.items()}
            result["instances_note"] = (f"no gtFine_instanceIds for {self.images - self.objects.images} of "
                                        f"{self.images} images: no instance-level scores")
        return {**result, **objects}


def format_anatomy(summary: dict) -> str:
    """The anatomy's lines of a command's report (mean Boundary IoU, iIoU, objects missed)."""
    def number(value) -> str:
        return "n/a" if value is None else f"{value:.3f}"

    widths = ", ".join(f"{d} px at {size}" for size, d in summary["boundary_width_px"].items())
    lines = [f"{'Boundary mIoU, all classes':<28}{number(summary['mean_boundary_iou'])}  "
             f"(ratio {summary['boundary_ratio']}: {widths or 'no image'})",
             f"{'Boundary mIoU, official':<28}{number(summary['mean_boundary_iou_official'])}"]
    if summary.get("instances_note"):
        lines.append(f"{'iIoU':<28}n/a ({summary['instances_note']})")
        return "\n".join(lines)
    level = "categories" if "mean_iiou_categories" not in summary else "classes"
    lines.append(f"{'iIoU (' + level + ')':<28}{number(summary['mean_iiou'])}  "
                 + "  ".join(f"{name} {number(v)}" for name, v in summary["iiou"].items()))
    if "mean_iiou_categories" in summary:
        lines.append(f"{'iIoU (categories)':<28}{number(summary['mean_iiou_categories'])}  "
                     + "  ".join(f"{name} {number(v)}" for name, v in summary["iiou_categories"].items()))
    objects = summary["instances"]
    lines.append(f"{'objects missed':<28}{objects['missed']} of {objects['objects']} "
                 f"(recall < {objects['missed_below_recall']})")
    return "\n".join(lines)
