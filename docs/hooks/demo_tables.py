"""The demo runs' tables, each made from ``bench/results/demo_runs.json``.

``make models`` writes that file from the run store after training (``python -m training results``,
``training/runs/results.py``); ``TABLES`` maps a marker name to a function of the repository root
returning Markdown. A run the file lists as unreadable is named under the tables with its problem.
"""

from __future__ import annotations

from pathlib import Path

from render import bench_results, cell, measured_line, table

RESULTS = "demo_runs"
MIOU = "mIoU (all classes)"  # the variant a run's headline, its ECE and its anatomy count pixels as
VARIANTS = ("mIoU (all classes)", "mean per-image mIoU (all classes)", "mIoU (official)",
            "mean per-image mIoU (official)")  # training.evaluation.variants' labels, in its order


def _number(value, digits: int = 3) -> str:
    return cell(value, digits) if isinstance(value, float) else cell(value)


def _name(run: dict) -> str:
    return f"`{run['run']}`" + (" (deployed)" if run.get("deployed") else "")


def _whole(results: dict) -> list[dict]:
    return [run for run in results["runs"] if "error" not in run]


def _with_notes(markdown: str, results: dict, notes: list[str] = ()) -> str:
    """``markdown`` followed by the unreadable runs, ``notes`` and the stamp line."""
    lines = [f"Not shown: `{run['run']}`, unreadable ({run['error']})." for run in results["runs"] if "error" in run]
    return "\n\n".join([markdown, *lines, *notes, measured_line(results["measured"])])


def _dataset_text(results: dict) -> str:
    dataset = results.get("dataset") or {}
    images = dataset.get("images") or {}
    split = (f"the test split ({images['test']} images of {images['all']}, dataset fingerprint "
             f"`{dataset['fingerprint']}`)") if images else "each run's test split"
    return f"Scored on {split}; classes: {', '.join(dataset.get('classes') or ['-'])}."


def demo_runs(root: Path) -> str:
    """Each run's training and every mIoU variant, then its IoU per class."""
    results = bench_results(root, RESULTS)
    runs = _whole(results)
    headline = table(
        ["run", "model", "loss", "params", "epochs", "best val mIoU (epoch)", *VARIANTS],
        [[_name(r), r["model"] or "-", r["loss_name"] or "-", cell(r["params"]), cell(r["epochs"]),
          f"{_number(r['val_miou'])} ({cell(r['best_epoch'])})", *(_number(r["miou"].get(v)) for v in VARIANTS)]
         for r in runs])
    classes = list(dict.fromkeys(name for r in runs for name in r["class_names"]))
    per_class = table(["run", *classes], [[_name(r), *(_number(r["iou"].get(c)) for c in classes)] for r in runs])
    return _with_notes(f"{headline}\n\nIoU per class on the test split:\n\n{per_class}", results,
                       [_dataset_text(results)])


def demo_calibration(root: Path) -> str:
    """mIoU and ECE of each run (the ECE over the pixels the mIoU (all classes) counts)."""
    results = bench_results(root, RESULTS)
    rows = [[_name(r), r["model"] or "-", r["loss_name"] or "-", _number(r["miou"].get(MIOU)), _number(r["ece"])]
            for r in _whole(results)]
    return _with_notes(table(["run", "model", "loss", MIOU, "ECE"], rows), results)


def demo_anatomy(root: Path) -> str:
    """mIoU, Boundary mIoU, iIoU of human and vehicle, and objects missed, of each run."""
    results = bench_results(root, RESULTS)
    rows = []
    for r in _whole(results):
        anatomy = r["anatomy"] or {}
        iiou = anatomy.get("iiou") or {}
        missed = (f"{cell(anatomy['objects_missed'])} of {cell(anatomy['objects'])}"
                  if anatomy.get("objects") is not None else "-")
        rows.append([_name(r), r["model"] or "-", _number(r["miou"].get(MIOU)), _number(anatomy.get("boundary_miou")),
                     _number(iiou.get("human")), _number(iiou.get("vehicle")), missed])
    return _with_notes(table(["run", "model", MIOU, "Boundary mIoU", "iIoU human", "iIoU vehicle", "objects missed"],
                             rows), results)


def demo_temporal(root: Path) -> str:
    """Each run's temporal consistency and flicker rate on the dataset's drive, beside its mIoU."""
    results = bench_results(root, RESULTS)
    runs = _whole(results)
    drives = (results.get("dataset") or {}).get("drives") or sorted(
        {name for r in runs for name, scored in r["temporal"].items() if scored["drive"]})
    if not drives:
        return _with_notes("No drive was predicted by any run (`python -m training predict-sequence RUN "
                           "--sequence DRIVE`).", results)
    drive = drives[0]
    rows, missing = [], []
    for r in runs:
        scored = r["temporal"].get(drive)
        if scored is None:
            missing.append(f"`{r['run']}`")
            continue
        rows.append([_name(r), r["model"] or "-", _number(r["miou"].get(MIOU)), _number(scored["temporal_consistency"]),
                     _number(scored["flicker_rate"]), cell(scored["frames"])])
    notes = [f"Each run predicted the drive with `python -m training predict-sequence RUN --sequence {drive}`."]
    notes += [f"Not predicted on `{drive}`: {', '.join(missing)}."] if missing else []
    markdown = table(["run", "model", MIOU, f"temporal consistency on `{drive}`", "flicker rate", "frames"], rows)
    scored = [r for r in runs if r["temporal"].get(drive, {}).get("temporal_consistency_per_class")]
    if scored:  # per class, beside the class's IoU (files written before the per-class numbers have none)
        classes = list(scored[0]["class_names"])
        per_class = [[_name(r)] + [f"{_number(r['temporal'][drive]['temporal_consistency_per_class'].get(c))} "
                                   f"({_number(r['iou'].get(c))})" for c in classes] for r in scored]
        markdown += ("\n\nPer class on `" + drive + "`: temporal consistency (test IoU in brackets)\n\n"
                     + table(["run", *classes], per_class))
    return _with_notes(markdown, results, notes)


TABLES = {"demo-runs": demo_runs, "demo-calibration": demo_calibration, "demo-anatomy": demo_anatomy,
          "demo-temporal": demo_temporal}
