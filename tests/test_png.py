"""training.data.png decodes exactly what Pillow decodes, and refuses bad bytes with a reason."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from training.data import png
from training.data.cityscapes import DatasetError, read_image, read_label_ids

RNG = np.random.default_rng(7)


def encode(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def pillow_array(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image)


def noisy_rgb(height: int, width: int) -> np.ndarray:
    """A smooth gradient plus noise, like a photo (exercises every PNG row filter)."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), (xx + yy) % 256], -1)
    return np.clip(base + RNG.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


def palette_image(classes: np.ndarray) -> Image.Image:
    image = Image.fromarray(classes, "P")
    image.putpalette([v % 256 for v in range(768)])
    return image


CASES = {
    "RGB": lambda: Image.fromarray(noisy_rgb(37, 61), "RGB"),
    "L labelIds": lambda: Image.fromarray(RNG.integers(0, 34, (29, 53), dtype=np.uint8), "L"),
    "P class map": lambda: palette_image(RNG.integers(0, 8, (31, 47), dtype=np.uint8)),
    "I;16 instanceIds": lambda: Image.fromarray(RNG.integers(0, 33000, (23, 41)).astype(np.uint16)),
    "RGBA": lambda: Image.fromarray(RNG.integers(0, 256, (17, 19, 4), dtype=np.uint8), "RGBA"),
    "LA": lambda: Image.fromarray(RNG.integers(0, 256, (17, 19, 2), dtype=np.uint8), "LA"),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("options", [{}, {"compress_level": 1}, {"optimize": True}],
                         ids=["default", "level1", "optimize"])
def test_decode_png_equals_pillow(case, options):
    data = encode(CASES[case](), **options)
    decoded = png.decode_png(data)
    expected = pillow_array(data)
    assert decoded.dtype == expected.dtype and decoded.shape == expected.shape
    np.testing.assert_array_equal(decoded, expected)


def test_transparency_chunks_are_ignored_like_pillow():
    grey = RNG.integers(0, 256, (33, 65), dtype=np.uint8)
    rgb = noisy_rgb(33, 65)
    for image, options in [(Image.fromarray(grey, "L"), {"transparency": 5}),
                           (Image.fromarray(rgb, "RGB"), {"transparency": (1, 2, 3)})]:
        data = encode(image, **options)
        np.testing.assert_array_equal(png.decode_png(data), pillow_array(data))


def test_read_header_without_decoding():
    data = encode(Image.fromarray(noisy_rgb(10, 20), "RGB"))
    header = png.read_header(data[:33])
    assert (header.width, header.height, header.mode, header.pixels) == (20, 10, "RGB", 200)
    assert png.read_header(encode(Image.fromarray(np.zeros((4, 4), np.uint16)))).mode == "I;16"
    assert png.read_header(encode(Image.fromarray(np.zeros((4, 4), np.uint8), "L"))).interlaced is False


@pytest.mark.parametrize("data, reason", [
    (b"", "not a PNG"),
    (b"GIF89a" + b"\0" * 40, "not a PNG"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 10, "not a PNG"),
])
def test_not_a_png(data, reason):
    with pytest.raises(png.PngError, match=reason):
        png.decode_png(data)


@pytest.mark.parametrize("case", ["RGB", "L labelIds", "P class map"])
def test_truncated_png_is_an_error_not_garbage(case):
    data = encode(CASES[case]())
    with pytest.raises(png.PngError, match="corrupt PNG"):
        png.decode_png(data[: len(data) // 2])


def test_pixel_limit_is_checked_before_decoding():
    data = encode(Image.fromarray(np.zeros((100, 200), np.uint8), "L"))
    with pytest.raises(png.PngError, match="200x100 is larger than 10000 pixels"):
        png.decode_png(data, max_pixels=10_000)
    assert png.decode_png(data, max_pixels=20_000).shape == (100, 200)


def test_dataset_readers_name_the_file_and_the_mode(tmp_path):
    photo = tmp_path / "a_000000_000019_leftImg8bit.png"
    Image.fromarray(noisy_rgb(16, 32), "RGB").save(photo)
    np.testing.assert_array_equal(read_image(photo), np.asarray(Image.open(photo)))
    with pytest.raises(DatasetError, match=r"a_000000_000019_leftImg8bit.png: mode RGB, expected L"):
        read_label_ids(photo)
    deep = tmp_path / "deep.png"
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(deep)
    with pytest.raises(DatasetError, match=r"deep.png: mode I;16, expected RGB"):
        read_image(deep)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(photo.read_bytes()[:200])
    with pytest.raises(DatasetError, match=r"truncated.png: corrupt PNG"):
        read_image(truncated)
    with pytest.raises(DatasetError, match=r"missing.png: file not found"):
        read_image(tmp_path / "missing.png")


# ---------------------------------------------------------------------------- libspng without the GIL

SPNG_CASES = {"RGB": ("RGB", {}), "L labelIds": ("L", {}), "RGB interlaced": ("RGB", {"interlace": 1})}


def _spng_data(case: str) -> tuple[bytes, str]:
    fmt, options = SPNG_CASES[case]
    image = CASES["RGB"]() if fmt == "RGB" else CASES["L labelIds"]()
    if options.get("interlace"):  # Pillow writes no interlaced PNG
        return _interlaced(np.asarray(image)), fmt
    return encode(image), fmt


def _interlaced(pixels: np.ndarray) -> bytes:
    """An Adam7-interlaced RGB PNG of ``pixels``, written by hand (no filter on any row)."""
    import struct
    import zlib

    height, width, _ = pixels.shape
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    raw = b""
    for x0, y0, dx, dy in passes:
        sub = pixels[y0::dy, x0::dx]
        if sub.size:
            raw += b"".join(b"\0" + row.tobytes() for row in sub)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 1)
    return png.PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_libspng_is_called_without_pyspng_s_binding_in_this_environment():
    assert png.spng_c.decoder() is not None  # pyspng exports libspng's functions: the pinned build does


@pytest.mark.parametrize("case", sorted(SPNG_CASES))
def test_the_c_api_decodes_what_pyspng_and_pillow_decode(case):
    import pyspng

    data, fmt = _spng_data(case)
    decoded = png.spng_c.decoder().decode(data, fmt)
    np.testing.assert_array_equal(decoded, pyspng.load(data, fmt))
    np.testing.assert_array_equal(decoded, pillow_array(data))
    assert decoded.dtype == np.uint8 and decoded.flags.c_contiguous


@pytest.mark.parametrize("cut", [40, 0.5, -20])
def test_the_c_api_fails_where_pyspng_fails_with_its_words(cut):
    import pyspng

    data = encode(CASES["RGB"]())
    broken = data[: cut if isinstance(cut, int) else int(len(data) * cut)]
    with pytest.raises(RuntimeError) as ours:
        png.spng_c.decoder().decode(broken, "RGB")
    with pytest.raises(RuntimeError) as theirs:
        pyspng.load(broken, "RGB")
    assert str(ours.value) == str(theirs.value).removeprefix("pyspng: ")
    with pytest.raises(png.PngError, match=r"corrupt PNG \(could not decode"):
        png.decode_png(broken)


def test_without_the_c_api_pyspng_decodes(monkeypatch):
    data = encode(CASES["RGB"]())
    monkeypatch.setattr(png.spng_c, "decoder", lambda: None)
    np.testing.assert_array_equal(png.decode_png(data), pillow_array(data))
    with pytest.raises(png.PngError, match=r"corrupt PNG \(could not decode"):
        png.decode_png(data[: len(data) // 2])
