"""The tables of ``docs/benchmarks.md`` (and ``openapi``), each made from its ``bench/results`` file.

``TABLES`` maps a marker name to a function of the repository root returning Markdown; the tables
of the dashboard, the API and the exports are in ``bench_tables_ui.py``.
"""

from __future__ import annotations

from pathlib import Path

import bench_tables_ui
from openapi_table import openapi_markdown
from render import bench_results, cell, measured_line, measured_table, percent, table, times


def evaluation_masks(root: Path) -> str:
    results = bench_results(root, "evaluation")
    return measured_table(
        ["size (WxH)", "pairs", "label / prediction KB", "official ms/pair", "ours ms/pair", "speed-up",
         "ours `--no-anatomy` ms/pair", "speed-up", "the anatomy's share"],
        [[r["size"], r["pairs"], f"{r['label_png_kb']:.0f} / {r['prediction_png_kb']:.0f}", r["official_ms_per_pair"],
          r["ours_ms_per_pair"], times(r["speedup"]), r["ours_no_anatomy_ms_per_pair"], times(r["speedup_no_anatomy"]),
          percent(r["anatomy_share"])] for r in results["masks"]], results)


def evaluation_model(root: Path) -> str:
    results = bench_results(root, "evaluation")
    return measured_table(
        ["size (WxH)", "images", "model", "images/s", "ms/image", "without the anatomy: images/s", "ms/image",
         "the anatomy's share"],
        [[r["size"], r["images"], r["model"], r["images_per_second"], r["ms_per_image"],
          r["images_per_second_no_anatomy"], r["ms_per_image_no_anatomy"], percent(r["anatomy_share"])]
         for r in results["model"]], results)


def png_decoding(root: Path) -> str:
    results = bench_results(root, "png")
    return measured_table(
        ["file", "KB", "decoder", "ms, one thread", "two threads: files/s against one"],
        [[r["kind"], round(r["kb"]), r["decoder"], r["ms_one_thread"],
          "-" if r["two_threads_speedup"] is None else times(r["two_threads_speedup"])]
         for r in results["rows"] if r["ms_one_thread"] is not None], results)


def anatomy_parts(root: Path) -> str:
    results = bench_results(root, "anatomy")
    rows = [[share["size"], classes, parts["decode_ms"], parts["iou_ms"], parts["truth_ms"], parts["prediction_ms"],
             parts["objects_ms"], parts["anatomy_ms"], times(parts["anatomy_ms"] / parts["iou_ms"], 1)]
            for share in results["shares"] for classes, parts in share.items() if isinstance(parts, dict)]
    return measured_table(
        ["size (WxH)", "class set", "decode (labelIds, prediction, instanceIds)", "IoU part", "anatomy: truth maps",
         "pixels (bands, Boundary IoU counts, frame)", "objects (iIoU, boxes)", "anatomy in all",
         "anatomy / IoU part"], rows, results)


def anatomy_model(root: Path) -> str:
    results = bench_results(root, "anatomy")
    return measured_table(
        ["size (WxH)", "images", "ms/image without the anatomy", "with it", "the anatomy", "its share"],
        [[r["size"], r["images"], r["without_ms"], r["with_ms"], r["extra_ms"], percent(r["share"])]
         for r in results["model"]], results)


def import_export(root: Path) -> str:
    results = bench_results(root, "import")
    return measured_table(
        ["size (WxH)", "format", "PNG KB", "import ms/image", "evaluate-masks ms/image", "export ms/image", "mIoU"],
        [[r["size"], r["format"], r["prediction_png_kb"], r["import_ms_per_image"], r["evaluate_masks_ms_per_image"],
          r["export_ms_per_image"], f"{r['miou']:.3f}"] for r in results["rows"]], results)


def passes(milliseconds: list[float]) -> str:
    return ", ".join(f"{value:.1f}" for value in milliseconds)


def latency(root: Path) -> str:
    results = bench_results(root, "latency")
    rows = [[f"`{r['model']}`", passes(r["interleaved"]), percent(r["interleaved_difference"], 1),
             passes(r["one_by_one"]), percent(r["one_by_one_difference"], 1)] for r in results["rows"]]
    return measured_table(
        [f"model (`benchmark`: {results['rounds']} rounds of {results['repeats']} calls)",
         "interleaved: pass 1, pass 2 (ms)", "difference", "one model after the other: pass 1, pass 2", "difference"],
        rows, results)


