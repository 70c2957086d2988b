"""Deterministic synthetic street scenes in the exact Cityscapes file layout.

The embedded default dataset when no real Cityscapes download is available: dashcam-like
scenes rendered from a pinhole camera, with gtFine labelIds, colour and instanceIds files.
"""

from training.data.synthetic.render import render_scene
from training.data.synthetic.styles import CITY_STYLES, TRAIN_CITIES, VAL_CITIES
from training.data.synthetic.writer import make_dataset

__all__ = ["CITY_STYLES", "TRAIN_CITIES", "VAL_CITIES", "make_dataset", "render_scene"]
