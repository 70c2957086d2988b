"""The demo runs' numbers as one results file: what the documentation's tables are generated from.

``python -m training results --out bench/results/demo_runs.json`` (``make models`` runs it after
training) gathers from the run store, through its own readers, everything the docs show of each
run: the headline of ``training.runs.summary``, its per-class test IoU, every mIoU variant under
the name ``training.evaluation.variants`` gives it, calibration (ECE), the error anatomy's headline,
the latency and, where the run predicted a drive (``predict-sequence``), its temporal consistency.
The file is stamped with when, on what machine and by which command it was written, so a page can
say where its numbers come from. A run that cannot be read is listed with its problems, never
dropped and never a crash; a damaged optional part (anatomy, a drive's temporal.json) leaves that
part empty and names the problem in the run's ``problems``.
"""

from __future__ import annotations

import datetime
import os
import platform
import shutil
import subprocess
from pathlib import Path

from training.data.cityscapes import DatasetError
from training.data.index import index_path_for, load_index
from training.data.labels import get_class_set
from training.data.sequences import DRIVE
from training.evaluation.variants import PER_IMAGE, POOLED, VARIANTS, miou
from training.files import finite_or_none
from training.runs.health import inspect_store
from training.runs.layout import ArtifactError
from training.runs.reader import Run
from training.runs.sequences import dataset_sequences, read_sequence_temporal, sequence_names
from training.runs.summary import deployed_name, run_summary

FORMAT = "demo-runs v1"
CATEGORIES_WITH_OBJECTS = ("human", "vehicle")  # the categories iIoU is defined for
HEADLINE_KEYS = ("model", "backbone", "loss_name", "augmentation", "image_size", "classes", "split", "params",
                 "train_seconds", "epochs", "best_epoch", "loss", "val_loss", "val_miou", "created", "source",
                 "inference_ms", "latency_how", "latency_measured", "deployed")
SPLIT_SIZES = ("train", "validation", "test", "all")
READ_ERRORS = (ArtifactError, AttributeError, KeyError, TypeError, ValueError)  # a file of unexpected content


def machine_text() -> str:
    """"2 cores, AMD EPYC 7B13, no GPU": what a reader needs to weigh a time measured here."""
    cores = os.cpu_count() or 0
    return f"{cores} core{'s' if cores != 1 else ''}, {_cpu_model()}, {_gpu_names() or 'no GPU'}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _gpu_names() -> str:
    if shutil.which("nvidia-smi") is None:
        return ""
    try:
        listed = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    if listed.returncode:
        return ""
    return ", ".join(name.strip() for name in listed.stdout.splitlines() if name.strip())


