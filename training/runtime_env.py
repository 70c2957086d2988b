"""Environment variables that third-party libraries read at import time, and TensorFlow's noise
at start-up.

They live here, in one place, and ``training/__init__.py`` applies them before anything else
is imported, so every entry point (CLI, API, dashboard, tests) sees the same settings.
``setdefault`` keeps a value the user exported on purpose.

TensorFlow's Linux wheel looks for a GPU the first time it lists devices and, on a machine with
no NVIDIA driver, logs ``failed call to cuInit: ... UNKNOWN ERROR (303)`` at ERROR level: alarming,
and meaningless there. No environment variable removes only it (``CUDA_VISIBLE_DEVICES`` does not
stop the probe; ``TF_CPP_MIN_LOG_LEVEL=3`` would hide every real error too). At import it also
writes INFO lines (oneDNN, "Could not find cuda drivers") before its logging reads
``TF_CPP_MIN_LOG_LEVEL``. ``quiet_tensorflow_start`` drops exactly those lines from what is
written to stderr while TensorFlow is imported and first lists its devices (the cuInit line only
where there is no NVIDIA driver: with one, it is a real error); every other line passes. The
command line's TensorFlow commands start TensorFlow in it (``training.cli.benchmark``), and so does
the API wherever it first loads a model (``training.fit.predict.start_tensorflow_quietly``: in a
gunicorn worker before its warm-up, or at the first request without one); TensorFlow is not
imported here: the dashboard imports this module.

Later, while a model trains or predicts, TensorFlow's graph optimiser logs at ERROR level
``oneDNN supports DT_INT32 only on platforms with AVX-512. Falling back to the default Eigen-based
implementation if present.`` (the segmentation-models Linknet, on any x86 CPU with oneDNN on): what
it falls back to is what it would run anyway. ``drop_tensorflow_noise`` (``python -m training``
calls it first) drops that line (``RUN_NOISE``) from fd 2 for the rest of the process, children
included; every other byte passes as written (progress bars too).
"""

import atexit
import contextlib
import os
import re
import signal
import sys
import tempfile
import time

IMPORT_TIME_SETTINGS = {
    # segmentation-models refuses to import without choosing a framework; Keras 3 ships as tf.keras.
    "SM_FRAMEWORK": "tf.keras",
    "KERAS_BACKEND": "tensorflow",
    # Albumentations checks PyPI for a newer version at import: no network at run time.
    "NO_ALBUMENTATIONS_UPDATE": "1",
    # TensorFlow's C++ INFO/WARNING lines drown the progress bars (its ERROR lines still show).
    "TF_CPP_MIN_LOG_LEVEL": "2",
}
CUINIT_NOISE = "failed call to cuInit"
EARLY_INFO = re.compile(r"^(I\d{4} |WARNING: All log messages before absl::InitializeLog\(\))")
RUN_NOISE = re.compile(rb"^E\d{4} [^\]\n]*\] oneDNN supports DT_\w+ only on platforms with AVX-512\.")
LOG_LINE_START = re.compile(rb"^E(\d{0,3}$|\d{4}( |$))")  # a line still to end may be one of RUN_NOISE
NVIDIA_DRIVER = "/proc/driver/nvidia/version"  # present wherever an NVIDIA kernel driver is loaded


def apply() -> None:
    for name, value in IMPORT_TIME_SETTINGS.items():
        os.environ.setdefault(name, value)


def has_nvidia_driver() -> bool:
    return os.path.exists(NVIDIA_DRIVER)


def is_start_noise(line: str, gpu_driver: bool) -> bool:
    """Whether TensorFlow's start-up ``line`` is one ``quiet_tensorflow_start`` drops."""
    return (bool(EARLY_INFO.match(line)) or (CUINIT_NOISE in line and not gpu_driver)
            or bool(RUN_NOISE.match(line.encode(errors="replace"))))


@contextlib.contextmanager
def quiet_tensorflow_start():
    """Run the block with file descriptor 2 captured, then write what it wrote to stderr, less
    the start-up noise (``is_start_noise``). Wrap TensorFlow's import and first device listing::

        with quiet_tensorflow_start():
            import tensorflow as tf
            tf.config.list_physical_devices()
    """
    gpu_driver = has_nvidia_driver()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not is_start_noise(line, gpu_driver)))
            sys.stderr.flush()


_filter: tuple[int, int, tuple[int, int]] | None = None  # (the real stderr, the filter's pid, the pipe's id)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]


def _without_noise(pending: bytes) -> tuple[bytes, bytes]:
    """(what of ``pending`` to write now, what to hold): whole lines less ``RUN_NOISE``, then the
    unfinished line too unless it may still become one (held until its newline)."""
    *lines, rest = pending.split(b"\n")
    out = b"".join(line + b"\n" for line in lines if not RUN_NOISE.match(line))
    if not LOG_LINE_START.match(rest):
        out, rest = out + rest, b""
    return out, rest


def _copy_without_noise(source: int, target: int) -> None:
    """Copy ``source`` to ``target`` until every writer is gone, less ``RUN_NOISE`` lines. It never
    stops reading (a writer to a full pipe would wait forever): what cannot be written is dropped."""
    pending = b""
    while chunk := os.read(source, 65536):
        try:
            out, pending = _without_noise(pending + chunk)
            _write_all(target, out)
        except OSError:  # the real stderr is gone (closed, a broken pipe): keep draining
            pending = b""
    with contextlib.suppress(OSError):
        if pending and not RUN_NOISE.match(pending):
            _write_all(target, pending)


def drop_tensorflow_noise() -> None:
    """From now on fd 2 is a pipe to a small process of its own that drops TensorFlow's
    ``RUN_NOISE`` lines and copies every other byte to the real stderr at once (a line waits for
    its end only while it may still be one of them). A process, not a thread: what a crash writes
    last (a fatal log line, a traceback) still reaches the terminal. Children started afterwards
    write through it too. At exit the real stderr comes back and the filter finishes. Call it
    before any thread starts (it forks); idempotent."""
    global _filter
    if _filter is not None:
        return
    sys.stderr.flush()
    if os.isatty(2):  # progress bars size themselves from the terminal, which a pipe is not: say its size
        with contextlib.suppress(OSError):
            size = os.get_terminal_size(2)
            os.environ.setdefault("COLUMNS", str(size.columns))
            os.environ.setdefault("LINES", str(size.lines))
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the filter: it ends when every writer is gone, whatever signal the group gets
        try:
            for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(number, signal.SIG_IGN)
            for fd in (0, 1, write_end):
                os.close(fd)
            _copy_without_noise(read_end, 2)
        finally:
            os._exit(0)
    os.close(read_end)
    saved = os.dup(2)
    os.dup2(write_end, 2)
    os.close(write_end)
    _filter = (saved, pid, _file_id(2))
    atexit.register(_restore_stderr)


def _file_id(fd: int) -> tuple[int, int]:
    status = os.fstat(fd)
    return status.st_dev, status.st_ino


def _restore_stderr(wait_s: float = 5.0) -> None:
    """The real stderr back on fd 2 (this process's end of the pipe closes) and the filter waited
    for, a few seconds at most (a child still holding the pipe keeps it going). Where something
    else has taken fd 2 since, it is left alone."""
    global _filter
    if _filter is None:
        return
    saved, pid, pipe = _filter
    _filter = None
    with contextlib.suppress(OSError):
        sys.stderr.flush()
        if _file_id(2) == pipe:
            os.dup2(saved, 2)
    for _ in range(int(wait_s / 0.01)):
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                time.sleep(0.01)
                continue
        return
