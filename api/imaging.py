"""PNG encoding and upload decoding: numpy and Pillow only (pictures come from ``training.viz``)."""

from __future__ import annotations

import base64
import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from api.errors import ApiError

# Level 1: a 256x512 mask encodes in about a millisecond, at nearly the size of level 6.
PNG_OPTIONS = {"compress_level": 1}


def png_bytes(array: np.ndarray, palette: np.ndarray | None = None) -> bytes:
    """Encode ``(H, W)`` or ``(H, W, 3)`` uint8 as PNG; with ``palette``, a colour-mapped
    ``P`` image whose pixel values stay the class indices."""
    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
    if palette is not None:
        image = image.convert("P") if image.mode != "P" else image
        image.putpalette(palette.reshape(-1).tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **PNG_OPTIONS)
    return buffer.getvalue()


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


def decode_upload(data: bytes, max_pixels: int) -> np.ndarray:
    """An uploaded image as ``(H, W, 3)`` uint8 RGB, turned as viewers show it (EXIF orientation).

    Raises:
        ApiError: 400 empty body, 415 not an image, 413 more than ``max_pixels`` pixels or a
            decompression bomb.
    """
    if not data:
        raise ApiError(400, "empty upload", "send an image as multipart field 'image' or as the raw body")
    try:
        with warnings.catch_warnings():
            # A damaged file may only warn (truncated TIFF, corrupt EXIF): what decodes is used.
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.width * image.height > max_pixels:
                raise ApiError(413, "image too large",
                               f"{image.width}x{image.height} is more than {max_pixels} pixels")
            image.load()
            rgb = np.asarray(_as_shown(image).convert("RGB"))
    except ApiError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ApiError(413, "image too large", f"refused as a decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ApiError(415, "not an image", "the upload is not an image format Pillow can read "
                                            "(PNG, JPEG, ...)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ApiError(415, "unreadable image", f"the image could not be decoded ({exc})") from None
    if rgb.size == 0:
        raise ApiError(400, "empty image", "the image has no pixels")
    return rgb


def _as_shown(image: Image.Image) -> Image.Image:
    """The image turned by its EXIF orientation: cameras store a portrait photo sideways and tag
    it, and the mask must fit the photo as its owner sees it."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # an unreadable EXIF block (Pillow raises many kinds): the pixels as stored
        return image
