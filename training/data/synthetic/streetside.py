"""People, two-wheelers, trees, poles, traffic lights, signs and street furniture.

Upright things are billboards: projected once at their foot point and scaled by f / depth,
which is exact for a camera without roll and keeps a crowd of people cheap to draw. Bicycles
and motorcycles are real 3-D wire frames because their look depends on their heading.
"""

from __future__ import annotations

import math

import numpy as np

from training.data.synthetic.camera import Camera
from training.data.synthetic.canvas import Canvas, L, Look

RING = np.array([(math.cos(a), math.sin(a)) for a in np.linspace(0, 2 * math.pi, 14)])
POLE_RGB = (88, 90, 92)
SIGN_FACES = {"circle": ((200, 30, 30), (235, 235, 235)), "triangle": ((200, 30, 30), (235, 235, 230)),
              "rect": ((30, 70, 160), (30, 80, 175)), "octagon": ((190, 25, 25), (190, 25, 25))}


class Billboard:
    """A vertical plane facing the camera at a foot point; local (a, b) metres right / up."""

    def __init__(self, cam: Camera, x: float, z: float, y: float = 0.0):
        self.u, self.v, self.depth = cam.point((x, y, z))
        self.s = cam.f / max(self.depth, 0.6)

    def pts(self, local) -> list[tuple[float, float]]:
        return [(self.u + self.s * a, self.v - self.s * b) for a, b in local]

    def box(self, a: float, b: float, ra: float, rb: float) -> tuple[float, float, float, float]:
        return (self.u + self.s * (a - ra), self.v - self.s * (b + rb), self.u + self.s * (a + ra),
                self.v - self.s * (b - rb))

    def rect(self, a0: float, b0: float, a1: float, b1: float):
        return self.pts([(a0, b0), (a0, b1), (a1, b1), (a1, b0)])


def _limb(a0, b0, a1, b1, w):
    return [(a0 - w, b0), (a0 + w, b0), (a1 + w, b1), (a1 - w, b1)]


def draw_person(cv: Canvas, bb: Billboard, p: dict, look: Look, label: int, inst: int, seated: float = 0.0,
                helmet: bool = False) -> None:
    """A pedestrian (seated=0) or a rider (seated = seat height in metres)."""
    h, w, ph, d = p["h"], p["w"], p["phase"], bb.depth
    legs, top, skin = look.tint(p["legs"], d), look.tint(p["top"], d), look.tint(p["skin"], d)
    hip = seated if seated else 0.5 * h
    if seated:
        for s in (-1, 1):
            cv.poly(bb.pts(_limb(s * 0.08, hip, s * 0.12, 0.25, 0.06)), legs, label, inst)
    else:
        stride = 0.16 * h * ph
        for s in (-1, 1):
            cv.poly(bb.pts(_limb(s * 0.06 * w / 0.5, hip, s * (0.08 + 0.5 * stride), 0.0, 0.055)), legs, label, inst)
    shoulder = hip + (0.3 if seated else 0.32) * h
    cv.poly(bb.pts([(-0.42 * w, shoulder), (0.42 * w, shoulder), (0.3 * w, hip - 0.02), (-0.3 * w, hip - 0.02)]),
            top, label, inst)
    reach = 0.35 if seated else 0.0
    for s in (-1, 1):
        cv.poly(bb.pts(_limb(s * 0.4 * w, shoulder - 0.03, s * (0.45 * w + 0.06 * ph), hip - 0.12 * h + reach * 0.6,
                             0.045)), top, label, inst)
    cv.poly(bb.rect(-0.035 * h, shoulder - 0.02, 0.035 * h, shoulder + 0.05 * h), skin, label, inst)
    head = shoulder + 0.09 * h
    cv.ellipse(bb.box(0.0, head, 0.055 * h, 0.07 * h), skin, label, inst)
    hair = look.tint((25, 25, 30) if helmet else p["hair"], d)
    cv.rgb.chord(bb.box(0.0, head + 0.01 * h, 0.058 * h, 0.066 * h), 180, 360, fill=hair)
    if p["bag"] and not seated:
        cv.poly(bb.rect(0.3 * w, hip - 0.05, 0.3 * w + 0.22, hip + 0.3), look.tint((50, 40, 35), d), label, inst)


def _wire(cv: Canvas, cam: Camera, pts3d: np.ndarray, color, label: int, inst: int, width_m: float):
    uv, ok = cam.polygons(pts3d[None])
    if not ok[0]:
        return
    depth = cam.depth(pts3d.mean(0))
    cv.line([tuple(p) for p in uv[0].tolist()], color, label, width_m * cam.pixels_per_metre(depth), inst)


