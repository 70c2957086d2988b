"""Writing the run store: a run is staged in a hidden folder and published whole by one rename.

A run directory appears only when complete: everything is written into a hidden staging folder
(``runs/.staging-<name>-<pid>``) which is renamed into place at the end (a rename that never
replaces: two processes publishing one name get ``name`` and ``name-2``), so a killed run leaves
nothing half-written in ``runs/``; the next writer removes the folders of processes that are gone.
The commit's steps are fault points (``PUBLISH_FAULTS``): tests kill a real process at each.
"""

from __future__ import annotations

import csv
import ctypes
import errno
import functools
import io
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

from training.files import fault_point, fsync_directory, fsync_tree, write_json_atomic
from training.runs.layout import (
    IMPORTED,
    RUN_FILES,
    RUNS,
    STAGING_PREFIX,
    ArtifactError,
    artifacts_dir,
    check_run_name,
    numbered_run_name,
)

# The commit's steps, where a test kills the process (``training.files.fault_point``): the staging
# folder is complete and flushed, not yet renamed; renamed into runs/, runs/ itself not yet flushed.
PUBLISH_FAULTS = ("publish:staged", "publish:renamed")


class RunWriter:
    """Stage a run's files, then publish them all at once with ``commit()``.

    The staging folder is ``runs/.staging-<name>-<pid>``: a process killed before its commit
    leaves it behind, and the next ``RunWriter`` (or training run) of the store removes it once
    that process no longer runs (``remove_stale_staging``).

    Example::

        writer = RunWriter("fpn_effb0", artifacts)
        model.save(writer.path("model.keras"))
        writer.write_prediction(12, mask, palette)
        final_dir = writer.commit()
    """

    def __init__(self, name: str, root: str | os.PathLike | None = None):
        self.name = check_run_name(name)
        self.uid = uuid.uuid4().hex  # the run's identity: names can be reused, uids never
        self.runs = artifacts_dir(root) / RUNS
        self.runs.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(root)
        self.staging = self.runs / f"{STAGING_PREFIX}{name}-{os.getpid()}"
        if self.staging.exists():
            shutil.rmtree(self.staging)
        (self.staging / "predictions").mkdir(parents=True)
        (self.staging / "confidence").mkdir()

    def path(self, filename: str) -> Path:
        return self.staging / filename

    def write_text(self, filename: str, text: str) -> None:
        self.path(filename).write_text(text)

    def write_json(self, filename: str, data) -> None:
        write_json_atomic(self.path(filename), data)

    def write_array(self, filename: str, array: np.ndarray) -> None:
        np.save(self.path(filename), array)

    def write_csv(self, filename: str, rows: list[dict]) -> None:
        self.write_text(filename, csv_text(rows))

    def write_prediction(self, image_id: int, classes: np.ndarray, palette: np.ndarray) -> None:
        write_class_png(self.path(f"predictions/{int(image_id)}.png"), classes, palette)

    def write_confidence(self, image_id: int, confidence: np.ndarray) -> None:
        """A uint8 ``round(255 x top probability)`` map as a grey PNG."""
        Image.fromarray(confidence, mode="L").save(self.path(f"confidence/{int(image_id)}.png"), compress_level=3)

    def commit(self) -> Path:
        """Stamp metrics.json with the run's ``uid``, then rename the staging folder to
        ``runs/<name>`` (``<name>-2``, ... if taken: a published run is never replaced; a long
        name is cut to make room for the number, ``numbered_run_name``).

        Every staged file is flushed to disk before the rename and ``runs/`` after it, so a
        crash of the machine cannot leave a published run with empty files."""
        if not self.path("metrics.json").exists():
            raise ArtifactError(f"run {self.name}: cannot publish, missing metrics.json")
        metrics = json.loads(self.path("metrics.json").read_text())
        required = [f for f in RUN_FILES if f != "model.keras" or metrics.get("source") != IMPORTED]
        missing = [f for f in required if not self.path(f).exists()]
        if missing:
            raise ArtifactError(f"run {self.name}: cannot publish, missing {', '.join(missing)}")
        self.write_json("metrics.json", {**metrics, "uid": self.uid})
        fsync_tree(self.staging)
        fault_point("publish:staged")
        target = self._rename_to_free_name()
        fault_point("publish:renamed")
        fsync_directory(self.runs)
        return target

    def _rename_to_free_name(self) -> Path:
        """Rename the staging folder to the first of ``name``, ``name-2``, ... that does not exist,
        atomically: ``renameat2(RENAME_NOREPLACE)`` fails when the target exists, so two processes
        publishing one name at the same moment get two names, never one mixed folder (a plain
        rename would replace a target that another process had just made, if empty)."""
        number = 2
        target = self.runs / self.name
        while True:
            try:
                rename_no_replace(self.staging, target)
                return target
            except FileExistsError:
                target, number = self.runs / numbered_run_name(self.name, number), number + 1

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


