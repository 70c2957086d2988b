"""Shared set-up of the drive tests: the API's tiny store copied, its dataset given a 5-frame demo
drive and a 5-frame snippet around an annotated val frame (named as the official download names
them), and the copied run's config pointed at the copied dataset."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import yaml
from cityscapes_builder import image_for, street_label_ids
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
DRIVE, SNIPPET = "tiny_00", "gamma_000000_000019"
DRIVE_FRAMES = [1, 2, 3, 4, 5]
DRIVE_HEIGHT, DRIVE_WIDTH = 64, 128
SNIPPET_FRAMES = [15, 16, 17, 18, 19]
HEIGHT, WIDTH = 16, 32


def moving_frame(step: int) -> np.ndarray:
    """The tiny street, its car a pixel further right each frame (16x32, as the annotated frames)."""
    return image_for(street_label_ids(HEIGHT, WIDTH, step))


def panning_frame(step: int, height: int = 64, width: int = 128) -> np.ndarray:
    """A smooth texture seen through a window panning 2 pixels right per frame: optical flow finds
    the motion, so the frames' temporal consistency is a number (16x32 frames leave no pixel
    counted)."""
    rng = np.random.default_rng(7)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (height, width + 40, 3), dtype=np.uint8), (0, 0), 2.5)
    return np.ascontiguousarray(texture[:, 2 * step:2 * step + width])


def add_sequences(root: Path) -> None:
    """A demo drive ``tiny_00`` (frames 1..5) and the last 5 frames of the snippet of
    ``gamma_000000_000019`` (its annotated frame the val image already there)."""
    drive = root / "leftImg8bit" / "demoVideo" / DRIVE
    drive.mkdir(parents=True, exist_ok=True)
    for step, frame in enumerate(DRIVE_FRAMES):
        Image.fromarray(panning_frame(step)).save(drive / f"{DRIVE}_000000_{frame:06d}_leftImg8bit.png")
    snippet = root / "leftImg8bit_sequence" / "val" / "gamma"
    snippet.mkdir(parents=True, exist_ok=True)
    annotated = root / "leftImg8bit" / "val" / "gamma" / "gamma_000000_000019_leftImg8bit.png"
    for step, frame in enumerate(SNIPPET_FRAMES):
        target = snippet / f"gamma_000000_{frame:06d}_leftImg8bit.png"
        if frame == 19:
            shutil.copyfile(annotated, target)
        else:
            Image.fromarray(moving_frame(step)).save(target)


def copy_store(api_store, base: Path) -> SimpleNamespace:
    """``api_store``'s dataset (with the sequences added) and run store, copied under ``base``; the
    run's config.yaml names the copied dataset."""
    data_root = shutil.copytree(api_store.data_root, base / "cityscapes")
    add_sequences(data_root)
    artifacts = shutil.copytree(api_store.artifacts, base / "artifacts")
    config_path = artifacts / "runs" / api_store.run / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["data"]["root"] = str(data_root)
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return SimpleNamespace(data_root=Path(data_root), artifacts=Path(artifacts), run=api_store.run)


def predict_sequence_command(store, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m training predict-sequence`` on ``store`` in a real process."""
    environment = {**os.environ, "ARTIFACTS_DIR": str(store.artifacts), "CITYSCAPES_DATASET": str(store.data_root)}
    return subprocess.run([sys.executable, "-m", "training", "--quiet", "predict-sequence", *args],
                          cwd=REPO, env=environment, capture_output=True, text=True, timeout=timeout)
