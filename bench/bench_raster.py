"""What OpenCV changed: the shrinks, the dilation, the boundary band and the connected regions,
each timed against the numpy / Pillow code it replaced, at 256x512 and at 2048x1024; and the
API's own PNG writer against OpenCV's and Pillow's encoders.

The code replaced is the tests' references (``tests/test_raster.py``, ``tests/test_boundary.py``,
``tests/test_consensus.py``); every row also checks that old and new give the same values. The
inputs are the benchmark dataset's test images (``bench/datasets.py``): their photos and labelIds,
and model-like predictions (``bench_evaluation.model_like``: smooth borders, wrong ellipses).

* shrink "mean" (photos), "centre" (class maps, and class colours), "any" (an object's mask: the
  explorer's outline, and the changed pixels of a flip map), "sum" (the anatomy's 128x256 grid of
  counts): by the display factor to 512 wide at 2048x1024 (4), and by 2 at 256x512 (the
  dashboard shows such frames as they are: 2 is the factor of a 256-wide close-up);
* the dilation: the explorer's outline ring (2 display pixels) and a band as wide as Boundary
  IoU's ``d``, at full size;
* the boundary band (``d`` = 11 at 2048x1024, 3 at 256x512);
* the connected regions of the Check labels page (three runs agreeing against the ground truth:
  ``image_candidates``, and ``connected_regions`` of the same masks with every region kept);
* PNG: a class mask as the API sends it (grey class indices and a palette PNG, zlib level 1)
  by ``api.imaging.mask_pngs`` (both from one compression), ``cv2.imencode`` (grey only: OpenCV
  writes no palette PNG) and Pillow (``L`` and ``P``): milliseconds and bytes.

    .venv/bin/python bench/bench_raster.py [--resolution demo full] [--images 4] [--repeat 7]

Writes ``bench/results/raster-<resolution>.json``.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import training  # noqa: E402,F401
from api.imaging import mask_pngs  # noqa: E402
from bench.bench_consensus import own_errors  # noqa: E402
from bench.bench_evaluation import model_like  # noqa: E402
from bench.datasets import RESOLUTIONS, bench_dataset  # noqa: E402
from bench.results_file import write_results  # noqa: E402
from tests.test_boundary import reference_band  # noqa: E402
from tests.test_consensus import reference_candidates, reference_regions  # noqa: E402
from tests.test_raster import (  # noqa: E402
    reference_centre,
    reference_dilate,
    reference_flips,
    reference_photo,
    reference_pooled,
    reference_region,
)
from training.data.cityscapes import read_image, read_label_ids  # noqa: E402
from training.data.index import load_or_build_index  # noqa: E402
from training.data.labels import get_class_set  # noqa: E402
from training.evaluation.boundary import boundary_band, boundary_width  # noqa: E402
from training.evaluation.consensus import connected_regions, consensus_errors, image_candidates  # noqa: E402
from training.raster import dilate_square, shrink  # noqa: E402
from training.viz import shrink_flips  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FACTORS = {"demo": 2, "full": 4}  # 256x512 -> 256 wide; 2048x1024 -> 512 wide (the display width)
MIN_PIXELS_FULL = 2000  # the Check labels page's default at 2048x1024; scaled by area
PNG_LEVEL = 1  # api.imaging: zlib level 1
OUTLINE_THICKNESS = 2  # dashboard.outline
FRAME_GRID = (128, 256)
SCAN_THREADS = 2  # this machine's cores


def best_ms(run: Callable[[], object], inputs: list, repeat: int, threads: int = 1) -> float:
    """The best of ``repeat`` passes over ``inputs`` (by ``threads`` threads), in milliseconds per input."""
    best = float("inf")
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(repeat):
            start = time.perf_counter()
            if threads == 1:
                for item in inputs:
                    run(item)
            else:
                list(pool.map(run, inputs))
            best = min(best, time.perf_counter() - start)
    return 1000 * best / len(inputs)


def same(a, b) -> bool:
    if isinstance(a, tuple):
        return all(same(x, y) for x, y in zip(a, b))
    return np.array_equal(a, b)


def compare(name: str, old: Callable, new: Callable, inputs: list, repeat: int, check=same, threads: int = 1) -> dict:
    identical = all(check(old(item), new(item)) for item in inputs)
    if not identical:
        raise AssertionError(f"{name}: the new code gives other values than the old")
    old_ms, new_ms = best_ms(old, inputs, repeat, threads), best_ms(new, inputs, repeat, threads)
    return {"operation": name, "old_ms": old_ms, "new_ms": new_ms, "speedup": old_ms / new_ms, "identical": True}


def object_mask(label_ids: np.ndarray) -> np.ndarray:
    """A car's or a person's pixels, else a building's: what the explorer outlines."""
    for label in (26, 24, 11):
        mask = label_ids == label
        if mask.any():
            return mask
    return label_ids == label_ids[0, 0]


