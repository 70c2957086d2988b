"""Building facades in perspective, their window grids, and street frontage (walls, fences, hedges).

Windows are labelled building like the real annotation; on the RGB some are dark glass and some
reflect the sky or trees, a known source of segmentation errors. All windows of a facade are
projected in one numpy call.
"""

from __future__ import annotations

import numpy as np

from training.data.synthetic.camera import Camera
from training.data.synthetic.canvas import Canvas, L, Look
from training.data.synthetic.scene import Building, Thing

MIN_WINDOW_PX = 1.2  # smaller windows are below the sensor's resolution: skip them
CORNICE = 0.55  # darker band at the top of each facade, metres


def _face(b: Building) -> tuple[np.ndarray, int]:
    """The facade quad facing the road (side buildings) or the camera (far row), and its normal."""
    if b.side == 0:
        return np.array([(b.x0, 0, b.z0), (b.x0, b.height, b.z0), (b.x1, b.height, b.z0), (b.x1, 0, b.z0)]), 0
    return np.array([(b.x0, 0, b.z0), (b.x0, b.height, b.z0), (b.x0, b.height, b.z1), (b.x0, 0, b.z1)]), -b.side


def _grid(b: Building, h0: float, h1: float, width_frac: float, floor_h: float) -> np.ndarray:
    """Window quads (N, 4, 3) on the facade plane between heights h0 and h1."""
    length = (b.x1 - b.x0) if b.side == 0 else (b.z1 - b.z0)
    bays = max(1, int(abs(length) / b.bay_w))
    floors = max(0, int((h1 - h0) / floor_h))
    if floors == 0:
        return np.zeros((0, 4, 3))
    t = (np.arange(bays) + 0.5) / bays * length
    half = 0.5 * width_frac * abs(length) / bays
    y = h0 + (np.arange(floors) + 0.5) * floor_h
    win_h = 0.3 * floor_h
    quads = np.empty((floors, bays, 4, 3))
    along, plane = (0, 2) if b.side == 0 else (2, 0)
    start = b.x0 if b.side == 0 else b.z0
    quads[..., along] = start + t[None, :, None] + np.array([-half, -half, half, half])
    quads[..., 1] = y[:, None, None] + np.array([-win_h, win_h, win_h, -win_h])
    quads[..., plane] = b.z0 if b.side == 0 else b.x0
    return quads.reshape(-1, 4, 3)


def _hash01(n: int, seed: int, salt: int) -> np.ndarray:
    """Cheap per-window pseudo-random numbers in [0, 1): a multiplicative hash of the index."""
    k = (np.arange(n, dtype=np.uint64) + np.uint64(seed % 1000003 + salt * 7919)) * np.uint64(2654435761)
    return ((k >> np.uint64(7)) % np.uint64(10007)).astype(np.float64) / 10007.0


def _window_colors(b: Building, n: int, style, look: Look, depth: float) -> list[tuple[int, int, int]]:
    kind = np.searchsorted(np.cumsum(b.glass)[:-1], _hash01(n, b.lit_seed, 1), side="right")
    base = np.array([style.glass_rgb, np.array(style.sky_horizon) * 0.85, np.array(style.vegetation_rgb) * 0.8])
    cols = base[kind] * (0.75 + 0.45 * _hash01(n, b.lit_seed, 2))[:, None]
    k = 1.0 - np.exp(-depth / look.visibility)
    cols = np.clip(cols * (1 - k) + look.haze * k, 0, 255).astype(int)
    return [tuple(c) for c in cols.tolist()]


def _draw_windows(cv: Canvas, cam: Camera, b: Building, style, look: Look, depth: float, light: float):
    nearest = np.hypot(b.x0, max(b.z0, 1.0)) if b.side else depth
    if 0.5 * b.floor_h * cam.pixels_per_metre(nearest) < MIN_WINDOW_PX:
        return
    quads = _grid(b, 3.6 if b.shop else 1.0, b.height - CORNICE - 0.4, 0.55, b.floor_h)
    if b.shop:
        shop = _grid(b, 0.3, 0.3 + 3.0, 0.8, 3.0)
        shop[..., 1] = np.where(shop[..., 1] > 1.8, 2.9, 0.4)  # tall shop windows
        quads = np.concatenate([quads, shop]) if len(quads) else shop
    if not len(quads):
        return
    uv, ok = cam.polygons(quads)
    size = np.minimum(np.ptp(uv[..., 0], axis=1), np.ptp(uv[..., 1], axis=1))
    keep = np.flatnonzero(ok & (size >= MIN_WINDOW_PX))
    if not len(keep):
        return
    colors = _window_colors(b, len(quads), style, look, depth)
    frame = look.tint(np.array(b.color) * 0.8, depth, light)
    pts = uv[keep].tolist()
    for i, quad in zip(keep.tolist(), pts):
        poly = [tuple(p) for p in quad]
        if size[i] > 5:
            cv.rgb.polygon(poly, fill=colors[i], outline=frame)
        else:
            cv.rgb.polygon(poly, fill=colors[i])


