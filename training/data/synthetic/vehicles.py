"""Vehicles as projected 3-D boxes: the face toward the camera, one side face, glass, wheels.

A vehicle is described by a side profile in (u, y): u runs 0..1 from its rear to its front and
y is height in metres. The profile is placed on the visible side plane and the near end face is
drawn after it, which is all the painter's algorithm needs for a box seen from behind a corner.
"""

from __future__ import annotations

import math

import numpy as np

from training.data.synthetic.camera import Camera
from training.data.synthetic.canvas import Canvas, L, Look

TYRE = (22, 22, 24)
GLASS = (38, 46, 56)
RIM = (120, 120, 124)
WHEEL_R = {"car": 0.32, "truck": 0.5, "bus": 0.5}
CIRCLE = [(math.cos(a), math.sin(a)) for a in np.linspace(0, 2 * math.pi, 12, endpoint=False)]


def _scale(color, k: float):
    return tuple(int(min(255, c * k)) for c in color)


class _Box:
    """World placement of one vehicle: maps profile (u, y) and end-face (s, y) to 3-D points."""

    def __init__(self, t):
        p = t.p
        self.x0, self.x1 = t.x - p["w"] / 2, t.x + p["w"] / 2
        self.z0, self.l, self.h, self.w = t.z, p["l"], p["h"], p["w"]
        self.facing = p["facing"]
        self.side_x = self.x1 if self.x1 < -0.2 else (self.x0 if self.x0 > 0.2 else None)

    def z(self, u: float) -> float:
        return self.z0 + (u if self.facing > 0 else 1.0 - u) * self.l

    def side(self, prof) -> np.ndarray:
        return np.array([(self.side_x, y, self.z(u)) for u, y in prof])

    def end(self, pts, u: float = 0.0) -> np.ndarray:
        """End-face points (s across the width 0..1, y) at profile position u."""
        z = self.z(u if self.facing > 0 else 1.0 - u)
        return np.array([(self.x0 + s * self.w, y, z) for s, y in pts])

    def end_slanted(self, pts) -> np.ndarray:
        """End-face points with their own profile position: (s, y, u)."""
        return np.array([(self.x0 + s * self.w, y, self.z(u if self.facing > 0 else 1.0 - u)) for s, y, u in pts])


def _wheel(cv: Canvas, cam: Camera, box: _Box, u: float, r: float, label: int, inst: int, look: Look):
    zc = box.z(u)
    ring = np.array([(box.side_x, r + r * s, zc + r * c) for c, s in CIRCLE])
    cv.poly(cam.polygon(ring), look.tint(TYRE, zc), label, inst)
    hub = np.array([(box.side_x, r + 0.5 * r * s, zc + 0.5 * r * c) for c, s in CIRCLE])
    pts = cam.polygon(hub)
    if pts is not None:
        cv.rgb.polygon(pts, fill=look.tint(RIM, zc))


def _shadow(cv: Canvas, cam: Camera, box: _Box, spread: float = 0.25):
    pts = cam.polygon(np.array([(box.x0 - spread, 0.0, box.z0 - spread), (box.x1 + spread, 0.0, box.z0 - spread),
                                (box.x1 + spread, 0.0, box.z0 + box.l), (box.x0 - spread, 0.0, box.z0 + box.l)]))
    if pts is not None:
        cv.shadow.polygon(pts, fill=170)


def _rgb(cv: Canvas, cam: Camera, pts3d, color):
    pts = cam.polygon(pts3d)
    if pts is not None:
        cv.rgb.polygon(pts, fill=color)


