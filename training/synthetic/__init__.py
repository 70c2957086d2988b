"""Deterministic synthetic street scenes in the exact Cityscapes file layout.

The embedded default dataset when no real Cityscapes download is available: dashcam-like
scenes rendered from a pinhole camera, with gtFine labelIds, colour and instanceIds files.
"""

from training.synthetic.render import render_scene
from training.synthetic.styles import CITY_STYLES, TRAIN_CITIES, VAL_CITIES
from training.synthetic.writer import make_dataset

__all__ = ["CITY_STYLES", "TRAIN_CITIES", "VAL_CITIES", "make_dataset", "render_scene"]
