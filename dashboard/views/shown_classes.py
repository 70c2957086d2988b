"""The Image explorer's "Show classes" toggles (``?show=human,object``; absent: every class): which
classes the pictures paint. Plain functions (no Streamlit); ``dashboard.pictures.drawing`` paints
with them (``keep_classes``, ``keep_errors``)."""

from __future__ import annotations

from collections.abc import Sequence

SHOW_PARAM = "show"  # ?show=human,object (absent: every class)


def parse_shown(raw: str | None, names: Sequence[str]) -> list[str]:
    """The classes ``?show=`` names, in ``names``' order (unknown names dropped); every class when
    the parameter is absent, none when it is empty."""
    if raw is None:
        return list(names)
    wanted = {part.strip() for part in raw.split(",")}
    return [name for name in names if name in wanted]


def shown_param(shown: Sequence[str], names: Sequence[str]) -> str | None:
    """The ``?show=`` value for ``shown`` (None: every class, the parameter is left out)."""
    return None if set(names) <= set(shown) else ",".join(shown)


def shown_indices(names: Sequence[str], shown: Sequence[str]) -> tuple[int, ...] | None:
    """The indices in ``names`` (one class set's) of the ``shown`` classes; None when every class is
    shown (then the pictures are the plain ones)."""
    indices = tuple(number for number, name in enumerate(names) if name in set(shown))
    return None if len(indices) == len(names) else indices