def _car(cv: Canvas, cam: Camera, box: _Box, color, look: Look, label: int, inst: int):
    h, depth = box.h, box.z0
    belt = 0.6 * h
    body = [(0.0, 0.28), (0.0, belt), (1.0, belt * 0.95), (1.0, 0.28)]
    cabin = [(0.1, belt), (0.27, h), (0.62, h), (0.78, belt)]
    glass = [(0.14, belt + 0.06), (0.29, h - 0.06), (0.6, h - 0.06), (0.73, belt + 0.06)]
    side_light = look.side_light(1 if box.side_x == box.x1 else -1) * 0.92
    if box.side_x is not None:
        cv.poly(cam.polygon(box.side(body)), look.tint(color, depth, side_light), label, inst)
        cv.poly(cam.polygon(box.side(cabin)), look.tint(color, depth, side_light * 0.95), label, inst)
        _rgb(cv, cam, box.side(glass), look.tint(GLASS, depth, 1.2))
        _rgb(cv, cam, box.side([(0.0, belt - 0.05), (0.0, belt), (1.0, belt), (1.0, belt - 0.05)]),
             look.tint(color, depth, side_light * 1.25))
        for u in (0.17, 0.83):
            _wheel(cv, cam, box, u, 0.32, label, inst, look)
    light = look.side_light(0)
    cv.poly(cam.polygon(box.end([(0, 0.28), (0, belt), (1, belt), (1, 0.28)])), look.tint(color, depth, light),
            label, inst)
    for s0, s1 in ((0.0, 0.2), (0.8, 1.0)):
        cv.poly(cam.polygon(box.end([(s0, 0.0), (s0, 0.3), (s1, 0.3), (s1, 0.0)])), look.tint(TYRE, depth),
                label, inst)
    if box.facing > 0:
        top = [(0.08, belt, 0.1), (0.2, h, 0.27), (0.8, h, 0.27), (0.92, belt, 0.1)]
        win = [(0.14, belt + 0.05, 0.12), (0.23, h - 0.05, 0.25), (0.77, h - 0.05, 0.25), (0.86, belt + 0.05, 0.12)]
        lamp, lamp_rgb = (belt * 0.72, belt * 0.92), (190, 20, 20)
    else:
        top = [(0.06, belt, 0.22), (0.18, h, 0.38), (0.82, h, 0.38), (0.94, belt, 0.22)]
        win = [(0.1, belt + 0.04, 0.23), (0.2, h - 0.05, 0.37), (0.8, h - 0.05, 0.37), (0.9, belt + 0.04, 0.23)]
        lamp, lamp_rgb = (belt * 0.7, belt * 0.85), (235, 232, 210)
    cv.poly(cam.polygon(box.end_slanted(top)), look.tint(color, depth, light * 0.97), label, inst)
    _rgb(cv, cam, box.end_slanted(win), look.tint(GLASS, depth, 1.3))
    for s0, s1 in ((0.04, 0.2), (0.8, 0.96)):
        _rgb(cv, cam, box.end([(s0, lamp[0]), (s0, lamp[1]), (s1, lamp[1]), (s1, lamp[0])]), look.tint(lamp_rgb, depth))
    _rgb(cv, cam, box.end([(0.38, 0.4), (0.38, 0.52), (0.62, 0.52), (0.62, 0.4)]), look.tint((225, 225, 215), depth))


def _truck(cv: Canvas, cam: Camera, box: _Box, color, cargo, look: Look, label: int, inst: int):
    h, depth = box.h, box.z0
    cab_h = max(2.4, 0.78 * h)
    light = look.side_light(0)
    side_light = look.side_light(1 if box.side_x == box.x1 else -1) * 0.92
    if box.side_x is not None:
        cv.poly(cam.polygon(box.side([(0.0, 0.5), (0.0, h), (0.76, h), (0.76, 0.5)])),
                look.tint(cargo, depth, side_light), label, inst)
        cv.poly(cam.polygon(box.side([(0.78, 0.45), (0.78, cab_h), (0.97, cab_h), (1.0, 1.2), (1.0, 0.45)])),
                look.tint(color, depth, side_light), label, inst)
        _rgb(cv, cam, box.side([(0.84, 1.5), (0.84, cab_h - 0.2), (0.96, cab_h - 0.2), (0.97, 1.5)]),
             look.tint(GLASS, depth, 1.2))
        cv.poly(cam.polygon(box.side([(0.05, 0.0), (0.05, 0.55), (0.95, 0.55), (0.95, 0.0)])),
                look.tint((40, 40, 44), depth), label, inst)
        for u in (0.1, 0.2, 0.88):
            _wheel(cv, cam, box, u, 0.5, label, inst, look)
    if box.facing > 0:
        cv.poly(cam.polygon(box.end([(0, 0.5), (0, h), (1, h), (1, 0.5)])), look.tint(cargo, depth, light),
                label, inst)
        _rgb(cv, cam, box.end([(0.495, 0.6), (0.495, h - 0.1), (0.505, h - 0.1), (0.505, 0.6)]),
             look.tint(cargo, depth, light * 0.6))
        for s0, s1 in ((0.03, 0.12), (0.88, 0.97)):
            _rgb(cv, cam, box.end([(s0, 0.55), (s0, 0.75), (s1, 0.75), (s1, 0.55)]), look.tint((190, 25, 20), depth))
    else:
        cv.poly(cam.polygon(box.end([(0, 0.45), (0, cab_h), (1, cab_h), (1, 0.45)])),
                look.tint(color, depth, light), label, inst)
        cv.poly(cam.polygon(box.end([(0, cab_h), (0, h), (1, h), (1, cab_h)], u=0.22)),
                look.tint(cargo, depth, light), label, inst)
        _rgb(cv, cam, box.end([(0.06, 1.5), (0.06, cab_h - 0.15), (0.94, cab_h - 0.15), (0.94, 1.5)]),
             look.tint(GLASS, depth, 1.3))
    for s0, s1 in ((0.0, 0.14), (0.86, 1.0)):
        cv.poly(cam.polygon(box.end([(s0, 0.0), (s0, 0.5), (s1, 0.5), (s1, 0.0)])), look.tint(TYRE, depth),
                label, inst)


