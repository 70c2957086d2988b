"""The demo runs' tables of the docs (docs/hooks/demo_tables.py): each is made from
bench/results/demo_runs.json, its numbers the file's, with the stamp line last; an unreadable run
is named, and a missing file fails the build naming it."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "docs" / "hooks"))  # as mkdocs loads the hook: its folder importable

import demo_tables  # noqa: E402
import generated  # noqa: E402
from mkdocs.exceptions import PluginError  # noqa: E402

from training.evaluation.variants import PER_IMAGE, POOLED, VARIANTS  # noqa: E402

MEASURED = {"date": "2026-12-04T12:30:00Z", "machine": "2 cores, Test CPU, no GPU", "command": "make models"}
CLASSES = ["void", "flat", "human", "vehicle"]


def run(name: str, miou: float, deployed: bool = False, drive: float | None = None) -> dict:
    return {
        "run": name, "uid": f"uid-{name}", "model": "unet", "loss_name": "cce", "params": 12345, "epochs": 6,
        "best_epoch": 5, "val_miou": 0.7012, "deployed": deployed, "class_names": CLASSES,
        "iou": {"void": 0.9111, "flat": 0.8222, "human": None, "vehicle": 0.6333},
        "miou": {"mIoU (all classes)": miou, "mean per-image mIoU (all classes)": 0.5444,
                 "mIoU (official)": 0.5557, "mean per-image mIoU (official)": 0.5666},
        "ece": 0.0777, "inference_ms": 12.5, "problems": [],
        "anatomy": {"boundary_miou": 0.4111, "iiou": {"human": 0.3222, "vehicle": 0.6444}, "objects": 40,
                    "objects_missed": 7},
        "temporal": {} if drive is None else {"synthetic_00": {"drive": True, "frames": 120, "pairs": 119,
                                                              "temporal_consistency": drive, "flicker_rate": 0.0432,
                                                              "temporal_consistency_per_class": {
                                                                  "void": 0.9876, "flat": 0.9543, "human": None,
                                                                  "vehicle": 0.8771}}},
    }


RESULTS = {"format": "demo-runs v1", "measured": MEASURED, "deployed": "unet_a",
           "dataset": {"classes": ["categories8"], "fingerprint": "abc123", "drives": ["synthetic_00"],
                       "images": {"train": 240, "validation": 60, "test": 100, "all": 400}},
           "runs": [run("unet_a", 0.6871, deployed=True, drive=0.9137), run("simple_b", 0.6032),
                    {"run": "broken_c", "error": "metrics.json: not JSON"}]}


def write(root: Path, results: dict = RESULTS) -> None:
    path = root / "bench" / "results" / "demo_runs.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results))


def rendered(root: Path, marker: str) -> str:
    return generated.expand(f"before\n\n<!-- generated: {marker} -->\n\nafter\n", "page.md", root, demo_tables.TABLES)


def last_line(markdown: str) -> str:
    return markdown.strip().splitlines()[-1]


def test_the_variant_names_are_the_products():
    assert demo_tables.VARIANTS == tuple(v.label(a) for v in VARIANTS for a in (POOLED, PER_IMAGE))


@pytest.mark.parametrize("marker", sorted(demo_tables.TABLES))
def test_every_table_ends_with_its_stamp_and_names_the_unreadable_run(tmp_path, marker):
    write(tmp_path)
    text = demo_tables.TABLES[marker](tmp_path)
    assert last_line(text) == "Measured on 2026-12-04 12:30 UTC, 2 cores, Test CPU, no GPU, by `make models`."
    assert "`broken_c`, unreadable (metrics.json: not JSON)" in text
    assert "`unet_a` (deployed)" in text and "0.687" in text
    assert "<!-- generated" not in rendered(tmp_path, marker)


def test_the_numbers_are_the_files(tmp_path):
    write(tmp_path)
    runs = demo_tables.demo_runs(tmp_path)
    assert "| `unet_a` (deployed) | unet | cce | 12,345 | 6 | 0.701 (5) | 0.687 | 0.544 | 0.556 | 0.567 |" in runs
    assert "| `simple_b` | 0.911 | 0.822 | - | 0.633 |" in runs  # human absent from the test images: a dash
    assert "100 images of 400" in runs and "`abc123`" in runs
    assert "| `simple_b` | unet | cce | 0.603 | 0.078 |" in demo_tables.demo_calibration(tmp_path)
    anatomy = demo_tables.demo_anatomy(tmp_path)
    assert "| `unet_a` (deployed) | unet | 0.687 | 0.411 | 0.322 | 0.644 | 7 of 40 |" in anatomy
    temporal = demo_tables.demo_temporal(tmp_path)
    assert "| `unet_a` (deployed) | unet | 0.687 | 0.914 | 0.043 | 120 |" in temporal
    assert "Not predicted on `synthetic_00`: `simple_b`." in temporal
    # per class, the class's test IoU beside it; a class with no number is a dash
    assert "| `unet_a` (deployed) | 0.988 (0.911) | 0.954 (0.822) | - (-) | 0.877 (0.633) |" in temporal


def test_changing_the_results_file_changes_the_page(tmp_path):
    write(tmp_path)
    before = rendered(tmp_path, "demo-calibration")
    changed = copy.deepcopy(RESULTS)
    changed["runs"][1]["ece"] = 0.2468
    write(tmp_path, changed)
    after = rendered(tmp_path, "demo-calibration")
    assert "0.078" in before and "0.247" in after and "0.247" not in before


def test_a_missing_or_damaged_results_file_fails_the_build_naming_it(tmp_path):
    with pytest.raises(PluginError, match="demo-runs.*demo_runs.json"):
        rendered(tmp_path, "demo-runs")
    damaged = copy.deepcopy(RESULTS)
    del damaged["runs"][0]["miou"]
    write(tmp_path, damaged)
    with pytest.raises(PluginError, match="demo-anatomy.*damaged results.*demo_runs.json"):
        rendered(tmp_path, "demo-anatomy")
