"""The dataset at training size, decoded once: epochs read small arrays, not 2 MB PNGs.

A 2048x1024 Cityscapes photo costs ~40 ms to decode and ~15 ms to shrink; the same frame at
128x256 is a 128 KB array that ``np.load`` reads in tens of microseconds. The first epoch decodes
each frame, resizes it to every size training asks for and writes the results; later epochs, the
validation loader and every later run at the same size read them.

One file per image and size, the photo and its labelIds side by side in one ``(H, W, 4)`` uint8
array (channels 0-2 the photo, 3 the labelIds)::

    <cache>/<H>x<W>-r<RESIZE_VERSION>/leftImg8bit/<split>/<city>/<stem>_leftImg8bit.<key>.npy

resized by ``training.data.resize.resize_pair`` (bilinear photo, nearest labelIds): a cached
example is the very array a decode and resize gives.

**Where**: ``<data root>/.cache/training/`` when the dataset folder is writable; otherwise (a
read-only download) ``$XDG_CACHE_HOME/street-segmentation/training/<hash of the data root>/``
(``~/.cache`` when the variable is unset); a folder given by the caller wins over both. When no
folder can be written, frames are decoded every time, as without a cache.

**Invalidation**: ``<key>`` hashes both files' paths and ``training.files.file_stamp`` (inode,
modification time, size), so a file replaced or rewritten misses, is decoded again and its old
entry removed. A change to the resizing bumps ``RESIZE_VERSION``, which names a new folder.

**Atomicity**: an entry is written under a temporary name, flushed to disk, then renamed. A
killed writer leaves at most a ``.*.tmp`` file, which no reader opens; an entry that does not
read back as the expected array (a crash of the machine, a disk full) counts as missing and is
written again.
"""

from __future__ import annotations

import glob
import hashlib
import os
import secrets
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from training.data.cityscapes import read_pair
from training.data.resize import Pair, resize_pair
from training.files import file_stamp

# Bump when resize_pair (or the layout of an entry) changes: old entries then live in a folder
# nobody reads.
RESIZE_VERSION = 1
DATA_ROOT_CACHE = Path(".cache") / "training"
USER_CACHE = Path("street-segmentation") / "training"


def user_cache_dir(root: str | os.PathLike) -> Path:
    """The per-user cache of the dataset at ``root`` (for a read-only dataset folder)."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:16]
    return base / USER_CACHE / digest


def _writable_folder(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (made if needed); root ignores permission bits,
    so a real file is created rather than trusting ``os.access``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".probe-{secrets.token_hex(6)}"
        probe.touch(exist_ok=False)
        probe.unlink()
        return True
    except OSError:
        return False


def resolve_cache_dir(root: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """Where the frames of the dataset at ``root`` are cached: ``cache_dir`` if given, else beside
    the data, else the user's cache; ``None`` if none of them can be written."""
    candidates = [Path(cache_dir)] if cache_dir else [Path(root) / DATA_ROOT_CACHE, user_cache_dir(root)]
    for folder in candidates:
        if _writable_folder(folder):
            return folder
    return None


class FrameCache:
    """Pairs of one dataset at given sizes, decoded from the PNGs on the first request only.

    Args:
        root: dataset root.
        cache_dir: the cache folder (default: ``resolve_cache_dir``).

    Safe to use from several threads and processes at once: two writers of one entry write the
    same bytes, and the last rename wins.
    """

    def __init__(self, root: str | os.PathLike, cache_dir: str | os.PathLike | None = None):
        self.root = Path(root)
        self.directory = resolve_cache_dir(self.root, cache_dir)
        if self.directory is None:
            warnings.warn(f"no writable cache folder for {self.root}: every epoch decodes the full-size PNGs",
                          stacklevel=2)

    def __repr__(self) -> str:
        return f"FrameCache({str(self.root)!r}, directory={str(self.directory)!r})"

    def entry_path(self, image: str, label: str, size: tuple[int, int]) -> Path | None:
        """The file of this pair at ``size`` for the files as they are now (None when either is
        missing or there is no cache folder)."""
        stamps = file_stamp(self.root / image), file_stamp(self.root / label)
        if self.directory is None or None in stamps:
            return None
        return self._entry_path(image, label, stamps, size)

    def _entry_path(self, image: str, label: str, stamps: tuple, size: tuple[int, int]) -> Path:
        height, width = size
        key = hashlib.sha256(repr((image, label, stamps, (height, width), RESIZE_VERSION)).encode()).hexdigest()[:16]
        return self.directory / f"{height}x{width}-r{RESIZE_VERSION}" / f"{image.removesuffix('.png')}.{key}.npy"

    def load(self, image: str, label: str, sizes: Sequence[tuple[int, int]]) -> list[Pair]:
        """``(photo, labelIds)`` of the pair at each of ``sizes``, uint8, as ``resize_pair`` of the
        decoded files gives them.

        Raises:
            DatasetError: a file is missing, corrupt or inconsistent (the message names it).
        """
        sizes = [tuple(size) for size in sizes]
        stamps = file_stamp(self.root / image), file_stamp(self.root / label)
        if self.directory is None or None in stamps:
            full = read_pair(self.root, image, label)  # raises, naming the missing file
            return [resize_pair(*full, size) for size in sizes]
        paths = [self._entry_path(image, label, stamps, size) for size in sizes]
        pairs = [_read_entry(path, size) for path, size in zip(paths, sizes)]
        missing = [i for i, pair in enumerate(pairs) if pair is None]
        if missing:
            full = read_pair(self.root, image, label)
            # A file changed while it was decoded: return what was read, cache nothing under a
            # stamp that may not describe it.
            unchanged = (file_stamp(self.root / image), file_stamp(self.root / label)) == stamps
            for i in missing:
                pairs[i] = resize_pair(*full, sizes[i])
                if unchanged:
                    _write_entry(paths[i], *pairs[i])
        return pairs


def _read_entry(path: Path, size: tuple[int, int]) -> Pair | None:
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):  # absent, or torn by a crash: written again
        return None
    if array.shape != (*size, 4) or array.dtype != np.uint8:
        return None
    return np.ascontiguousarray(array[..., :3]), np.ascontiguousarray(array[..., 3])


def _write_entry(path: Path, image: np.ndarray, label_ids: np.ndarray) -> None:
    """Write atomically, then remove the entries of older versions of the same files; a failure
    (disk full, folder removed) only loses the caching, never the example."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "xb") as handle:
            np.save(handle, np.concatenate([image, label_ids[..., None]], axis=-1), allow_pickle=False)
            handle.flush()
            os.fsync(handle.fileno())  # the data before the rename: a crash never publishes zeros
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)
        return
    name = path.name.rsplit(".", 2)[0]  # without ".<key>.npy"
    for stale in glob.glob(glob.escape(str(path.parent / name)) + ".*.npy"):
        if stale != str(path):
            Path(stale).unlink(missing_ok=True)
