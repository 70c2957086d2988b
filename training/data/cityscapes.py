"""Reading a dataset in the Cityscapes layout, with errors that name the bad file.

    <root>/leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png     RGB, 8 bit
    <root>/gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png      L, labelIds 0..33

The root is ``--data-root``, else ``$CITYSCAPES_DATASET`` (the variable the official
cityscapesScripts read), else the embedded generated dataset if it has been made.
"""

from __future__ import annotations

import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from training.data.labels import NUM_LABEL_IDS
from training.data.png import MAX_PNG_FILE_BYTES, PngError, decode_png, read_file, read_header

OFFICIAL_SPLITS = ("train", "val")
IMAGE_DIR, LABEL_DIR = "leftImg8bit", "gtFine"
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
STEM_PATTERN = re.compile(r"(?P<city>[A-Za-z0-9-]+)_(?P<seq>\d+)_(?P<frame>\d+)")
REPO_ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_ROOT = REPO_ROOT / "data" / "cityscapes-synthetic"
MAX_IMAGE_PIXELS = 64_000_000  # far above 2048x1024; refuses decompression bombs


class DatasetError(Exception):
    """A problem with the dataset; the message names the file and says what is wrong."""


@dataclass(frozen=True)
class Pair:
    """One image and its label file, paths relative to the dataset root."""

    official_split: str
    city: str
    stem: str  # <city>_<seq>_<frame>
    image: str
    label: str


def resolve_data_root(data_root: str | os.PathLike | None = None) -> Path:
    """The dataset root: the argument, else ``$CITYSCAPES_DATASET``, else the embedded dataset."""
    if data_root:
        root = Path(data_root)
    elif os.environ.get("CITYSCAPES_DATASET"):
        root = Path(os.environ["CITYSCAPES_DATASET"])
    elif (EMBEDDED_ROOT / IMAGE_DIR).is_dir():
        root = EMBEDDED_ROOT
    else:
        raise DatasetError(
            "no dataset: pass --data-root DIR or set CITYSCAPES_DATASET to a Cityscapes "
            "download (with leftImg8bit/ and gtFine/), or generate the embedded dataset with "
            f"`python -m training data make --out {EMBEDDED_ROOT.relative_to(REPO_ROOT)}`"
        )
    if not root.is_dir():
        raise DatasetError(f"{root}: dataset root does not exist")
    missing = [name for name in (IMAGE_DIR, LABEL_DIR) if not (root / name).is_dir()]
    if missing:
        raise DatasetError(
            f"{root}: not in the Cityscapes layout, missing {' and '.join(m + '/' for m in missing)}"
        )
    return root


def _files_with_suffix(directory: Path, suffix: str, problems: list[str]) -> dict[str, Path]:
    """stem -> path for every ``<city>/<stem><suffix>`` under ``directory``; a name of that form
    that is no regular file (a FIFO, a link to a device or to nothing) is added to ``problems``."""
    found = {}
    if not directory.is_dir():
        return found
    for city_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        for entry in os.scandir(city_dir):
            if not entry.name.endswith(suffix):
                continue
            if entry.is_file():
                found[entry.name[: -len(suffix)]] = Path(entry.path)
            elif not entry.is_dir():
                problems.append(f"{entry.path}: not a regular file (skipped)")
    return found


def discover_pairs(root: Path, splits=OFFICIAL_SPLITS) -> tuple[list[Pair], list[str]]:
    """Pair every image with its label file.

    Returns:
        The pairs sorted by (split, city, stem), and one problem message per file that has
        no partner or a name that is not ``<city>_<seq>_<frame>``.
    """
    pairs, problems = [], []
    for split in splits:
        images = _files_with_suffix(root / IMAGE_DIR / split, IMAGE_SUFFIX, problems)
        labels = _files_with_suffix(root / LABEL_DIR / split, LABEL_SUFFIX, problems)
        for stem in sorted(images.keys() - labels.keys()):
            problems.append(f"{images[stem]}: missing partner {LABEL_DIR}/{split}/.../{stem}{LABEL_SUFFIX}")
        for stem in sorted(labels.keys() - images.keys()):
            problems.append(f"{labels[stem]}: missing partner {IMAGE_DIR}/{split}/.../{stem}{IMAGE_SUFFIX}")
        for stem in sorted(images.keys() & labels.keys()):
            if not STEM_PATTERN.fullmatch(stem):
                problems.append(f"{images[stem]}: name is not <city>_<seq>_<frame>{IMAGE_SUFFIX}")
                continue
            city = images[stem].parent.name
            if labels[stem].parent.name != city:
                problems.append(f"{labels[stem]}: in city folder {labels[stem].parent.name!r}, "
                                f"its image is in {city!r}")
                continue
            pairs.append(Pair(split, city, stem,
                              images[stem].relative_to(root).as_posix(),
                              labels[stem].relative_to(root).as_posix()))
    return pairs, problems


