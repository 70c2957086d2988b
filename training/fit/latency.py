"""Measure a Keras model's time per image, with the conditions it was measured under.

One figure, taken one way everywhere (after training, and in ``python -m training benchmark``):
a few warm-up calls (the first builds the compiled predict function), then ``repeats`` timed
``predict_on_batch`` calls on one image (batch 1) at the run's input size. The median is the
figure; p10 and p90 show the spread (on a shared machine load only ever adds time, so a wide
spread says the figure is pessimistic). ``benchmark`` times its runs in turns over several rounds
and keeps the median of the rounds (``measure_interleaved``): one pass of 30 calls moved by up to
35 % from pass to pass. ``training.runs.latency`` stores it as latency.json.
"""

from __future__ import annotations

import os
import resource
import socket
import time
from datetime import datetime, timezone

import numpy as np

from training.runs.latency import AFTER_TRAINING, record_busy

REPEATS, WARMUP, ROUNDS = 30, 3, 9
MAX_REPEATS, MAX_ROUNDS = 1000, 100  # a pass of a few minutes at most, not one that never ends


def cpu_cores() -> int:
    """The cores this process may run on (a container or ``taskset`` may allow fewer than exist)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load_average() -> float | None:
    """The 1-minute load average; None where the system has none."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def device_name() -> str:
    """"CPU", or the name of the GPU TensorFlow places the model on (the first one)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    details = tf.config.experimental.get_device_details(gpus[0])
    return str(details.get("device_name") or gpus[0].name)


def set_threads(threads: int | None) -> None:
    """Let TensorFlow's ops use ``threads`` threads (intra-op; inter-op 1 then, one op at a time
    at batch 1). Only before TensorFlow has run anything: afterwards it refuses."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads must be at least 1, got {threads}")
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as error:
        raise ValueError(f"cannot set TensorFlow's threads now ({error})") from None


def conditions(size: tuple[int, int], how: str) -> dict:
    """What a measurement runs under: cores, TensorFlow threads (0: its default, every core),
    device, batch, input size, versions, load at the start, host and time."""
    import tensorflow as tf

    return {"batch": 1, "input_size": [int(size[0]), int(size[1])], "device": device_name(),
            "cpu_cores": cpu_cores(), "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "tensorflow": tf.__version__, "load_average": load_average(), "host": socket.gethostname(),
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "how": how}


def check_counts(repeats: int, rounds: int = 1) -> None:
    """ValueError unless ``repeats`` is in ``1..MAX_REPEATS`` and ``rounds`` in ``1..MAX_ROUNDS``."""
    for name, value, most in (("--repeats", repeats, MAX_REPEATS), ("--rounds", rounds, MAX_ROUNDS)):
        if not 1 <= value <= most:
            raise ValueError(f"{name} must be between 1 and {most}, got {value}")


def time_calls(model, size: tuple[int, int], repeats: int = REPEATS, warmup: int = WARMUP) -> np.ndarray:
    """Milliseconds of each of ``repeats`` timed ``predict_on_batch`` calls on one random image,
    after ``warmup`` untimed ones (at least one)."""
    check_counts(repeats)
    x = np.random.default_rng(0).random((1, int(size[0]), int(size[1]), 3), dtype=np.float32)
    for _ in range(max(1, warmup)):
        model.predict_on_batch(x)
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(x)
        times[i] = 1000 * (time.perf_counter() - start)
    return times


def cpu_seconds() -> tuple[float | None, float]:
    """(CPU seconds every core of the machine has been busy since boot, from /proc/stat; None where
    there is none), (CPU seconds of this process, all its threads)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
        busy_ticks = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # less idle, iowait
        machine = busy_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        machine = None
    return machine, own.ru_utime + own.ru_stime


def others_cores(before: tuple[float | None, float], after: tuple[float | None, float],
                 seconds: float) -> float | None:
    """The cores other processes kept busy on average between two ``cpu_seconds`` snapshots."""
    if before[0] is None or after[0] is None or seconds <= 0:
        return None
    return round(max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / seconds), 2)


def measure_interleaved(models: dict, repeats: int = REPEATS, rounds: int = ROUNDS, warmup: int = WARMUP,
                        how: str = AFTER_TRAINING) -> dict[str, dict]:
    """The latency record of every model of ``models`` (name -> ``(model, size)``), timed in turns:
    ``rounds`` rounds, each giving every model ``repeats`` timed calls (after one untimed call that
    brings its weights back into the caches). A model's figure is the median of its rounds'
    medians, so a burst of load lands on one round of every model rather than on all the calls of
    one; p10 and p90 are those of all its calls. The records are ``measure_latency``'s, with
    ``rounds`` and ``round_medians_ms``; ``others_cpu_cores`` covers the whole pass."""
    check_counts(repeats, rounds)
    started, before = time.perf_counter(), cpu_seconds()
    records = {name: conditions(size, how) for name, (_, size) in models.items()}
    for model, size in models.values():
        time_calls(model, size, 1, warmup)  # warm-up: the first call builds the compiled predict function
    calls: dict[str, list[np.ndarray]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, (model, size) in models.items():
            calls[name].append(time_calls(model, size, repeats, 1))
    others = others_cores(before, cpu_seconds(), time.perf_counter() - started)
    result = {}
    for name, rounds_times in calls.items():
        medians = [float(np.median(times)) for times in rounds_times]
        every = np.concatenate(rounds_times)
        record = {"median_ms": round(float(np.median(medians)), 3),
                  "p10_ms": round(float(np.percentile(every, 10)), 3),
                  "p90_ms": round(float(np.percentile(every, 90)), 3),
                  "repeats": int(repeats), "rounds": int(rounds), "round_medians_ms": [round(m, 3) for m in medians],
                  "warmup": int(max(1, warmup)), **records[name], "others_cpu_cores": others}
        result[name] = {**record, "busy": record_busy(record)}
    return result


def measure_latency(model, size: tuple[int, int], repeats: int = REPEATS, warmup: int = WARMUP,
                    how: str = AFTER_TRAINING) -> dict:
    """The latency record of ``model`` at ``size`` (what latency.json holds): median, p10 and p90
    in ms of ``repeats`` warm calls at batch 1, the ``conditions`` (the load average taken before
    the first call) and ``others_cpu_cores``: the cores other processes used while the calls were
    timed, which says whether the machine was quiet (the load average cannot: right after
    training it is the training's own)."""
    record = conditions(size, how)
    started, before = time.perf_counter(), cpu_seconds()
    times = time_calls(model, size, repeats, warmup)
    record["others_cpu_cores"] = others_cores(before, cpu_seconds(), time.perf_counter() - started)
    percentiles = {f"{name}_ms": round(float(np.percentile(times, q)), 3)
                   for name, q in (("median", 50), ("p10", 10), ("p90", 90))}
    record = {**percentiles, "repeats": int(repeats), "warmup": int(max(1, warmup)), **record}
    return {**record, "busy": record_busy(record)}
