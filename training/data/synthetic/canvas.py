"""Three aligned rasters painted together: RGB, labelIds and instanceIds.

Every labelled shape is drawn on all three with the same polygon, so labels and image can never
disagree; RGB-only details (windows, lights, stripes) never touch the labels. A fourth raster,
the shadow mask, darkens the RGB at the end so shadows fall on whatever ends up there.
"""

from __future__ import annotations

import math

import numpy as np
from cityscapesscripts.helpers.labels import name2label
from PIL import Image, ImageDraw

L = {name: name2label[name].id for name in (
    "ego vehicle", "rectification border", "out of roi", "static", "road", "sidewalk", "parking",
    "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation", "terrain",
    "sky", "person", "rider", "car", "truck", "bus", "motorcycle", "bicycle")}
HAS_INSTANCES = frozenset(label.id for label in name2label.values() if label.hasInstances and label.id >= 0)


class Canvas:
    """Paint polygons, ellipses and lines; instance ids come from ``instance(label)``."""

    def __init__(self, sky_rgb: np.ndarray):
        height, width = sky_rgb.shape[:2]
        self.rgb_img = Image.fromarray(sky_rgb, "RGB")
        self.label_img = Image.new("L", (width, height), L["sky"])
        self.inst_img = Image.new("I", (width, height), L["sky"])
        self.shadow_img = Image.new("L", (width, height), 0)
        self.rgb = ImageDraw.Draw(self.rgb_img)
        self.lab = ImageDraw.Draw(self.label_img)
        self.ins = ImageDraw.Draw(self.inst_img)
        self.shadow = ImageDraw.Draw(self.shadow_img)
        self._next = {}

    def instance(self, label: int) -> int:
        """Next Cityscapes instance id (labelId*1000 + k) for a thing class."""
        k = self._next.get(label, 0)
        self._next[label] = k + 1
        return label * 1000 + k

    def poly(self, pts, color, label: int, inst: int | None = None) -> None:
        if pts is None or len(pts) < 3:
            return
        self.rgb.polygon(pts, fill=color)
        self.lab.polygon(pts, fill=label)
        self.ins.polygon(pts, fill=label if inst is None else inst)

    def ellipse(self, box, color, label: int, inst: int | None = None) -> None:
        x0, y0, x1, y1 = box
        if x1 - x0 < 0.5 or y1 - y0 < 0.5:
            return
        self.rgb.ellipse(box, fill=color)
        self.lab.ellipse(box, fill=label)
        self.ins.ellipse(box, fill=label if inst is None else inst)

    def line(self, pts, color, label: int, width: float, inst: int | None = None) -> None:
        w = max(1, int(round(width)))
        self.rgb.line(pts, fill=color, width=w)
        self.lab.line(pts, fill=label, width=w)
        self.ins.line(pts, fill=label if inst is None else inst, width=w)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (np.asarray(self.rgb_img), np.asarray(self.label_img),
                np.asarray(self.inst_img, dtype=np.int32), np.asarray(self.shadow_img))


class Look:
    """Per-image lighting of flat colours: aerial haze with distance and sun/shade factors."""

    def __init__(self, haze_rgb, visibility_m: float, sun_side: int, sun: float):
        self.haze = np.asarray(haze_rgb, dtype=np.float64)
        self._haze = [float(c) for c in haze_rgb]
        self.visibility = visibility_m
        self.sun_side = sun_side
        self.sun = sun

    def side_light(self, facing_x: int) -> float:
        """Brightness of a vertical face whose normal points along +x (1) or -x (-1)."""
        if facing_x == 0:
            return 1.0 - 0.08 * self.sun
        return 1.0 + 0.22 * self.sun if facing_x == -self.sun_side else 1.0 - 0.3 * self.sun

    def tint(self, color, depth: float, light: float = 1.0) -> tuple[int, int, int]:
        k = 1.0 - math.exp(-max(depth, 0.0) / self.visibility)
        a = light * (1.0 - k)
        r, g, b = (float(c) for c in color)
        hr, hg, hb = self._haze
        return (int(min(r * a + hr * k, 255.0)), int(min(g * a + hg * k, 255.0)), int(min(b * a + hb * k, 255.0)))
