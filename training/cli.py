"""``python -m training ...``: the command line of the training package.

Every command fails with one line naming the problem (a bad file, a missing folder), never a
traceback, and exits with status 2; ``data check`` exits with 1 when it found bad files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from training.cli_latency import add_parser as add_benchmark_parser
from training.cli_latency import latency_line, start_tensorflow_quietly
from training.cli_tags import add_parser as add_tags_parser
from training.data.cityscapes import DatasetError, resolve_data_root
from training.data.labels import CLASS_SET_NAMES
from training.evaluation.formats import FORMATS
from training.evaluation.masks import RESIZE_CHOICES
from training.runs.store import ANATOMY, ArtifactError

EXIT_BAD_FILES, EXIT_ERROR = 1, 2


def _add_data_root(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", help="dataset in the Cityscapes layout "
                        "(default: $CITYSCAPES_DATASET, else the embedded dataset)")
    parser.add_argument("--index", help="index file (default: <data root>/segmentation_index.csv)")


def _add_classes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--classes", choices=CLASS_SET_NAMES, default="categories8",
                        help="class set (default: categories8)")


def _add_prediction_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("auto", *FORMATS), default="auto",
                        help="labelIds (official), trainIds (255 = no class) or color (official palette); "
                        "default: detected from the first file, and said")
    parser.add_argument("--resize", choices=RESIZE_CHOICES,
                        help="scale predictions of another size to the ground truth (default: an error)")


def _load_index(args):
    from training.data.index import load_or_build_index
    return load_or_build_index(resolve_data_root(args.data_root), args.index)


def cmd_data_make(args) -> int:
    from training.data.synthetic import make_dataset

    summary = make_dataset(args.out, train=args.train, val=args.val, height=args.height,
                           width=args.width, seed=args.seed, workers=args.workers,
                           progress=not args.quiet)
    from training.data.index import load_or_build_index
    index = load_or_build_index(Path(args.out))
    print(f"wrote {summary['images']} images to {args.out} in {summary['seconds']:.1f} s "
          f"({summary['images_per_second']:.0f} images/s); indexed: "
          + ", ".join(f"{k} {v}" for k, v in index.counts().items()))
    return 0


def cmd_data_index(args) -> int:
    from training.data.index import index_path_for, load_or_build_index

    root = resolve_data_root(args.data_root)
    path = index_path_for(root, args.index)
    if args.rebuild and path.exists():
        path.unlink()  # explicit request: new ids and splits from the given seed and ratios
    index = load_or_build_index(root, args.index, seed=args.seed, validation_ratio=args.validation_ratio,
                                sample_ratio=args.sample_ratio)
    print(f"{path}: {len(index)} images, ids 0..{index.next_id - 1}; "
          + ", ".join(f"{k} {v}" for k, v in index.counts().items()))
    return 0


def cmd_data_check(args) -> int:
    from training.data.summary import format_summary, summarize_dataset
    from training.files import write_json_atomic

    summary = summarize_dataset(_load_index(args), args.classes, args.workers, progress=not args.quiet)
    print(format_summary(summary))
    if args.json:
        write_json_atomic(args.json, summary)
    return EXIT_BAD_FILES if summary["problems"] else 0


def cmd_data_preview(args) -> int:
    from training.viz import write_contact_sheet

    out = write_contact_sheet(_load_index(args), Path(args.out), args.count, args.split, args.classes)
    print(f"wrote {out}")
    return 0


def cmd_evaluate_masks(args) -> int:
    from training.evaluation.anatomy import format_anatomy
    from training.evaluation.masks import evaluate_masks, format_report
    from training.files import write_json_atomic

    result = evaluate_masks(Path(args.gt_root), Path(args.pred_dir), args.split, args.classes,
                            args.workers, progress=not args.quiet, index_path=args.index, format=args.format,
                            resize=args.resize, partial=args.partial, boundary_ratio=args.boundary_ratio)
    print(format_report(result))
    print(format_anatomy(result))
    if args.json:
        write_json_atomic(args.json, result)
        print(f"wrote {args.json}")
    return 0


def cmd_import_predictions(args) -> int:
    from training.evaluation.anatomy import format_anatomy
    from training.runs.imported import import_predictions

    run_dir, metrics = import_predictions(
        args.pred_dir, args.name, args.data_root, args.index, args.classes, args.format, args.split, args.resize,
        args.model, args.params, args.inference_ms, args.artifacts, args.workers, progress=not args.quiet)
    coverage, imported = metrics["coverage"], metrics["import"]
    print(f"predictions: {imported['format']} ({imported['format_reason']})")
    if imported["resized_images"]:
        print(f"{imported['resized_images']} predictions scaled to the ground truth (nearest)")
    print(f"scored {coverage['images']} of {coverage['split_images']} {metrics['split']} images in "
          f"{imported['seconds']:.1f} s ({imported['ms_per_image']:.1f} ms/image): mIoU {_rounded(metrics['miou'])}, "
          f"official-compatible {_rounded(metrics['miou_official'])}")
    print(format_anatomy(json.loads((run_dir / ANATOMY).read_text())))
    print(f"published {run_dir}")
    return 0


def cmd_export_predictions(args) -> int:
    from training.runs.exported import export_predictions

    done = export_predictions(args.run, args.out, args.format, args.artifacts, args.data_root,
                              progress=not args.quiet)
    print(f"wrote {done['images']} {done['split']} predictions of {done['run']} as {done['format']} to {done['out']}")
    if done["format"] == "labelIds":
        print(f"official score: python scripts/official_pixel_eval.py --data-root <data root> "
              f"--results {done['out']}")
    return 0


def cmd_export(args) -> int:
    from training.fit.tflite_export import export_tflite, format_export

    report = export_tflite(args.run, args.quantize, args.name, args.calibration_images, args.artifacts,
                           args.data_root, args.threads, args.latency_runs, replace=args.replace,
                           format=args.format, progress=not args.quiet)
    print(format_export(report))
    return 0


def _rounded(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def cmd_train(args) -> int:
    from training.evaluation.anatomy import format_anatomy
    from training.fit.config import load_config
    from training.fit.runner import train

    config = load_config(args.config, args.set or [])
    run_dir = train(config, args.artifacts, resume=args.resume, verbose=0 if args.quiet else 1)
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
    from training.runs.store import get_run

    run = get_run(args.run, args.artifacts)
    dataset = run.data_settings.open(args.data_root)
    predictor = Predictor.load(run)
    result = evaluate_model(predictor.model, dataset.root, dataset.index.split(args.split), dataset.class_set,
                            predictor.size, progress=not args.quiet)
    summary = {**result["summary"], "split": args.split, "per_image": result["per_image"],
               "calibration": result["calibration"]}
    summary.update(anatomy_document(result["anatomy"], args.split))
    print(format_report(summary))
    print(f"{'ECE (15 bins)':<28}{_rounded(result['calibration']['ece'])}")
    print(format_anatomy(summary))
    if args.json:
        write_json_atomic(args.json, summary)
    return 0


def cmd_anatomy(args) -> int:
    from training.evaluation.anatomy import format_anatomy
    from training.runs.anatomy import anatomize_run
    from training.runs.store import get_run

    run = get_run(args.run, args.artifacts)
    summary = anatomize_run(run, args.data_root, args.ratio, args.replace, progress=not args.quiet)
    print(f"run {run.name}: error anatomy of {summary['images']} {summary['split']} images "
          f"in {summary['seconds']:.1f} s")
    print(format_anatomy(summary))
    return 0


def cmd_table(args) -> int:
    from training.files import write_text_atomic
    from training.runs.summary import run_summaries, table_rows, to_csv, to_markdown

    rows = table_rows(run_summaries(args.artifacts))
    text = to_csv(rows) if args.format == "csv" else to_markdown(rows)
    if args.out:
        write_text_atomic(args.out, text + ("" if text.endswith("\n") else "\n"))
    print(text)
    return 0


def cmd_deploy(args) -> int:
    from training.runs.store import best_run, deploy

    if (args.run is None) == (not args.best):
        raise ValueError("deploy takes a run name or --best (the highest validation mIoU)")
    name = args.run or best_run(args.artifacts).name
    if args.export:
        from training.runs.exports import deploy_export

        record = deploy_export(name, args.export, args.artifacts)
        print(f"deployed {record['run']}, export {record['export']} ({record['export_file']}, "
              f"{record['export_quantize']}; test mIoU {_rounded(record['export_miou'])})")
        return 0
    record = deploy(name, args.artifacts)
    print(f"deployed {record['run']} (test mIoU {_rounded(record['miou_test'])})")
    return 0


def cmd_runs(args) -> int:
    from training.runs.summary import coverage_text, run_summaries

    summaries = run_summaries(args.artifacts)
    if not summaries:
        print("no runs yet: python -m training train CONFIG")
    for s in summaries:
        if "error" in s:
            print(f"! {s['run']:<48} unreadable: {s['error']}")
            continue
        miou = "  n/a" if s["miou"] is None else f"{s['miou']:.3f}"
        params = "" if s["params"] is None else f"{s['params']:>10,} params"
        covered = coverage_text(s)
        extra = "  imported" + (f", {covered} images" if covered else "") if s["source"] == "imported" else ""
        latency = "" if s["inference_ms"] is None else f"  {s['inference_ms']:.1f} ms ({s['latency_measured']})"
        print(f"{'*' if s['deployed'] else ' '} {s['run']:<48} {s['model'] or '':<11} {s['split'] or ''} mIoU "
              f"{miou}  {params:>17}{latency}{extra}")
    return 0


def cmd_compare(args) -> int:
    from training.evaluation.significance import compare_runs, format_comparison
    from training.files import write_json_atomic
    from training.runs.store import get_run

    result = compare_runs(get_run(args.run_a, args.artifacts), get_run(args.run_b, args.artifacts),
                          args.resamples, args.seed)
    print(format_comparison(result))
    if args.json:
        write_json_atomic(args.json, result)
        print(f"wrote {args.json}")
    return 0


def _add_artifacts(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--artifacts", help="run store (default: $ARTIFACTS_DIR, else artifacts/)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.splitlines()[0])
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data", help="make, index, check or preview a dataset")
    data_commands = data.add_subparsers(dest="data_command", required=True)

    make = data_commands.add_parser("make", help="generate the embedded street-scene dataset")
    make.add_argument("--out", required=True, help="output folder (Cityscapes layout)")
    make.add_argument("--train", type=int, default=300, help="images in the official train split")
    make.add_argument("--val", type=int, default=100, help="images in the official val split")
    make.add_argument("--height", type=int, default=256)
    make.add_argument("--width", type=int, default=512)
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    make.set_defaults(handler=cmd_data_make)

    index = data_commands.add_parser("index", help="assign ids and splits (keeps existing ids)")
    _add_data_root(index)
    index.add_argument("--seed", type=int, default=0, help="seed of the splits (new index only)")
    index.add_argument("--validation-ratio", type=float, default=0.2,
                       help="share of official train used for validation (new index only)")
    index.add_argument("--sample-ratio", type=float, default=0.1, help="size of the *_sample subsets")
    index.add_argument("--rebuild", action="store_true", help="discard the saved index: ids change")
    index.set_defaults(handler=cmd_data_index)

    check = data_commands.add_parser("check", help="decode every file; summary and bad files")
    _add_data_root(check)
    _add_classes(check)
    check.add_argument("--workers", type=int, default=None)
    check.add_argument("--json", help="also write the summary as JSON")
    check.set_defaults(handler=cmd_data_check)

    preview = data_commands.add_parser("preview", help="contact sheet PNG: photo | ground truth | overlay")
    _add_data_root(preview)
    _add_classes(preview)
    preview.add_argument("--out", default="docs/dataset_preview.png")
    preview.add_argument("--split", default="train")
    preview.add_argument("--count", type=int, default=6)
    preview.set_defaults(handler=cmd_data_preview)

    evaluate = commands.add_parser("evaluate-masks", help="IoU of labelId prediction PNGs vs ground truth")
    evaluate.add_argument("--gt-root", required=True, help="ground truth in the Cityscapes layout")
    evaluate.add_argument("--pred-dir", required=True,
                          help="PNGs of labelIds, matched by <city>_<seq>_<frame> in their names")
    evaluate.add_argument("--split", default="test",
                          help="test (= official val, default), validation, train, *_sample or all")
    _add_classes(evaluate)
    evaluate.add_argument("--index", help="index file of the ground truth")
    evaluate.add_argument("--workers", type=int, default=None, help="decoding threads (default: all cores)")
    _add_prediction_format(evaluate)
    evaluate.add_argument("--partial", action="store_true",
                          help="score the images that have a prediction (default: a missing one is an error)")
    evaluate.add_argument("--boundary-ratio", type=float, default=0.005,
                          help="Boundary IoU width as a share of the image diagonal (default: 0.005)")
    evaluate.add_argument("--json", help="also write per-class IoU, means, Boundary IoU, iIoU and per-image "
                          "scores as JSON")
    evaluate.set_defaults(handler=cmd_evaluate_masks)

    imports = commands.add_parser("import-predictions",
                                  help="another tool's prediction PNGs as a run (no model; the dashboard shows it)")
    imports.add_argument("--pred-dir", required=True,
                         help="PNGs matched by <city>_<seq>_<frame> in their names, anywhere under it")
    imports.add_argument("--name", required=True, help="run name")
    _add_data_root(imports)
    _add_classes(imports)
    _add_prediction_format(imports)
    imports.add_argument("--split", default="test", help="the split the predictions are of (default: test "
                         "= official val); a file for another image is an error, missing images are allowed")
    imports.add_argument("--model", help="what made the predictions (shown as the run's model)")
    imports.add_argument("--params", type=int, help="the model's parameter count, if known")
    imports.add_argument("--inference-ms", type=float, help="the model's time per image, if known")
    imports.add_argument("--workers", type=int, default=None, help="decoding threads (default: all cores)")
    _add_artifacts(imports)
    imports.set_defaults(handler=cmd_import_predictions)

    exports = commands.add_parser("export-predictions",
                                  help="a run's predictions in the official submission layout")
    exports.add_argument("run")
    exports.add_argument("--out", required=True, help="new (or empty) folder")
    exports.add_argument("--format", choices=FORMATS, default="labelIds",
                         help="labelIds (official, default), trainIds or color")
    exports.add_argument("--data-root", help="the run's dataset, if it moved")
    _add_artifacts(exports)
    exports.set_defaults(handler=cmd_export_predictions)

    export = commands.add_parser("export", help="convert a run's model for a device (TFLite), with its per-class "
                                 "IoU change and latency")
    export.add_argument("run")
    export.add_argument("--format", choices=("tflite",), default="tflite")
    export.add_argument("--quantize", choices=("none", "float16", "int8"), default="none",
                        help="none (float32), float16 weights, or int8 (full-integer, calibrated on train images)")
    export.add_argument("--name", help="export name (default: tflite-float32, tflite-float16 or tflite-int8)")
    export.add_argument("--calibration-images", type=int, default=100,
                        help="int8: images of the run's training split to calibrate on (default: 100)")
    export.add_argument("--threads", type=int, help="interpreter threads (default: all cores)")
    export.add_argument("--latency-runs", type=int, default=50, help="timed runs, the median is kept (default: 50)")
    export.add_argument("--replace", action="store_true", help="replace an export of the same name")
    export.add_argument("--data-root", help="the run's dataset, if it moved")
    _add_artifacts(export)
    export.set_defaults(handler=cmd_export)

    train = commands.add_parser("train", help="train a config, evaluate it, publish the run")
    train.add_argument("config", help="YAML config (see configs/)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run of this config")
    _add_artifacts(train)
    train.set_defaults(handler=cmd_train)

    run_eval = commands.add_parser("evaluate", help="evaluate a published run on a split")
    run_eval.add_argument("run")
    run_eval.add_argument("--split", default="test")
    run_eval.add_argument("--data-root")
    run_eval.add_argument("--json", help="also write the result as JSON")
    _add_artifacts(run_eval)
    run_eval.set_defaults(handler=cmd_evaluate)

    anatomy = commands.add_parser("anatomy", help="add the error anatomy (Boundary IoU, iIoU, objects, "
                                  "errors in the frame) to a run evaluated before it, from its stored predictions")
    anatomy.add_argument("run")
    anatomy.add_argument("--ratio", type=float, default=0.005,
                         help="boundary width as a share of the image diagonal (default: 0.005)")
    anatomy.add_argument("--replace", action="store_true", help="compute it again if the run has one")
    anatomy.add_argument("--data-root")
    _add_artifacts(anatomy)
    anatomy.set_defaults(handler=cmd_anatomy)

    table = commands.add_parser("table", help="comparison table of all runs")
    table.add_argument("--format", choices=("markdown", "csv"), default="markdown")
    table.add_argument("--out", help="also write it to this file")
    _add_artifacts(table)
    table.set_defaults(handler=cmd_table)

    deploy = commands.add_parser("deploy", help="make a run the one the API serves")
    deploy.add_argument("run", nargs="?")
    deploy.add_argument("--best", action="store_true", help="the run with the highest validation mIoU")
    deploy.add_argument("--export", metavar="NAME", help="serve this TFLite export of the run "
                        "(python -m training export) instead of its Keras model")
    _add_artifacts(deploy)
    deploy.set_defaults(handler=cmd_deploy)

    compare = commands.add_parser("compare", help="is run B better than run A, or noise? (paired bootstrap "
                                  "over the images both evaluated)")
    compare.add_argument("run_a", metavar="A")
    compare.add_argument("run_b", metavar="B")
    compare.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples (default: 1000)")
    compare.add_argument("--seed", type=int, default=0, help="seed of the resamples (default: 0)")
    compare.add_argument("--json", help="also write the result as JSON")
    _add_artifacts(compare)
    compare.set_defaults(handler=cmd_compare)

    runs = commands.add_parser("runs", help="list the runs (* = deployed)")
    _add_artifacts(runs)
    runs.set_defaults(handler=cmd_runs)
    add_benchmark_parser(commands, _add_artifacts)
    add_tags_parser(commands, _add_artifacts, _add_data_root)
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


if __name__ == "__main__":
    sys.exit(main())
