"""Size, latency and mIoU of each run's Keras model and its TFLite exports (float32, float16,
int8), and the per-class IoU deltas of int8: the closing table of issue 14.

For every run of the store with a model (the demo runs by default), exports it three times with
``python -m training export``'s own function (into ``runs/<run>/exports/``, replacing earlier
exports of these names; the run's files are never touched). Then the four models of a run are
timed the same way in one process, interleaved: ``--rounds`` rounds, each timing Keras, float32,
float16 and int8 in turn (``predict_on_batch`` of one image of the evaluation split at the model's
size, batch 1, median of ``--latency-runs`` calls after 5 warm-up calls); the table gives the
best round (the least disturbed: on a shared machine, load only ever adds time) and the median
of the rounds. Interleaving keeps a burst of load from landing on one model only. TensorFlow's
and the interpreter's threads are both the machine's cores (``--threads``). mIoU: the run's
evaluation split at ground-truth resolution (metrics.json for Keras, the export's report).

    .venv/bin/python bench/bench_export.py [--runs RUN ...] [--reuse] [--rounds 5] [--latency-runs 20]
        [--calibration-images 100] [--threads N]

``--reuse`` reads the exports already there instead of making them again. Writes
``bench/results/export.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import training  # noqa: E402,F401
from bench.results_file import write_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
QUANTIZATIONS = ("none", "float16", "int8")


def timed_models(run, names: list[str], threads: int | None):
    """(label, model) of the run's Keras model and its exports ``names``, and the image to time."""
    from training.fit.tflite import TFLiteModel
    from training.fit.tflite_export import _model_inputs
    from training.models import load_model
    from training.runs.tflite_exports import export_model_path

    dataset = run.open_dataset()
    image = next(_model_inputs(dataset, dataset.index.split(run.metrics["split"])[:1], run.input_size)())[0]
    models = [("keras", load_model(run.model_path))]
    models += [(name, TFLiteModel.from_file(export_model_path(run, name), threads)) for name in names]
    return models, image


def interleaved_latency(models, image, rounds: int, runs: int) -> dict[str, list[float]]:
    """Per model, the median ms of each round; the models take turns within a round."""
    from training.fit.tflite import latency_ms
    from training.fit.tflite_export import LATENCY_WARMUP

    medians = {label: [] for label, _ in models}
    for _ in range(rounds):
        for label, model in models:
            medians[label].append(latency_ms(model, image, runs, LATENCY_WARMUP))
    return medians


def row(label: str, file_bytes: int, medians: list[float], scores: dict, changed, delta=None) -> dict:
    return {"model": label, "file_mb": file_bytes / 1e6, "latency_ms": float(np.min(medians)),
            "latency_median_ms": float(np.median(medians)),
            "latency_rounds_ms": medians, "miou": scores["miou"], "miou_official": scores["miou_official"],
            "changed_pixels": changed, "delta": delta}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", help="runs to measure (default: every run with a model.keras)")
    parser.add_argument("--artifacts", help="run store (default: $ARTIFACTS_DIR, else artifacts/)")
    parser.add_argument("--reuse", action="store_true", help="read existing exports instead of making them")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of interleaved timing (default: 5)")
    parser.add_argument("--latency-runs", type=int, default=20, help="timed calls per model and round (default: 20)")
    parser.add_argument("--calibration-images", type=int, default=100)
    parser.add_argument("--threads", type=int, default=None, help="default: all cores")
    args = parser.parse_args()

    from training.fit.tflite_export import export_tflite
    from training.runs.reader import get_run, list_runs
    from training.runs.tflite_exports import default_export_name, read_export

    names = args.runs or [run.name for run in list_runs(args.artifacts) if (run.path / "model.keras").exists()]
    threads = args.threads or os.cpu_count()
    results = {"cpu_count": os.cpu_count(), "threads": threads, "rounds": args.rounds,
               "latency_runs": args.latency_runs, "calibration_images": args.calibration_images, "runs": {}}
    for name in names:
        run = get_run(name, args.artifacts)
        reports = {}
        for quantize in QUANTIZATIONS:
            export = default_export_name(quantize)
            if args.reuse:
                reports[export] = read_export(run, export)
            else:
                reports[export] = export_tflite(name, quantize, artifacts=args.artifacts, threads=threads,
                                                calibration_images=args.calibration_images,
                                                latency_runs=args.latency_runs, replace=True, progress=False)
        models, image = timed_models(run, list(reports), threads)
        medians = interleaved_latency(models, image, args.rounds, args.latency_runs)
        rows = [row("keras", run.model_path.stat().st_size, medians["keras"], run.metrics, 0.0)]
        rows += [row(export, report["file_bytes"], medians[export], report, report["changed_pixels"]["share"],
                     report["delta"]) for export, report in reports.items()]
        for shown in rows:
            print(f"{name} {shown['model']}: {shown['file_mb']:.2f} MB, best {shown['latency_ms']:.2f} ms "
                  f"(rounds {', '.join(f'{m:.1f}' for m in shown['latency_rounds_ms'])}), mIoU {shown['miou']:.4f}",
                  flush=True)
        results["runs"][name] = {"model": run.metrics.get("model"), "backbone": run.metrics.get("backbone"),
                                 "input_size": list(run.input_size), "class_names": run.metrics["class_names"],
                                 "rows": rows}
    write_results("export", results)
    print(format_tables(results))


def format_tables(results: dict) -> str:
    lines = [f"threads {results['threads']} of {results['cpu_count']} cores, batch 1; ms/image: the best of "
             f"{results['rounds']} interleaved rounds (median of {results['latency_runs']} calls each), then the "
             "rounds' median and maximum; "
             f"int8 calibrated on {results['calibration_images']} train images", "",
             "| run | model | MB | ms/image (median, max) | mIoU | mIoU official | pixels changed |",
             "|---|---|---|---|---|---|---|"]
    for name, run in results["runs"].items():
        for shown in run["rows"]:
            rounds = shown["latency_rounds_ms"]
            latency = f"{shown['latency_ms']:.1f} ({shown['latency_median_ms']:.1f}, {max(rounds):.1f})"
            lines.append(f"| {name} | {shown['model']} | {shown['file_mb']:.2f} | {latency} | {shown['miou']:.4f} | "
                         f"{shown['miou_official']:.4f} | {100 * shown['changed_pixels']:.2f} % |")
    lines += ["", "int8: IoU export - IoU Keras per class", ""]
    for name, run in results["runs"].items():
        int8 = next(shown for shown in run["rows"] if shown["model"] == "tflite-int8")
        if name == next(iter(results["runs"])):
            lines += ["| run | " + " | ".join(run["class_names"]) + " |", "|---" * (len(run["class_names"]) + 1) + "|"]
        lines.append(f"| {name} | " + " | ".join("n/a" if int8["delta"].get(c) is None else f"{int8['delta'][c]:+.4f}"
                                                 for c in run["class_names"]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