_RENAME_NOREPLACE = 1  # linux/fs.h
_AT_FDCWD = -100


def rename_no_replace(source: Path, target: Path) -> None:
    """Rename ``source`` to ``target``, raising ``FileExistsError`` if ``target`` exists (even an
    empty folder), in one atomic step: Linux ``renameat2(..., RENAME_NOREPLACE)``. Where that call
    is missing (another system, an old kernel or file system), ``os.mkdir`` reserves ``target``
    first and then a folder rename replaces that empty reservation: still never a mixed folder."""
    libc = _libc()
    if libc is not None:
        result = libc.renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE)
        if result == 0:
            return
        error = ctypes.get_errno()
        if error not in (errno.ENOSYS, errno.EINVAL):  # not "unsupported here": a real failure
            raise OSError(error, os.strerror(error), os.fsdecode(source), None, os.fsdecode(target))
    os.mkdir(target)  # FileExistsError if taken: the reservation is ours alone
    os.replace(source, target)


@functools.cache
def _libc():
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
        return libc
    except (OSError, AttributeError):
        return None


def write_class_png(path: Path, classes: np.ndarray, palette: np.ndarray) -> None:
    """A class-index mask as a palette PNG: values are class indices, viewers show colours."""
    image = Image.fromarray(classes.astype(np.uint8), mode="P")
    image.putpalette(palette.reshape(-1).tolist())
    # zlib level 3: a 2048x1024 mask in ~8 ms instead of ~50 ms at the default 6, ~1.5x the bytes.
    image.save(path, compress_level=3)


def csv_text(rows: list[dict], columns: tuple[str, ...] | None = None) -> str:
    """Rows as CSV text (the header alone when ``columns`` are given and there are no rows)."""
    buffer = io.StringIO()
    fieldnames = list(columns) if columns else list(rows[0]) if rows else []
    if fieldnames:
        writer = csv.DictWriter(buffer, fieldnames=fieldnames, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buffer.getvalue()


def _staging_pid(folder: Path) -> int | None:
    """The pid of ``.staging-<name>-<pid>``; None for any other name."""
    if not folder.name.startswith(STAGING_PREFIX):
        return None
    pid = folder.name.rpartition("-")[2]
    return int(pid) if pid.isdigit() and int(pid) > 0 else None


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True


def remove_stale_staging(root: str | os.PathLike | None = None) -> list[Path]:
    """Remove the staging folders left by processes that no longer run (killed while staging
    a run); never one of a live process. Returns the folders removed.

    Pids are those of this machine: a store shared by several machines must not be published to
    from more than one of them at a time.
    """
    runs = artifacts_dir(root) / RUNS
    stale = [folder for folder in (runs.iterdir() if runs.is_dir() else ())
             if folder.is_dir() and (pid := _staging_pid(folder)) is not None and not process_alive(pid)]
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)  # another process may be removing it too
    return stale