def measured_stamp(command: str, now: datetime.datetime | None = None) -> dict:
    """When (ISO 8601, UTC), on what machine and by which command the numbers were gathered."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {"date": now.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": machine_text(), "command": command}


# ---------------------------------------------------------------------------- the dataset

def dataset_block(data_root: str | os.PathLike | None) -> dict:
    """Where the index at ``data_root`` can be read: its split sizes, fingerprint and drives
    (``problems`` says why not)."""
    block = {"root": None if data_root is None else str(data_root), "classes": [], "fingerprint": None,
             "images": None, "drives": [], "problems": []}
    if data_root is None:
        return block
    root = Path(data_root)
    try:
        index = load_index(index_path_for(root), root)
    except DatasetError as error:
        block["problems"].append(str(error))
        return block
    counts = index.counts()
    sequences, problems = dataset_sequences(root)
    block.update(fingerprint=index.fingerprint(), images={split: counts[split] for split in SPLIT_SIZES},
                 drives=[s.name for s in sequences if s.kind == DRIVE], problems=problems)
    return block


def with_runs(block: dict, runs: list[dict]) -> dict:
    """``dataset_block`` completed by the whole runs: their class sets, and a problem where they
    were evaluated on another index than the one at the data root (or, without one, their
    fingerprint when they agree)."""
    recorded = sorted({r["dataset_fingerprint"] for r in runs if r.get("dataset_fingerprint")})
    block = {**block, "classes": sorted({r["classes"] for r in runs if r.get("classes")})}
    if block["fingerprint"] is None:
        block["fingerprint"] = recorded[0] if len(recorded) == 1 else None
    elif any(fingerprint != block["fingerprint"] for fingerprint in recorded):
        block["problems"] = [*block["problems"], "runs were evaluated on another index of the data "
                             f"(fingerprint {', '.join(recorded)}, the data root's {block['fingerprint']})"]
    return block


# ---------------------------------------------------------------------------- one run

def miou_variants(run: Run, metrics: dict) -> dict:
    """Every mIoU of the run's test images by the product's name for it ("mIoU (all classes)",
    "mean per-image mIoU (official)"...): the pooled ones as metrics.json holds them, the per-image
    ones from the stored per-image confusions; None where the run has no such numbers."""
    class_set = get_class_set(metrics["classes"])
    stacks = {"miou": lambda: run.per_image_confusion(mmap=True),
              "miou_official": lambda: run.per_image_official_confusion(mmap=True) if run.has_official_confusion
              else None}
    numbers = {}
    for which in VARIANTS:
        numbers[which.label(POOLED)] = finite_or_none(metrics.get(which.key))
        confusions = stacks[which.key]()
        numbers[which.label(PER_IMAGE)] = (None if confusions is None or not len(confusions) else
                                           finite_or_none(miou(confusions, class_set, which, PER_IMAGE)))
    return numbers


def anatomy_headline(run: Run) -> dict | None:
    """Boundary mIoU, iIoU of human and vehicle (the categories' own for cityscapes19), objects and
    missed objects; None for a run without an anatomy."""
    if not run.has_anatomy:
        return None
    anatomy = run.anatomy()
    iiou = anatomy.get("iiou_categories") or anatomy.get("iiou") or {}
    instances = anatomy.get("instances") if isinstance(anatomy.get("instances"), dict) else {}
    return {"boundary_miou": finite_or_none(anatomy.get("mean_boundary_iou")),
            "boundary_miou_official": finite_or_none(anatomy.get("mean_boundary_iou_official")),
            "iiou": {name: finite_or_none(iiou.get(name)) for name in CATEGORIES_WITH_OBJECTS if name in iiou},
            "objects": instances.get("objects"), "objects_missed": instances.get("missed")}


def temporal_block(run: Run, drives: list[str]) -> dict:
    """Temporal consistency (overall and per class) and flicker rate of every sequence the run
    predicted, by name, with whether it is one of the dataset's ``drives``."""
    block = {}
    for name in sequence_names(run):
        document = read_sequence_temporal(run, name)
        block[name] = {"drive": name in drives, "frames": len(document["frames"]), "pairs": len(document["pairs"]),
                       "temporal_consistency": finite_or_none(document["temporal_consistency"]),
                       "flicker_rate": finite_or_none(document["flicker_rate"]),
                       "temporal_consistency_per_class": {
                           str(name): finite_or_none(value)
                           for name, value in document["temporal_consistency_per_class"].items()}}
    return block


def run_results(run: Run, deployed: str | None, drives: list[str]) -> dict:
    """One whole run's numbers (``FORMAT``'s run entry)."""
    metrics = run.metrics
    summary = run_summary(run, deployed)
    result = {"run": run.name, "uid": run.uid, **{key: summary.get(key) for key in HEADLINE_KEYS},
              "dataset_fingerprint": (metrics.get("dataset") or {}).get("fingerprint"),
              "class_names": list(metrics.get("class_names") or metrics["iou"]),
              "iou": {name: finite_or_none(value) for name, value in metrics["iou"].items()},
              "miou": miou_variants(run, metrics),
              "ece": finite_or_none((metrics.get("calibration") or {}).get("ece")),
              "anatomy": None, "temporal": {}, "problems": []}
    for part, read in (("anatomy", lambda: anatomy_headline(run)), ("temporal", lambda: temporal_block(run, drives))):
        try:
            result[part] = read()
        except READ_ERRORS as error:
            result["problems"].append(f"{part}: {error}")
    return result


# ---------------------------------------------------------------------------- the file

def demo_results(artifacts: str | os.PathLike | None, data_root: str | os.PathLike | None, command: str,
                 now: datetime.datetime | None = None) -> dict:
    """The results document of every run of the store at ``artifacts``, by name (the store's own order,
    by folder time, moves a run that predicts a drive later to the end); a run that cannot be read is
    ``{"run", "error"}``."""
    deployed = deployed_name(artifacts)
    dataset = dataset_block(data_root)
    drives = dataset["drives"]
    runs = []
    for health in sorted(inspect_store(artifacts), key=lambda health: health.run.name):
        if not health.ok:
            runs.append({"run": health.run.name, "error": health.reason})
            continue
        try:
            runs.append(run_results(health.run, deployed, drives))
        except READ_ERRORS as error:  # a file damaged since the health check
            runs.append({"run": health.run.name, "error": str(error)})
    whole = [r for r in runs if "error" not in r]
    return {"format": FORMAT, "measured": measured_stamp(command, now), "dataset": with_runs(dataset, whole),
            "deployed": deployed, "runs": runs}
