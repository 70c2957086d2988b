"""Build tiny datasets in the Cityscapes layout from hand-made arrays (real PNG files)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from training.data.cityscapes import IMAGE_DIR, IMAGE_SUFFIX, LABEL_DIR, LABEL_SUFFIX

# labelIds of a small street: sky over building over road, a car, and some ego vehicle.
SKY, BUILDING, ROAD, SIDEWALK, CAR, PERSON, EGO, PARKING, POLE = 23, 11, 7, 8, 26, 24, 1, 9, 17


def street_label_ids(height: int = 16, width: int = 32, variant: int = 0) -> np.ndarray:
    label = np.full((height, width), SKY, dtype=np.uint8)
    label[height // 4:height // 2] = BUILDING
    label[height // 2:] = ROAD
    label[height // 2:, : width // 4] = SIDEWALK
    left = 4 + variant % (width // 2)
    label[height // 2 + 1:height // 2 + 4, left:left + 5] = CAR
    label[height // 2:height // 2 + 3, width - 3] = PERSON
    label[-2:] = EGO
    return label


def image_for(label_ids: np.ndarray) -> np.ndarray:
    """An RGB image whose colour is a function of the label (so alignment can be checked)."""
    rng = np.random.default_rng(int(label_ids.sum()))
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    return palette[label_ids]


def instance_ids_for(label_ids: np.ndarray) -> np.ndarray:
    """gtFine_instanceIds of a label map: ``labelId x 1000`` (one object) for persons and cars,
    the labelId elsewhere, as the official files and the embedded generator write them."""
    ids = label_ids.astype(np.int32)
    objects = np.isin(label_ids, (PERSON, CAR))
    ids[objects] *= 1000
    return ids


def write_pair(root: Path, split: str, city: str, seq: int, frame: int,
               label_ids: np.ndarray, image: np.ndarray | None = None, instances: bool = True) -> str:
    stem = f"{city}_{seq:06d}_{frame:06d}"
    image_dir = root / IMAGE_DIR / split / city
    label_dir = root / LABEL_DIR / split / city
    image_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_for(label_ids) if image is None else image).save(image_dir / f"{stem}{IMAGE_SUFFIX}")
    Image.fromarray(label_ids, mode=None).save(label_dir / f"{stem}{LABEL_SUFFIX}")
    if instances:
        instance_file = label_dir / f"{stem}{LABEL_SUFFIX.replace('labelIds', 'instanceIds')}"
        Image.fromarray(instance_ids_for(label_ids).astype(np.uint16)).save(instance_file)
    return stem


def image_path(root: Path, split: str, stem: str) -> Path:
    return root / IMAGE_DIR / split / stem.split("_")[0] / f"{stem}{IMAGE_SUFFIX}"


def label_path(root: Path, split: str, stem: str) -> Path:
    return root / LABEL_DIR / split / stem.split("_")[0] / f"{stem}{LABEL_SUFFIX}"


def build_tiny_dataset(root: Path, train_per_city: int = 5, val: int = 4,
                       height: int = 16, width: int = 32) -> Path:
    """Two train cities and one val city of small street-like label maps."""
    frame = 0
    for city in ("alpha", "beta"):
        for seq in range(train_per_city):
            write_pair(root, "train", city, seq, 19, street_label_ids(height, width, frame))
            frame += 1
    for seq in range(val):
        write_pair(root, "val", "gamma", seq, 19, street_label_ids(height, width, frame))
        frame += 1
    return root
