"""A run's latency in the run store: ``runs/<run>/latency.json``, and how to say how it was measured.

A time per image means little without its conditions: the same model took 19.7 ms on a quiet
machine and 137.7 ms while another job was training. So a latency is measured in its own
repeated step (``training.fit.latency``: warm-up calls, then the median of N timed calls at
batch 1) and stored with what it was measured under::

    {"median_ms": 19.7, "p10_ms": 19.1, "p90_ms": 21.0, "repeats": 30, "warmup": 3, "batch": 1,
     "input_size": [128, 256], "device": "CPU", "cpu_cores": 2, "intra_op_threads": 0,
     "inter_op_threads": 0, "load_average": 0.4, "host": "box", "tensorflow": "2.21.0",
     "measured_at": "2026-12-02T15:00:00+00:00", "how": "benchmark pass"}

Training writes it with the run (``"how": "after training"``); ``python -m training benchmark``
measures every run again in one quiet pass and rewrites it (atomically: a reader sees the old
figure or the new one). Runs trained before it have only metrics.json's ``inference_ms``, measured
once while training, on whatever load the machine had: shown with that note. Imported runs keep
the figure given at import, "not measured here". No TensorFlow here: the dashboard reads it too.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from training.files import write_json_atomic
from training.runs.layout import IMPORTED, LATENCY, ArtifactError
from training.runs.reader import Run

AFTER_TRAINING, BENCHMARK_PASS = "after training", "benchmark pass"
DURING_TRAINING = "measured once during training"  # metrics.json's inference_ms of an older run
GIVEN_AT_IMPORT = "given at import, not measured here"
REQUIRED = ("median_ms", "p10_ms", "p90_ms", "repeats", "batch", "input_size", "device", "how", "measured_at")
BUSY_LOAD_PER_CORE = 0.5  # a 1-minute load average above this share of the cores: figures are pessimistic
# Other processes' CPU during the timed calls above this share of the cores: the figure is pessimistic.
# It is measured, not inferred from the load average: right after training, the 1-minute load
# average is the training's own, which is over by the time the calls are timed.
BUSY_OTHERS_PER_CORE = 0.25


def write_latency(run_dir: str | os.PathLike, record: dict) -> Path:
    """Write ``record`` (``training.fit.latency.measure_latency``) as the run's latency.json,
    atomically; ValueError when it lacks a key readers need."""
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise ValueError(f"a latency record needs {', '.join(missing)}")
    return write_json_atomic(Path(run_dir) / LATENCY, record)


def read_latency(run: Run) -> dict | None:
    """The run's latency.json; None when it has none.

    Raises:
        ArtifactError: latency.json is damaged or lacks a key (the message names the run).
    """
    record = run.latency()
    if record is None:
        return None
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise ArtifactError(f"run {run.name}: {LATENCY} lacks {', '.join(missing)}")
    problem = record_problem(record)
    if problem:
        raise ArtifactError(f"run {run.name}: {LATENCY}: {problem}")
    return record


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# What each key must hold for the texts below to be written from it; optional keys may be absent.
FIELD_RULES = {
    "median_ms": (_is_number, "a number"), "p10_ms": (_is_number, "a number"),
    "p90_ms": (_is_number, "a number"), "repeats": (_is_count, "a whole number"),
    "warmup": (_is_count, "a whole number"), "batch": (_is_count, "a whole number"),
    "input_size": (lambda v: isinstance(v, list) and len(v) == 2 and all(_is_count(side) for side in v),
                   "[height, width]"),
    "device": (lambda v: isinstance(v, str), "a text"), "how": (lambda v: isinstance(v, str), "a text"),
    "measured_at": (lambda v: isinstance(v, str), "a text"), "host": (lambda v: isinstance(v, str), "a text"),
    "cpu_cores": (_is_count, "a whole number"), "intra_op_threads": (_is_count, "a whole number"),
    "inter_op_threads": (_is_count, "a whole number"), "rounds": (_is_count, "a whole number"),
    "load_average": (lambda v: v is None or _is_number(v), "a number"),
    "others_cpu_cores": (lambda v: v is None or _is_number(v), "a number"),
}


def record_problem(record: dict) -> str | None:
    """What is wrong with a latency record ("input_size is 5, not [height, width]"), or None."""
    for key, (valid, kind) in FIELD_RULES.items():
        if key in record and not valid(record[key]):
            return f"{key} is {str(record[key])[:40]!r}, not {kind}"
    return None


def busy(load_average: float | None, cores: int | None) -> bool:
    """Whether a machine with this 1-minute load average was busy for its ``cores``."""
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (load_average, cores))
    return numbers and cores > 0 and load_average > BUSY_LOAD_PER_CORE * cores


def record_busy(record: dict) -> bool:
    """Whether the machine was busy while ``record`` was measured: other processes' CPU during the
    timed calls (``others_cpu_cores``) where recorded, else the load average at the start."""
    others, cores = record.get("others_cpu_cores"), record.get("cpu_cores")
    if isinstance(others, (int, float)) and isinstance(cores, int) and cores > 0:
        return others > BUSY_OTHERS_PER_CORE * cores
    return busy(record.get("load_average"), cores)


def busy_text(record: dict) -> str:
    """Why ``record`` counts as busy: "other processes used 0.8 of 2 cores" or "load 3.1"."""
    if isinstance(record.get("others_cpu_cores"), (int, float)):
        return f"other processes used {record['others_cpu_cores']:.1f} of {record.get('cpu_cores')} cores"
    return f"load {record.get('load_average', 0):.1f}"


def conditions_text(record: dict) -> str:
    """The conditions of a measurement, short: "batch 1, 128x256, 2 CPU cores" (a GPU by name)."""
    size = "x".join(str(v) for v in record.get("input_size") or [])
    device = record.get("device") or "CPU"
    cores = record.get("cpu_cores")
    where = f"{cores} CPU cores" if device == "CPU" and cores else device
    parts = [f"batch {record.get('batch', 1)}", size, where]
    threads = record.get("intra_op_threads")
    if threads:  # 0: TensorFlow's default, every core
        parts.append(f"{threads} threads")
    return ", ".join(part for part in parts if part)


def sample_text(record: dict) -> str:
    """What the figure is the median of: "median of 9 rounds x 30 calls" (a benchmark pass, its
    runs timed in turns: the median of the rounds' medians) or "median of 30" (one series)."""
    rounds = record.get("rounds")
    if _is_count(rounds) and rounds > 1:
        return f"median of {rounds} rounds x {record.get('repeats')} calls"
    return f"median of {record.get('repeats')}"


def how_text(record: dict) -> str:
    """How a figure was measured, whole: "median of 9 rounds x 30 calls, batch 1, 128x256, 2 CPU
    cores, benchmark pass 2026-12-02" (and "machine busy" when other processes took CPU meanwhile)."""
    when = str(record.get("measured_at") or "")[:10]
    text = f"{sample_text(record)}, {conditions_text(record)}, {record.get('how')} {when}".rstrip()
    if record_busy(record):
        text += f", machine busy ({busy_text(record)})"
    return text


def short_text(record: dict) -> str:
    """How a figure was measured in a word or two, for a narrow column: "benchmark", "after
    training" (", busy" when other processes took CPU meanwhile); ``how_text`` says it all."""
    how = "benchmark" if record.get("how") == BENCHMARK_PASS else str(record.get("how") or "")
    return how + (", busy" if record_busy(record) else "")


def latency_headline(run: Run, metrics: dict) -> dict:
    """A run's time per image and how it was measured: ``inference_ms`` (latency.json's median
    when the run has one, else metrics.json's figure), ``latency_how`` (whole sentence) and
    ``latency_measured`` (a few words); None where the run has no figure. A damaged latency.json
    falls back to metrics.json and says so."""
    given = metrics.get("inference_ms")
    given = given if isinstance(given, (int, float)) and not isinstance(given, bool) else None

    def headline(ms, how, short):
        return {"inference_ms": ms, "latency_how": how if ms is not None else None,
                "latency_measured": short if ms is not None else None}

    if metrics.get("source") == IMPORTED:
        return headline(given, GIVEN_AT_IMPORT, "given at import")
    try:
        record = read_latency(run)
    except ArtifactError as error:
        return headline(given, f"{DURING_TRAINING} ({error.args[0]})", "during training")
    if record is not None:
        return headline(round(float(record["median_ms"]), 3), how_text(record), short_text(record))
    return headline(given, DURING_TRAINING, "during training")
