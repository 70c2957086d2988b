"""A drive as a video: the photo and each run's overlay side by side, frame after frame.

``render_video`` lays out one panel for the photo (captioned with the frame) and one per run (its
overlay in the official colours, captioned with the run's name) in a grid or a row, with the legend
of the class set below, and encodes the frames with PyAV (pinned in requirements.txt; its wheels
carry FFmpeg, so no system ffmpeg is needed):

* ``.mp4``: H.264 (libx264), Main profile, yuv420p, the index at the front (``faststart``): what
  Chromium, Firefox and Safari play in a ``<video>`` element, streaming as it downloads;
* ``.webm``: VP9 (libvpx-vp9), yuv420p, for browsers without H.264.

The file is written under a temporary name beside ``out`` and renamed into place: a reader sees
no video or the whole video. Photos are read and panels drawn a few frames ahead in threads while
the encoder (threads of its own) works.

numpy, OpenCV, Pillow and PyAV only: no TensorFlow (the core's contract, pyproject.toml). PyAV is
imported when a video is encoded, so that this module loads where PyAV is not installed (the
dashboard's environment).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from training.data.cityscapes import read_png_file
from training.data.labels import ClassSet
from training.evaluation.masks import evaluation_threads, opencv_threads_beside, ordered_map
from training.files import replaced_atomically
from training.viz import OVERLAY_OPACITY

LAYOUTS = ("grid", "row")
DEFAULT_FPS = 17  # Cityscapes sequences were recorded at 17 frames per second
CAPTION_HEIGHT, LEGEND_ROW_HEIGHT = 22, 22
BACKGROUND, CAPTION_BACKGROUND, CAPTION_TEXT = (24, 24, 24), (0, 0, 0), (255, 255, 255)
# suffix -> (container format, encoder, its options, profile): what browsers play.
ENCODINGS = {
    ".mp4": ("mp4", "libx264", {"preset": "veryfast", "crf": "23"}, "Main"),
    ".webm": ("webm", "libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0"}, None),
}
MUXER_OPTIONS = {"mp4": {"movflags": "+faststart"}, "webm": {}}


@dataclass(frozen=True)
class Panel:
    """Where one picture goes: its caption strip at ``(x, y)`` and the picture right below it."""

    name: str
    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class VideoLayout:
    width: int
    height: int
    panels: tuple[Panel, ...]  # the photo first, then one per run
    legend_y: int


def video_layout(run_names: Sequence[str], frame_shape: tuple[int, int], class_set: ClassSet,
                 layout: str = "grid", width: int = 1024) -> VideoLayout:
    """The panels of a video ``width`` pixels wide (at most; even sizes, as yuv420p needs) for a
    photo of ``frame_shape`` (H, W) and the runs: ``row`` puts all side by side, ``grid`` in the
    fewest columns that make a squarish grid (photo + 2 runs: 2 x 2)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    if width < 64:
        raise ValueError(f"a video must be at least 64 pixels wide, got {width}")
    count = 1 + len(run_names)
    columns = count if layout == "row" else math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    panel_width = (width // columns) // 2 * 2
    panel_height = max(2, round(panel_width * frame_shape[0] / frame_shape[1]) // 2 * 2)
    cell = CAPTION_HEIGHT + panel_height
    panels = tuple(Panel(name, (n % columns) * panel_width, (n // columns) * cell, panel_width, panel_height)
                   for n, name in enumerate(["photo", *run_names]))
    legend_rows = len(_legend_lines(class_set, columns * panel_width))
    height = rows * cell + legend_rows * LEGEND_ROW_HEIGHT
    return VideoLayout(columns * panel_width, height + height % 2, panels, rows * cell)


def _font(size: int = 14):
    return ImageFont.load_default(size=size)


def _legend_lines(class_set: ClassSet, width: int) -> list[list[int]]:
    """The class indices of each line of the legend, wrapped to ``width``."""
    font, lines, x = _font(13), [[]], 6
    for index, name in enumerate(class_set.names):
        item = 22 + int(font.getlength(name)) + 12
        if lines[-1] and x + item > width:
            lines.append([])
            x = 6
        lines[-1].append(index)
        x += item
    return lines


def _background(video: VideoLayout, class_set: ClassSet) -> np.ndarray:
    """The parts of every frame that do not move: run captions and the legend."""
    canvas = Image.new("RGB", (video.width, video.height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = _font()
    for panel in video.panels[1:]:
        draw.rectangle((panel.x, panel.y, panel.x + panel.width - 1, panel.y + CAPTION_HEIGHT - 1),
                       fill=CAPTION_BACKGROUND)
        draw.text((panel.x + 6, panel.y + 3), _fit(panel.name, panel.width - 12, font), fill=CAPTION_TEXT, font=font)
    small = _font(13)
    for row, indices in enumerate(_legend_lines(class_set, video.width)):
        x, y = 6, video.legend_y + row * LEGEND_ROW_HEIGHT + 4
        for index in indices:
            color = tuple(int(c) for c in class_set.colors[index])
            draw.rectangle((x, y, x + 14, y + 14), fill=color, outline=(200, 200, 200))
            draw.text((x + 20, y), class_set.names[index], fill=CAPTION_TEXT, font=small)
            x += 22 + int(small.getlength(class_set.names[index])) + 12
    return np.asarray(canvas).copy()


def _fit(text: str, width: int, font) -> str:
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "...") > width:
        text = text[:-1]
    return text + "..."


def _caption(text: str, width: int) -> np.ndarray:
    strip = Image.new("RGB", (width, CAPTION_HEIGHT), CAPTION_BACKGROUND)
    font = _font()
    ImageDraw.Draw(strip).text((6, 3), _fit(text, width - 12, font), fill=CAPTION_TEXT, font=font)
    return np.asarray(strip)


def read_photo(path: Path) -> np.ndarray:
    """``(H, W, 3)`` RGB of a photo PNG (decoded without the GIL where possible)."""
    return read_png_file(Path(path), ("RGB",), "8-bit RGB photo")


def compose_frame(background: np.ndarray, video: VideoLayout, photo: np.ndarray, class_maps: Sequence[np.ndarray],
                  palette: np.ndarray, caption: str, opacity: float = OVERLAY_OPACITY) -> np.ndarray:
    """One frame of the video: ``background`` with the photo and each run's overlay in place."""
    frame = background.copy()
    first = video.panels[0]
    size = (first.width, first.height)
    small = cv2.resize(photo, size, interpolation=cv2.INTER_AREA) if photo.shape[:2] != size[::-1] else photo
    frame[first.y:first.y + CAPTION_HEIGHT, first.x:first.x + first.width] = _caption(caption, first.width)
    top = first.y + CAPTION_HEIGHT
    frame[top:top + first.height, first.x:first.x + first.width] = small
    for panel, classes in zip(video.panels[1:], class_maps):
        if classes.shape != size[::-1]:
            classes = cv2.resize(classes, size, interpolation=cv2.INTER_NEAREST)
        colors = palette[classes]
        top = panel.y + CAPTION_HEIGHT
        frame[top:top + panel.height, panel.x:panel.x + panel.width] = cv2.addWeighted(
            small, 1 - opacity, colors, opacity, 0)
    return frame


def _frame_label(frame, index: int, total: int) -> str:
    if isinstance(frame, (str, os.PathLike)):
        name = Path(frame).name.removesuffix(".png").removesuffix("_leftImg8bit")
        return f"{name}  ({index + 1}/{total})"
    return f"frame {index + 1}/{total}"


def render_video(frames: Sequence[Path | np.ndarray], predictions: Mapping[str, Sequence[np.ndarray]],
                 class_set: ClassSet, out: Path, fps: float = DEFAULT_FPS, layout: str = "grid", width: int = 1024,
                 progress: Callable[[int, int], None] | None = None, workers: int | None = None) -> dict:
    """Write ``out`` (``.mp4``: H.264; ``.webm``: VP9): per frame, the photo and each run's overlay.

    Args:
        frames: photos, as paths of RGB PNGs or ``(H, W, 3)`` uint8 RGB arrays.
        predictions: run name -> one ``(h, w)`` uint8 map of class indices of ``class_set`` per
            frame (255: no class, drawn black), any size of the photo's aspect (scaled, nearest).
        progress: called with (frames written, frames) after each frame.

    Returns:
        ``path``, ``frames``, ``width``, ``height``, ``fps``, ``codec``, ``seconds``.

    Raises:
        ValueError: no frames, a run with another number of frames, an unknown layout or suffix.
    """
    import av  # here: the dashboard's environment has no PyAV

    start = time.perf_counter()
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in ENCODINGS:
        raise ValueError(f"{out}: a video must end in {' or '.join(ENCODINGS)}")
    if not frames:
        raise ValueError("no frames to render")
    for name, maps in predictions.items():
        if len(maps) != len(frames):
            raise ValueError(f"run {name}: {len(maps)} predictions for {len(frames)} frames")
    if not 0 < fps <= 240:
        raise ValueError(f"fps must be above 0 and at most 240, got {fps}")
    names = list(predictions)
    first = frames[0] if isinstance(frames[0], np.ndarray) else read_photo(frames[0])
    video = video_layout(names, first.shape[:2], class_set, layout, width)
    background = _background(video, class_set)
    palette = class_set.palette()
    total = len(frames)

    def draw(index: int) -> np.ndarray:
        frame = frames[index]
        photo = frame if isinstance(frame, np.ndarray) else read_photo(frame)
        if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
            raise ValueError(f"frame {index}: a photo must be (H, W, 3) uint8 RGB, got {photo.dtype} {photo.shape}")
        maps = [np.ascontiguousarray(predictions[name][index], dtype=np.uint8) for name in names]
        return compose_frame(background, video, photo, maps, palette, _frame_label(frame, index, total))

    container_format, encoder, options, profile = ENCODINGS[suffix]
    threads = evaluation_threads(workers)
    rate = Fraction(fps).limit_denominator(1001)
    with replaced_atomically(out) as temporary:
        with av.open(str(temporary), mode="w", format=container_format,
                     options=MUXER_OPTIONS[container_format]) as container:
            stream = container.add_stream(encoder, rate=rate, options=options)
            stream.width, stream.height, stream.pix_fmt = video.width, video.height, "yuv420p"
            if profile:
                stream.profile = profile
            with opencv_threads_beside(threads):
                for index, picture in enumerate(ordered_map(draw, range(total), threads)):
                    container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
                    if progress is not None:
                        progress(index + 1, total)
            container.mux(stream.encode(None))
    return {"path": str(out), "frames": total, "width": video.width, "height": video.height, "fps": float(rate),
            "codec": encoder, "seconds": time.perf_counter() - start}
