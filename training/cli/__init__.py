"""``python -m training ...``: the command line of the training package.

Every command fails with one line naming the problem (a bad file, a missing folder), never a
traceback, and exits with status 2; ``data check`` exits with 1 when it found bad files.

One module per command group registers its commands and handles them, importing what a command
needs (TensorFlow, the evaluation, the run store) only when that command runs: ``data``,
``predictions`` (evaluate-masks, import-predictions, export-predictions), ``export``, ``train``
(train, evaluate), ``analysis`` (anatomy, rescore, confusions, compare), ``runs`` (runs, table, deploy),
``benchmark``
and ``tags``; ``common`` holds the options they share and the exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys

from training.cli import analysis, benchmark, data, export, predictions, runs, tags, train
from training.cli.benchmark import start_tensorflow_quietly
from training.cli.common import EXIT_ERROR
from training.data.cityscapes import DatasetError
from training.runs.layout import ArtifactError

# Every command, in the order ``--help`` lists them.
COMMANDS = (
    data.add_data_parser,
    predictions.add_evaluate_masks_parser,
    predictions.add_import_predictions_parser,
    predictions.add_export_predictions_parser,
    export.add_export_parser,
    train.add_train_parser,
    train.add_evaluate_parser,
    analysis.add_anatomy_parser,
    analysis.add_rescore_parser,
    analysis.add_confusions_parser,
    runs.add_table_parser,
    runs.add_deploy_parser,
    analysis.add_compare_parser,
    runs.add_runs_parser,
    benchmark.add_benchmark_parser,
    tags.add_tags_parser,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True)
    for add_parser in COMMANDS:
        add_parser(commands)
    return parser


TENSORFLOW_COMMANDS = ("train", "evaluate", "export", "benchmark")  # started quietly first


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command in TENSORFLOW_COMMANDS:
            start_tensorflow_quietly()
        return args.handler(args)
    except BrokenPipeError:  # `... | head` stopped reading: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except (DatasetError, ArtifactError, ValueError, KeyError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
