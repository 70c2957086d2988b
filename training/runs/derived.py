"""Results derived from the run store that are slow to compute and wholly decided by what they
are computed from, kept on disk so that a new process (a restarted dashboard) reads them instead of
computing them again: ``<artifacts>/.cache/<kind>/<key>.json``.

The key is a hash of everything that decides the result (the runs' uids, the dataset index's
fingerprint, the parameters; never a run's name), so a run replaced under its name is another key
and its old entry is never read again. A file that cannot be read (damaged, half written by a
version without atomic writes, another format version) counts as missing: the result is computed
again and the file replaced, atomically. A store that cannot be written (read-only) is not cached.
Each kind keeps its ``KEEP`` most recent results. Deleting ``.cache/`` loses nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from training.files import write_json_atomic

CACHE = ".cache"  # under the run store; the runs are under runs/
VERSION = 1  # of the files' format: another version is not read
KEEP = 64  # results kept per kind, the most recently written: older ones are removed


def cache_key(*parts) -> str:
    """The key of a result decided by ``parts`` (their ``repr``: strings, numbers, tuples of them)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def derived_path(artifacts: str | os.PathLike, kind: str, key: str) -> Path:
    return Path(artifacts) / CACHE / kind / f"{key}.json"


def read_derived(artifacts: str | os.PathLike, kind: str, key: str):
    """The result kept under ``kind`` and ``key``; None when there is none or it cannot be read."""
    try:
        document = json.loads(derived_path(artifacts, kind, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, unreadable, not JSON (UnicodeDecodeError is a ValueError)
        return None
    if not isinstance(document, dict) or document.get("version") != VERSION or document.get("key") != key:
        return None
    return document.get("result")


def write_derived(artifacts: str | os.PathLike, kind: str, key: str, result, keep: int = KEEP) -> bool:
    """Keep ``result`` (JSON-able; numpy values become numbers and lists) under ``kind`` and
    ``key``, atomically, and at most ``keep`` results of ``kind``; False when the store cannot be
    written."""
    path = derived_path(artifacts, kind, key)
    try:
        write_json_atomic(path, {"version": VERSION, "kind": kind, "key": key, "result": result})
    except OSError:
        return False
    _prune(path.parent, keep)
    return True


def _prune(folder: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently written results of a kind (each choice of runs and
    parameters writes one; nothing else bounds them)."""
    stamped = []
    for path in folder.glob("*.json"):
        try:
            stamped.append((path.stat().st_mtime_ns, path.name, path))
        except OSError:  # removed meanwhile by another process
            continue
    for _, _, path in sorted(stamped, reverse=True)[keep:]:
        path.unlink(missing_ok=True)