def draw_two_wheeler(cv: Canvas, cam: Camera, thing, look: Look) -> None:
    """Bicycle or motorcycle with an optional rider (instances of rider 25 and of the vehicle)."""
    motor = thing.kind == "motorcycle"
    d = np.array([1.0, 0.0, 0.0]) if thing.p.get("axis") == "x" else np.array([0.0, 0.0, 1.0])
    up = np.array([0.0, 1.0, 0.0])
    c = np.array([thing.x, 0.0, thing.z + (1.0 if thing.p.get("axis") != "x" else 0.0)])
    r, half = (0.31, 0.7) if motor else (0.34, 0.52)
    depth = cam.depth(c)
    if depth < 1.5:
        return
    label = L[thing.kind]
    inst = cv.instance(label)
    color = look.tint(thing.p.get("color", (40, 40, 44)), depth)
    tyre = look.tint((20, 20, 22), depth)
    for sgn in (-1, 1):
        hub = c + sgn * half * d + r * up
        ring = hub + r * (RING[:, :1] * d + RING[:, 1:] * up)
        _wire(cv, cam, ring, tyre, label, inst, 0.11 if motor else 0.045)
    rear, front = c - half * d + r * up, c + half * d + r * up
    seat, crank, bar = c - 0.15 * d + 0.85 * up, c + 0.32 * up, c + 0.42 * d + 0.98 * up
    if motor:
        _wire(cv, cam, np.array([rear + 0.2 * up, c + 0.55 * up, front + 0.15 * up]), color, label, inst, 0.38)
        _wire(cv, cam, np.array([front, bar]), color, label, inst, 0.06)
    else:
        _wire(cv, cam, np.array([rear, seat, crank, rear]), color, label, inst, 0.04)
        _wire(cv, cam, np.array([seat, bar, front, bar, crank]), color, label, inst, 0.04)
    rider = thing.p.get("rider")
    if rider is not None:
        bb = Billboard(cam, float(c[0]), float(c[2]))
        draw_person(cv, bb, rider, look, L["rider"], cv.instance(L["rider"]), seated=0.8 if motor else 0.9,
                    helmet=motor)


def draw_tree(cv: Canvas, cam: Camera, thing, look: Look) -> None:
    bb = Billboard(cam, thing.x, thing.z)
    p, d = thing.p, bb.depth
    h, r = p["h"], p["r"]
    veg = L["vegetation"]
    cv.poly(bb.pts([(-0.16, 0.0), (0.16, 0.0), (0.1, h - r), (-0.1, h - r)]), look.tint((70, 55, 42), d), veg)
    base = p["color"]
    for i, (a, b, rr) in enumerate(p["blobs"]):
        shade = 0.7 + 0.12 * i + 0.15 * look.sun * (1 if a > 0 else -1) * -look.sun_side
        cv.ellipse(bb.box(a * r, h - r + b * r, rr * r, rr * r * 0.9), look.tint(base, d, shade), veg)
    for a, b, rr, k in p["leaves"]:
        cv.rgb.ellipse(bb.box(a * r, h - r + b * r, rr * r, rr * r), fill=look.tint(base, d, k))
    if look.sun > 0.3:
        shadow = cam.polygon(np.array([(thing.x + dx * r, 0.0, thing.z + dz * r) for dx, dz in RING.tolist()]))
        if shadow is not None:
            cv.shadow.polygon(shadow, fill=110)


def _pole(cv: Canvas, bb: Billboard, h: float, width: float, look: Look):
    cv.line([(bb.u, bb.v), (bb.u, bb.v - bb.s * h)], look.tint(POLE_RGB, bb.depth), L["pole"], width * bb.s)


def draw_lamp(cv: Canvas, cam: Camera, thing, look: Look) -> None:
    bb = Billboard(cam, thing.x, thing.z)
    h, side = thing.p["h"], thing.p["side"]
    _pole(cv, bb, h, 0.17, look)
    arm = 1.8 * -side
    u1, v1, _ = cam.point((thing.x + arm, h + 0.25, thing.z))
    color = look.tint(POLE_RGB, bb.depth)
    cv.line([(bb.u, bb.v - bb.s * h), (u1, v1)], color, L["pole"], 0.1 * bb.s)
    lamp = Billboard(cam, thing.x + arm, thing.z, h + 0.1)
    cv.ellipse(lamp.box(0.0, 0.0, 0.35, 0.12), look.tint((60, 62, 66), bb.depth), L["pole"])


