"""``python -m training results``: the demo runs' numbers as one results file, which the
documentation's tables are generated from (``training.runs.results``)."""

from __future__ import annotations

import os
import shlex
import sys

from training.cli.common import add_artifacts

DEFAULT_OUT = "bench/results/demo_runs.json"


def add_results_parser(commands) -> None:
    results = commands.add_parser("results", help="write the runs' numbers to one JSON results file (for the docs)")
    results.add_argument("--out", default=DEFAULT_OUT, help=f"the file to write (default: {DEFAULT_OUT})")
    results.add_argument("--data-root", help="the dataset the runs were evaluated on, for its split sizes, "
                         "fingerprint and drives (default: $CITYSCAPES_DATASET, else the embedded dataset)")
    add_artifacts(results)
    results.set_defaults(handler=cmd_results)


def cmd_results(args) -> int:
    from training.data.cityscapes import DatasetError, resolve_data_root
    from training.files import write_json_atomic
    from training.runs.results import demo_results

    try:
        data_root = resolve_data_root(args.data_root)
    except DatasetError:
        data_root = None  # the runs' numbers do not need the data: the file says it has none
    document = demo_results(args.artifacts, data_root, measuring_command())
    write_json_atomic(args.out, document)
    whole = [run for run in document["runs"] if "error" not in run]
    print(f"wrote {args.out}: {len(whole)} runs" + "".join(
        f"\n  unreadable run {run['run']}: {run['error']}" for run in document["runs"] if "error" in run))
    return 0


def measuring_command() -> str:
    """The command that measures the numbers: ``make models`` when make runs this (it trains the runs
    first), else this command line."""
    if os.environ.get("MAKELEVEL"):
        return "make models"
    return shlex.join(["python", "-m", "training", *sys.argv[1:]])
