"""Pinhole dashcam: world metres -> pixels.

World frame: x to the right, y up, z forward along the road; the ground is y = 0 and the
camera sits at (0, camera_height, 0). Everything is placed in metres and projected here, so
object sizes and the convergence of road edges follow distance like in a real dashcam.
"""

from __future__ import annotations

import math

import numpy as np

NEAR_Z = 0.6  # metres; geometry closer than this is clipped so projections stay finite


class Camera:
    """A pinhole camera with a small yaw and pitch (drivers never look exactly down the road)."""

    def __init__(self, height: int, width: int, camera_height: float, horizon_frac: float,
                 focal_scale: float, yaw_deg: float, pitch_deg: float):
        self.height = height
        self.width = width
        self.camera_height = camera_height
        self.f = focal_scale * width
        self.cx = width / 2.0
        self.cy = horizon_frac * height
        yaw, pitch = math.radians(yaw_deg), math.radians(pitch_deg)
        cyaw, syaw, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
        rot_yaw = np.array([[cyaw, 0.0, -syaw], [0.0, 1.0, 0.0], [syaw, 0.0, cyaw]])
        rot_pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
        self.rotation_t = (rot_pitch @ rot_yaw).T
        self.origin = np.array([0.0, camera_height, 0.0])
        # Plain floats: small polygons are projected faster in Python than through numpy.
        self._r = [float(v) for v in (rot_pitch @ rot_yaw).ravel()]

    @property
    def horizon_v(self) -> float:
        """Image row of the horizon (vanishing point of the road)."""
        return self.cy - self.f * self.rotation_t[2, 1] / max(self.rotation_t[2, 2], 1e-6)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, dtype=np.float64) - self.origin) @ self.rotation_t

    def _pixels(self, cam: np.ndarray) -> np.ndarray:
        z = np.maximum(cam[..., 2], NEAR_Z * 0.5)
        return np.stack((self.cx + self.f * cam[..., 0] / z, self.cy - self.f * cam[..., 1] / z), -1)

    def depth(self, point) -> float:
        return self._cam_point(*(float(v) for v in point))[2]

    def pixels_per_metre(self, depth: float) -> float:
        return self.f / max(depth, NEAR_Z)

    def _cam_point(self, x: float, y: float, z: float) -> tuple[float, float, float]:
        r0, r1, r2, r3, r4, r5, r6, r7, r8 = self._r
        y -= self.camera_height
        return r0 * x + r1 * y + r2 * z, r3 * x + r4 * y + r5 * z, r6 * x + r7 * y + r8 * z

    def polygon(self, points) -> list[tuple[float, float]] | None:
        """Project a planar 3-D polygon, clipping it at the near plane; None if invisible."""
        cam = [self._cam_point(*p) for p in (points.tolist() if isinstance(points, np.ndarray) else points)]
        if not any(c[2] >= NEAR_Z for c in cam):
            return None
        if not all(c[2] >= NEAR_Z for c in cam):
            cam = _clip_near(cam)
            if len(cam) < 3:
                return None
        f, cx, cy = self.f, self.cx, self.cy
        return [(cx + f * x / z, cy - f * y / z) for x, y, z in cam]

    def polygons(self, quads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project many small polygons at once (N, K, 3); keep only those fully in front."""
        cam = self.to_camera(quads)
        ok = (cam[..., 2] >= NEAR_Z).all(axis=-1)
        return self._pixels(cam), ok

    def point(self, xyz) -> tuple[float, float, float]:
        """Pixel (u, v) and depth of one world point."""
        x, y, z = self._cam_point(*(float(v) for v in xyz))
        z = max(z, NEAR_Z * 0.5)
        return self.cx + self.f * x / z, self.cy - self.f * y / z, z


def _clip_near(cam: list) -> list:
    """Sutherland-Hodgman against z = NEAR_Z (one plane is all a forward camera needs)."""
    out = []
    n = len(cam)
    for i in range(n):
        a, b = cam[i], cam[(i + 1) % n]
        a_in, b_in = a[2] >= NEAR_Z, b[2] >= NEAR_Z
        if a_in:
            out.append(a)
        if a_in != b_in:
            t = (NEAR_Z - a[2]) / (b[2] - a[2])
            out.append(tuple(pa + t * (pb - pa) for pa, pb in zip(a, b)))
    return out
