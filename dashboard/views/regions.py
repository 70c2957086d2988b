"""The regions a link may ask the Image explorer to outline on its image (no Streamlit):
``?id=<image id>&outline=instance:<instance id>`` (an object of the ground truth, its pixels read
from the image's ``gtFine_instanceIds``) or ``?id=<image id>&outline=box:x0,y0,x1,y1`` (a rectangle
in full-size pixels, ``x1`` and ``y1`` exclusive, as ``instances.csv`` writes boxes).
``dashboard.pictures.outline`` draws them."""

from __future__ import annotations

from dataclasses import dataclass

OUTLINE_PARAM = "outline"
INSTANCE, BOX = "instance", "box"


@dataclass(frozen=True)
class Outline:
    """What ``?outline=`` asks for: an object (``instance``) or a box (``x0, y0, x1, y1``)."""

    kind: str
    instance: int = 0
    box: tuple[int, int, int, int] = (0, 0, 0, 0)

    @property
    def param(self) -> str:
        """The URL value that asks for this outline."""
        return instance_param(self.instance) if self.kind == INSTANCE else box_param(*self.box)


def instance_param(instance: int) -> str:
    return f"{INSTANCE}:{int(instance)}"


def box_param(x0: int, y0: int, x1: int, y1: int) -> str:
    return f"{BOX}:{int(x0)},{int(y0)},{int(x1)},{int(y1)}"


def parse_outline(raw: str) -> Outline:
    """``instance:<id>`` or ``box:x0,y0,x1,y1``; ValueError saying what is wrong otherwise."""
    kind, _, value = str(raw).partition(":")
    numbers = value.split(",")
    if not value or not all(number.strip().isascii() and number.strip().isdigit() for number in numbers):
        raise ValueError(f"outline={raw!r} is not instance:<id> or box:x0,y0,x1,y1 (whole numbers)")
    values = [int(number) for number in numbers]
    if kind == INSTANCE and len(values) == 1:
        return Outline(INSTANCE, instance=values[0])
    if kind == BOX and len(values) == 4:
        x0, y0, x1, y1 = values
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"outline={raw!r}: a box needs x0 < x1 and y0 < y1")
        return Outline(BOX, box=(x0, y0, x1, y1))
    raise ValueError(f"outline={raw!r} is not instance:<id> or box:x0,y0,x1,y1")
