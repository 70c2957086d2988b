"""Caches in memory bounded in bytes, shared by the API (answers, decoded inputs) and the dashboard
(pictures at display size)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import fields, is_dataclass

import numpy as np

_MISSING = object()


def size_in_bytes(value) -> int:
    """What ``value`` holds in arrays and bytes (plus a small constant per object)."""
    if isinstance(value, (bytes, bytearray)):
        return len(value) + 64
    if isinstance(value, np.ndarray):
        return value.nbytes + 128
    if isinstance(value, (tuple, list)):
        return sum(size_in_bytes(item) for item in value) + 64
    if is_dataclass(value):
        return sum(size_in_bytes(getattr(value, field.name)) for field in fields(value)) + 64
    return 64


class ByteLRU:
    """A thread-safe least-recently-used cache that never holds more than ``max_bytes``.

    ``st.cache_data`` and ``functools.lru_cache`` bound entries, not bytes, and a 2048x1024 frame
    weighs 200 times a 16x32 one: this bounds what matters. A value larger than the whole budget
    is returned by ``get_or_compute``, not kept.

    Example::

        cache = ByteLRU(64 * 2**20)
        jpeg = cache.get_or_compute(("photo", image_id), lambda: encode_jpeg(photo))
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[Hashable, tuple[object, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.nbytes = 0
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._entries

    def get(self, key: Hashable, default=None):
        """The value of ``key`` (now the most recently used), else ``default``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return default
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value, nbytes: int | None = None) -> None:
        """Keep ``value`` (``nbytes``: its size, measured by ``size_in_bytes`` when not given),
        evicting the least recently used entries until it fits."""
        nbytes = size_in_bytes(value) if nbytes is None else int(nbytes)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.nbytes -= old[1]
            if nbytes > self.max_bytes:
                return
            while self._entries and self.nbytes + nbytes > self.max_bytes:
                _, (_, evicted) = self._entries.popitem(last=False)
                self.nbytes -= evicted
                self.evictions += 1
            self._entries[key] = (value, nbytes)
            self.nbytes += nbytes

    def get_or_compute(self, key: Hashable, compute: Callable[[], object]):
        """The cached value of ``key``, else ``compute()`` kept. Computed outside the lock: two
        threads may both compute a missing value (the same one), never block each other."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = compute()
            self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.nbytes = 0