def raster_rows(images: list[dict], factor: int, repeat: int) -> list[dict]:
    photos = [image["photo"] for image in images]
    classes = [image["classes"] for image in images]
    colours = [image["colours"] for image in images]
    objects = [image["object"] for image in images]
    flips = [(image["classes"], image["predicted"]) for image in images]
    width = boundary_width(images[0]["classes"].shape)
    rng = np.random.default_rng(0)
    counted = rng.integers(0, 5000, FRAME_GRID)
    grids = [np.stack([counted, rng.integers(0, counted + 1)]).astype(np.int64)]
    return [
        compare(f"shrink mean (photo, /{factor})", lambda p: reference_photo(p, factor),
                lambda p: shrink(p, factor, "mean"), photos, repeat),
        compare(f"shrink centre (class map, /{factor})", lambda c: reference_centre(c, factor),
                lambda c: shrink(c, factor, "centre"), classes, repeat),
        compare(f"shrink centre (class colours, /{factor})", lambda c: reference_centre(c, factor),
                lambda c: shrink(c, factor, "centre"), colours, repeat),
        compare(f"shrink any (outlined object, /{factor})", lambda m: reference_region(m, factor),
                lambda m: shrink(m, factor, "any"), objects, repeat,
                check=lambda old, new: np.array_equal(old[:new.shape[0], :new.shape[1]], new)),
        compare(f"shrink flips (any + first class, /{factor})", lambda pair: reference_flips(*pair, factor),
                lambda pair: shrink_flips(*pair, factor), flips, repeat),
        compare("shrink sum (2x128x256 counts, /8)", lambda g: reference_pooled(g, 8),
                lambda g: np.stack([shrink(channel, 8, "sum") for channel in g]), grids, repeat * 10),
        compare(f"dilate {OUTLINE_THICKNESS} (outline ring)", lambda m: reference_dilate(m, OUTLINE_THICKNESS),
                lambda m: dilate_square(m, OUTLINE_THICKNESS), objects, repeat),
        compare(f"dilate {width} (a band d wide)", lambda m: reference_dilate(m, width),
                lambda m: dilate_square(m, width), objects, repeat),
        compare(f"boundary band (d = {width})", lambda c: reference_band(c, width),
                lambda c: boundary_band(c, width), classes, repeat),
    ]


def consensus_rows(images: list[dict], min_pixels: int, repeat: int) -> list[dict]:
    cases = [(image["classes"], image["runs"]) for image in images]
    masks = [consensus_errors(truth, runs, 19)[0] for truth, runs in cases]

    def regions_equal(old, new) -> bool:
        return [(r.pixels, r.box) for r in old] == [(r.pixels, r.box) for r in new] and all(
            np.array_equal(a.runs, b.runs) for a, b in zip(old, new))

    def candidates_equal(old, new) -> bool:
        return regions_equal([c.region for c in old], [c.region for c in new]) and [
            (c.truth_class, c.truth_share, c.agreed_class, c.agreed_share) for c in old] == [
            (c.truth_class, c.truth_share, c.agreed_class, c.agreed_share) for c in new]

    return [
        compare("connected regions (agreement mask, every region)",
                lambda m: reference_regions(m, 1, 8)[0], lambda m: connected_regions(m, 1, 8), masks, repeat,
                check=regions_equal),
        compare(f"image_candidates (3 runs, >= {min_pixels} px)",
                lambda case: reference_candidates(case[0], case[1], min_pixels, 19),
                lambda case: image_candidates(case[0], case[1], min_pixels, 19), cases, repeat,
                check=candidates_equal),
        # The scan runs image_candidates in its reader threads: what the GIL lets through.
        compare(f"image_candidates (3 runs, >= {min_pixels} px), {SCAN_THREADS} threads",
                lambda case: reference_candidates(case[0], case[1], min_pixels, 19),
                lambda case: image_candidates(case[0], case[1], min_pixels, 19), cases * 2, repeat,
                check=candidates_equal, threads=SCAN_THREADS),
    ]


