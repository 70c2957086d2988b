"""``python -m training export RUN``: a run's model converted for a device (TFLite)."""

from __future__ import annotations

from training.cli.common import add_artifacts


def add_export_parser(commands) -> None:
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
    export.add_argument("--replace", action="store_true",
                        help="replace an export of the same name (the old one stays whole, and served, until the new "
                        "one is)")
    export.add_argument("--data-root", help="the run's dataset, if it moved")
    add_artifacts(export)
    export.set_defaults(handler=cmd_export)


def cmd_export(args) -> int:
    from training.fit.tflite_export import export_tflite, format_export

    report = export_tflite(args.run, args.quantize, args.name, args.calibration_images, args.artifacts,
                           args.data_root, args.threads, args.latency_runs, replace=args.replace,
                           format=args.format, progress=not args.quiet)
    print(format_export(report))
    return 0
