"""City looks: palettes, weather, time of day and object densities.

Every city is a point in the same few families of appearance (sunny brick, overcast concrete,
warm evening, damp green). Validation cities mix those families instead of inventing a new
one, so a model trained on the training cities should transfer while still seeing a shift.
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class CityStyle:
    """How one invented city looks; all colours are linear-ish sRGB 0..255."""

    name: str
    split: str  # official split the city belongs to: "train" or "val"
    description: str
    sky_top: RGB
    sky_horizon: RGB
    cloudiness: float  # 0 clear .. 1 fully overcast (cloud blobs drawn over the gradient)
    cloud_rgb: RGB
    sun_side: int  # +1: facades on the right are lit, -1: the left ones are
    sun_strength: float  # 0 overcast (flat light) .. 1 hard sun (strong lit/shaded contrast)
    white_balance: tuple[float, float, float]
    gamma: float
    exposure: float
    visibility_m: float  # distance at which haze reaches 63 %; small = misty/evening
    road_rgb: RGB
    sidewalk_rgb: RGB
    curb_rgb: RGB
    parking_rgb: RGB
    facades: tuple[RGB, ...]
    glass_rgb: RGB
    building_height_m: tuple[float, float]
    vegetation_rgb: RGB
    terrain_rgb: RGB
    car_colors: tuple[RGB, ...]
    bus_colors: tuple[RGB, ...]
    traffic: float  # vehicles per 10 m of lane, roughly
    pedestrians: float  # people per 10 m of sidewalk
    trees: float  # probability of a tree at each tree slot
    wet: float  # 0 dry .. 1 wet road (darker, more specular noise)


_CAR_COLORS = (
    (200, 200, 204), (30, 32, 36), (120, 124, 130), (235, 235, 232), (150, 30, 28),
    (24, 50, 110), (80, 84, 90), (170, 172, 176), (60, 70, 60), (190, 170, 120),
)

CITY_STYLES: dict[str, CityStyle] = {
    style.name: style
    for style in (
        CityStyle(
            name="brightwood", split="train", description="sunny, red brick, lush trees",
            sky_top=(70, 120, 200), sky_horizon=(175, 200, 225), cloudiness=0.2,
            cloud_rgb=(235, 238, 242), sun_side=1, sun_strength=0.9,
            white_balance=(1.04, 1.0, 0.94), gamma=1.0, exposure=1.05, visibility_m=900.0,
            road_rgb=(98, 96, 94), sidewalk_rgb=(168, 150, 140), curb_rgb=(185, 180, 172),
            parking_rgb=(120, 110, 104),
            facades=((150, 72, 52), (170, 92, 64), (128, 60, 46), (196, 170, 140), (160, 110, 80)),
            glass_rgb=(40, 52, 62), building_height_m=(9.0, 22.0),
            vegetation_rgb=(62, 100, 40), terrain_rgb=(110, 140, 60),
            car_colors=_CAR_COLORS, bus_colors=((220, 200, 40), (235, 235, 230)),
            traffic=0.7, pedestrians=0.6, trees=0.75, wet=0.0,
        ),
        CityStyle(
            name="greyhaven", split="train", description="overcast, concrete, grey-on-grey",
            sky_top=(170, 176, 184), sky_horizon=(205, 208, 212), cloudiness=0.9,
            cloud_rgb=(190, 194, 200), sun_side=-1, sun_strength=0.15,
            white_balance=(0.97, 1.0, 1.05), gamma=1.1, exposure=0.95, visibility_m=450.0,
            road_rgb=(112, 112, 114), sidewalk_rgb=(124, 124, 126), curb_rgb=(150, 150, 150),
            parking_rgb=(104, 106, 108),
            facades=((150, 150, 148), (128, 130, 132), (172, 170, 164), (110, 112, 116), (185, 180, 170)),
            glass_rgb=(60, 68, 76), building_height_m=(12.0, 30.0),
            vegetation_rgb=(70, 92, 58), terrain_rgb=(96, 116, 70),
            car_colors=_CAR_COLORS, bus_colors=((230, 230, 228), (200, 40, 36)),
            traffic=0.9, pedestrians=0.5, trees=0.45, wet=0.3,
        ),
        CityStyle(
            name="emberfield", split="train", description="evening, warm low sun, plaster",
            sky_top=(80, 100, 160), sky_horizon=(240, 180, 120), cloudiness=0.35,
            cloud_rgb=(230, 160, 130), sun_side=-1, sun_strength=0.8,
            white_balance=(1.12, 0.98, 0.82), gamma=0.92, exposure=0.85, visibility_m=500.0,
            road_rgb=(90, 84, 80), sidewalk_rgb=(150, 130, 110), curb_rgb=(170, 150, 130),
            parking_rgb=(110, 96, 86),
            facades=((210, 180, 130), (190, 150, 110), (225, 205, 170), (170, 120, 90), (200, 120, 80)),
            glass_rgb=(50, 44, 40), building_height_m=(8.0, 18.0),
            vegetation_rgb=(70, 90, 36), terrain_rgb=(120, 130, 56),
            car_colors=_CAR_COLORS, bus_colors=((40, 110, 170), (235, 235, 230)),
            traffic=0.6, pedestrians=0.8, trees=0.6, wet=0.0,
        ),
        CityStyle(
            name="mossbury", split="train", description="damp, bright overcast, green verges",
            sky_top=(140, 160, 185), sky_horizon=(200, 210, 218), cloudiness=0.7,
            cloud_rgb=(220, 224, 228), sun_side=1, sun_strength=0.35,
            white_balance=(0.98, 1.02, 1.0), gamma=1.05, exposure=1.0, visibility_m=350.0,
            road_rgb=(78, 80, 82), sidewalk_rgb=(140, 136, 128), curb_rgb=(160, 158, 150),
            parking_rgb=(96, 98, 96),
            facades=((225, 220, 205), (180, 190, 180), (140, 80, 60), (200, 196, 180), (120, 126, 120)),
            glass_rgb=(36, 48, 50), building_height_m=(8.0, 20.0),
            vegetation_rgb=(52, 96, 44), terrain_rgb=(84, 128, 54),
            car_colors=_CAR_COLORS, bus_colors=((30, 120, 70), (235, 235, 230)),
            traffic=0.5, pedestrians=0.4, trees=0.9, wet=0.8,
        ),
        CityStyle(
            name="ashcombe", split="val", description="sunny spells, brick and plaster mix",
            sky_top=(90, 130, 190), sky_horizon=(190, 205, 222), cloudiness=0.5,
            cloud_rgb=(232, 234, 238), sun_side=-1, sun_strength=0.6,
            white_balance=(1.02, 1.0, 0.97), gamma=1.0, exposure=1.0, visibility_m=650.0,
            road_rgb=(104, 102, 100), sidewalk_rgb=(150, 142, 134), curb_rgb=(175, 170, 162),
            parking_rgb=(116, 110, 104),
            facades=((160, 80, 60), (200, 190, 170), (150, 146, 140), (180, 140, 100), (130, 70, 55)),
            glass_rgb=(46, 56, 64), building_height_m=(10.0, 24.0),
            vegetation_rgb=(64, 98, 44), terrain_rgb=(104, 132, 62),
            car_colors=_CAR_COLORS, bus_colors=((220, 200, 40), (200, 40, 36)),
            traffic=0.7, pedestrians=0.6, trees=0.65, wet=0.1,
        ),
        CityStyle(
            name="dunmore", split="val", description="late overcast afternoon, concrete and warm light",
            sky_top=(130, 130, 150), sky_horizon=(220, 196, 170), cloudiness=0.75,
            cloud_rgb=(200, 190, 185), sun_side=1, sun_strength=0.3,
            white_balance=(1.06, 1.0, 0.92), gamma=1.05, exposure=0.9, visibility_m=420.0,
            road_rgb=(100, 98, 98), sidewalk_rgb=(132, 128, 124), curb_rgb=(160, 156, 150),
            parking_rgb=(108, 104, 100),
            facades=((160, 156, 150), (190, 170, 140), (140, 136, 134), (150, 90, 66), (205, 195, 175)),
            glass_rgb=(56, 58, 62), building_height_m=(10.0, 26.0),
            vegetation_rgb=(66, 92, 46), terrain_rgb=(104, 122, 64),
            car_colors=_CAR_COLORS, bus_colors=((235, 235, 230), (40, 110, 170)),
            traffic=0.8, pedestrians=0.6, trees=0.55, wet=0.4,
        ),
    )
}

TRAIN_CITIES = tuple(name for name, style in CITY_STYLES.items() if style.split == "train")
VAL_CITIES = tuple(name for name, style in CITY_STYLES.items() if style.split == "val")