def png_rows(masks: list[np.ndarray], palette: np.ndarray, repeat: int) -> list[dict]:
    """Each encoder's milliseconds per mask and bytes per mask; decoded pixels checked."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[:len(palette)] = palette

    def pillow(mask: np.ndarray, with_palette: bool) -> bytes:
        image = Image.fromarray(mask)
        if with_palette:
            image.putpalette(table.tobytes())  # an L image with a palette becomes P
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=PNG_LEVEL)
        return buffer.getvalue()

    def opencv(mask: np.ndarray, png_filter: int | None) -> bytes:
        options = [cv2.IMWRITE_PNG_COMPRESSION, PNG_LEVEL]
        if png_filter is not None:
            options += [cv2.IMWRITE_PNG_FILTER, png_filter]
        ok, encoded = cv2.imencode(".png", mask, options)
        assert ok
        return encoded.tobytes()

    def ours(mask: np.ndarray) -> list[bytes]:
        pngs = mask_pngs(mask, palette)
        return [pngs.index, pngs.color]

    encoders = {  # each gives the PNGs it makes of a mask
        "api.imaging.mask_pngs (grey + palette, one compression)": ours,
        "api.imaging.mask_pngs (grey only)": lambda m: [mask_pngs(m).index],
        "cv2.imencode grey (its default filter)": lambda m: [opencv(m, None)],
        "cv2.imencode grey (filter none, as ours)": lambda m: [opencv(m, cv2.IMWRITE_PNG_FILTER_NONE)],
        "Pillow L (grey)": lambda m: [pillow(m, False)],
        "Pillow P (palette)": lambda m: [pillow(m, True)],
        "Pillow L + Pillow P (both variants)": lambda m: [pillow(m, False), pillow(m, True)],
        "cv2 grey + Pillow P (both variants)": lambda m: [opencv(m, None), pillow(m, True)],
    }
    rows = []
    for name, encode in encoders.items():
        produced = [encode(mask) for mask in masks]
        for mask, pngs in zip(masks, produced):
            for png in pngs:  # every PNG decodes to the mask's values
                assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), mask), name
        sizes = [sum(len(png) for png in pngs) for pngs in produced]
        rows.append({"encoder": name, "ms": best_ms(encode, masks, repeat), "bytes": float(np.mean(sizes))})
    return rows


def load(resolution: str, count: int) -> list[dict]:
    root = bench_dataset(resolution)
    entries = load_or_build_index(root, write=False, report=lambda message: None).split("test")[:count]
    class_set = get_class_set("cityscapes19")
    rng = np.random.default_rng(0)
    images = []
    for entry in entries:
        label_ids = read_label_ids(root / entry.label)
        classes = class_set.lut[label_ids]
        shared = class_set.lut[model_like(label_ids, rng)]
        shared[shared == 255] = 0
        images.append({"photo": read_image(root / entry.image), "classes": classes,
                       "colours": class_set.palette()[classes], "object": object_mask(label_ids),
                       "predicted": shared, "runs": [own_errors(shared, rng, 19) for _ in range(3)]})
    return images


def measure(resolution: str, count: int, repeat: int) -> dict:
    images = load(resolution, count)
    height, width = RESOLUTIONS[resolution]
    min_pixels = max(1, round(MIN_PIXELS_FULL * height * width / (1024 * 2048)))
    class_set = get_class_set("cityscapes19")
    return {"size": f"{width}x{height}", "images": len(images), "threads": cv2.getNumThreads(),
            "rows": raster_rows(images, FACTORS[resolution], repeat) + consensus_rows(images, min_pixels, repeat),
            "png": png_rows([image["predicted"] for image in images] + [image["classes"] for image in images],
                            class_set.palette(), repeat)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", nargs="+", choices=sorted(RESOLUTIONS), default=["demo", "full"])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for resolution in args.resolution:
        result = measure(resolution, args.images, args.repeat)
        print(f"\n{result['size']}, {result['images']} images, OpenCV threads: {result['threads']}")
        print("| operation | old ms | new ms | speed-up | identical |")
        print("|---|---|---|---|---|")
        for row in result["rows"]:
            print(f"| {row['operation']} | {row['old_ms']:.3f} | {row['new_ms']:.3f} | {row['speedup']:.1f}x | "
                  f"{'yes' if row['identical'] else 'NO'} |")
        print(f"\nPNG of a class mask, zlib level {PNG_LEVEL} (predictions and ground truths)")
        print("| encoder | ms | bytes |")
        print("|---|---|---|")
        for row in result["png"]:
            print(f"| {row['encoder']} | {row['ms']:.2f} | {row['bytes']:,.0f} |")
        write_results(f"raster-{resolution}", result)


if __name__ == "__main__":
    main()
