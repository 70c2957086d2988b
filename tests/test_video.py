"""Drive videos (``training.viz_video.render_video``, ``python -m training video``): tiny frames
rendered, then decoded back with PyAV: frame count, rate, size, codec and profile browsers play,
the index at the front of the MP4, each run's panel in its overlay colours, and an interrupted
render leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from training.data.labels import get_class_set
from training.viz import OVERLAY_OPACITY
from training.viz_video import CAPTION_HEIGHT, render_video, video_layout

REPO = Path(__file__).resolve().parent.parent
CATEGORIES = get_class_set("categories8")
SKY, VEHICLE = 5, 7
GREY = 128


def tiny_drive(frames: int = 10, height: int = 32, width: int = 64):
    photos = [np.full((height, width, 3), GREY, np.uint8) for _ in range(frames)]
    sky = [np.full((height, width), SKY, np.uint8) for _ in range(frames)]
    vehicles = [np.full((height // 2, width // 2), VEHICLE, np.uint8) for _ in range(frames)]  # half size
    return photos, {"run-sky": sky, "run-vehicle": vehicles}


def decoded(path: Path) -> tuple[dict, list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = {"codec": stream.codec_context.name, "profile": stream.codec_context.profile,
                "rate": stream.average_rate, "width": stream.width, "height": stream.height,
                "pix_fmt": stream.codec_context.pix_fmt}
        pictures = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    return info, pictures


def test_an_mp4_browsers_play_with_every_frame(tmp_path):
    photos, runs = tiny_drive()
    out = tmp_path / "drive.mp4"
    done = render_video(photos, runs, CATEGORIES, out, fps=17, width=256, workers=2)
    info, pictures = decoded(out)
    assert len(pictures) == 10 == done["frames"]
    assert (info["codec"], info["profile"], info["pix_fmt"]) == ("h264", "Main", "yuv420p")
    assert info["rate"] == 17
    assert (info["width"], info["height"]) == (done["width"], done["height"]) == (256, pictures[0].shape[0])
    assert info["width"] % 2 == 0 and info["height"] % 2 == 0
    data = out.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")  # faststart: playable while it downloads
    assert [p.name for p in tmp_path.iterdir()] == ["drive.mp4"]  # no temporary file left


def test_each_run_panel_shows_its_overlay_colours(tmp_path):
    photos, runs = tiny_drive()
    out = tmp_path / "drive.mp4"
    render_video(photos, runs, CATEGORIES, out, width=256, layout="grid")
    video = video_layout(list(runs), photos[0].shape[:2], CATEGORIES, "grid", 256)
    _, pictures = decoded(out)
    picture = pictures[5].astype(np.float32)
    for panel, cls in zip(video.panels, (None, SKY, VEHICLE)):
        top = panel.y + CAPTION_HEIGHT
        middle = picture[top + 8:top + panel.height - 8, panel.x + 8:panel.x + panel.width - 8].reshape(-1, 3)
        colour = middle.mean(axis=0)
        if cls is None:
            expected = np.full(3, GREY)
        else:
            expected = GREY * (1 - OVERLAY_OPACITY) + CATEGORIES.colors[cls] * OVERLAY_OPACITY
        assert np.abs(colour - expected).max() <= 8, (panel.name, colour, expected)


def test_a_row_of_panels_and_a_webm(tmp_path):
    photos, runs = tiny_drive(frames=6)
    out = tmp_path / "drive.webm"
    done = render_video(photos, runs, CATEGORIES, out, fps=10, layout="row", width=300)
    info, pictures = decoded(out)
    assert info["codec"] == "vp9" and len(pictures) == 6 and info["rate"] == 10
    assert done["width"] == 300  # three panels of 100
    layout = video_layout(list(runs), (32, 64), CATEGORIES, "row", 300)
    assert [p.y for p in layout.panels] == [0, 0, 0] and [p.x for p in layout.panels] == [0, 100, 200]


def test_a_failed_render_leaves_no_file(tmp_path):
    photos, runs = tiny_drive()
    photos[6] = np.zeros((32, 64), np.uint8)  # not RGB: refused when frame 6 is drawn
    out = tmp_path / "drive.mp4"
    with pytest.raises(ValueError, match="frame 6"):
        render_video(photos, runs, CATEGORIES, out, width=128)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="3 predictions for 10 frames"):
        render_video(tiny_drive()[0], {"short": runs["run-sky"][:3]}, CATEGORIES, out, width=128)
    with pytest.raises(ValueError, match=r"\.mp4 or \.webm"):
        render_video(tiny_drive()[0], runs, CATEGORIES, tmp_path / "drive.gif", width=128)


def _write(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), pixels)


def test_cli_renders_a_sequence_of_files(tmp_path):
    frames, preds_a, preds_b = tmp_path / "demoVideo" / "stuttgart_00", tmp_path / "a", tmp_path / "b"
    for number in range(8):
        key = f"stuttgart_00_000000_{number:06d}"
        _write(frames / f"{key}_leftImg8bit.png", np.full((32, 64, 3), 90 + number, np.uint8))
        _write(preds_a / f"{key}.png", np.full((32, 64), 23, np.uint8))  # labelIds: sky
        _write(preds_b / f"{key}.png", np.full((32, 64), 13, np.uint8))  # trainId 13: car
    out = tmp_path / "drive.mp4"
    args = [sys.executable, "-m", "training", "-q", "video", "--frames", str(tmp_path / "demoVideo"),
            "--pred-dir", f"deeplab={preds_a}", "--pred-dir", f"unet={preds_b}", "--out", str(out), "--width", "256"]
    done = subprocess.run([*args, "--sequence", "stuttgart_00_000000"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    info, pictures = decoded(out)
    assert len(pictures) == 8 and info["rate"] == 17 and info["width"] == 256
    missing = subprocess.run([*args, "--sequence", "ulm_000000"], cwd=REPO, capture_output=True, text=True,
                             timeout=120)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        "error: --sequence ulm_000000: no such sequence under the frames folder; there are "
        "stuttgart_00_000000_000000"]
