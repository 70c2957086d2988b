"""Sampling a street-scene description (metres, world frame of camera.py) from a seeded RNG.

The description is plain data: a street cross-section, building facades, frontage (walls,
fences, hedges) and a list of objects. Rendering never draws random numbers for geometry, so
the same seed always yields the same scene however it is rendered. ``extra_m`` lengthens the
street ahead for a drive (``motion.py`` moves the camera along it); 0, the default, draws exactly
the numbers a still image always drew.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from training.data.synthetic.styles import CityStyle

VIEW_END_M = 140.0  # objects beyond this are a few pixels tall; buildings continue further
VEHICLE_SIZES = {  # kind -> (length, width, height) ranges in metres
    "car": ((3.9, 4.9), (1.7, 1.9), (1.4, 1.6)),
    "truck": ((6.5, 9.0), (2.3, 2.5), (3.0, 3.7)),
    "bus": ((11.0, 12.5), (2.5, 2.55), (2.9, 3.2)),
    "motorcycle": ((1.9, 2.2), (0.7, 0.8), (1.1, 1.3)),
}
VEHICLE_KIND_P = (("car", 0.83), ("truck", 0.06), ("bus", 0.05), ("motorcycle", 0.06))


@dataclass
class Street:
    lane_w: float
    lanes_left: int  # oncoming lanes
    lanes_right: int
    road_l: float
    road_r: float
    parking_l: float  # width of the parking strip next to the curb (0 = none)
    parking_r: float
    walk_l: float  # sidewalk width
    walk_r: float
    verge_l: float  # grass strip inside the sidewalk, next to the curb
    verge_r: float
    yard_l: float  # terrain/pavement between sidewalk and facade
    yard_r: float
    crossing: tuple[float, float] | None  # z range of a cross street
    far_z: float
    near_z: float = 0.0  # where the street starts (behind the camera once it has driven on)

    def curb_x(self, side: int) -> float:
        return self.road_r + self.parking_r if side > 0 else self.road_l - self.parking_l

    def walk_outer_x(self, side: int) -> float:
        walk = self.walk_r if side > 0 else self.walk_l
        return self.curb_x(side) + side * walk

    def facade_x(self, side: int) -> float:
        yard = self.yard_r if side > 0 else self.yard_l
        return self.walk_outer_x(side) + side * yard

    def in_crossing(self, z0: float, z1: float) -> bool:
        return self.crossing is not None and z1 > self.crossing[0] and z0 < self.crossing[1]


@dataclass
class Building:
    side: int  # -1 left, +1 right, 0 = far row facing the camera
    x0: float  # facade plane (side buildings) or left edge (far row)
    x1: float  # outer/back edge (side buildings) or right edge (far row)
    z0: float
    z1: float
    height: float
    color: tuple[int, int, int]
    floor_h: float
    bay_w: float
    glass: tuple[float, float, float]  # probabilities of dark / sky-reflecting / tree-reflecting
    shop: bool
    lit_seed: int


@dataclass
class Thing:
    kind: str
    x: float
    z: float
    p: dict = field(default_factory=dict)


@dataclass
class Scene:
    style: CityStyle
    camera: dict
    street: Street
    buildings: list[Building]
    frontage: list[Thing]
    things: list[Thing]
    light: dict
    travelled: float = 0.0  # metres the camera has driven since the sampled moment (motion.py)


def _color(rng: np.random.Generator, base, jitter: float = 12.0) -> tuple[int, int, int]:
    c = np.asarray(base, dtype=np.float64) * rng.uniform(0.85, 1.12) + rng.normal(0, jitter, 3)
    return tuple(int(v) for v in np.clip(c, 0, 255))


def _street(rng: np.random.Generator, extra_m: float = 0.0) -> Street:
    lane_w = rng.uniform(2.9, 3.5)
    lanes_left = int(rng.choice([0, 1, 1, 2]))
    lanes_right = int(rng.choice([1, 1, 2]))
    ego = int(rng.integers(0, lanes_right))
    crossing = None
    if rng.random() < 0.55:
        z0 = rng.uniform(18.0, 60.0)
        crossing = (z0 + extra_m, z0 + extra_m + rng.uniform(10.0, 16.0))  # a drive ends before it
    return Street(
        lane_w=lane_w, lanes_left=lanes_left, lanes_right=lanes_right,
        road_l=-(lanes_left + ego + 0.5) * lane_w, road_r=(lanes_right - ego - 0.5) * lane_w,
        parking_l=2.2 if rng.random() < 0.3 else 0.0, parking_r=2.2 if rng.random() < 0.45 else 0.0,
        walk_l=rng.uniform(2.2, 5.0), walk_r=rng.uniform(2.2, 5.0),
        verge_l=rng.uniform(0.8, 1.6) if rng.random() < 0.35 else 0.0,
        verge_r=rng.uniform(0.8, 1.6) if rng.random() < 0.35 else 0.0,
        yard_l=rng.uniform(1.5, 5.0) if rng.random() < 0.25 else 0.0,
        yard_r=rng.uniform(1.5, 5.0) if rng.random() < 0.25 else 0.0,
        crossing=crossing, far_z=rng.uniform(130.0, 260.0) + extra_m,
    )


def _building(rng, style: CityStyle, side: int, x0: float, x1: float, z0: float, z1: float,
              height: float) -> Building:
    glass_mix = rng.dirichlet((4.0, 2.0, 1.0))
    return Building(
        side=side, x0=x0, x1=x1, z0=z0, z1=z1, height=height,
        color=_color(rng, style.facades[rng.integers(len(style.facades))]),
        floor_h=rng.uniform(2.9, 3.8), bay_w=rng.uniform(2.2, 4.0),
        glass=tuple(float(g) for g in glass_mix), shop=bool(rng.random() < 0.5),
        lit_seed=int(rng.integers(1 << 30)),
    )


def _buildings(rng, style: CityStyle, street: Street) -> list[Building]:
    lo, hi = style.building_height_m
    out = []
    for side in (-1, 1):
        face = street.facade_x(side)
        z = rng.uniform(-12.0, -2.0)
        z_end = street.far_z - rng.uniform(0.0, 40.0)
        while z < z_end:
            length = rng.uniform(8.0, 32.0)
            if street.in_crossing(z, z + length):
                z = street.crossing[1] + rng.uniform(0.0, 2.0)
                continue
            z1 = min(z + length, street.crossing[0] if street.crossing and z < street.crossing[0] else 1e9)
            if rng.random() < 0.12 and z > 10:  # a gap: a set-back block fills it further out
                x = face + side * rng.uniform(6.0, 20.0)
                out.append(_building(rng, style, side, x, x + side * 15, z, z1, rng.uniform(lo, hi)))
            else:
                x = face + side * (rng.uniform(0.0, 1.5) if rng.random() < 0.3 else 0.0)
                out.append(_building(rng, style, side, x, x + side * 15, z, z1, rng.uniform(lo, hi)))
            z = z1
    x = -90.0
    while x < 90.0:
        w = rng.uniform(14.0, 36.0)
        out.append(_building(rng, style, 0, x, x + w, street.far_z + rng.uniform(0, 30), street.far_z + 40,
                             rng.uniform(lo, hi * 1.3)))
        x += w
    return out


def _frontage(rng, street: Street, view_end: float = VIEW_END_M) -> list[Thing]:
    out = []
    for side in (-1, 1):
        outer = street.walk_outer_x(side)
        z = rng.uniform(0.0, 20.0)
        while z < view_end:
            length = rng.uniform(6.0, 25.0)
            if not street.in_crossing(z - 1, z + length + 1):
                kind = rng.choice(["wall", "fence", "hedge", "none", "none", "none"])
                if kind != "none":
                    height = {"wall": rng.uniform(0.8, 2.5), "fence": rng.uniform(1.0, 2.0),
                              "hedge": rng.uniform(0.7, 1.4)}[kind]
                    out.append(Thing(str(kind), outer, z, {"z1": z + length, "h": height, "side": side,
                                                          "tone": rng.uniform(0.75, 1.1)}))
            z += length + rng.uniform(3.0, 30.0)
    return out


def _vehicle(rng, style: CityStyle, kind: str, x: float, z: float, facing: int) -> Thing:
    (l0, l1), (w0, w1), (h0, h1) = VEHICLE_SIZES[kind]
    palette = style.bus_colors if kind == "bus" else style.car_colors
    if kind == "truck" and rng.random() < 0.6:
        palette = ((235, 235, 232), (210, 212, 215))  # white boxes make trucks look like buses
    return Thing(kind, x, z, {"l": rng.uniform(l0, l1), "w": rng.uniform(w0, w1), "h": rng.uniform(h0, h1),
                              "color": _color(rng, palette[rng.integers(len(palette))], 6.0),
                              "facing": facing, "cargo": _color(rng, palette[rng.integers(len(palette))], 6.0),
                              "rider": _person_params(rng) if kind == "motorcycle" else None})


def _traffic(rng, style: CityStyle, street: Street, extra_m: float = 0.0) -> list[Thing]:
    out = []
    kinds, probs = zip(*VEHICLE_KIND_P)
    for lane in range(street.lanes_left + street.lanes_right):
        x = street.road_l + (lane + 0.5) * street.lane_w
        oncoming = lane < street.lanes_left
        facing = -1 if oncoming else 1
        ego_lane = abs(x) < 0.5 * street.lane_w
        z = rng.uniform(9.0, 30.0) if ego_lane else rng.uniform(4.0, 20.0)
        while z < VIEW_END_M + extra_m:
            kind = str(rng.choice(kinds, p=probs))
            thing = _vehicle(rng, style, kind, x + rng.normal(0, 0.25), z, facing)
            thing.p["lane"] = lane  # vehicles of a lane drive at the lane's speed (motion.py)
            out.append(thing)
            z += thing.p["l"] + rng.exponential(18.0 / style.traffic) + 4.0
    for side in (-1, 1):
        if (street.parking_r if side > 0 else street.parking_l) <= 0:
            continue
        x = street.curb_x(side) - side * 1.1
        z = rng.uniform(-2.0, 6.0)
        while z < 90.0 + extra_m:
            length = rng.uniform(4.0, 4.8)
            if rng.random() < 0.75 and not street.in_crossing(z, z + length):
                out.append(_vehicle(rng, style, "car", x + rng.normal(0, 0.1), z, 1))
                out[-1].p["parked"] = True
            z += length + rng.uniform(0.8, 3.0)
    if rng.random() < 0.6:
        for _ in range(int(rng.integers(1, 3))):
            out.append(Thing("bicycle", street.road_r - 0.7, rng.uniform(6.0, 60.0 + extra_m),
                             {"axis": "z", "rider": _person_params(rng), "color": _color(rng, (60, 60, 60), 30)}))
    return out


def _crown(rng) -> dict:
    """Blobs of a tree crown in units of its radius: big shaded masses, then small leaf clumps."""
    blobs = np.column_stack([rng.uniform(-0.6, 0.6, 7), rng.uniform(-0.45, 0.5, 7), rng.uniform(0.45, 0.75, 7)])
    leaves = np.column_stack([rng.uniform(-0.7, 0.7, 10), rng.uniform(-0.6, 0.6, 10), rng.uniform(0.1, 0.22, 10),
                              rng.uniform(0.8, 1.3, 10)])
    return {"blobs": blobs.tolist(), "leaves": leaves.tolist()}


def _person_params(rng) -> dict:
    clothes = [(30, 30, 35), (60, 60, 70), (120, 30, 30), (40, 60, 110), (150, 150, 150), (200, 190, 170),
               (90, 70, 50), (20, 80, 60), (210, 210, 205)]
    return {"h": rng.uniform(1.5, 1.92), "w": rng.uniform(0.42, 0.55), "phase": rng.uniform(-1, 1),
            "top": _color(rng, clothes[rng.integers(len(clothes))], 10),
            "legs": _color(rng, clothes[rng.integers(len(clothes))], 10),
            "skin": _color(rng, [(225, 190, 160), (160, 110, 80), (100, 70, 50)][rng.integers(3)], 8),
            "hair": _color(rng, [(30, 25, 20), (90, 60, 30), (200, 180, 120)][rng.integers(3)], 8),
            "bag": bool(rng.random() < 0.3)}


def _sidewalk_things(rng, style: CityStyle, street: Street, extra_m: float = 0.0) -> list[Thing]:
    out = []
    view_end = VIEW_END_M + extra_m
    for side in (-1, 1):
        curb, outer = street.curb_x(side), street.walk_outer_x(side)
        lo, hi = min(curb, outer), max(curb, outer)
        walk_len = view_end * 0.6
        for _ in range(rng.poisson(style.pedestrians * walk_len / 10.0)):
            z = rng.uniform(2.0, 80.0 + extra_m) ** 1.0
            out.append(Thing("person", rng.uniform(lo + 0.4, hi - 0.3), z, _person_params(rng)))
        z = rng.uniform(6.0, 16.0)
        while z < view_end:
            if rng.random() < style.trees and not street.in_crossing(z - 3, z + 3):
                out.append(Thing("tree", curb + side * rng.uniform(0.7, 1.2), z,
                                 {"h": (th := rng.uniform(6.0, 12.0)), "r": rng.uniform(1.5, min(3.2, 0.3 * th)),
                                  "color": _color(rng, style.vegetation_rgb, 8), **_crown(rng)}))
            z += rng.uniform(7.0, 13.0)
        z = rng.uniform(5.0, 30.0) + (10.0 if side > 0 else 0.0)
        while z < view_end:
            out.append(Thing("lamp", curb + side * 0.35, z, {"h": rng.uniform(6.5, 9.0), "side": side}))
            z += rng.uniform(24.0, 36.0)
        for _ in range(int(rng.integers(1, 4 + int(extra_m / 40.0)))):
            out.append(Thing("sign", curb + side * 0.4, rng.uniform(7.0, 70.0 + extra_m),
                             {"shape": str(rng.choice(["circle", "triangle", "rect", "octagon"])),
                              "h": rng.uniform(2.2, 3.0), "size": rng.uniform(0.55, 0.9),
                              "back": bool(rng.random() < 0.2)}))
        for _ in range(int(rng.integers(0, 4 + int(extra_m / 30.0)))):
            kind = str(rng.choice(["bin", "bollard", "bench", "box"]))
            out.append(Thing("static", rng.uniform(lo + 0.3, hi - 0.3), rng.uniform(3.0, 60.0 + extra_m),
                             {"what": kind}))
        if rng.random() < 0.35:
            z = rng.uniform(5.0, 40.0 + extra_m)
            for i in range(int(rng.integers(1, 4))):
                out.append(Thing("bicycle", outer - side * 0.6, z + 0.7 * i,
                                 {"axis": "x", "rider": None, "color": _color(rng, (70, 70, 80), 40)}))
    if street.crossing is not None:
        z0 = street.crossing[0]
        for side in (-1, 1):
            out.append(Thing("traffic_light", street.curb_x(side) + side * 0.5, z0 - 1.0,
                             {"h": rng.uniform(3.0, 3.6), "arm": side < 0 or rng.random() < 0.3, "side": side}))
        for _ in range(rng.poisson(2.0)):
            out.append(Thing("person", rng.uniform(street.road_l, street.road_r), z0 - rng.uniform(2.0, 4.0),
                             _person_params(rng)))
        if rng.random() < 0.3:
            out.append(Thing("bicycle", rng.uniform(street.road_l, street.road_r), z0 + 4,
                             {"axis": "x", "rider": _person_params(rng), "color": _color(rng, (60, 60, 60), 30)}))
    return out


def sample_scene(rng: np.random.Generator, style: CityStyle, extra_m: float = 0.0) -> Scene:
    """Draw one street-scene description; all randomness of an image happens here.

    ``extra_m`` > 0 makes the street that much longer ahead (objects, buildings, the far end and
    any cross street move out by it), for a camera that will drive that far (a demo drive)."""
    camera = {"camera_height": rng.uniform(1.2, 1.5), "horizon_frac": rng.uniform(0.40, 0.45),
              "focal_scale": 1.1 * rng.uniform(0.95, 1.05), "yaw_deg": rng.uniform(-3.0, 3.0),
              "pitch_deg": rng.uniform(-0.5, 0.5)}
    street = _street(rng, extra_m)
    light = {"exposure": style.exposure * rng.uniform(0.9, 1.1),
             "white_balance": tuple(w * rng.uniform(0.96, 1.04) for w in style.white_balance),
             "gamma": style.gamma * rng.uniform(0.93, 1.07), "sun": style.sun_strength * rng.uniform(0.7, 1.1),
             "noise": rng.uniform(3.0, 7.0), "offsets": tuple(int(v) for v in rng.integers(0, 4096, 6)),
             "clouds": int(rng.integers(1 << 30)), "hood": _color(rng, [(20, 22, 26), (120, 122, 128),
                                                                         (210, 210, 214)][rng.integers(3)], 4)}
    buildings = _buildings(rng, style, street)
    frontage = _frontage(rng, street, VIEW_END_M + extra_m)
    things = _traffic(rng, style, street, extra_m) + _sidewalk_things(rng, style, street, extra_m)
    things.sort(key=lambda t: -t.z)  # painter's algorithm: far to near
    return Scene(style, camera, street, buildings, frontage, things, light)
