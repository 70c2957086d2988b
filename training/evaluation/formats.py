"""The three ways other tools write a segmentation as a PNG, and how each becomes labelIds.

* ``labelIds``: one channel, Cityscapes labelIds 0..33: the official submission format.
* ``trainIds``: one channel, the 19 evaluated classes 0..18 and 255 for "no class": what most
  PyTorch code (mmsegmentation, torchvision references) writes.
* ``color``: RGB or RGBA in the official label palette (``gtFine_color.png``), the category
  colours of ``categories8`` included (each is the colour of one label).

Scoring and importing convert every format to labelIds, so one evaluator (and the official rules
for ignored labels) serves them all. ``detect_format`` names the format of a folder from its
first file: the mode says colour or not, the values say labelIds (19..33 occur) or trainIds
(255 occurs); a file holding only 0..18 is decided by which reading agrees more with its ground
truth, and the reply says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.data.labels import LABELS, NUM_LABEL_IDS, get_class_set

FORMATS = ("labelIds", "trainIds", "color")
INVALID = 255  # in a to-labelId table: a value the format cannot hold
SINGLE_CHANNEL_MODES, COLOR_MODES = ("L", "P"), ("RGB", "RGBA")
UNLABELED = 0  # labelId of "unlabeled": where trainId 255 ("no class") goes


def _label_id_table() -> np.ndarray:
    table = np.full(256, INVALID, dtype=np.uint8)
    table[:NUM_LABEL_IDS] = np.arange(NUM_LABEL_IDS)
    return table


def _train_id_table() -> np.ndarray:
    table = np.full(256, INVALID, dtype=np.uint8)
    for label in LABELS:
        if 0 <= label.trainId < 255:
            table[label.trainId] = label.id
    table[255] = UNLABELED
    return table


# value of a single-channel PNG -> labelId (INVALID: the format has no such value)
TO_LABEL_IDS = {"labelIds": _label_id_table(), "trainIds": _train_id_table()}


def _color_table() -> tuple[np.ndarray, np.ndarray]:
    """Packed 24-bit colours of the official palette, sorted, and the labelId of each (the
    lowest labelId of a colour several labels share, e.g. black = unlabeled)."""
    by_color: dict[int, int] = {}
    for label in sorted(LABELS, key=lambda label: label.id):
        r, g, b = label.color
        by_color.setdefault((r << 16) | (g << 8) | b, label.id)
    packed = np.array(sorted(by_color), dtype=np.uint32)
    return packed, np.array([by_color[int(c)] for c in packed], dtype=np.uint8)


PACKED_COLORS, COLOR_LABEL_IDS = _color_table()


class FormatError(ValueError):
    """A prediction that is not in the expected format; the caller names the file."""


def color_to_label_ids(rgb: np.ndarray) -> np.ndarray:
    """``(H, W, 3|4)`` colours of the official palette -> ``(H, W)`` labelIds (alpha ignored).

    Raises:
        FormatError: colours outside the palette (the first few are named).
    """
    rgb = rgb[..., :3]
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    position = np.searchsorted(PACKED_COLORS, packed).clip(0, len(PACKED_COLORS) - 1)
    known = PACKED_COLORS[position] == packed
    if not known.all():
        unknown = np.unique(packed[~known])
        shown = ", ".join(f"#{int(c):06x}" for c in unknown[:5]) + (" ..." if unknown.size > 5 else "")
        raise FormatError(f"{int((~known).sum())} pixels of colours outside the official palette: {shown}")
    return COLOR_LABEL_IDS[position]


def check_values(values_present: np.ndarray, format_name: str) -> None:
    """``values_present``: the 256 pixel counts per value of a single-channel prediction.

    Raises:
        FormatError: values the format cannot hold (named).
    """
    bad = np.nonzero(values_present * (TO_LABEL_IDS[format_name] == INVALID))[0]
    if bad.size:
        expected = "labelIds 0..33" if format_name == "labelIds" else "trainIds 0..18 and 255"
        shown = ", ".join(map(str, bad[:10])) + (" ..." if bad.size > 10 else "")
        raise FormatError(f"values {shown} are not {expected}")


@dataclass(frozen=True)
class Detection:
    format: str
    reason: str


def detect_format(mode: str, counts: np.ndarray, classes: str) -> Detection:
    """The format of a prediction from its PNG mode and ``counts`` (256x256: ground-truth labelId x
    prediction value, of one image).

    Raises:
        FormatError: the values fit neither single-channel format.
    """
    if mode in COLOR_MODES:
        return Detection("color", f"{mode} PNG: colours of the official palette")
    present = counts.sum(axis=0)
    high = present[NUM_LABEL_IDS:255].any()
    label_only = present[19:NUM_LABEL_IDS].any()
    if high or (label_only and present[255]):
        raise FormatError("values fit neither labelIds (0..33) nor trainIds (0..18 and 255): "
                          + ", ".join(map(str, np.nonzero(present)[0][:12])))
    if label_only:
        return Detection("labelIds", "values 19..33 occur (labelIds)")
    if present[255]:
        return Detection("trainIds", "value 255 occurs (trainIds' 'no class')")
    agreement = {name: _agreement(counts, name, classes) for name in ("labelIds", "trainIds")}
    chosen = max(agreement, key=agreement.get)
    return Detection(chosen, "only values 0..18: read as " + chosen + " because it agrees more with the "
                     f"ground truth ({agreement[chosen]:.0%} against {min(agreement.values()):.0%})")


def _agreement(counts: np.ndarray, format_name: str, classes: str) -> float:
    """Share of evaluated pixels whose class is right when the values are read as ``format_name``."""
    lut = get_class_set(classes).lut
    gt_class = lut[np.arange(256)]
    predicted_class = lut[TO_LABEL_IDS[format_name]]
    right = gt_class[:, None] == predicted_class[None, :]
    evaluated = (gt_class != 255)[:, None]
    total = counts[evaluated[:, 0]].sum()
    return float((counts * right * evaluated).sum() / total) if total else 0.0


def label_ids_to(label_ids: np.ndarray, format_name: str) -> np.ndarray:
    """labelIds -> the PNG pixels of ``format_name`` (``(H, W)`` or ``(H, W, 3)`` uint8)."""
    if format_name == "labelIds":
        return label_ids
    if format_name == "trainIds":
        table = np.full(256, 255, dtype=np.uint8)
        for label in LABELS:
            if 0 <= label.trainId < 255:
                table[label.id] = label.trainId
        return table[label_ids]
    if format_name == "color":
        palette = np.zeros((256, 3), dtype=np.uint8)
        for label in LABELS:
            palette[label.id] = label.color
        return palette[label_ids]
    raise ValueError(f"unknown format {format_name!r}; choose one of {', '.join(FORMATS)}")


def class_to_label_id(classes: str) -> np.ndarray:
    """``(256,)`` class index of ``classes`` -> the labelId that stands for it in an export: for
    the 19 classes the class's own label; for a category its first evaluated label (flat ->
    road, human -> person), void -> unlabeled. 255 ("no class") -> unlabeled. The official
    evaluation of the export gives back the run's official-compatible scores."""
    class_set = get_class_set(classes)
    table = np.full(256, UNLABELED, dtype=np.uint8)
    for index in range(class_set.num_classes):
        candidates = [label.id for label in sorted(LABELS, key=lambda label: label.id)
                      if class_set.lut[label.id] == index and not label.ignoreInEval]
        table[index] = candidates[0] if candidates else UNLABELED
    return table