def _light_box(cv: Canvas, bb: Billboard, a: float, b: float, look: Look, lit: int):
    label = L["traffic light"]
    cv.poly(bb.rect(a - 0.17, b, a + 0.17, b + 0.95), look.tint((28, 30, 28), bb.depth), label)
    for i, col in enumerate(((220, 30, 20), (230, 170, 20), (40, 200, 90))):
        fill = col if i == lit else tuple(c // 4 for c in col)
        cv.rgb.ellipse(bb.box(a, b + 0.78 - 0.3 * i, 0.1, 0.1), fill=look.tint(fill, bb.depth * 0.6))


def draw_traffic_light(cv: Canvas, cam: Camera, thing, look: Look) -> None:
    bb = Billboard(cam, thing.x, thing.z)
    h, side = thing.p["h"], thing.p["side"]
    lit = int(thing.p.get("z_ref", thing.z) * 7) % 3  # where it stands, not where the camera is
    if thing.p["arm"]:
        reach = 5.0 * -side
        _pole(cv, bb, h + 2.2, 0.2, look)
        u1, v1, _ = cam.point((thing.x + reach, h + 2.0, thing.z))
        cv.line([(bb.u, bb.v - bb.s * (h + 2.0)), (u1, v1)], look.tint(POLE_RGB, bb.depth), L["pole"], 0.12 * bb.s)
        _light_box(cv, Billboard(cam, thing.x + reach, thing.z, h + 0.95), 0.0, 0.0, look, lit)
    else:
        _pole(cv, bb, h, 0.14, look)
    _light_box(cv, bb, 0.0, h - 0.95, look, lit)


def draw_sign(cv: Canvas, cam: Camera, thing, look: Look) -> None:
    bb = Billboard(cam, thing.x, thing.z)
    p, d = thing.p, bb.depth
    _pole(cv, bb, p["h"], 0.07, look)
    label, s, b = L["traffic sign"], p["size"] / 2, p["h"]
    rim, face = SIGN_FACES[p["shape"]]
    if p["back"]:
        rim = face = (120, 122, 124)
    rim, face = look.tint(rim, d), look.tint(face, d, 0.95)
    if p["shape"] == "circle":
        cv.ellipse(bb.box(0.0, b, s, s), rim, label)
        cv.rgb.ellipse(bb.box(0.0, b, s * 0.72, s * 0.72), fill=face)
    elif p["shape"] == "triangle":
        cv.poly(bb.pts([(-s * 1.1, b - s * 0.8), (s * 1.1, b - s * 0.8), (0.0, b + s * 1.1)]), rim, label)
        cv.rgb.polygon(bb.pts([(-s * 0.7, b - s * 0.55), (s * 0.7, b - s * 0.55), (0.0, b + s * 0.6)]), fill=face)
    elif p["shape"] == "rect":
        cv.poly(bb.rect(-s, b - s * 0.7, s, b + s * 0.7), rim, label)
        cv.rgb.polygon(bb.rect(-s * 0.5, b - s * 0.3, s * 0.5, b + s * 0.3), fill=look.tint((230, 230, 230), d))
    else:
        ring = [(s * math.cos(a), b + s * math.sin(a)) for a in np.linspace(math.pi / 8, 2 * math.pi + math.pi / 8, 8,
                                                                             endpoint=False)]
        cv.poly(bb.pts(ring), rim, label)
        cv.rgb.polygon(bb.rect(-s * 0.6, b - s * 0.12, s * 0.6, b + s * 0.12), fill=look.tint((235, 235, 235), d))


def draw_static(cv: Canvas, cam: Camera, thing, look: Look) -> None:
    bb = Billboard(cam, thing.x, thing.z)
    what, d, label = thing.p["what"], bb.depth, L["static"]
    if what == "bin":
        cv.poly(bb.rect(-0.28, 0.0, 0.28, 1.0), look.tint((40, 90, 60), d), label)
    elif what == "bollard":
        cv.poly(bb.rect(-0.07, 0.0, 0.07, 0.9), look.tint((50, 50, 54), d), label)
    elif what == "bench":
        cv.poly(bb.rect(-0.8, 0.4, 0.8, 0.85), look.tint((110, 80, 50), d), label)
        for a in (-0.7, 0.7):
            cv.poly(bb.rect(a - 0.04, 0.0, a + 0.04, 0.45), look.tint((40, 40, 40), d), label)
    else:
        cv.poly(bb.rect(-0.4, 0.0, 0.4, 1.3), look.tint((150, 152, 150), d), label)


def draw_thing(cv: Canvas, cam: Camera, thing, look: Look) -> None:
    if thing.kind == "person":
        bb = Billboard(cam, thing.x, thing.z)
        if bb.depth > 1.5:
            draw_person(cv, bb, thing.p, look, L["person"], cv.instance(L["person"]))
    elif thing.kind in ("bicycle", "motorcycle"):
        draw_two_wheeler(cv, cam, thing, look)
    elif thing.kind == "tree":
        draw_tree(cv, cam, thing, look)
    elif thing.kind == "lamp":
        draw_lamp(cv, cam, thing, look)
    elif thing.kind == "traffic_light":
        draw_traffic_light(cv, cam, thing, look)
    elif thing.kind == "sign":
        draw_sign(cv, cam, thing, look)
    elif thing.kind == "static":
        draw_static(cv, cam, thing, look)
    else:
        raise ValueError(f"unknown scene thing {thing.kind!r}")
