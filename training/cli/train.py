"""``python -m training train CONFIG`` and ``evaluate RUN``: train and publish a run, evaluate a
published one."""

from __future__ import annotations

import json

from training.cli.benchmark import latency_line
from training.cli.common import add_artifacts, check_output, rounded
from training.runs.layout import ANATOMY


def add_train_parser(commands) -> None:
    train = commands.add_parser("train", help="train a config, evaluate it, publish the run")
    train.add_argument("config", help="YAML config (see configs/)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run of this config")
    add_artifacts(train)
    train.set_defaults(handler=cmd_train)


def add_evaluate_parser(commands) -> None:
    run_eval = commands.add_parser("evaluate", help="evaluate a published run on a split")
    run_eval.add_argument("run")
    run_eval.add_argument("--split", default="test")
    run_eval.add_argument("--data-root")
    run_eval.add_argument("--json", help="also write the result as JSON")
    add_artifacts(run_eval)
    run_eval.set_defaults(handler=cmd_evaluate)


def cmd_train(args) -> int:
    from training.evaluation.anatomy import format_anatomy
    from training.fit.config import load_config
    from training.fit.runner import train

    config = load_config(args.config, args.set or [])
    run_dir = train(config, args.artifacts, resume=args.resume, verbose=0 if args.quiet else 1)
    if run_dir is None:  # a multi-worker run's other worker: the chief publishes
        return 0
    print(format_anatomy(json.loads((run_dir / ANATOMY).read_text())))
    print(latency_line(run_dir))
    print(f"published {run_dir}")
    return 0


def cmd_evaluate(args) -> int:
    from training.evaluation.anatomy import format_anatomy
    from training.evaluation.masks import format_report
    from training.files import write_json_atomic
    from training.fit.predict import Predictor, evaluate_model
    from training.runs.anatomy import anatomy_document
    from training.runs.reader import get_run

    check_output(args.json, "--json")  # before minutes of evaluation
    run = get_run(args.run, args.artifacts)
    dataset = run.data_settings.open(args.data_root)
    predictor = Predictor.load(run)
    result = evaluate_model(predictor.model, dataset.root, dataset.index.split(args.split), dataset.class_set,
                            predictor.size, progress=not args.quiet)
    summary = {**result["summary"], "split": args.split, "per_image": result["per_image"],
               "calibration": result["calibration"]}
    summary.update(anatomy_document(result["anatomy"], args.split))
    print(format_report(summary))
    print(f"{'ECE (15 bins)':<28}{rounded(result['calibration']['ece'])}")
    print(format_anatomy(summary))
    if args.json:
        write_json_atomic(args.json, summary)
    return 0
