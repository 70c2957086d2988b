"""The benchmark tables of what a user waits for: the dashboard's pages in AppTest and in chromium,
the side-by-side view, the Check labels scan, the gallery, the API, the TFLite exports."""

from __future__ import annotations

from pathlib import Path

from render import bench_results, measured_line, measured_table, table

SIZES = {"demo": "256x512", "full": "2048x1024"}


def dashboard_pages(root: Path) -> str:
    results = bench_results(root, "dashboard")
    runs = results["pages"]
    pages = list(runs[0]["warm_ms"])
    headers = ["page"] + [f"{SIZES.get(run['resolution'], run['resolution'])}: {when}" for run in runs
                          for when in ("first visit ms", "again (median) ms")]
    rows = [[page] + [value for run in runs
                      for value in (run["first_visit_ms"].get(page), run["warm_ms"][page]["median"])]
            for page in pages]
    rows.append(["cold first page (a new session)"]
                + [value for run in runs for value in (run["cold_first_page_ms"], None)])
    return measured_table(headers, rows, results)


def dashboard_explorer(resolution: str):
    """The Image explorer's re-render (AppTest, chromium) and the server's memory over new ids."""
    def render(root: Path) -> str:
        results = bench_results(root, f"dashboard-{resolution}")
        rows = []
        for key, what in (("new_id_ms", "re-render for a new id, AppTest (ms)"),
                          ("seen_id_ms", "re-render for an id seen before, AppTest (ms)")):
            s = results["explorer_apptest"][key]
            rows.append([f"{what}, {results['runs']} runs", s["median"], s["min"], s["max"]])
        served = results.get("served") or []
        for key, what in (("health_s", "cold start: process to /_stcore/health (s)"),
                          ("overview_s", "cold start: process to the Overview drawn in chromium (s)"),
                          ("explorer_after_overview_s", "then the Image explorer drawn, first time (s)")):
            values = sorted(row[key] for row in served)
            if values:
                rows.append([what, f"{values[len(values) // 2]:.2f}", f"{values[0]:.2f}", f"{values[-1]:.2f}"])
        sessions = ((served[-1] if served else None, "default cache"), (results.get("small_cache"), "small cache"))
        for row, cache in sessions:
            if row and row["next_click_ms"]:
                clicks = sorted(row["next_click_ms"])
                rows.append([f"click Next to the new images drawn in chromium, {cache} (ms)", clicks[len(clicks) // 2],
                             clicks[0], clicks[-1]])
                rows.append([f"server memory over {len(clicks)} new ids, {cache} (MiB): growth, before, after",
                             f"+{row['rss_growth_mib']:.0f}", f"{row['rss_before_mib']:.0f}",
                             f"{row['rss_after_mib']:.0f}"])
        return measured_table([f"Image explorer, {SIZES[resolution]}", "median", "min", "max"], rows, results)
    return render


def dashboard_browser(root: Path) -> str:
    results = bench_results(root, "dashboard_browser")
    runs = results["resolutions"]
    sizes = [SIZES.get(run["resolution"], run["resolution"]) for run in runs]
    pages = list(runs[0]["page_change_cold_ms"])
    whens = ("first visit", "again", "first visit, returning browser")
    changes = table(["sidebar page change, ms (click to page drawn)"] + [f"{size}: {when}" for size in sizes
                                                                        for when in whens],
                    [[page] + [value for run in runs for value in (
                        run["page_change_cold_ms"][page], run["page_change_warm_ms"][page],
                        run.get("returning_page_change_cold_ms", {}).get(page))]
                     for page in pages])
    targets = results["targets_s"]
    measures = [("cold first page (new browser, Overview drawn)", "cold_first_page_ms", targets["cold_first_page"]),
                ("cold first page, returning browser (its caches kept from an earlier visit)",
                 "returning_cold_first_page_ms", targets["cold_first_page"]),
                ("Check labels, first visit with no scan kept in the store yet", "check_labels_never_scanned_ms",
                 None),
                ("\"Open in the explorer\" from Model comparison", "open_in_explorer_ms", targets["open_in_explorer"]),
                ("explorer \"Next\" to the figure redrawn", "explorer_next_id_ms", None),
                ("a zoom box reaching every panel", "zoom_ms", None)]
    others = table(["measure, ms", "target"] + sizes,
                   [[what, "-" if target is None else f"< {target * 1000:.0f}"] + [run.get(key) for run in runs]
                    for what, key, target in measures])
    return "\n\n".join([changes, others, measured_line(results["measured"])])


def drive_browser(root: Path) -> str:
    """The Drive page's video in chromium: rendered on demand (cold), then from the disk cache (warm)."""
    results = bench_results(root, "drive_browser")
    runs = results["resolutions"]
    target = f"< {results['target_s'] * 1000:.0f}"
    measures = [("cold: the page's title drawn", "cold_title_ms", None),
                ("cold: the video rendered and shown", "cold_shown_ms", None),
                ("cold: playing", "cold_playing_ms", None),
                ("warm: the page's title drawn", "warm_title_ms", None),
                ("warm: the video shown", "warm_shown_ms", None),
                ("warm: playing (readyState >= 3, currentTime advancing)", "warm_playing_ms", target),
                ("warm, returning browser: the page's title drawn", "returning_title_ms", None),
                ("warm, returning browser: playing", "returning_playing_ms", target)]
    speed = table(["ms from the navigation's start", "target"]
                  + [SIZES.get(run["resolution"], run["resolution"]) for run in runs],
                  [[what, goal or "-"] + [None if run[key] is None else round(run[key]) for run in runs]
                   for what, key, goal in measures]
                  + [["the video (bytes)", "-"] + [None if run["video_bytes"] is None else round(run["video_bytes"])
                                                    for run in runs],
                     ["import-predictions --sequence-dir of one run (s)", "-"]
                     + [max(run["import_seconds"].values()) for run in runs]])
    load = ", ".join(str(v) for v in results["load_average_at_start"])
    return "\n\n".join([speed, f"Load average at the start (1, 5, 15 min): {load}.",
                         measured_line(results["measured"])])


def compare_view(root: Path) -> str:
    results = bench_results(root, "compare_view")
    return measured_table(
        ["side-by-side view", "new id ms (median)", "an id seen before ms", "bytes sent", "figure JSON ms"],
        [[case, row["new_id_ms"]["median"], row["seen_id_ms"], row["bytes_sent"], row["figure_json_ms"]]
         for case, row in results["cases"].items()], results)


def consensus(root: Path) -> str:
    results = bench_results(root, "consensus")
    threads = list(results["rows"][0]["scan_ms"])
    return measured_table(
        ["size (WxH)", "images", "runs", "regions an image", "rule and labelling ms/image"]
        + [f"whole scan ms/image, {n} thread{'' if n == '1' else 's'}" for n in threads],
        [[r["size"], r["images"], r["runs"], r["regions_per_image"], r["rule_ms"]] + [r["scan_ms"][n] for n in threads]
         for r in results["rows"]], results)


def gallery(resolution: str):
    def render(root: Path) -> str:
        results = bench_results(root, f"gallery-{resolution}")
        thumbs, page = results["thumbnails"], results["page_apptest"]
        modes = [mode for mode, row in thumbs.items() if isinstance(row, dict)]
        thumbnails = table(
            [f"{results['page']} thumbnails ({SIZES[resolution]}), ms", "cold, one at a time",
             f"cold, {thumbs['workers']} threads", "cold, threads + disk write", "from the disk layer", "warm",
             "JPEG KB"],
            [[mode, thumbs[mode]["cold_serial"], thumbs[mode]["cold_pool"], thumbs[mode]["cold_pool_disk_write"],
              thumbs[mode]["disk"], thumbs[mode]["warm"], thumbs[mode]["jpeg_kb"]] for mode in modes])
        pages = table([f"the Gallery page in AppTest ({SIZES[resolution]})", "ms"], [
            ["page 1, every cache empty", page["page1_cold_ms"]], ["page 1 again", page["page1_warm_ms"]],
            ["waiting for page 2 (drawn in the background)", page["prefetch_wait_ms"]],
            ["page 2", page["page2_prefetched_ms"]]])
        return "\n\n".join([thumbnails, pages, measured_line(results["measured"])])
    return render


def api_speed(resolution: str):
    def render(root: Path) -> str:
        results = bench_results(root, f"api-{resolution}")
        floor = results["floor"]
        rows = [["floor: Pillow photo + label + one forward pass", "", f"{floor['total_ms']:.1f}", "", ""]]
        rows += [[f"`/segmentation`, both caches off, {row['clients']} client(s)",
                  "<= 1.5x the floor" if row["clients"] == 1 else "",
                  f"{row['p50_ms']:.1f} ({row['p50_ms'] / floor['total_ms']:.2f}x the floor)", f"{row['p95_ms']:.1f}",
                  f"{row['throughput_rps']:.1f}"] for row in results["uncached"]]
        rows += [[f"cached: {row['route']}, {row['clients']} client(s)", "< 10", f"{row['p50_ms']:.1f}",
                  f"{row['p95_ms']:.1f}", f"{row['throughput_rps']:.1f}"] for row in results.get("cached", [])]
        if "upload" in results:
            upload = results["upload"]
            rows.append([f"upload of a {upload['pixels']} PNG (peak memory +{upload['peak_rss_growth_mib']:.0f} MiB)",
                         "", f"{upload['p50_ms']:.1f}", "", ""])
        server = f"{results['photo']} photos, {results['workers']} workers x {results['threads']} threads"
        parts = [table([server, "target", "p50 ms", "p95 ms", "requests/s"], rows)]
        if "mixed" in results:
            parts.append(f"Mixed requests, bad ones included: {results['mixed']['server_errors']} server errors, "
                         f"{results['tracebacks_in_log']} tracebacks in the server's log.")
        return "\n\n".join([*parts, measured_line(results["measured"])])
    return render


def export_speed(root: Path) -> str:
    results = bench_results(root, "export")
    rows = [[f"`{name}`", shown["model"], f"{shown['file_mb']:.2f}", f"{shown['latency_ms']:.1f}",
             f"{shown['latency_median_ms']:.1f}", f"{shown['miou']:.4f}", f"{shown['miou_official']:.4f}",
             f"{100 * shown['changed_pixels']:.2f} %"]
            for name, run in results["runs"].items() for shown in run["rows"]]
    speed = table(["run", "model", "MB", f"ms/image (best of {results['rounds']} rounds)", "median of the rounds",
                   "mIoU", "mIoU (official)", "pixels changed"], rows)
    runs = results["runs"]
    classes = next(iter(runs.values()))["class_names"]
    int8 = {name: next(shown for shown in run["rows"] if shown["model"] == "tflite-int8")["delta"]
            for name, run in runs.items()}
    deltas = table(["int8: IoU of the export - IoU of Keras"] + classes,
                   [[f"`{name}`"] + ["-" if delta.get(c) is None else f"{delta[c]:+.4f}" for c in classes]
                    for name, delta in int8.items()])
    return "\n\n".join([speed, deltas, measured_line(results["measured"])])


TABLES = {
    "dashboard-pages": dashboard_pages,
    "dashboard-browser": dashboard_browser,
    "drive-browser": drive_browser,
    "dashboard-explorer-demo": dashboard_explorer("demo"),
    "dashboard-explorer-full": dashboard_explorer("full"),
    "dashboard-compare-view": compare_view,
    "check-labels-scan": consensus,
    "gallery-demo": gallery("demo"),
    "gallery-full": gallery("full"),
    "api-demo": api_speed("demo"),
    "api-full": api_speed("full"),
    "export-speed": export_speed,
    "exports": export_speed,  # the same table on the Embedded export page (docs/export.md)
}
