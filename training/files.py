"""Files written atomically, and numbers made fit for JSON and CSV.

A reader sees the old file or the new one, never half of one, and after a crash of the machine
the rename is on disk too. Files get the mode a plain ``open()`` gives (0666 minus the umask):
metrics.json, deployed.json or the index must be readable by a service running as another user.

JSON has no NaN: every number that can be NaN (an IoU of a class absent from an image, a mean over
nothing) goes through ``finite_or_none`` on its way out, so metrics.json, API answers and CSV
cells agree.

Test hook: ``$SEGMENTATION_FAULT_AT`` names one moment at which the process kills itself with
SIGKILL (``fault_point``), so that tests can kill a real process exactly inside a commit: every
writer of the store marks its commit steps with one (the training's moments, ``training.fit.runner``;
the store's, ``training.runs``), and every atomic write marks the moment before its rename
(``before_replace:<file name>``). Unset, as everywhere outside tests, it does nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np

FAULT_ENV = "SEGMENTATION_FAULT_AT"


def fault_point(moment: str) -> None:
    """Test hook: SIGKILL this process if ``$SEGMENTATION_FAULT_AT`` names ``moment``."""
    if os.environ.get(FAULT_ENV) == moment:
        os.kill(os.getpid(), signal.SIGKILL)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to a temporary file in the same folder, fsync it, rename it over ``path``,
    then fsync the folder (the rename lives in the folder's own data)."""
    return write_bytes_atomic(path, text.encode())


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """``write_text_atomic`` for bytes (e.g. a ``.npy`` file made in memory)."""
    path = Path(path)
    with replaced_atomically(path) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
    return path


@contextlib.contextmanager
def replaced_atomically(path: str | os.PathLike) -> Iterator[Path]:
    """A new empty temporary file beside ``path`` for the caller to write by name (a video muxer
    opens it itself). Afterwards it is fsynced and renamed over ``path``, then the folder fsynced;
    on any failure it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = _create_temporary(path)
    os.close(descriptor)  # created (umask applied, name reserved); the writer opens it by name
    try:
        yield temporary
        with open(temporary, "rb") as handle:  # whoever wrote it, its data reaches the disk before the rename
            os.fsync(handle.fileno())
        fault_point(f"before_replace:{path.name}")
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new empty file beside ``path``, opened for writing.

    Created with mode 0666 so that the kernel applies the umask exactly as for ``open(path, "w")``;
    ``tempfile.mkstemp`` would make it 0600, unreadable to anyone else once renamed into place.
    """
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), temporary
        except FileExistsError:
            continue  # another writer drew the same name: draw again


def fsync_directory(folder: str | os.PathLike) -> None:
    """Flush ``folder`` itself to disk, so that a rename or a new entry in it survives a crash."""
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(folder: str | os.PathLike) -> None:
    """Flush every file and folder under ``folder``, and ``folder`` itself, to disk (before the
    folder is renamed into place: a crash must not publish empty files)."""
    folder = Path(folder)
    for path in sorted(folder.rglob("*"), reverse=True):  # files before the folders holding them
        if path.is_dir():
            fsync_directory(path)
        else:
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    fsync_directory(folder)


class LockHeld(Exception):
    """Another process holds the lock; ``pid`` is the one it wrote into the lock file (None if unknown)."""

    def __init__(self, path: Path, pid: int | None):
        super().__init__(f"{path} is locked by process {pid if pid is not None else '(unknown)'}")
        self.path, self.pid = path, pid


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the block, or raise
    ``LockHeld`` at once if another process holds it. The holder's pid is written into the file
    for the message of the refused one.

    The kernel releases the lock when the holder dies (even by SIGKILL): no stale lock to clean up.
    The file itself is never removed: a process that opened it just before a removal would lock
    a file nobody else sees, and two processes would hold "the" lock.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
            raise LockHeld(path, int(text) if text.isdigit() else None) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield path
    finally:
        os.close(descriptor)  # releases the lock


def file_stamp(path: str | os.PathLike) -> tuple | None:
    """Inode, modification time and size (None when the file is not there): a file replaced or
    rewritten gets another stamp. Cache keys use it where reading the file would cost too much."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns, status.st_size


def finite_or_none(value, digits: int | None = None) -> float | None:
    """A float, rounded to ``digits`` if given; None for NaN, infinities and None.

    Example::

        >>> finite_or_none(float("nan")) is None, finite_or_none(np.float32(0.25))
        (True, 0.25)
    """
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits) if digits is not None else value


def jsonable(data):
    """``data`` with numpy scalars and arrays as Python values and non-finite floats as None,
    recursively (dicts, lists, tuples)."""
    if isinstance(data, dict):
        return {key: jsonable(item) for key, item in data.items()}
    if isinstance(data, (list, tuple)):
        return [jsonable(item) for item in data]
    if isinstance(data, np.ndarray):
        return jsonable(data.tolist())
    if isinstance(data, (float, np.floating)):
        return finite_or_none(data)
    if isinstance(data, np.integer):
        return int(data)
    if isinstance(data, np.bool_):
        return bool(data)
    return data


def write_json_atomic(path: str | os.PathLike, data) -> Path:
    return write_text_atomic(path, json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n")