def _lines(cv: Canvas, cam: Camera, b: Building, color):
    """Floor bands: horizontal lines that make the facade read as perspective."""
    ys = np.arange(b.floor_h + (3.6 if b.shop else 0.8), b.height - 0.5, b.floor_h)
    if not len(ys):
        return
    a0, a1 = (b.x0, b.x1) if b.side == 0 else (b.z0, b.z1)
    segs = np.zeros((len(ys), 2, 3))
    segs[:, :, 1] = ys[:, None]
    if b.side == 0:
        segs[:, :, 0] = (a0, a1)
        segs[:, :, 2] = b.z0
    else:
        segs[:, :, 0] = b.x0
        segs[:, :, 2] = (a0, a1)
    uv, ok = cam.polygons(segs)
    for seg, good in zip(uv.tolist(), ok.tolist()):
        if good:
            cv.rgb.line([tuple(p) for p in seg], fill=color, width=1)


def draw_building(cv: Canvas, cam: Camera, b: Building, style, look: Look) -> None:
    face, normal = _face(b)
    depth = max(cam.depth(face.mean(0)), 1.0)
    light = look.side_light(normal)
    label = L["building"]
    if b.side != 0 and b.z0 > 0.5:
        end = np.array([(b.x0, 0, b.z0), (b.x0, b.height, b.z0), (b.x1, b.height, b.z0), (b.x1, 0, b.z0)])
        cv.poly(cam.polygon(end), look.tint(b.color, depth, look.side_light(0) * 0.9), label)
    cv.poly(cam.polygon(face), look.tint(b.color, depth, light), label)
    top = face.copy()
    top[[0, 3], 1] = b.height - CORNICE
    pts = cam.polygon(top)
    if pts is not None:
        cv.rgb.polygon(pts, fill=look.tint(b.color, depth, light * 0.7))
    _lines(cv, cam, b, look.tint(b.color, depth, light * 0.82))
    _draw_windows(cv, cam, b, style, look, depth, light)


def draw_frontage(cv: Canvas, cam: Camera, t: Thing, style, look: Look) -> None:
    """Wall, fence or hedge standing on the outer edge of the sidewalk (its colour follows where it
    was placed, ``z_ref``, not where a moving camera now sees it)."""
    side, h, z0, z1 = t.p["side"], t.p["h"], t.z, t.p["z1"]
    plane = np.array([(t.x, 0.1, z0), (t.x, h, z0), (t.x, h, z1), (t.x, 0.1, z1)])
    depth = max(cam.depth(plane.mean(0)), 1.0)
    light = look.side_light(-side) * t.p["tone"]
    if t.kind == "wall":
        color = np.array(style.facades[int(t.p.get("z_ref", t.z)) % len(style.facades)]) * 0.95
        cv.poly(cam.polygon(plane), look.tint(color, depth, light), L["wall"])
        cap = plane.copy()
        cap[[0, 3], 1] = h - 0.12
        pts = cam.polygon(cap)
        if pts is not None:
            cv.rgb.polygon(pts, fill=look.tint(color, depth, light * 1.2))
    elif t.kind == "hedge":
        color = np.array(style.vegetation_rgb) * 0.9
        back = plane.copy()
        back[:, 0] += side * 0.8
        top = np.array([plane[1], back[1], back[2], plane[2]])
        cv.poly(cam.polygon(top), look.tint(color, depth, 1.1), L["vegetation"])
        cv.poly(cam.polygon(plane), look.tint(color, depth, 0.8), L["vegetation"])
    else:
        pts = cam.polygon(plane)
        if pts is None:
            return
        cv.lab.polygon(pts, fill=L["fence"])
        cv.ins.polygon(pts, fill=L["fence"])
        color = look.tint((70, 72, 70) if int(t.p.get("z_ref", z0)) % 2 else (120, 100, 80), depth, light)
        posts = np.arange(z0, z1 + 0.01, 2.0)
        segs = [np.array([(t.x, 0.1, z), (t.x, h, z)]) for z in posts]
        segs += [np.array([(t.x, y, z0), (t.x, y, z1)]) for y in (0.15, h * 0.5, h)]
        segs += [np.array([(t.x, 0.1, z), (t.x, h, z + 0.5)]) for z in np.arange(z0, z1 - 0.5, 0.5)]
        uv, ok = cam.polygons(np.stack(segs))
        for seg, good in zip(uv.tolist(), ok.tolist()):
            if good:
                cv.rgb.line([tuple(p) for p in seg], fill=color, width=1)
