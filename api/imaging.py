"""PNG encoding and upload decoding (pictures come from ``training.viz``).

Masks are written by a small PNG writer of our own: rows unfiltered, zlib level 1, fed in bands.
Pillow's level 1 spends most of its time choosing a row filter per row: a 2048x1024 mask took
it 25 ms as a grey PNG, here 5 ms, and the grey (class indices) and palette (official colours)
PNGs of one mask share their compressed pixels, so both cost one compression. Colour pictures
(overlays) go through OpenCV's libpng with the SUB filter, twice as fast as Pillow's choice.

Uploads are decoded in bounded memory: the pixel count is checked from the header before any
pixel is decoded, a large JPEG is decoded at 1/2, 1/4 or 1/8 scale by its own decoder, and the
photo is resized to the model's input size at once, so the full-size pixels are freed before the
model runs (the mask is upsampled back in bands by ``training.fit.predict``).
"""

from __future__ import annotations

import base64
import io
import re
import struct
import warnings
import zlib
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from api.errors import ApiError
from training.data.png import PNG_SIGNATURE

BAND_BYTES = 4 * 2**20  # raw rows compressed at a time: memory stays bounded for any mask size
RGB_PNG_OPTIONS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_SUB]
# Above this many pixels an upload takes the cheap road (JPEG decoded at a reduced scale); below
# it the full decode costs at most tens of ms and 16 MB, and the mask is exactly the one of the
# photo decoded in full.
LARGE_UPLOAD_PIXELS = 4 * 2**20
# EXIF orientation -> the transpose that shows the image upright (as ImageOps.exif_transpose).
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def _idat(mask: np.ndarray) -> bytes:
    """zlib stream of the rows of an ``(H, W)`` uint8 array, each behind filter byte 0 (None)."""
    height, width = mask.shape
    rows = max(1, min(height, BAND_BYTES // (width + 1)))
    band = np.zeros((rows, width + 1), dtype=np.uint8)
    compressor, parts = zlib.compressobj(1), []
    for top in range(0, height, rows):
        count = min(rows, height - top)
        band[:count, 1:] = mask[top:top + count]
        parts.append(compressor.compress(band[:count]))
    parts.append(compressor.flush())
    return b"".join(parts)


@dataclass(frozen=True)
class MaskPngs:
    """One class mask as PNG bytes: ``index`` (grey values = class indices) and ``color`` (the same
    values with the class set's palette: shown in the official colours by any viewer)."""

    index: bytes
    color: bytes


def mask_pngs(mask: np.ndarray, palette: np.ndarray | None = None) -> MaskPngs:
    """Encode an ``(H, W)`` uint8 mask once as both PNGs (``color`` is empty without ``palette``)."""
    mask = np.asarray(mask, dtype=np.uint8)
    height, width = mask.shape
    idat = _chunk(b"IDAT", _idat(mask))
    end = _chunk(b"IEND", b"")

    def header(colour_type: int) -> bytes:
        return PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0))

    index = header(0) + idat + end
    if palette is None:
        return MaskPngs(index, b"")
    table = np.zeros((256, 3), dtype=np.uint8)  # every value a mask may hold has an entry (ignore too)
    table[: len(palette)] = np.asarray(palette, dtype=np.uint8)[:256]
    return MaskPngs(index, header(3) + _chunk(b"PLTE", table.tobytes()) + idat + end)


def png_bytes(array: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """Encode ``(H, W)`` uint8 (grey, or with ``palette`` a colour-mapped ``P`` image whose pixel
    values stay the class indices) or ``(H, W, 3)`` uint8 RGB as PNG."""
    array = np.asarray(array, dtype=np.uint8)
    if array.ndim == 2:
        pngs = mask_pngs(array, palette)
        return pngs.color if palette is not None else pngs.index
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_RGB2BGR), RGB_PNG_OPTIONS)
    if not ok:  # pragma: no cover (libpng refuses only impossible sizes)
        raise ValueError(f"cannot encode a {array.shape} image as PNG")
    return encoded.tobytes()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def parse_opacity(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, "bad overlay", f"overlay must be a number from 0.0 to 1.0, got {raw!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ApiError(400, "bad overlay", f"overlay must be from 0.0 to 1.0, got {value}")
    return value


@dataclass(frozen=True)
class Upload:
    """A decoded upload: ``image``, ``(h, w, 3)`` uint8 RGB already at the size asked for, and
    ``size``, ``(H, W)`` of the photo as its owner sees it (the mask's size)."""

    image: np.ndarray
    size: tuple[int, int]


def too_many_pixels(size: str, max_pixels: int) -> str:
    """The 413 of an upload of ``size`` pixels ("12000x12000 = 144,000,000"): the limit, its number and setting."""
    return f"{size} pixels, more than the {max_pixels:,} this server takes (MAX_UPLOAD_PIXELS)"


def decode_upload(data: bytes, max_pixels: int, fit: tuple[int, int] | None = None) -> Upload:
    """An uploaded image as RGB, turned as viewers show it (EXIF orientation), resized to ``fit``
    ``(height, width)`` if given (bilinear, as the model's own resize: the same mask).

    Raises:
        ApiError: 400 empty body, 415 not an image, 413 more than ``max_pixels`` pixels (an image
            Pillow refuses to open as a decompression bomb too: said as the pixel limit).
    """
    if not data:
        raise ApiError(400, "empty upload", "send an image as multipart field 'image' or as the raw body")
    try:
        with warnings.catch_warnings():
            # A damaged file may only warn (truncated TIFF, corrupt EXIF): what decodes is used.
            # Pillow's own warning of a large image too: ``max_pixels`` is the limit, said with its numbers.
            warnings.simplefilter("ignore")
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height == 0:
                raise ApiError(400, "empty image", "the image has no pixels")
            if width * height > max_pixels:
                raise ApiError(413, "image too large", too_many_pixels(f"{width}x{height} = {width * height:,}",
                                                                       max_pixels))
            upright = UPRIGHT.get(_orientation(image))
            if upright in (Image.Transpose.TRANSPOSE, Image.Transpose.TRANSVERSE, Image.Transpose.ROTATE_90,
                           Image.Transpose.ROTATE_270):
                width, height = height, width
            if fit is not None and image.format == "JPEG" and width * height > LARGE_UPLOAD_PIXELS:
                side = max(fit)  # at least the model's size whichever way the photo is turned
                image.draft("RGB", (side, side))
            image.load()
            image = image if image.mode == "RGB" else image.convert("RGB")  # Pillow copies even RGB -> RGB
            if upright is not None:
                image = image.transpose(upright)
            if fit is not None and image.size != (fit[1], fit[0]):
                image = image.resize((fit[1], fit[0]), Image.Resampling.BILINEAR)
            return Upload(np.asarray(image), (height, width))
    except ApiError:
        raise
    except Image.DecompressionBombError as exc:  # past twice Pillow's MAX_IMAGE_PIXELS: it will not even open it
        pixels = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(pixels.group(1)):,}" if pixels else "an image of too many"
        raise ApiError(413, "image too large", too_many_pixels(size, max_pixels)) from None
    except UnidentifiedImageError:
        raise ApiError(415, "not an image", "the upload is not an image format Pillow can read "
                                            "(PNG, JPEG, ...)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ApiError(415, "unreadable image", f"the image could not be decoded ({exc})") from None


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 when there is none): cameras store a portrait photo sideways and
    tag it, and the mask must fit the photo as its owner sees it."""
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # an unreadable EXIF block (Pillow raises many kinds): the pixels as stored
        return 1
