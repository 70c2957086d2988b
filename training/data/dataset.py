"""A dataset as the readers of runs see it: root, index and class set, opened from a run's settings.

The API, the dashboard and ``python -m training evaluate`` all read the dataset a run was
evaluated on through ``DataSettings`` (the ``data`` section of the run's config) and ``Dataset``,
so they agree on where the data is and how labels map to classes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.data.cityscapes import read_pair, resolve_data_root
from training.data.index import DatasetIndex, IndexEntry, index_path_for, load_or_build_index
from training.data.labels import CLASS_SET_NAMES, ClassSet, get_class_set


@dataclass(frozen=True)
class DataSettings:
    """Where a run's data is and which classes it predicts (its config's ``data`` section)."""

    root: str | None = None
    index: str | None = None
    classes: str = "categories8"

    @classmethod
    def from_config(cls, config: dict | None) -> DataSettings:
        """The ``data`` section of a config; ValueError saying what is wrong with it (a root or an
        index that is not a path, a class set that is not one of ``CLASS_SET_NAMES``)."""
        data = (config or {}).get("data") or {}
        if not isinstance(data, dict):
            raise ValueError(f"data is a {type(data).__name__}, not a mapping")
        for key in ("root", "index"):
            if data.get(key) is not None and not isinstance(data.get(key), str):
                raise ValueError(f"data.{key} is {data.get(key)!r}, not a path")
        classes = data.get("classes") or "categories8"
        if not isinstance(classes, str) or classes not in CLASS_SET_NAMES:
            raise ValueError(f"data.classes is {classes!r}, not one of {', '.join(CLASS_SET_NAMES)}")
        return cls(data.get("root"), data.get("index"), classes)

    def resolve_root(self, override: str | os.PathLike | None = None) -> Path:
        """``override``; else the run's own root if it exists on this machine; else
        ``$CITYSCAPES_DATASET``, else the embedded dataset (a store copied from another machine
        names folders that are not here).

        Raises:
            DatasetError: none of them is a dataset in the Cityscapes layout.
        """
        if override:
            return resolve_data_root(override)
        if self.root and Path(self.root).is_dir():
            return resolve_data_root(self.root)
        return resolve_data_root(None)

    def index_file(self, root: Path) -> Path:
        return index_path_for(root, self.index)

    def open(self, override: str | os.PathLike | None = None) -> Dataset:
        """The dataset, its index read (and completed in memory) without writing anything."""
        root = self.resolve_root(override)
        index = load_or_build_index(root, self.index, write=False, report=lambda message: None)
        return Dataset(root, index, get_class_set(self.classes))


@dataclass(frozen=True)
class Dataset:
    """A dataset root, its index and the class set its labels are read in."""

    root: Path
    index: DatasetIndex
    class_set: ClassSet

    def entry(self, image_id: int) -> IndexEntry:
        """The index entry of ``image_id``; ``KeyError`` naming the id if there is none."""
        return self.index[image_id]

    def read(self, image_id: int) -> tuple[np.ndarray, np.ndarray]:
        """The photo ``(H, W, 3)`` and its labelIds ``(H, W)``; ``DatasetError`` names a bad file."""
        entry = self.index[image_id]
        return read_pair(self.root, entry.image, entry.label)

    def truth(self, label_ids: np.ndarray) -> np.ndarray:
        """labelIds as class indices of the class set (``IGNORE_INDEX`` where not evaluated)."""
        return self.class_set.lut[label_ids]

    def classes_present(self, label_ids: np.ndarray) -> list[str]:
        """Names of the classes that occur in a ground truth, in class order."""
        counts = np.bincount(self.truth(label_ids).ravel(), minlength=256)[: self.class_set.num_classes]
        return [name for name, count in zip(self.class_set.names, counts) if count]
