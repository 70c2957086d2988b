"""Prediction PNGs made elsewhere, and a run's predictions for elsewhere: ``python -m training
evaluate-masks``, ``import-predictions`` and ``export-predictions``."""

from __future__ import annotations

import json
from pathlib import Path

from training.cli.common import (
    add_artifacts,
    add_classes,
    add_data_root,
    add_prediction_format,
    boundary_ratio,
    check_output,
    rounded,
)
from training.evaluation.formats import FORMATS
from training.runs.layout import ANATOMY


def add_evaluate_masks_parser(commands) -> None:
    evaluate = commands.add_parser("evaluate-masks", help="IoU of labelId prediction PNGs vs ground truth")
    evaluate.add_argument("--gt-root", required=True, help="ground truth in the Cityscapes layout")
    evaluate.add_argument("--pred-dir", required=True,
                          help="PNGs of labelIds, matched by <city>_<seq>_<frame> in their names")
    evaluate.add_argument("--split", default="test",
                          help="test (= official val, default), validation, train, *_sample or all")
    add_classes(evaluate)
    evaluate.add_argument("--index", help="index file of the ground truth")
    evaluate.add_argument("--workers", type=int, default=None,
                          help="threads that decode and score images (default: every core)")
    add_prediction_format(evaluate)
    evaluate.add_argument("--partial", action="store_true",
                          help="score the images that have a prediction (default: a missing one is an error)")
    evaluate.add_argument("--boundary-ratio", type=boundary_ratio, default=0.005,
                          help="Boundary IoU width as a share of the image diagonal, above 0 and at most 1 "
                          "(default: 0.005)")
    evaluate.add_argument("--no-anatomy", dest="anatomy", action="store_false",
                          help="pixel IoU only: no Boundary IoU, iIoU or errors in the frame (about twice as fast)")
    evaluate.add_argument("--json", help="also write per-class IoU, means, Boundary IoU, iIoU and per-image "
                          "scores as JSON (an existing file is replaced)")
    evaluate.set_defaults(handler=cmd_evaluate_masks)


def add_import_predictions_parser(commands) -> None:
    imports = commands.add_parser("import-predictions",
                                  help="another tool's prediction PNGs as a run (no model; the dashboard shows it)")
    imports.add_argument("--pred-dir", required=True,
                         help="PNGs matched by <city>_<seq>_<frame> in their names, anywhere under it")
    imports.add_argument("--name", required=True, help="run name")
    add_data_root(imports)
    add_classes(imports)
    add_prediction_format(imports)
    imports.add_argument("--split", default="test", help="the split the predictions are of (default: test "
                         "= official val); a file for another image is an error, missing images are allowed")
    imports.add_argument("--model", help="what made the predictions (shown as the run's model)")
    imports.add_argument("--params", type=int, help="the model's parameter count, if known")
    imports.add_argument("--inference-ms", type=float, help="the model's time per image, if known")
    imports.add_argument("--workers", type=int, default=None, help="decoding threads (default: all cores)")
    imports.add_argument("--sequence-dir", help="the same tool's predictions of drive sequences' frames (another "
                         "folder), imported with the run as `import-sequences` does: every sequence with a file "
                         "there, each whole")
    add_artifacts(imports)
    imports.set_defaults(handler=cmd_import_predictions)


def add_export_predictions_parser(commands) -> None:
    exports = commands.add_parser("export-predictions",
                                  help="a run's predictions in the official submission layout")
    exports.add_argument("run")
    exports.add_argument("--out", required=True, help="new (or empty) folder")
    exports.add_argument("--format", choices=FORMATS, default="labelIds",
                         help="labelIds (official, default), trainIds or color")
    exports.add_argument("--data-root", help="the run's dataset, if it moved")
    add_artifacts(exports)
    exports.set_defaults(handler=cmd_export_predictions)


def cmd_evaluate_masks(args) -> int:
    from training.evaluation.anatomy import format_anatomy
    from training.evaluation.masks import evaluate_masks, format_report
    from training.files import write_json_atomic

    check_output(args.json, "--json")
    result = evaluate_masks(Path(args.gt_root), Path(args.pred_dir), args.split, args.classes,
                            args.workers, progress=not args.quiet, index_path=args.index, format=args.format,
                            resize=args.resize, partial=args.partial, boundary_ratio=args.boundary_ratio,
                            anatomy=args.anatomy)
    print(format_report(result))
    if args.anatomy:
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
        args.model, args.params, args.inference_ms, args.artifacts, args.workers, progress=not args.quiet,
        sequence_dir=args.sequence_dir)
    coverage, imported = metrics["coverage"], metrics["import"]
    print(f"predictions: {imported['format']} ({imported['format_reason']})")
    if imported["resized_images"]:
        print(f"{imported['resized_images']} predictions scaled to the ground truth (nearest)")
    print(f"scored {coverage['images']} of {coverage['split_images']} {metrics['split']} images in "
          f"{imported['seconds']:.1f} s ({imported['ms_per_image']:.1f} ms/image): mIoU {rounded(metrics['miou'])}, "
          f"official-compatible {rounded(metrics['miou_official'])}")
    print(format_anatomy(json.loads((run_dir / ANATOMY).read_text())))
    if imported.get("sequences"):
        print(f"sequences: {', '.join(imported['sequences'])} (their frames, with temporal consistency)")
    print(f"published {run_dir}")
    return 0


def cmd_export_predictions(args) -> int:
    from training.runs.submission import export_predictions

    done = export_predictions(args.run, args.out, args.format, args.artifacts, args.data_root,
                              progress=not args.quiet)
    print(f"wrote {done['images']} {done['split']} predictions of {done['run']} as {done['format']} to {done['out']}")
    if done["format"] == "labelIds":
        print(f"official score: python scripts/official_pixel_eval.py --data-root <data root> "
              f"--results {done['out']}")
    return 0