def _bus(cv: Canvas, cam: Camera, box: _Box, color, look: Look, label: int, inst: int):
    h, depth = box.h, box.z0
    light = look.side_light(0)
    side_light = look.side_light(1 if box.side_x == box.x1 else -1) * 0.92
    if box.side_x is not None:
        cv.poly(cam.polygon(box.side([(0.0, 0.3), (0.0, h), (1.0, h), (1.0, 0.3)])),
                look.tint(color, depth, side_light), label, inst)
        for k in range(6):
            u0 = 0.05 + k * 0.15
            _rgb(cv, cam, box.side([(u0, 1.2), (u0, h - 0.35), (u0 + 0.135, h - 0.35), (u0 + 0.135, 1.2)]),
                 look.tint(GLASS, depth, 1.15))
        for u in (0.2, 0.82):
            _wheel(cv, cam, box, u, 0.5, label, inst, look)
    cv.poly(cam.polygon(box.end([(0, 0.3), (0, h), (1, h), (1, 0.3)])), look.tint(color, depth, light), label, inst)
    low = 1.6 if box.facing > 0 else 0.95
    _rgb(cv, cam, box.end([(0.06, low), (0.06, h - 0.25), (0.94, h - 0.25), (0.94, low)]),
         look.tint(GLASS, depth, 1.25))
    if box.facing < 0:
        _rgb(cv, cam, box.end([(0.15, h - 0.22), (0.15, h - 0.06), (0.85, h - 0.06), (0.85, h - 0.22)]),
             look.tint((240, 170, 40), depth))
    for s0, s1 in ((0.0, 0.14), (0.86, 1.0)):
        cv.poly(cam.polygon(box.end([(s0, 0.0), (s0, 0.35), (s1, 0.35), (s1, 0.0)])), look.tint(TYRE, depth),
                label, inst)
    lamp_rgb = (190, 25, 20) if box.facing > 0 else (235, 232, 210)
    for s0, s1 in ((0.04, 0.14), (0.86, 0.96)):
        _rgb(cv, cam, box.end([(s0, 0.55), (s0, 0.8), (s1, 0.8), (s1, 0.55)]), look.tint(lamp_rgb, depth))


def draw_vehicle(cv: Canvas, cam: Camera, thing, look: Look) -> None:
    """Draw a car, truck or bus described by scene.Thing (x = centre, z = near end)."""
    box = _Box(thing)
    if box.z0 < 1.0:
        return
    _shadow(cv, cam, box)
    label = L[thing.kind]
    inst = cv.instance(label)
    if thing.kind == "car":
        _car(cv, cam, box, thing.p["color"], look, label, inst)
    elif thing.kind == "truck":
        _truck(cv, cam, box, thing.p["color"], thing.p["cargo"], look, label, inst)
    else:
        _bus(cv, cam, box, thing.p["color"], look, label, inst)