def input_pipeline(resolution: str):
    def render(root: Path) -> str:
        results = bench_results(root, f"batches-{resolution}")
        rates = results["pipeline_images_per_s"]
        ratios = results["ratio_cached_over_training"]
        return measured_table(
            ["augmentation", "uncached images/s", "first epoch (fills the cache)", "cached",
             f"cached / training of `{results['fastest']}` "
             f"({results['batch_size'] / results['train_step_s'][results['fastest']]:.1f} images/s)"],
            [[name, rate["uncached"], rate["first_epoch"], rate["cached"], times(ratios[name], 1)]
             for name, rate in rates.items()], results)
    return render


def generation(resolution: str):
    def render(root: Path) -> str:
        results = bench_results(root, f"generation-{resolution}")
        return measured_table(
            [f"processes ({results['size']}, four PNGs an image)", "images", "seconds", "images/s", "photo MB"],
            [[r["workers"], r["images"], r["seconds"], r["images_per_second"],
              f"{r['photo_mb'][0]:.2f}-{r['photo_mb'][1]:.2f}"] for r in results["rows"]], results)
    return render


def training_speed(root: Path) -> str:
    results = bench_results(root, "training")
    return measured_table(
        ["config", "size (HxW)", "params", "train images/s", "inference ms/image", "load `model.keras` s"],
        [[f"`{r['config']}`", r["size"], r["params"], r["train_images_per_s"], r["inference_ms"], f"{r['load_s']:.2f}"]
         for r in results["rows"]], results)


def model_families(root: Path) -> str:
    results = bench_results(root, "models")
    built = [r for r in results["rows"] if "parameters" in r]
    rows = [[r["model"], r["backbone"] or "", r["size"], r["parameters"], r["source_parameters"],
             "-" if r["source_parameters"] is None else r["parameters"] == r["source_parameters"], r["build_seconds"]]
            for r in built]
    return measured_table(["model", "backbone", "input (HxW)", "parameters", "the source's table", "equal",
                           "build s"], rows, results)


def gpu(root: Path) -> str:
    results = bench_results(root, "gpu")
    sizes = [t["size"] for t in results["rows"][0]["training"]]
    rows = [[r["model"], r["params"], r["evaluation"]["demo"]["images_per_s"], r["evaluation"]["full"]["images_per_s"],
             r["forward"]["ms_batch_1"], r["forward"]["ms_per_image_batch_32"], r["forward"]["ms_batch_1_at_1024x2048"],
             *[t["images_per_s"] for t in r["training"]]] for r in results["rows"]]
    heads = ["model", "params", "evaluation 256x512 images/s", "evaluation 2048x1024 images/s",
             "forward ms (batch 1, model size)", "forward ms/image (batch 32)", "forward ms at 1024x2048",
             *[f"training images/s at {size}" for size in sizes]]
    notes = (f"Keras {results['keras']} on the `{results['backend']}` backend ({results['device']}), "
             f"{results['cores']} cores. " + "; ".join(results.get("passes", [])) + ".")
    return table(heads, rows) + "\n\n" + notes + "\n\n" + measured_line(results["measured"])


def report(root: Path) -> str:
    r = bench_results(root, "report")
    rows = [["runs x images shown", f"{r['runs']} x {r['images']} ({r['frames']} frames)"],
            ["build (median of rounds), s", f"{r['build_seconds_median']:.2f} ({passes(r['build_seconds'])})"],
            ["file MB", f"{r['file_mb']:.2f}"], ["of which plotly.js MB", f"{r['plotly_js_mb']:.2f}"],
            ["photos (JPEG) MB", f"{r['photos_jpeg_mb']:.2f}"], ["masks (PNG) MB", f"{r['masks_png_mb']:.2f}"],
            ["pictures", f"{r['pictures']} ({r['picture_width']} px wide)"]]
    return measured_table(["measure", "value"], rows, r)


