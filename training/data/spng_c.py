"""libspng's C API through ``ctypes``: PNG decoding that lets other threads run.

``pyspng`` binds libspng with pybind11 and holds the GIL while it decodes: ~30 ms for a
2048x1024 photo of sensor noise, during which no other Python thread of the process runs. So a
model's evaluation, whose reading thread decodes photos while others score and write, spent much
of its time taking turns. ``ctypes`` releases the GIL around every foreign call, and pyspng's
extension module carries libspng (and its zlib) with their C functions exported: the same
decoder, called here directly: on 2 cores, two threads decode about twice one thread's files per
second, where pyspng's stay at one thread's rate (``bench/bench_png.py``).

The settings are pyspng's (chunk CRCs not checked, 64 MiB chunk limits), so every array and
every error is the one ``pyspng.load`` gives; ``tests/test_png.py`` compares both. Where an
installed pyspng does not export the functions, ``decoder()`` is None and callers use
``pyspng.load``.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

# spng.h (libspng 0.7)
# Pillow's mode -> (libspng's output format, channels, element type): SPNG_FMT_G8, SPNG_FMT_RGB8, and
# SPNG_FMT_PNG (the file's own layout, host-endian) for 16-bit grey, which pyspng does not offer.
_FORMATS = {"L": (64, 1, np.uint8), "RGB": (4, 3, np.uint8), "I;16": (256, 1, np.uint16)}
_CRC_USE = 2  # SPNG_CRC_USE: neither check nor discard (pyspng's choice)
_CHUNK_LIMIT = 64 * 2**20  # pyspng's


class _Header(ctypes.Structure):  # struct spng_ihdr
    _fields_ = [("width", ctypes.c_uint32), ("height", ctypes.c_uint32), ("bit_depth", ctypes.c_uint8),
                ("color_type", ctypes.c_uint8), ("compression_method", ctypes.c_uint8),
                ("filter_method", ctypes.c_uint8), ("interlace_method", ctypes.c_uint8)]


class SpngDecoder:
    """``decode(data, "L" | "RGB" | "I;16")``: ``pyspng.load``'s array (Pillow's for 16-bit grey),
    decoded without the GIL."""

    def __init__(self, library: ctypes.CDLL):
        context, size = ctypes.c_void_p, ctypes.c_size_t
        signatures = {
            "spng_ctx_new": (context, [ctypes.c_int]),
            "spng_ctx_free": (None, [context]),
            "spng_set_crc_action": (ctypes.c_int, [context, ctypes.c_int, ctypes.c_int]),
            "spng_set_chunk_limits": (ctypes.c_int, [context, size, size]),
            "spng_set_png_buffer": (ctypes.c_int, [context, ctypes.c_char_p, size]),
            "spng_get_ihdr": (ctypes.c_int, [context, ctypes.POINTER(_Header)]),
            "spng_decoded_image_size": (ctypes.c_int, [context, ctypes.c_int, ctypes.POINTER(size)]),
            "spng_decode_image": (ctypes.c_int, [context, ctypes.c_void_p, size, ctypes.c_int, ctypes.c_int]),
            "spng_strerror": (ctypes.c_char_p, [ctypes.c_int]),
        }
        for name, (result, arguments) in signatures.items():
            function = getattr(library, name)  # AttributeError when not exported
            function.restype, function.argtypes = result, arguments
        self._c = library

    def decode(self, data: bytes, fmt: str) -> np.ndarray:
        """The pixels of PNG ``data`` as ``pyspng.load(data, fmt)`` gives them (``fmt``: Pillow's
        mode of the file, which the caller read from its header); ``RuntimeError`` with libspng's
        words when they cannot be decoded."""
        spng_format, channels, dtype = _FORMATS[fmt]
        c = self._c
        ctx = c.spng_ctx_new(0)
        if not ctx:
            raise MemoryError("libspng could not make a decoding context")
        try:
            c.spng_set_crc_action(ctx, _CRC_USE, _CRC_USE)
            c.spng_set_chunk_limits(ctx, _CHUNK_LIMIT, _CHUNK_LIMIT)
            self._check(c.spng_set_png_buffer(ctx, data, len(data)), "could not read the buffer")
            header = _Header()
            self._check(c.spng_get_ihdr(ctx, ctypes.byref(header)), "could not decode ihdr")
            size = ctypes.c_size_t()
            self._check(c.spng_decoded_image_size(ctx, spng_format, ctypes.byref(size)),
                        "could not decode image size")
            shape = (header.height, header.width, channels)
            pixels = np.empty(shape, dtype=dtype)
            if size.value != pixels.nbytes:  # e.g. a 16-bit format asked of an 8-bit file
                raise RuntimeError(f"could not decode image size: {size.value} bytes for {shape} {pixels.dtype}")
            self._check(c.spng_decode_image(ctx, pixels.ctypes.data, size.value, spng_format, 0),
                        "could not decode image")
        finally:
            c.spng_ctx_free(ctx)
        return pixels[:, :, 0] if channels == 1 else pixels

    def _check(self, status: int, what: str) -> None:
        if status:
            raise RuntimeError(f"{what}: {self._c.spng_strerror(status).decode(errors='replace')}")


@functools.cache
def decoder() -> SpngDecoder | None:
    """The decoder over the libspng inside pyspng's extension module, or None when there is none
    (pyspng missing, or built without the functions exported)."""
    try:
        from pyspng import _pyspng_c

        return SpngDecoder(ctypes.CDLL(_pyspng_c.__file__))
    except (ImportError, OSError, AttributeError):
        return None
