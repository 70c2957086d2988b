"""The command line's latency: ``python -m training benchmark [RUNS...]``, which measures every
run's latency again in one quiet pass, the latency line ``train`` prints, and the quiet start of
TensorFlow for the commands that use it.

A run's latency recorded while training depends on what else the machine was doing then. This
loads the runs' models (nothing else of ours runs meanwhile) and times them in turns over
``--rounds`` rounds of ``--repeats`` calls at batch 1 at each run's input size
(``training.fit.latency.measure_interleaved``): a run's figure is the median of its rounds, so a
burst of load moves one round of every run instead of one run's whole figure. It rewrites each
latency.json (``"how": "benchmark pass"``, with the rounds) and prints a table: the old figure and
how it was measured, the new median, its p10-p90 spread, the conditions.

No RUNS: every run of the store. Imported runs are skipped (no model: their figure was given at
import); a run whose model is missing or cannot be loaded is named with the reason, and the
others are measured. Exit status 1 when a run could not be measured.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from training.cli.common import add_artifacts, whole_number
from training.fit.latency import MAX_REPEATS, MAX_ROUNDS, ROUNDS
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
    benchmark.add_argument("--repeats", type=whole_number(1, MAX_REPEATS), default=30,
                           help=f"timed calls per run and round, 1..{MAX_REPEATS} (default: 30)")
    benchmark.add_argument("--rounds", type=whole_number(1, MAX_ROUNDS), default=ROUNDS,
                           help=f"rounds, the runs timed in turns in each; a run's figure is the median of its "
                                f"rounds, 1..{MAX_ROUNDS} (default: {ROUNDS})")
    benchmark.add_argument("--threads", type=int, help="TensorFlow threads (default: TensorFlow's, every core)")
    add_artifacts(benchmark)
    benchmark.set_defaults(handler=cmd_benchmark)




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


def measure_runs(runs: list[Run], repeats: int, rounds: int) -> tuple[dict[str, dict], dict[str, str]]:
    """Load every run's model, time them all in turns (``measure_interleaved``) and rewrite each
    one's latency.json; the new records by run, and the runs not measured with the reason."""
    import keras

    from training.fit.latency import measure_interleaved
    from training.runs.latency import BENCHMARK_PASS, write_latency

    models, failed = {}, {}
    for run in runs:
        try:
            models[run.name] = (_load_model(run), run.input_size)
        except ArtifactError as error:
            failed[run.name] = str(error)
    try:
        records = measure_interleaved(models, repeats, rounds, how=BENCHMARK_PASS) if models else {}
    finally:
        models.clear()
        keras.backend.clear_session()
    by_name = {run.name: run for run in runs}
    for name, record in records.items():
        write_latency(by_name[name].path, record)
    return records, failed


def measure_run(run: Run, repeats: int, rounds: int = 1) -> dict:
    """Measure ``run``'s model alone and rewrite its latency.json; the new record."""
    records, failed = measure_runs([run], repeats, rounds)
    if failed:
        raise ArtifactError(failed[run.name])
    return records[run.name]


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
    from training.fit.latency import check_counts, cpu_cores, load_average, set_threads
    from training.runs.latency import BENCHMARK_PASS, busy, busy_text, conditions_text, sample_text

    check_counts(args.repeats, args.rounds)  # also when called without the parser
    set_threads(args.threads)  # before TensorFlow runs anything
    runs = _runs(args.runs, args.artifacts)
    if not runs:
        print("no runs yet: python -m training train CONFIG")
        return 0
    load, cores = load_average(), cpu_cores()
    if busy(load, cores):
        print(f"warning: the machine is busy (load average {load:.1f} on {cores} cores): figures will be "
              "pessimistic; measure again when it is quiet", file=sys.stderr)
    measured, before = [], {}
    for run in runs:
        try:
            if run.metrics.get("source") == IMPORTED:
                print(f"{run.name}: skipped, imported predictions have no model (their figure was given at import)")
                continue
            before[run.name] = _before(run)
        except ArtifactError as error:
            print(f"{run.name}: not measured: {error}")
            continue
        measured.append(run)
    records, failed = measure_runs(measured, args.repeats, args.rounds) if measured else ({}, {})
    rows = []
    for run in measured:
        if run.name in failed:
            print(f"{run.name}: not measured: {failed[run.name]}")
            continue
        record = records[run.name]
        rows.append({"run": run.name, "before (how)": before[run.name], "median ms": f"{record['median_ms']:.1f}",
                     "p10-p90 ms": f"{record['p10_ms']:.1f}-{record['p90_ms']:.1f}",
                     "conditions": f"{sample_text(record)}, {conditions_text(record)}"
                                   + (f", busy ({busy_text(record)})" if record["busy"] else "")})
        if not args.quiet:
            print(f"{run.name}: {record['median_ms']:.1f} ms", flush=True)
    if rows:
        print(format_table(rows))
        print(f"rewrote latency.json of {len(rows)} run{'s' if len(rows) != 1 else ''} "
              f"({BENCHMARK_PASS}, {args.rounds} interleaved rounds of {args.repeats} calls, {os.uname().nodename})")
    not_measured = len(measured) - len(rows) + sum(1 for run in runs if run.name not in before
                                                    and run.metrics.get("source") != IMPORTED)
    return EXIT_NOT_MEASURED if not_measured else 0