def temporal(root: Path) -> str:
    results = bench_results(root, "temporal")
    flows, videos = [], []
    for resolution in ("demo", "full"):
        if resolution not in results:
            continue
        run = results[resolution]
        size = "x".join(map(str, reversed(run["size"])))
        default = run["temporal"]["default_flow_width"]
        flows += [[size, f"{f['flow_width']}" + (" (default)" if f["flow_width"] == default else ""),
                   f["frames_per_second"], f"{f['temporal_consistency']:.4f}", f"{f['flicker_rate']:.5f}",
                   f"{f['flickering_temporal_consistency']:.4f}", f"{f['flickering_flicker_rate']:.5f}",
                   f"{run['temporal']['target_frames_per_second']:.0f}"] for f in run["temporal"]["flow_widths"]]
        video = run["video"]
        videos.append([size, f"{video['width']}x{video['height']} {video['codec']}",
                       video["frames_per_second_from_arrays"], video["frames_per_second_from_files"],
                       f"{video['target_frames_per_second']:.0f}"])
    return "\n\n".join([
        table(["frames (WxH)", "flow width", "frames/s", "TC (steady drive)", "flicker rate", "TC (flickering drive)",
               "flicker rate", "target frames/s"], flows),
        table(["frames (WxH)", "video", "frames/s from arrays", "frames/s from the files", "target frames/s"], videos),
        measured_line(results["measured"])])


def paired_bootstrap(root: Path) -> str:
    results = bench_results(root, "compare")
    return measured_table(
        ["class set", "matrix", "images", "resamples", "`compare_runs` ms", "paired bootstrap ms", "mIoU difference",
         "95 % interval"],
        [[r["classes"], r["matrix"], r["images"], r["resamples"], r["compare_runs_ms"], r["paired_bootstrap_ms"],
          f"{r['miou_difference']:+.4f}", f"[{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}]"] for r in results["rows"]],
        results)


def raster(resolution: str):
    def render(root: Path) -> str:
        results = bench_results(root, f"raster-{resolution}")
        operations = table(
            [f"operation ({results['size']}, {results['images']} images)", "before ms", "now ms", "speed-up",
             "identical"],
            [[r["operation"], f"{r['old_ms']:.3f}", f"{r['new_ms']:.3f}", times(r["speedup"], 1), r["identical"]]
             for r in results["rows"]])
        pngs = table(["PNG encoder (a class mask)", "ms", "bytes"],
                     [[r["encoder"], f"{r['ms']:.2f}", f"{r['bytes']:,.0f}"] for r in results["png"]])
        return "\n\n".join([operations, pngs, measured_line(results["measured"])])
    return render


def scale_out(root: Path) -> str:
    """Multi-worker training (one epoch, 1 and 2 local workers) and the sweeps of the demo configs."""
    results = bench_results(root, "scale_out")
    training = table(["training, one epoch of `" + results["config"] + "`", "strategy", "s an epoch", "s in all"],
                     [[f"{r['workers']} worker" + ("s" if r["workers"] > 1 else ""), r["strategy"], r["epoch_s"],
                       r["wall_s"]] for r in results["training"]])
    parts = [training]
    if results["sweeps"]:
        parts.append(table(["sweep of the demo configs, one epoch each", "runs published", "s in all"],
                           [[f"`--engine {r['engine']}`", r["trials"], r["wall_s"]] for r in results["sweeps"]]))
        parts.append(f"A local Ray starts in {cell(results['ray_start_s'])} s (`ray.init` to ready).")
    return "\n\n".join([*parts, measured_line(results["measured"])])


TABLES = {
    "openapi": openapi_markdown,
    "evaluation-masks": evaluation_masks,
    "evaluation-model": evaluation_model,
    "png-decoding": png_decoding,
    "anatomy-parts": anatomy_parts,
    "anatomy-model": anatomy_model,
    "import-export": import_export,
    "latency": latency,
    "input-pipeline-demo": input_pipeline("demo"),
    "input-pipeline-full": input_pipeline("full"),
    "generation-demo": generation("demo"),
    "generation-full": generation("full"),
    "training-speed": training_speed,
    "gpu": gpu,
    "model-families": model_families,
    "report": report,
    "temporal": temporal,
    "paired-bootstrap": paired_bootstrap,
    "raster-demo": raster("demo"),
    "raster-full": raster("full"),
    "scale-out": scale_out,
    **bench_tables_ui.TABLES,
}
