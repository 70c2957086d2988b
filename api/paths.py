"""Answers name the server's folders by their own names, never by their absolute paths.

Messages of the run store and the dataset name files to help whoever runs the server (``run
tiny: missing model.keras``, ``/srv/data/cityscapes/gtFine/...: not a PNG``); a client needs
the file, not where the server keeps it. ``ServerPaths`` knows the folders the server uses
(the run store, the datasets, the repository) and rewrites each to its name, then any other
absolute path of this machine to its last part.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

# An absolute path of two or more parts, not inside a word or a URL ("http://host/api/x").
ABSOLUTE_PATH = re.compile(r"(?<![\w.~/:-])/[\w.@+-]+(?:/[\w.@+-]*)+")


def _on_this_machine(match: re.Match) -> str:
    """The path's last part if its top folder exists here (``/tmp/...``), else the text as it
    is: ``/api/images`` in a sentence is a route, not a file."""
    path = match.group(0)
    top = path.split("/")[1]
    if not os.path.isdir(f"/{top}"):
        return path
    return Path(path).name or path


class ServerPaths:
    """The server's folders and the names answers give them; safe to use from several threads."""

    def __init__(self, *folders: tuple[str | os.PathLike | None, str | None]):
        self._names: dict[str, str] = {}
        self._longest_first: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        for folder, name in folders:
            self.add(folder, name)

    def add(self, folder: str | os.PathLike | None, name: str | None = None) -> None:
        """Name ``folder`` (default: by its last part) in every answer from now on."""
        if not isinstance(folder, (str, os.PathLike)) or not str(folder) or str(folder) in self._names:
            return  # nothing to hide (a config may hold anything), or known already
        path = Path(folder).absolute()
        name = name if name is not None else (path.name or "/")
        with self._lock:
            for spelling in {str(folder), str(path), str(path.resolve())}:  # as given, absolute, links resolved
                if os.path.isabs(spelling) and spelling != "/":
                    self._names[spelling] = name
            self._longest_first = sorted(self._names.items(), key=lambda item: -len(item[0]))

    def text(self, text: str) -> str:
        """``text`` with every server folder replaced by its name."""
        for folder, name in self._longest_first:
            text = text.replace(folder, name)
        return ABSOLUTE_PATH.sub(_on_this_machine, text)

    def value(self, value):
        """A JSON-ready value with ``text`` applied to every string; a string that is a path
        (``data.root`` of a config, written on whichever machine trained the run) becomes the
        folder's name."""
        if isinstance(value, str):
            return Path(value).name if os.path.isabs(value) else self.text(value)
        if isinstance(value, dict):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(item) for item in value]
        return value
