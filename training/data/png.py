"""Decoding PNG files fast: libspng for the formats read in bulk (photos, labelIds, instanceIds),
Pillow for the rest.

A genuine 2048x1024 Cityscapes photo is a 2.1 MB PNG of sensor noise; libspng decodes it in
about half of Pillow's or OpenCV's time, and labelIds and 16-bit instanceIds files faster too
(``bench/bench_png.py``). libspng is called through its C API (``training.data.spng_c``), which
lets other threads run meanwhile: the threads of an evaluation, a render, a rescore or a
training batch decode in parallel. The arrays are identical to Pillow's (``tests/test_png.py``
checks it on every format we read); formats libspng would convert (palette, grey+alpha, ...) are
decoded by Pillow, so callers always get what ``np.asarray(Image.open(path))`` gives.

The header is parsed here (no decode) so callers check mode and size before paying for pixels.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import struct
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

from training.data import spng_c

try:  # a pinned dependency; the fallback only keeps a hand-made environment working
    import pyspng
except ImportError:  # pragma: no cover
    pyspng = None

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# IHDR colour type and bit depth -> Pillow's mode; other combinations are described in words.
_MODES = {(0, 8): "L", (2, 8): "RGB", (3, 8): "P", (0, 16): "I;16", (4, 8): "LA", (6, 8): "RGBA", (0, 1): "1"}
_COLOUR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}
# The modes libspng decodes to exactly Pillow's array: through pyspng, and through its C API.
_SPNG_FORMATS = ("L", "RGB")
_SPNG_C_FORMATS = ("L", "RGB", "I;16")


# Far above any PNG of the at most 64 megapixels we decode (a 2048x1024 photo is ~2.2 MB): a file
# larger than this is not an image of ours, and is refused before it is read.
MAX_PNG_FILE_BYTES = 512 * 2**20


def read_file(path: str | os.PathLike, limit: int = MAX_PNG_FILE_BYTES, first: int | None = None) -> bytes:
    """The bytes of the regular file at ``path`` (only its ``first`` bytes when given), of at most
    ``limit`` bytes.

    A dataset or a folder of predictions is filled by hand: a name may be a link to ``/dev/zero``
    (read forever), a FIFO (a plain open waits for a writer forever) or a folder. The file is
    opened without waiting and checked on the open descriptor, so a name swapped between a check
    and the open changes nothing: anything but a regular file is refused with an ``OSError`` whose
    ``strerror`` says why.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise OSError(errno.EISDIR, "not a regular file but a folder", str(path)) from None
    with os.fdopen(descriptor, "rb") as stream:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            kind = ("a folder" if stat.S_ISDIR(status.st_mode) else "a FIFO" if stat.S_ISFIFO(status.st_mode)
                    else "a device" if stat.S_ISCHR(status.st_mode) or stat.S_ISBLK(status.st_mode)
                    else "a special file")
            raise OSError(errno.EINVAL, f"not a regular file but {kind}", str(path))
        if status.st_size > limit:
            raise OSError(errno.EFBIG, f"{status.st_size:,} bytes, more than any image of ours ({limit:,})",
                          str(path))
        data = stream.read(limit + 1 if first is None else min(first, limit + 1))
    if len(data) > limit:  # it grew since it was measured
        raise OSError(errno.EFBIG, f"more than {limit:,} bytes", str(path))
    return data


class PngError(ValueError):
    """Not a PNG, or a PNG that cannot be decoded; the message says why (callers add the file)."""


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    mode: str  # Pillow's mode name ("L", "RGB", "P", "I;16", ...), else e.g. "RGB 16-bit"
    interlaced: bool

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_header(data: bytes) -> PngHeader:
    """The IHDR of PNG bytes (the first 33 bytes suffice); ``PngError`` if it is not a PNG."""
    if len(data) < 33 or data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise PngError("not a PNG file")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if width == 0 or height == 0:
        raise PngError("a PNG of zero size")
    mode = _MODES.get((colour, depth)) or f"{_COLOUR_TYPES.get(colour, f'colour type {colour}')} {depth}-bit"
    return PngHeader(width, height, mode, interlace == 1)


def decode_png(data: bytes, max_pixels: int | None = None) -> np.ndarray:
    """The pixels of PNG ``data`` exactly as ``np.asarray(Image.open(...))`` gives them.

    Raises:
        PngError: not a PNG, larger than ``max_pixels``, truncated or corrupt.
    """
    header = read_header(data)
    if max_pixels is not None and header.pixels > max_pixels:
        raise PngError(f"{header.width}x{header.height} is larger than {max_pixels} pixels")
    with_c_api = spng_c.decoder() is not None
    if header.mode in (_SPNG_C_FORMATS if with_c_api else _SPNG_FORMATS if pyspng is not None else ()):
        try:
            return spng_load(data, header.mode)
        except RuntimeError as exc:  # libspng reports every decoding failure this way
            raise PngError(f"corrupt PNG ({str(exc).removeprefix('pyspng: ')})") from None
    return _decode_with_pillow(data)


def spng_load(data: bytes, mode: str) -> np.ndarray:
    """libspng's decode of a PNG of Pillow's ``mode``: through its C API where it is at hand
    (``training.data.spng_c``: other threads run meanwhile), else ``pyspng.load``."""
    fast = spng_c.decoder()
    return fast.decode(data, mode) if fast is not None else pyspng.load(data, mode)


def _decode_with_pillow(data: bytes) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return np.asarray(image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise PngError(f"corrupt PNG ({exc})") from None


def read_png(path, max_pixels: int | None = None) -> tuple[PngHeader, np.ndarray]:
    """Header and pixels of the PNG file at ``path`` (``OSError`` if it cannot be read, is no
    regular file or is too large: ``read_file``)."""
    data = read_file(path)
    pixels = decode_png(data, max_pixels)
    return read_header(data), pixels
