"""``python -m training ...``: the command line of the training package.

Every command fails with one line naming the problem (a bad file, a missing folder, a value out
of range), never a traceback, and exits with status 2; ``data check`` exits with 1 when it found
bad files. A bad option value is refused before any work (argparse's usage error, status 2); a
damaged run file is an ``ArtifactError`` that names the run and the file; an operating system error
names its file (the target of a rename, not the temporary file); a ``--set`` value that is not plain
YAML is named.

One module per command group registers its commands and handles them, importing what a command
needs (TensorFlow, the evaluation, the run store) only when that command runs: ``data``,
``predictions`` (evaluate-masks, import-predictions, export-predictions), ``export``, ``train``
(train, evaluate), ``analysis`` (anatomy, rescore, confusions, compare), ``runs`` (runs, table, deploy),
``results`` (the runs' numbers for the docs), ``benchmark``, ``tags``, ``report`` (one HTML file to
send), ``temporal`` (temporal, video: a drive's flicker and its side-by-side video), ``sequences``
(predict-sequence, import-sequences) and ``sweep`` (many trainings as one job, locally or on Ray); ``common`` holds the
options they share and the exit codes.
"""

from __future__ import annotations

import argparse
import os
import sys

import yaml

from training.cli import (
    analysis,
    benchmark,
    data,
    export,
    predictions,
    report,
    results,
    runs,
    sweep,
    tags,
    temporal,
    train,
)
from training.cli import sequences as sequence_commands
from training.cli.common import EXIT_ERROR, check_overrides, yaml_problem
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
    results.add_results_parser,
    benchmark.add_benchmark_parser,
    tags.add_tags_parser,
    report.add_report_parser,
    temporal.add_temporal_parser,
    temporal.add_video_parser,
    sequence_commands.add_predict_sequence_parser,
    sequence_commands.add_import_sequences_parser,
    sweep.add_sweep_parser,
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
        check_overrides(getattr(args, "set", None))  # before TensorFlow takes seconds to start
        if args.command in TENSORFLOW_COMMANDS:
            from training.fit.predict import start_tensorflow_quietly  # the commands load it anyway

            start_tensorflow_quietly()
        return args.handler(args)
    except BrokenPipeError:  # `... | head` stopped reading: not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except (DatasetError, ArtifactError, ValueError, KeyError, OSError, yaml.YAMLError) as error:
        print(f"error: {error_message(error)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def error_message(error: Exception) -> str:
    """The one line that says what went wrong."""
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    if isinstance(error, OSError) and error.strerror:
        # A rename names the temporary file first and the file being written second: name the latter.
        name = error.filename2 if error.filename2 is not None else error.filename
        return f"{os.fsdecode(name)}: {error.strerror}" if name is not None else error.strerror
    if isinstance(error, yaml.YAMLError):  # config files and --set values are named before this
        return f"not valid YAML ({yaml_problem(error)})"
    return str(error)
