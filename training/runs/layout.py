"""The run store's layout: where runs live, what their files are called, what a run name may be.

    artifacts/runs/<run>/config.yaml           resolved config
    artifacts/runs/<run>/model.keras           the trained model
    artifacts/runs/<run>/history.csv           per-epoch loss and metrics
    artifacts/runs/<run>/metrics.json          the numbers of the run (see ``training.fit.runner``)
    artifacts/runs/<run>/confusion.npy         K x K int64, rows = ground truth
    artifacts/runs/<run>/per_image.csv         id, split, mIoU, pixel accuracy, per-class IoU
    artifacts/runs/<run>/per_image_confusion.npy   N x K x K, rows in per_image.csv order (all classes)
    artifacts/runs/<run>/per_image_official_confusion.npy   the same under the official rules
                                               (``training.evaluation.variants``)
    artifacts/runs/<run>/predictions/<id>.png  class-index masks of the evaluated split
                                               (255: no class, only in imported runs)
    artifacts/runs/<run>/confidence/<id>.png   round(255 x top softmax probability), grey
    artifacts/runs/<run>/anatomy.json, instances.csv, per_image_anatomy.csv, frame_errors.npy
                                               error anatomy (``training.runs.anatomy``)
    artifacts/runs/<run>/latency.json          time per image and how it was measured
                                               (``training.runs.latency``)
    artifacts/runs/<run>/exports/              embedded exports (``training.runs.tflite_exports``)
    artifacts/deployed.json                    which run the API serves (``training.runs.deployment``)
    artifacts/tags.sqlite                      analysts' tags and notes (``training.runs.tags``)

A run imported from another tool's predictions (``training.runs.imported``) has the same files
but no model.keras, and ``"source": "imported"`` in metrics.json.

The store is read by ``training.runs.reader``, written by ``training.runs.writer`` (a run appears
only when complete) and deployed by ``training.runs.deployment``. No TensorFlow anywhere here:
the API and the dashboard read runs through these modules.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from training.data.cityscapes import REPO_ROOT

DEFAULT_ARTIFACTS = REPO_ROOT / "artifacts"
RUNS, STAGING_PREFIX, DEPLOYED = "runs", ".staging-", "deployed.json"
MAX_RUN_NAME = 128  # characters
RUN_NAME = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{MAX_RUN_NAME - 1}}}")
RUN_FILES = ("config.yaml", "model.keras", "history.csv", "metrics.json", "confusion.npy", "per_image.csv")
PER_IMAGE_CONFUSION = "per_image_confusion.npy"
PER_IMAGE_OFFICIAL_CONFUSION = "per_image_official_confusion.npy"  # runs evaluated before it have none
ANATOMY = "anatomy.json"  # error anatomy (training.runs.anatomy); runs evaluated before it have none
LATENCY = "latency.json"  # measured latency and its conditions (training.runs.latency); rewritten by benchmark
IMPORTED = "imported"  # metrics.json "source" of a run made from another tool's predictions: no model


class ArtifactError(Exception):
    """A missing or damaged run; the message names the run and the file."""


def artifacts_dir(path: str | os.PathLike | None = None) -> Path:
    """``path``, else ``$ARTIFACTS_DIR``, else ``artifacts/`` in the repository."""
    return Path(path or os.environ.get("ARTIFACTS_DIR") or DEFAULT_ARTIFACTS)


def check_run_name(name: str) -> str:
    if not isinstance(name, str) or not RUN_NAME.fullmatch(name):
        raise ArtifactError(f"{name!r} is not a run name (letters, digits, '_', '-', '.'; at most {MAX_RUN_NAME})")
    return name


def numbered_run_name(name: str, number: int) -> str:
    """``<name>-<number>``, the name of a second (third...) run published as ``name``, with ``name``
    cut so that the result is still a run name (at most ``MAX_RUN_NAME`` characters): a longer one
    would be on disk yet unlisted and unreadable.

    Example::

        >>> numbered_run_name("unet", 2), len(numbered_run_name("u" * 128, 2))
        ('unet-2', 128)
    """
    suffix = f"-{number}"
    return check_run_name(name[:MAX_RUN_NAME - len(suffix)] + suffix)
