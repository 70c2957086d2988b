"""The command line's latency: ``python -m training benchmark [RUNS...]``, which measures every
run's latency again in one quiet pass, the latency line ``train`` prints, and the quiet start of
TensorFlow for the commands that use it.

A run's latency recorded while training depends on what else the machine was doing then. This
loads each run's model in turn (one at a time: nothing else of ours runs meanwhile), measures it
as ``training.fit.latency`` does (warm-up, then the median of ``--repeats`` calls at batch 1 at the
run's input size), rewrites its latency.json (``"how": "benchmark pass"``) and prints a table: the
old figure and how it was measured, the new median, its p10-p90 spread, the conditions.

No RUNS: every run of the store. Imported runs are skipped (no model: their figure was given at
import); a run whose model is missing or cannot be loaded is named with the reason, and the
others are measured. Exit status 1 when a run could not be measured.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from training.cli.common import add_artifacts
from training.runs.layout import IMPORTED, ArtifactError

if TYPE_CHECKING:
    from training.runs.reader import Run

EXIT_NOT_MEASURED = 1
COLUMNS = ("run", "before (how)", "median ms", "p10-p90 ms", "conditions")


def add_benchmark_parser(commands) -> None:
    """Register ``benchmark`` on the CLI's subcommands."""
    benchmark = commands.add_parser("benchmark", help="measure the runs' latency again, one run at a time "
                                    "(median of warm calls at batch 1), and record how")
    benchmark.add_argument("runs", nargs="*", metavar="RUN", help="runs to measure (default: every run)")
    benchmark.add_argument("--repeats", type=int, default=30, help="timed calls, the median is kept (default: 30)")
    benchmark.add_argument("--threads", type=int, help="TensorFlow threads (default: TensorFlow's, every core)")
    add_artifacts(benchmark)
    benchmark.set_defaults(handler=cmd_benchmark)


def start_tensorflow_quietly() -> None:
    """Import TensorFlow and list its devices (where it looks for a GPU) without its start-up
    noise (``training.runtime_env.quiet_tensorflow_start``). It starts no runtime: threads can
    still be set afterwards."""
    from training.runtime_env import quiet_tensorflow_start

    with quiet_tensorflow_start():
        import tensorflow as tf

        tf.config.list_physical_devices()


def latency_line(run_dir: Path) -> str:
    """What ``train`` says of a run's latency: "latency 19.7 ms per image (p10-p90 ...; how)"."""
    from training.runs.latency import how_text, read_latency
    from training.runs.reader import Run

    record = read_latency(Run(run_dir.name, run_dir))
    if record is None:
        return "latency: not measured"
    return (f"latency {record['median_ms']:.1f} ms per image (p10-p90 {record['p10_ms']:.1f}-"
            f"{record['p90_ms']:.1f}; {how_text(record)})")


def _before(run: Run) -> str:
    """The run's figure before this pass and how it was measured, for the table."""
    from training.runs.latency import latency_headline

    headline = latency_headline(run, run.metrics)
    if headline["inference_ms"] is None:
        return "none"
    return f"{headline['inference_ms']:.1f} ({headline['latency_measured']})"


def _load_model(run: Run):
    """The run's Keras model; ArtifactError naming the run when it is missing or unreadable."""
    from training.models import load_model

    path = run.model_path  # ArtifactError: "run x: missing model.keras"
    try:
        return load_model(path)
    except Exception as error:  # Keras raises ValueError, OSError, zipfile errors, ... for a bad file
        raise ArtifactError(f"run {run.name}: model.keras cannot be loaded ({type(error).__name__}: "
                            f"{str(error).splitlines()[0][:200] if str(error) else 'no detail'})") from None


def measure_run(run: Run, repeats: int) -> dict:
    """Measure ``run``'s model and rewrite its latency.json; the new record."""
    import keras

    from training.fit.latency import measure_latency
    from training.runs.latency import BENCHMARK_PASS, write_latency

    model = _load_model(run)
    try:
        record = measure_latency(model, run.input_size, repeats, how=BENCHMARK_PASS)
    finally:
        del model
        keras.backend.clear_session()  # the next run's model starts from a clean graph
    write_latency(run.path, record)
    return record


def _runs(names: list[str], artifacts) -> list[Run]:
    from training.runs.reader import get_run, list_runs

    return [get_run(name, artifacts) for name in names] if names else list_runs(artifacts)


def format_row(cells: dict, widths: dict) -> str:
    return "  ".join(f"{str(cells.get(c, '')):<{widths[c]}}" for c in COLUMNS).rstrip()


def format_table(rows: list[dict]) -> str:
    widths = {c: max([len(c), *(len(str(row.get(c, ""))) for row in rows)]) for c in COLUMNS}
    lines = [format_row({c: c for c in COLUMNS}, widths), format_row({c: "-" * widths[c] for c in COLUMNS}, widths)]
    return "\n".join(lines + [format_row(row, widths) for row in rows])


def cmd_benchmark(args) -> int:
    from training.fit.latency import cpu_cores, load_average, set_threads
    from training.runs.latency import BENCHMARK_PASS, busy, busy_text, conditions_text

    set_threads(args.threads)  # before TensorFlow runs anything
    if args.repeats < 1:
        raise ValueError(f"--repeats must be at least 1, got {args.repeats}")
    runs = _runs(args.runs, args.artifacts)
    if not runs:
        print("no runs yet: python -m training train CONFIG")
        return 0
    load, cores = load_average(), cpu_cores()
    if busy(load, cores):
        print(f"warning: the machine is busy (load average {load:.1f} on {cores} cores): figures will be "
              "pessimistic; measure again when it is quiet", file=sys.stderr)
    rows, failed = [], 0
    for run in runs:
        try:
            if run.metrics.get("source") == IMPORTED:
                print(f"{run.name}: skipped, imported predictions have no model (their figure was given at import)")
                continue
            before = _before(run)
            record = measure_run(run, args.repeats)
        except ArtifactError as error:
            print(f"{run.name}: not measured: {error}")
            failed += 1
            continue
        rows.append({"run": run.name, "before (how)": before, "median ms": f"{record['median_ms']:.1f}",
                     "p10-p90 ms": f"{record['p10_ms']:.1f}-{record['p90_ms']:.1f}",
                     "conditions": f"median of {record['repeats']}, {conditions_text(record)}"
                                   + (f", busy ({busy_text(record)})" if record["busy"] else "")})
        if not args.quiet:
            print(f"{run.name}: {record['median_ms']:.1f} ms", flush=True)
    if rows:
        print(format_table(rows))
        print(f"rewrote latency.json of {len(rows)} run{'s' if len(rows) != 1 else ''} "
              f"({BENCHMARK_PASS}, {os.uname().nodename})")
    return EXIT_NOT_MEASURED if failed else 0