def open_png(path: Path) -> Image.Image:
    """Open a PNG lazily (header only); raises ``DatasetError`` naming the file."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(status.st_mode):  # a FIFO would make the open below wait forever
        raise DatasetError(f"{path}: not a regular file")
    if status.st_size > MAX_PNG_FILE_BYTES:
        raise DatasetError(f"{path}: {status.st_size:,} bytes, more than any image of ours")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (OSError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path}: not a readable PNG ({exc})") from None
    if image.format != "PNG":
        raise DatasetError(f"{path}: is {image.format or 'not an image'}, expected PNG")
    if image.width * image.height > MAX_IMAGE_PIXELS:
        raise DatasetError(f"{path}: {image.width}x{image.height} is larger than {MAX_IMAGE_PIXELS} pixels")
    return image


def check_pair_header(root: Path, pair: Pair) -> tuple[int, int]:
    """Check modes and sizes from the PNG headers only (no decoding).

    Returns:
        ``(height, width)``.
    """
    image_path, label_path = root / pair.image, root / pair.label
    with open_png(image_path) as image, open_png(label_path) as label:
        if image.mode != "RGB":
            raise DatasetError(f"{image_path}: mode {image.mode}, expected RGB (8-bit colour)")
        if label.mode != "L":
            raise DatasetError(f"{label_path}: mode {label.mode}, expected L (8-bit labelIds)")
        if image.size != label.size:
            raise DatasetError(
                f"{label_path}: size {label.width}x{label.height} differs from its image "
                f"{image_path.name} ({image.width}x{image.height})"
            )
        return image.height, image.width


def read_png_file(path: Path, modes: tuple[str, ...], what: str) -> np.ndarray:
    """Decode ``path`` with ``training.data.png`` after checking its header (mode one of
    ``modes``, pixel limit); ``DatasetError`` naming the file and saying ``what`` was expected."""
    try:
        data = read_file(path)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        header = read_header(data)
    except PngError:
        raise DatasetError(f"{path}: not a readable PNG") from None
    if header.mode not in modes:
        raise DatasetError(f"{path}: mode {header.mode}, expected {' or '.join(modes)} ({what})")
    try:
        return decode_png(data, MAX_IMAGE_PIXELS)
    except PngError as exc:
        raise DatasetError(f"{path}: {exc}") from None


def read_image(path: str | os.PathLike) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB; raises ``DatasetError`` naming the file if it cannot."""
    return read_png_file(Path(path), ("RGB",), "8-bit colour")


def read_label_ids(path: str | os.PathLike, check_values: bool = True) -> np.ndarray:
    """``(H, W)`` uint8 Cityscapes labelIds; with ``check_values`` every id must be in the table."""
    path = Path(path)
    label_ids = read_png_file(path, ("L",), "8-bit labelIds")
    if check_values:
        check_label_values(label_ids, path)
    return label_ids


def check_label_values(label_ids: np.ndarray, path) -> None:
    """Raise ``DatasetError`` if ``label_ids`` holds ids outside the Cityscapes table (0..33)."""
    if label_ids.size and int(label_ids.max()) >= NUM_LABEL_IDS:
        unknown = np.unique(label_ids[label_ids >= NUM_LABEL_IDS])
        shown = ", ".join(str(v) for v in unknown[:10]) + (" ..." if unknown.size > 10 else "")
        raise DatasetError(f"{path}: label ids outside the Cityscapes table (0..{NUM_LABEL_IDS - 1}): {shown}")


def check_same_size(label_path: Path, label_shape: tuple, image_shape: tuple) -> None:
    """``DatasetError`` naming the label file when its ``(H, W)`` differs from its image's."""
    if tuple(label_shape[:2]) != tuple(image_shape[:2]):
        raise DatasetError(f"{label_path}: size {label_shape[1]}x{label_shape[0]} differs from "
                           f"its image ({image_shape[1]}x{image_shape[0]})")


def instance_path(label_path: str | Path) -> Path:
    """The ``gtFine_instanceIds`` file beside a ``gtFine_labelIds`` file."""
    label_path = Path(label_path)
    return label_path.with_name(label_path.name.replace("_labelIds.png", "_instanceIds.png"))


def read_instance_ids(label_path: str | Path) -> np.ndarray | None:
    """The instanceIds beside the labelIds file ``label_path`` (uint16 as the 16-bit PNG stores
    them, int32 from an 8-bit one), or None when the dataset has no such file; ``DatasetError``
    naming the file when it cannot be read."""
    path = instance_path(label_path)
    if not path.is_file():
        return None
    ids = read_png_file(path, ("I;16", "L"), "single-channel instanceIds")
    return ids if ids.dtype == np.uint16 else ids.astype(np.int32)


def read_pair(root: Path, image_relpath: str, label_relpath: str) -> tuple[np.ndarray, np.ndarray]:
    """Decode and validate one pair: (RGB image, labelIds) of the same size."""
    image = read_image(root / image_relpath)
    label_ids = read_label_ids(root / label_relpath)
    check_same_size(root / label_relpath, label_ids.shape, image.shape)
    return image, label_ids
