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
command line's TensorFlow commands start TensorFlow in it (``training.cli.benchmark``); TensorFlow
is not imported here: the dashboard imports this module.
"""

import contextlib
import os
import re
import sys
import tempfile

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
NVIDIA_DRIVER = "/proc/driver/nvidia/version"  # present wherever an NVIDIA kernel driver is loaded


def apply() -> None:
    for name, value in IMPORT_TIME_SETTINGS.items():
        os.environ.setdefault(name, value)


def has_nvidia_driver() -> bool:
    return os.path.exists(NVIDIA_DRIVER)


def is_start_noise(line: str, gpu_driver: bool) -> bool:
    """Whether TensorFlow's start-up ``line`` is one ``quiet_tensorflow_start`` drops."""
    return bool(EARLY_INFO.match(line)) or (CUINIT_NOISE in line and not gpu_driver)


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
