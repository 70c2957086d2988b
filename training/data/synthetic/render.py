"""Rendering a sampled scene into (rgb, labelIds, instanceIds).

Order of painting: sky, ground (road, parking, sidewalks with curbs, grass), buildings far to
near, frontage, then every object far to near (painter's algorithm), then the ego hood. The RGB
then gets shadows, material noise, camera response (exposure, white balance, gamma), a light
blur and sensor noise; labels stay hard-edged.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from training.data.synthetic.buildings import draw_building, draw_frontage
from training.data.synthetic.camera import Camera
from training.data.synthetic.canvas import HAS_INSTANCES, Canvas, L, Look
from training.data.synthetic.scene import Scene, sample_scene
from training.data.synthetic.streetside import draw_thing
from training.data.synthetic.styles import CITY_STYLES
from training.data.synthetic.vehicles import draw_vehicle

FAR_X = 400.0
REQUIRED_LABELS = (L["road"], L["sidewalk"], L["building"], L["sky"])
MAX_ATTEMPTS = 8
CURB_H = 0.12
NOISE_SEED = 20240611  # fixed: the noise tiles are identical in every process
# Material noise amplitudes (fine grain, coarse blotches) per labelId, in 8-bit levels.
FINE_NOISE = {"road": 4, "sidewalk": 3, "parking": 5, "building": 2.5, "wall": 3.5, "vegetation": 8,
              "terrain": 6.5, "sky": 0.5, "ego vehicle": 1}
# Sensor noise (in 8-bit levels, times the scene's 3..7) is added before the lens/demosaicing
# blur, as in a camera, so neighbouring pixels share it: a 2048x1024 frame then weighs ~2.2-2.6
# MB as PNG and decodes in about the time of a genuine Cityscapes frame (2.1-2.2 MB, ~80 ms).
SENSOR_NOISE = 0.7
LENS_BLUR_SIGMA = 1.0
COARSE_NOISE = {"road": 3, "sidewalk": 4, "parking": 4, "building": 5, "wall": 5, "vegetation": 8,
                "terrain": 8, "sky": 2}


@lru_cache(maxsize=4)
def _noise_tiles(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(NOISE_SEED)
    fine = rng.standard_normal((2 * height, 2 * width)).astype(np.float32)
    coarse = cv2.GaussianBlur(rng.standard_normal((2 * height, 2 * width)).astype(np.float32), (0, 0),
                              max(1.0, width / 300.0))
    coarse /= coarse.std() + 1e-6
    return fine, coarse


@lru_cache(maxsize=4)
def _vignette(height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r2 = ((xx - width / 2) / (width / 2)) ** 2 + ((yy - height / 2) / (height / 2)) ** 2
    return (1.0 - 0.12 * r2)[..., None].astype(np.float32)


def _lut(values: dict) -> np.ndarray:
    lut = np.zeros(256, dtype=np.float32)
    for name, amp in values.items():
        lut[L[name]] = amp
    return lut


FINE_LUT, COARSE_LUT = _lut(FINE_NOISE), _lut(COARSE_NOISE)


def _crop(tile: np.ndarray, offset: int, height: int, width: int) -> np.ndarray:
    oy, ox = offset % height, (offset // height) % width
    return tile[oy:oy + height, ox:ox + width]


def _sky(scene: Scene, cam: Camera) -> np.ndarray:
    """Gradient plus soft clouds, computed at 1/8 scale: the sky has no fine detail to lose."""
    style, h, w = scene.style, cam.height, cam.width
    sh, sw = max(4, h // 8), max(4, w // 8)
    horizon = max(cam.horizon_v / 8.0, 1.0)
    t = np.clip(np.arange(sh, dtype=np.float32) / horizon, 0, 1)[:, None] ** 0.8
    col = (1 - t) * np.array(style.sky_top, np.float32) + t * np.array(style.sky_horizon, np.float32)
    sky = np.repeat(col[:, None, :], sw, axis=1)
    n_clouds = int(style.cloudiness * 14)
    if n_clouds:
        rng = np.random.default_rng(scene.light["clouds"])
        layer = np.zeros((sh, sw), np.float32)
        for _ in range(n_clouds):
            cx, cy = rng.uniform(-0.1, 1.1) * sw, rng.uniform(0.0, 0.9) * horizon
            ax, ay = rng.uniform(0.05, 0.25) * sw, rng.uniform(0.02, 0.07) * sw
            cv2.ellipse(layer, (int(cx), int(cy)), (max(1, int(ax)), max(1, int(ay))), 0, 0, 360,
                        float(rng.uniform(0.5, 1)), -1)
        layer = cv2.GaussianBlur(layer, (0, 0), max(0.8, sw / 50.0))[..., None]
        alpha = np.clip(layer * (0.5 + 0.5 * style.cloudiness), 0, 1)
        sky = sky * (1 - alpha) + np.array(style.cloud_rgb, np.float32) * alpha
    sky = np.clip(sky, 0, 255).astype(np.uint8)
    return cv2.resize(sky, (w, h), interpolation=cv2.INTER_LINEAR)


def _ground_quad(x0, x1, z0, z1, y=0.0) -> np.ndarray:
    return np.array([(x0, y, z0), (x1, y, z0), (x1, y, z1), (x0, y, z1)])


def _z_segments(scene: Scene, z0: float, z1: float):
    """The stretch [z0, z1] minus the cross street, so sidewalks stop at the intersection."""
    c = scene.street.crossing
    if c is None:
        return [(z0, z1)]
    return [(z0, c[0]), (c[1], z1)]


def _draw_ground(cv: Canvas, cam: Camera, scene: Scene, look: Look) -> None:
    st, style = scene.street, scene.style
    far = st.far_z + 40.0
    near = st.near_z
    wet = 1.0 - 0.25 * style.wet
    cv.poly(cam.polygon(_ground_quad(-FAR_X, FAR_X, near, far, CURB_H)), look.tint(style.sidewalk_rgb, 60, 0.95),
            L["sidewalk"])
    cv.poly(cam.polygon(_ground_quad(st.road_l - 0.05, st.road_r + 0.05, near, st.far_z)),
            look.tint(style.road_rgb, 40, wet), L["road"])
    if st.crossing is not None:
        cv.poly(cam.polygon(_ground_quad(-FAR_X, FAR_X, st.crossing[0] + 2.5, st.crossing[1] - 2.5)),
                look.tint(style.road_rgb, st.crossing[0], wet), L["road"])
    for side in (-1, 1):
        parking = st.parking_r if side > 0 else st.parking_l
        edge = st.road_r if side > 0 else st.road_l
        curb, outer = st.curb_x(side), st.walk_outer_x(side)
        verge = st.verge_r if side > 0 else st.verge_l
        yard = st.yard_r if side > 0 else st.yard_l
        for z0, z1 in _z_segments(scene, near, st.far_z):
            if parking > 0:
                cv.poly(cam.polygon(_ground_quad(edge, curb, z0, z1)), look.tint(style.parking_rgb, 30, wet),
                        L["parking"])
            cv.poly(cam.polygon(_ground_quad(curb, outer, z0, z1, CURB_H)), look.tint(style.sidewalk_rgb, 30),
                    L["sidewalk"])
            face = np.array([(curb, 0, z0), (curb, CURB_H, z0), (curb, CURB_H, z1), (curb, 0, z1)])
            cv.poly(cam.polygon(face), look.tint(style.curb_rgb, 20, look.side_light(-side)), L["sidewalk"])
            if verge > 0:
                cv.poly(cam.polygon(_ground_quad(curb + side * 0.25, curb + side * verge, z0, z1, CURB_H)),
                        look.tint(style.terrain_rgb, 30), L["terrain"])
            if yard > 0:
                cv.poly(cam.polygon(_ground_quad(outer, st.facade_x(side) + side * 30, z0, z1, CURB_H)),
                        look.tint(style.terrain_rgb, 30, 0.95), L["terrain"])
    _draw_markings(cv, cam, scene, look)


def _mark(cv: Canvas, cam: Camera, quad: np.ndarray, color) -> None:
    pts = cam.polygon(quad)
    if pts is not None:
        cv.rgb.polygon(pts, fill=color)


def _draw_markings(cv: Canvas, cam: Camera, scene: Scene, look: Look) -> None:
    """Lane marks, stop line and zebra crossing: painted on the RGB, labelled road like the real data."""
    st = scene.street
    paint = look.tint((205, 205, 200), 30)
    stop = st.crossing[0] - 1.0 if st.crossing else st.far_z
    # Dashes stay where they are painted (every 9 m from -2 m of the sampled moment) as the camera
    # drives: from the first one behind the camera to 120 m ahead of it.
    travelled = scene.travelled
    first = min(0, int(np.floor(travelled / 9.0)))
    dashes = -2.0 + 9.0 * np.arange(first, first + int((abs(travelled) + 124.0) / 9.0) + 3)
    dashes = dashes[dashes - travelled < min(stop, 120.0)] - travelled
    for lane in range(1, st.lanes_left + st.lanes_right):
        x = st.road_l + lane * st.lane_w
        if lane == st.lanes_left:
            _mark(cv, cam, _ground_quad(x - 0.07, x + 0.07, st.near_z, stop), paint)
            continue
        for z in dashes:
            _mark(cv, cam, _ground_quad(x - 0.06, x + 0.06, z, z + 3.0), paint)
    for x in (st.road_l + 0.3, st.road_r - 0.3):
        _mark(cv, cam, _ground_quad(x - 0.06, x + 0.06, st.near_z, stop), look.tint((180, 180, 175), 30))
    if st.crossing:
        z0 = st.crossing[0]
        _mark(cv, cam, _ground_quad(st.road_l, st.road_r, z0 - 5.0, z0 - 4.6), paint)
        for x in np.arange(st.road_l + 0.2, st.road_r - 0.4, 1.0):
            _mark(cv, cam, _ground_quad(x, x + 0.5, z0 - 3.8, z0 - 0.6), paint)


def _draw_building_shadows(cv: Canvas, cam: Camera, scene: Scene, look: Look) -> None:
    if look.sun < 0.3:
        return
    caster = -scene.style.sun_side
    for b in scene.buildings:
        if b.side != caster:
            continue
        reach = min(b.height * 0.7, 25.0)
        quad = _ground_quad(b.x0, b.x0 - caster * reach, b.z0 + 2.0, b.z1 + 2.0)
        pts = cam.polygon(quad)
        if pts is not None:
            cv.shadow.polygon(pts, fill=int(150 * min(1.0, look.sun)))


def _draw_hood(cv: Canvas, scene: Scene) -> None:
    h, w = cv.label_img.height, cv.label_img.width
    top = h * (1.0 - 0.095 * scene.camera["camera_height"] / 1.35)
    curve = [(w * t, top + (h - top) * 0.55 * (2 * t - 1) ** 2) for t in np.linspace(0, 1, 17)]
    hood = [(0.0, h + 1.0)] + curve + [(w, h + 1.0)]
    cv.poly(hood, scene.light["hood"], L["ego vehicle"])
    shine = tuple(min(255, int(c * 1.3 + 30)) for c in scene.light["hood"])
    band = [(w * t, top + 2 + (h - top) * 0.55 * (2 * t - 1) ** 2) for t in np.linspace(0.25, 0.75, 9)]
    cv.rgb.line(band, fill=shine, width=max(1, h // 128))
    border = max(1, w // 512)
    for box in ((0, 0, border - 1, h), (w - border, 0, w, h)):
        cv.rgb.rectangle(box, fill=(0, 0, 0))
        cv.lab.rectangle(box, fill=L["rectification border"])
        cv.ins.rectangle(box, fill=L["rectification border"])
    cv.rgb.rectangle((0, h - border, w, h), fill=(0, 0, 0))
    cv.lab.rectangle((0, h - border, w, h), fill=L["out of roi"])
    cv.ins.rectangle((0, h - border, w, h), fill=L["out of roi"])


def _finish_rgb(rgb: np.ndarray, labels: np.ndarray, shadow: np.ndarray, scene: Scene) -> np.ndarray:
    h, w = labels.shape
    fine, coarse = _noise_tiles(h, w)
    off = scene.light["offsets"]
    img = rgb.astype(np.float32)
    shade = cv2.blur(shadow, (3, 3)).astype(np.float32) * (0.55 / 255.0)
    shade[labels == L["sky"]] = 0.0
    img *= (1.0 - shade)[..., None]
    texture = _crop(fine, off[0], h, w) * FINE_LUT[labels] + _crop(coarse, off[1], h, w) * COARSE_LUT[labels]
    img += texture[..., None]
    light = scene.light
    img *= _vignette(h, w) * np.array(light["white_balance"], np.float32) * light["exposure"]
    img += np.stack([_crop(fine, o, h, w) for o in off[2:5]], -1) * (light["noise"] * SENSOR_NOISE)
    img = cv2.GaussianBlur(np.clip(img, 0, 255), (3, 3), LENS_BLUR_SIGMA)
    lut = (255.0 * (np.arange(256) / 255.0) ** (1.0 / light["gamma"])).astype(np.uint8)
    return cv2.LUT(np.clip(img, 0, 255).astype(np.uint8), lut)


def render_description(scene: Scene, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render a scene description (``sample_scene``, or one moment of a drive from
    ``motion.scene_at``): (rgb uint8, labelIds uint8, instanceIds int32)."""
    style = scene.style
    cam = Camera(height, width, **scene.camera)
    look = Look(style.sky_horizon, style.visibility_m, style.sun_side, scene.light["sun"])
    cv = Canvas(_sky(scene, cam))
    _draw_ground(cv, cam, scene, look)
    _draw_building_shadows(cv, cam, scene, look)
    for b in sorted(scene.buildings, key=lambda b: (b.side != 0, -b.z0)):
        draw_building(cv, cam, b, style, look)
    for t in scene.frontage:
        draw_frontage(cv, cam, t, style, look)
    for t in scene.things:
        if t.kind in ("car", "truck", "bus"):
            draw_vehicle(cv, cam, t, look)
        else:
            draw_thing(cv, cam, t, look)
    _draw_hood(cv, scene)
    rgb, labels, inst, shadow = cv.arrays()
    inst = np.where(np.isin(labels, list(HAS_INSTANCES)), inst, labels.astype(np.int32))
    return _finish_rgb(rgb, labels, shadow, scene), labels.copy(), inst.astype(np.int32)


