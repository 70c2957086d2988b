"""The dataset's images as the routes read them: the index, the photo's header and bytes, the
decoded photo and labels, each read once and kept.

An image is known by its content, ``image_key``: the dataset's folder and index fingerprint (a
rebuilt index may give an id to another file) and the stamps of the two files. Decoded photos and
labels, which every route of an image may need, are kept in a cache of their own (a 2048x1024
photo takes ~30 ms to decode, and 6 MB: apart from the answers, so that a few photos do not push
out hundreds of answers).

A file of the dataset is read only when it is a regular file of a photo's size at most
(``training.data.png.read_file``): a FIFO would block the request forever and a link to
``/dev/zero`` would fill the memory (the index leaves out such names; the check holds for a file
replaced after it was indexed). A file that cannot be read is a 503 naming it, without the
server's paths.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from api.errors import ApiError
from api.paths import ServerPaths
from training.data.cityscapes import DatasetError, check_same_size, read_image, read_label_ids
from training.data.dataset import Dataset, DataSettings
from training.data.index import load_or_build_index
from training.data.labels import get_class_set
from training.data.png import MAX_PNG_FILE_BYTES, PngError, PngHeader, read_file, read_header
from training.files import file_stamp
from training.memory import ByteLRU

MAX_PHOTO_BYTES = MAX_PNG_FILE_BYTES  # a photo is one of the dataset's PNGs
PNG_HEADER_BYTES = 33  # the signature and the IHDR chunk: all read_header needs


def _read_photo_file(path: Path, first: int | None = None) -> bytes:
    """The bytes of a photo file, through ``training.data.png.read_file`` (a regular file of at
    most ``MAX_PHOTO_BYTES``).

    Raises:
        DatasetError: naming the file, when it is missing, no regular file, or too large.
    """
    try:
        return read_file(path, MAX_PHOTO_BYTES, first)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except OSError as error:
        raise DatasetError(f"{path}: {error.strerror or type(error).__name__}") from None


class ImageStore:
    """Datasets (their indexes, read again when the index file changes) and their images, for
    one process; safe to use from several threads."""

    def __init__(self, paths: ServerPaths, cache: ByteLRU, input_cache_bytes: int):
        self.paths = paths
        self.cache = cache  # the answers' cache: headers are kept there, they are small
        self.inputs = ByteLRU(input_cache_bytes)
        self._lock = threading.Lock()
        self._indexes: dict = {}

    def open(self, settings: DataSettings, root: Path) -> Dataset:
        """The dataset at ``root`` with ``settings``' index and class set.

        Raises:
            DatasetError: the index cannot be read or built.
        """
        index_file = settings.index_file(root)
        self.paths.add(root)
        self.paths.add(index_file.parent)
        stamp = file_stamp(index_file)
        key = (str(root), str(index_file))
        with self._lock:
            cached = self._indexes.get(key)
            if cached is None or cached[0] != stamp:
                index = load_or_build_index(root, settings.index, write=False, report=lambda message: None)
                self._indexes[key] = (stamp, index)
            index = self._indexes[key][1]
        return Dataset(root, index, get_class_set(settings.classes))

    def image_key(self, dataset: Dataset, image_id: int) -> tuple:
        """What an image's answers depend on, for cache keys: the dataset folder, the index's
        fingerprint (another after a rebuild that moved ids), and both files' stamps."""
        entry = dataset.index[image_id]
        return (str(dataset.root), dataset.index.fingerprint(), image_id,
                file_stamp(dataset.root / entry.image), file_stamp(dataset.root / entry.label))

    def photo_bytes(self, dataset: Dataset, image_id: int) -> bytes:
        """The photo file's bytes (503 naming it when it is no regular file of a photo's size)."""
        try:
            return _read_photo_file(dataset.root / dataset.index[image_id].image)
        except DatasetError as error:
            raise self._unreadable(error) from None

    def photo_header(self, dataset: Dataset, image_id: int, key: tuple) -> PngHeader:
        """The photo's PNG header (size and mode, no pixel decoded), read once per photo file."""
        header = self.cache.get(("header", key))
        if header is None:
            path = dataset.root / dataset.index[image_id].image
            try:
                header = read_header(_read_photo_file(path, PNG_HEADER_BYTES))
            except PngError as error:
                raise self._unreadable(DatasetError(f"{path}: not a readable PNG ({error})")) from None
            except DatasetError as error:
                raise self._unreadable(error) from None
            self.cache.put(("header", key), header, 200)
        return header

    def photo(self, dataset: Dataset, image_id: int, key: tuple) -> np.ndarray:
        """The decoded photo ``(H, W, 3)``, read-only, kept for the other routes of the image."""
        return self._decoded("photo", key, lambda: read_image(dataset.root / dataset.index[image_id].image))

    def label_ids(self, dataset: Dataset, image_id: int, key: tuple) -> np.ndarray:
        """The decoded labelIds ``(H, W)``, read-only, kept for the other routes of the image."""
        return self._decoded("labels", key, lambda: read_label_ids(dataset.root / dataset.index[image_id].label))

    def check_pair(self, dataset: Dataset, image_id: int, label_ids: np.ndarray, shape: tuple) -> None:
        """503 naming the label file when it does not fit its photo (``shape``: the photo's height
        and width), as ``read_pair`` says it."""
        entry = dataset.index[image_id]
        try:
            check_same_size(dataset.root / entry.label, label_ids.shape[:2], shape[:2])
        except DatasetError as error:
            raise self._unreadable(error) from None

    def _decoded(self, kind: str, key: tuple, decode) -> np.ndarray:
        array = self.inputs.get((kind, key))
        if array is None:
            try:
                array = decode()
            except DatasetError as error:
                raise self._unreadable(error) from None
            array.flags.writeable = False  # shared by every request that asks for the image
            self.inputs.put((kind, key), array, array.nbytes)
        return array

    def _unreadable(self, error: DatasetError) -> ApiError:
        return ApiError(503, "image unavailable", self.paths.text(str(error)))
