"""Colour maps of the pictures, as tables (numpy only, no Streamlit): the confidence heatmap's."""

from __future__ import annotations

import numpy as np

# A viridis-like colour map (dark violet = 0, yellow = 1): matplotlib's viridis at nine stops,
# interpolated linearly to 256 colours (no matplotlib in the dashboard's requirements).
_STOPS = np.array([(68, 1, 84), (72, 40, 120), (62, 73, 137), (49, 104, 142), (38, 130, 142),
                   (31, 158, 137), (53, 183, 121), (110, 206, 88), (253, 231, 37)], dtype=np.float64)
COLORMAP = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_STOPS)), _STOPS[:, channel])
                     for channel in range(3)], axis=1).round().astype(np.uint8)