def accepted_scene(seed: int, city: str, height: int = 256, width: int = 512
                   ) -> tuple[Scene, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The scene ``render_scene`` shows for ``seed`` and ``city``, and its rendering."""
    if city not in CITY_STYLES:
        raise KeyError(f"unknown city {city!r}; known: {', '.join(CITY_STYLES)}")
    style = CITY_STYLES[city]
    min_pixels = max(1, height * width // 2000)
    for attempt in range(MAX_ATTEMPTS):
        sub_seed = seed if attempt == 0 else np.random.SeedSequence([seed, attempt])
        scene = sample_scene(np.random.default_rng(sub_seed), style)
        rgb, labels, inst = render_description(scene, height, width)
        counts = np.bincount(labels.ravel(), minlength=256)
        if all(counts[label] >= min_pixels for label in REQUIRED_LABELS):
            break
    return scene, (rgb, labels, inst)


def render_scene(seed: int, city: str, height: int = 256, width: int = 512
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one deterministic street scene of ``city``: (rgb uint8, labelIds uint8, instanceIds int32).

    Every image must show road, sidewalk, building and sky; the rare scene where trees or a
    truck hide one of them is replaced by the next scene of a seed sequence derived from ``seed``.
    """
    return accepted_scene(seed, city, height, width)[1]
