"""Atomic writes (mode, durability, a kill before the rename), the lock of a run being trained, and the
one NaN -> null rule of every JSON and CSV the project writes."""

import json
import math
import os
import signal
import stat
import subprocess
import sys

import numpy as np
import pytest

from training.files import (
    FAULT_ENV,
    LockHeld,
    exclusive_lock,
    finite_or_none,
    jsonable,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


@pytest.mark.parametrize("value, digits, expected", [
    (0.25, None, 0.25), (np.float32(0.5), None, 0.5), (1 / 3, 6, 0.333333), (7, None, 7.0),
    (float("nan"), None, None), (float("inf"), 3, None), (-math.inf, None, None), (None, None, None),
    (np.float64("nan"), 6, None),
])
def test_finite_or_none(value, digits, expected):
    result = finite_or_none(value, digits)
    assert result == expected and (result is None or type(result) is float)


def test_jsonable_walks_containers_and_numpy_values():
    data = {"iou": {"void": np.float64("nan"), "flat": np.float32(0.75)}, "counts": np.array([[1, 2], [3, 4]]),
            "images": np.int64(3), "ok": np.bool_(True), "list": (1.5, float("inf"), "text")}
    assert jsonable(data) == {"iou": {"void": None, "flat": 0.75}, "counts": [[1, 2], [3, 4]], "images": 3,
                              "ok": True, "list": [1.5, None, "text"]}
    json.dumps(jsonable(data), allow_nan=False)  # would raise on a NaN or a numpy value


def test_write_json_atomic_writes_null_for_nan_and_leaves_no_temporary(tmp_path):
    path = write_json_atomic(tmp_path / "sub" / "metrics.json", {"miou": float("nan"), "n": np.int64(2)})
    assert json.loads(path.read_text()) == {"miou": None, "n": 2}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = write_text_atomic(tmp_path / "table.csv", "old\n")
    with pytest.raises(TypeError):
        write_bytes_atomic(path, "text, not bytes")  # fails while writing the temporary file
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


@pytest.fixture
def umask():
    """Set the process umask for one test, restored after it."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)],
                         ids=["umask022", "umask077", "umask002"])
def test_atomic_files_get_the_mode_of_a_plain_open(tmp_path, umask, mask, expected):
    umask(mask)
    with open(tmp_path / "plain.txt", "w") as handle:
        handle.write("x")
    written = write_json_atomic(tmp_path / "metrics.json", {"miou": 0.5})
    assert stat.S_IMODE(written.stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode) == expected
    replaced = write_text_atomic(written, "{}\n")  # replacing a file gives the same mode
    assert stat.S_IMODE(replaced.stat().st_mode) == expected


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        events.append("fsync folder" if stat.S_ISDIR(os.fstat(descriptor).st_mode) else "fsync file")
        real_fsync(descriptor)

    def replace(source, target):
        events.append("rename")
        real_replace(source, target)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    write_text_atomic(tmp_path / "deployed.json", "{}\n")
    assert events == ["fsync file", "rename", "fsync folder"]


def test_a_write_killed_before_its_rename_leaves_the_old_file(tmp_path):
    """The test hook kills a real process at the named moment only: an atomic write killed between
    its temporary file and its rename leaves the old file as it was."""
    path = write_text_atomic(tmp_path / "table.csv", "old\n")
    script = f"from training.files import write_text_atomic; write_text_atomic({str(path)!r}, 'new\\n')"
    for moment, code, content in (("before_replace:table.csv", -signal.SIGKILL, "old\n"),
                                  ("before_replace:other.csv", 0, "new\n")):
        done = subprocess.run([sys.executable, "-c", script], env={**os.environ, FAULT_ENV: moment},
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == code, done.stderr
        assert path.read_text() == content


def test_an_exclusive_lock_refuses_a_second_holder_naming_the_first(tmp_path):
    lock = tmp_path / "work" / ".run.lock"
    with exclusive_lock(lock):
        with pytest.raises(LockHeld) as held, exclusive_lock(lock):
            pass
        assert held.value.pid == os.getpid() and held.value.path == lock
    with exclusive_lock(lock):  # released with the block
        assert lock.read_text() == f"{os.getpid()}\n"
