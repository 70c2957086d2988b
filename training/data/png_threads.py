"""PNG reading for threads: a dataset's files decoded by OpenCV, whose PNG decoder releases the
GIL where the libspng binding (``training.data.png``) holds it, so that the threads of an
evaluation, a render or a rescore decode several files at once; same arrays, same checks and
same errors as ``training.data.cityscapes``'s readers, which any doubt falls back to. Also the
instanceIds beside a labelIds file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from training.data.cityscapes import (
    MAX_IMAGE_PIXELS,
    check_label_values,
    check_same_size,
    read_image,
    read_png_file,
)
from training.data.png import PngError, read_file, read_header, read_png


def instance_path(label_path: str | Path) -> Path:
    """The ``gtFine_instanceIds`` file beside a ``gtFine_labelIds`` file."""
    label_path = Path(label_path)
    return label_path.with_name(label_path.name.replace("_labelIds.png", "_instanceIds.png"))


def read_instance_ids(label_path: str | Path) -> np.ndarray | None:
    """The image's instanceIds (uint16 as the 16-bit PNG stores them, else int32), or None when
    the dataset has no such file."""
    path = instance_path(label_path)
    if not path.is_file():
        return None
    ids = _decode_threaded(path, None, lambda: read_png(path)[1])
    if ids.ndim != 2:
        raise ValueError(f"{path}: instanceIds must be a single-channel PNG, got shape {ids.shape}")
    if ids.dtype not in (np.uint16, np.int32):
        ids = ids.astype(np.int32)
    return np.ascontiguousarray(ids)


# PNG kinds OpenCV decodes to exactly the array ``training.data.png`` gives, and how to ask for it.
_OPENCV_MODES = {"L": (cv2.IMREAD_UNCHANGED, 2, np.uint8), "I;16": (cv2.IMREAD_UNCHANGED, 2, np.uint16),
                 "RGB": (cv2.IMREAD_COLOR_RGB, 3, np.uint8)}


def read_png_threaded(path: Path, modes: tuple[str, ...], what: str) -> np.ndarray:
    """``training.data.cityscapes.read_png_file``'s array (same checks, same errors), decoded by
    OpenCV for 8-bit grey, 16-bit grey and 8-bit RGB files: its decoder releases the GIL where
    the libspng binding holds it, so the threads of an evaluation decode in parallel (2 threads:
    1.9x one thread's images per second, against 1.0x). Any other file, or any doubt (a damaged
    file, a size or layout that is not the header's), is read by ``read_png_file`` itself."""
    return _decode_threaded(path, modes, lambda: read_png_file(path, modes, what))


def _decode_threaded(path: Path, modes: tuple[str, ...] | None, fallback: Callable[[], np.ndarray]) -> np.ndarray:
    try:
        data = read_file(path)
        header = read_header(data)
    except (OSError, PngError):
        return fallback()  # which says what is wrong
    flags, rank, dtype = _OPENCV_MODES.get(header.mode, (None, 0, None))
    if flags is None or (modes is not None and header.mode not in modes) or header.pixels > MAX_IMAGE_PIXELS:
        return fallback()
    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if (pixels is None or pixels.ndim != rank or pixels.dtype != dtype
            or pixels.shape[:2] != (header.height, header.width)):
        return fallback()  # e.g. a transparency chunk OpenCV turns into alpha
    return pixels


def read_label_ids_threaded(path: Path) -> np.ndarray:
    """``training.data.cityscapes.read_label_ids`` (values checked), decoded as ``read_png_threaded``."""
    label_ids = read_png_threaded(Path(path), ("L",), "8-bit labelIds")
    check_label_values(label_ids, path)
    return label_ids


def read_pair_threaded(root: Path, image_relpath: str, label_relpath: str) -> tuple[np.ndarray, np.ndarray]:
    """``training.data.cityscapes.read_pair`` (RGB photo, labelIds, same size), the labelIds decoded
    as ``read_png_threaded``. The photo keeps libspng: a 2 MB photo of sensor noise costs it 32 ms
    of one core, OpenCV 55 (in parallel, but the cores are what an evaluation runs short of)."""
    image = read_image(root / image_relpath)
    label_ids = read_label_ids_threaded(root / label_relpath)
    check_same_size(root / label_relpath, label_ids.shape, image.shape)
    return image, label_ids
