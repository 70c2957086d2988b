"""A street scene in motion: the camera drives forward along the road, traffic and people move.

A drive is a sampled scene (``scene.sample_scene``) plus a ``Motion``: the ego speed and one
velocity (and walking rhythm) per object of the scene, drawn from a stream of their own so that a
scene's still image never changes. ``scene_at(scene, motion, t)`` is the description ``t`` seconds
later (earlier for ``t < 0``) in the camera's frame: the world moves back by the distance the
camera drove, moving objects move by their own velocity, and ``render.render_description`` draws
it. Frames 1/17 s apart (Cityscapes records at 17 Hz) differ a little; at ``t = 0`` the scene itself
comes back, so that frame is the still image, byte for byte.

Who moves: cars, trucks, buses and motorcycles at their lane's speed (the lane ahead of the camera
a little faster than the camera, so the car ahead pulls slowly away instead of being driven
through; oncoming lanes towards the camera), cyclists along the road, pedestrians along the
sidewalk or across the road, at walking pace with swinging legs. Parked cars and bicycles,
trees, poles, signs and buildings stay where they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from training.data.synthetic.scene import Scene, Thing

FRAME_RATE_HZ = 17.0  # Cityscapes' camera
EGO_SPEED_MPS = (7.0, 11.0)  # 25..40 km/h: city driving
ONCOMING_SPEED_MPS = (7.0, 11.0)
WALK_SPEED_MPS = (0.9, 1.6)
STRIDE_M = 1.4  # one cycle of the legs (two steps)
VEHICLES = frozenset({"car", "truck", "bus", "motorcycle"})


@dataclass(frozen=True)
class Motion:
    """How a scene moves: ego speed (m/s, along +z) and, per ``scene.things`` item in order, a
    world velocity ``(vx, vz)`` in m/s and a gait (radians of the walking cycle per second)."""

    ego_speed: float
    velocities: tuple[tuple[float, float], ...]
    gaits: tuple[float, ...]


def sample_motion(rng: np.random.Generator, scene: Scene, ego_speed: float | None = None) -> Motion:
    """Draw the ego speed (unless given) and every object's velocity for the sampled ``scene``."""
    ego = float(rng.uniform(*EGO_SPEED_MPS)) if ego_speed is None else float(ego_speed)
    st = scene.street
    lane_speed = {}
    for lane in range(st.lanes_left + st.lanes_right):
        x = st.road_l + (lane + 0.5) * st.lane_w
        if lane < st.lanes_left:
            lane_speed[lane] = -float(rng.uniform(*ONCOMING_SPEED_MPS))
        elif abs(x) < 0.5 * st.lane_w:  # the camera's lane: a little faster than the camera
            lane_speed[lane] = ego + float(rng.uniform(0.5, 1.5))
        else:
            lane_speed[lane] = ego + float(rng.uniform(-2.0, 2.5))
    velocities, gaits = [], []
    for thing in scene.things:
        velocity, gait = _thing_motion(rng, thing, st, ego, lane_speed)
        velocities.append(velocity)
        gaits.append(gait)
    return Motion(ego, tuple(velocities), tuple(gaits))


def _thing_motion(rng, thing: Thing, street, ego: float, lane_speed: dict) -> tuple[tuple[float, float], float]:
    p = thing.p
    if thing.kind in VEHICLES:
        return (0.0, lane_speed[p["lane"]] if "lane" in p else 0.0), 0.0
    if thing.kind == "person":
        speed = float(rng.uniform(*WALK_SPEED_MPS)) * (1.0 if rng.random() < 0.5 else -1.0)
        gait = 2.0 * math.pi * abs(speed) / STRIDE_M
        if street.road_l < thing.x < street.road_r:  # on the road: crossing it
            return (speed, 0.0), gait
        return (0.0, speed), gait
    if thing.kind == "bicycle" and p.get("rider") is not None:
        if p.get("axis") == "x":  # crossing at the intersection
            return (float(rng.uniform(3.0, 5.0)) * (1.0 if rng.random() < 0.5 else -1.0), 0.0), 0.0
        if abs(thing.x) < street.lane_w:  # in the camera's path: keeps ahead of it
            return (0.0, ego + float(rng.uniform(0.5, 1.5))), 0.0
        return (0.0, float(rng.uniform(4.0, 6.0))), 0.0
    return (0.0, 0.0), 0.0


def scene_at(scene: Scene, motion: Motion, t: float, noise_offsets: tuple[int, int, int] | None = None) -> Scene:
    """The sampled ``scene`` ``t`` seconds on, in the camera's frame.

    Args:
        scene: a scene from ``sample_scene`` (``motion`` lists its things in this order).
        motion: from ``sample_motion`` for this scene.
        t: seconds; 0 is the sampled moment.
        noise_offsets: the sensor-noise tile offsets of this frame (a real camera's noise changes
            every frame); None keeps the scene's.
    """
    if t == 0 and noise_offsets is None:
        return scene
    s = motion.ego_speed * t
    st = scene.street
    street = replace(st, far_z=st.far_z - s, near_z=min(st.near_z - s, 0.0),
                     crossing=None if st.crossing is None else (st.crossing[0] - s, st.crossing[1] - s))
    buildings = [replace(b, z0=b.z0 - s, z1=b.z1 - s) for b in scene.buildings]
    frontage = [Thing(f.kind, f.x, f.z - s, {**f.p, "z1": f.p["z1"] - s, "z_ref": f.p.get("z_ref", f.z)})
                for f in scene.frontage]
    things = []
    for thing, (vx, vz), gait in zip(scene.things, motion.velocities, motion.gaits):
        p = {**thing.p, "z_ref": thing.p.get("z_ref", thing.z)}
        if gait:
            p["phase"] = math.sin(math.asin(max(-1.0, min(1.0, p["phase"]))) + gait * t)
        things.append(Thing(thing.kind, thing.x + vx * t, thing.z + vz * t - s, p))
    things.sort(key=lambda th: -th.z)  # painter's algorithm: far to near
    light = scene.light if noise_offsets is None else {
        **scene.light, "offsets": tuple(scene.light["offsets"][:2]) + tuple(int(o) for o in noise_offsets)
        + tuple(scene.light["offsets"][5:])}
    return Scene(scene.style, scene.camera, street, buildings, frontage, things, light, travelled=s)


def frame_time(position: int, annotated_position: int = 0) -> float:
    """Seconds from the sampled moment to frame ``position`` of a sequence whose sampled moment is
    frame ``annotated_position`` (19 in a Cityscapes snippet)."""
    return (position - annotated_position) / FRAME_RATE_HZ
