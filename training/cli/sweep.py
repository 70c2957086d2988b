"""``python -m training sweep INPUT... [--grid KEY=V1,V2] [--set KEY=VALUE] [--engine local|ray]``:
many trainings as one job, then the comparison table of their runs (``training/sweep``)."""

from __future__ import annotations

from training.cli.common import EXIT_BAD_FILES, add_artifacts


def add_sweep_parser(commands) -> None:
    sweep = commands.add_parser("sweep", help="train many configs (x grids) locally or on a Ray cluster")
    sweep.add_argument("inputs", nargs="+", metavar="CONFIG", help="config files or folders of them")
    sweep.add_argument("--grid", action="append", metavar="KEY=V1,V2", help="one trial per value (repeatable: "
                       "every combination)")
    sweep.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a key in every trial")
    sweep.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: one trial after another here (default); ray: Ray tasks")
    sweep.add_argument("--address", help="ray: address of an existing cluster (default: a local Ray on this "
                       "machine's cores)")
    sweep.add_argument("--cpus-per-trial", type=float, default=1, help="ray: CPUs a trial reserves (default 1)")
    sweep.add_argument("--gpus-per-trial", type=float, default=0, help="ray: GPUs a trial reserves (default 0)")
    sweep.add_argument("--resume", action="store_true", help="skip trials already published with the same config")
    add_artifacts(sweep)
    sweep.set_defaults(handler=cmd_sweep)


def cmd_sweep(args) -> int:
    from training.sweep.sweep import run_sweep

    outcomes = run_sweep(args.inputs, args.grid or [], args.set or [], args.engine, args.artifacts, args.resume,
                         args.address, args.cpus_per_trial, args.gpus_per_trial)
    return 0 if all(outcome.ok for outcome in outcomes) else EXIT_BAD_FILES
