"""Choosing images: the explorer's filter by the classes an image's ground truth holds (each on at least
a share of its counted pixels, ``training.evaluation.shares``) or the images a run scored worst,
and how the page says where an image stands. Plain functions (no Streamlit)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def filter_and_rank_ids(ids: Sequence[int], classes: Sequence[str] = (), presence: pd.DataFrame | None = None,
                        per_image: pd.DataFrame | None = None, min_share: float = 0.0) -> list[int]:
    """The ``ids`` whose ground truth holds every class of ``classes`` (``presence``: one column per
    class, indexed by id: a bool, or the class's share of the image, then each must cover at least
    ``min_share`` of it, any pixel when 0), in their order; or, given a run's ``per_image`` table
    (id, miou), only the ids that run evaluated, lowest mIoU first (ties by id, NaN last)."""
    ids = [int(i) for i in ids]
    if classes:
        table = presence[list(classes)]
        enough = table >= min_share if min_share > 0 else table > 0
        matching = set(int(i) for i in presence.index[enough.all(axis=1)])
        ids = [i for i in ids if i in matching]
    if per_image is not None:
        ranked = per_image[per_image["id"].isin(ids)].sort_values(["miou", "id"], kind="stable",
                                                                  na_position="last")
        ids = [int(i) for i in ranked["id"]]
    return ids


def classes_filter_text(classes: Sequence[str], min_share: float = 0.0) -> str:
    """The class filter in words: "human >= 1% and object >= 1%" (any pixel when ``min_share`` is 0)."""
    bound = f" >= {min_share * 100:g}%" if min_share > 0 else ""
    return " and ".join(f"{name}{bound}" for name in classes)


def filter_summary(count: int, total: int, split: str, classes: Sequence[str], min_share: float = 0.0) -> str:
    """How far the class filter narrows the split: "12 of 100 test images have human >= 1% and object >= 1%"."""
    images = f"{split} images" if split != "all" else "images"
    return f"{count} of {total} {images} have {classes_filter_text(classes, min_share)}"


def position_text(image_id: int, candidates: list[int], split: str, classes: Sequence[str],
                  order: str) -> str:
    """Where the image stands among the filter's candidates, and what the filter is (its share of
    the image is said by ``filter_summary``)."""
    what = f"{split} split" + (f" with {', '.join(classes)}" if classes else "")
    what += f", worst first for {order}" if order else ""
    if image_id in candidates:
        return f"{candidates.index(image_id) + 1} of {len(candidates)} images ({what})"
    if not candidates:
        return f"no image matches ({what})"
    return f"not among the {len(candidates)} images of the filter ({what})"
