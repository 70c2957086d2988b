"""One summary of a run for the leaderboard, ``python -m training table`` and the API."""

import numpy as np

from training.cli import main
from training.data.labels import get_class_set
from training.runs.deployment import deploy
from training.runs.latency import write_latency
from training.runs.summary import COLUMNS, run_summaries, table_rows, to_csv, to_markdown
from training.runs.writer import RunWriter

METRICS = {"model": "unet", "backbone": None, "loss_name": "cce_dice", "augmentation": "v1", "image_size": [128, 256],
           "classes": "categories8", "split": "test", "params": 1948072, "train_seconds": 3725.4, "epochs": 6,
           "best_epoch": 5, "loss": 0.41234, "val_loss": 0.5, "train_miou": 0.61, "val_miou": 0.6204, "miou": 0.5877653,
           "miou_official": 0.549, "pixel_accuracy": 0.9, "inference_ms": 22.04, "created": "2026-11-21T10:00:00+0000",
           "iou": {"void": 0.8}, "class_names": ["void"]}


def _publish(root, name, metrics):
    writer = RunWriter(name, root)
    writer.path("model.keras").write_bytes(b"x")
    writer.write_text("config.yaml", f"name: {name}\n")
    writer.write_csv("history.csv", [{"epoch": 1}])
    writer.write_json("metrics.json", metrics)
    writer.write_array("confusion.npy", np.eye(8, dtype=np.int64))
    writer.write_csv("per_image.csv", [{"id": 0, "miou": 0.5}])
    writer.write_array("per_image_confusion.npy", np.eye(8, dtype=np.int64)[None])
    writer.write_prediction(0, np.zeros((2, 2), np.uint8), get_class_set().palette())
    return writer.commit()


def test_summaries_mark_the_deployed_run_and_name_damaged_ones(tmp_path):
    _publish(tmp_path, "unet", METRICS)
    _publish(tmp_path, "simple", {**METRICS, "model": "simple", "split": "validation"})
    broken = _publish(tmp_path, "broken", METRICS)
    (broken / "metrics.json").write_text("{half")
    deploy("unet", tmp_path)
    rows = {row["run"]: row for row in run_summaries(tmp_path)}
    assert rows["unet"]["deployed"] and not rows["simple"]["deployed"]
    assert rows["unet"]["miou"] == 0.5877653 and rows["unet"]["image_size"] == [128, 256]
    assert rows["unet"]["backbone"] is None and "iou" not in rows["unet"]  # headline numbers only
    assert "metrics.json is not valid JSON" in rows["broken"]["error"]


def test_the_table_formats_a_summary(tmp_path):
    _publish(tmp_path, "unet", METRICS)
    _publish(tmp_path, "simple", {**METRICS, "model": "simple", "split": "validation", "miou": None})
    rows = {row["run"]: row for row in table_rows(run_summaries(tmp_path))}
    unet = rows["unet"]
    assert (unet["backbone"], unet["size"], unet["train time"]) == ("-", "128x256", "1h02m05s")
    assert unet["train loss"] == "0.4123"
    assert (unet["test mIoU"], unet["val mIoU"], unet["inference ms"]) == ("0.588", "0.620", "22.0")
    assert rows["simple"]["test mIoU"] == ""  # evaluated on validation: no test number to show
    markdown = to_markdown(list(rows.values())).splitlines()
    assert markdown[0] == "| " + " | ".join(COLUMNS) + " |" and len(markdown) == 4
    assert to_csv(list(rows.values())).splitlines()[0] == ",".join(COLUMNS)


def test_a_damaged_run_gets_a_row_that_says_so(tmp_path):
    run = _publish(tmp_path, "broken", METRICS)
    (run / "metrics.json").write_text("[]")
    assert table_rows(run_summaries(tmp_path)) == [
        {"run": "broken", "model": "unreadable: metrics.json holds a list, not an object"}]


LATENCY = {"median_ms": 19.74, "p10_ms": 19.1, "p90_ms": 21.0, "repeats": 30, "warmup": 3, "batch": 1,
           "input_size": [128, 256], "device": "CPU", "cpu_cores": 2, "intra_op_threads": 0, "load_average": 3.5,
           "host": "box", "tensorflow": "2.21.0", "measured_at": "2026-12-02T15:00:00+00:00", "how": "benchmark pass"}


def test_the_table_and_the_cli_say_how_each_latency_was_measured(tmp_path, capsys):
    measured = _publish(tmp_path, "measured", {**METRICS, "inference_ms": 137.7})
    write_latency(measured, LATENCY)  # re-measured: it replaces the training figure
    _publish(tmp_path, "older", METRICS)  # trained before latency.json
    _publish(tmp_path, "imported", {**METRICS, "source": "imported", "inference_ms": 7.5})
    rows = {row["run"]: row for row in table_rows(run_summaries(tmp_path))}
    assert rows["measured"]["inference ms"] == "19.7"
    assert rows["measured"]["latency measured"] == ("median of 30, batch 1, 128x256, 2 CPU cores, benchmark pass "
                                                   "2026-12-02, machine busy (load 3.5)")
    older = rows["older"]
    assert (older["inference ms"], older["latency measured"]) == ("22.0", "measured once during training")
    assert rows["imported"]["latency measured"] == "given at import, not measured here"
    assert main(["runs", "--artifacts", str(tmp_path)]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "19.7 ms (benchmark, busy)" in listed["measured"] and "22.0 ms (during training)" in listed["older"]
    assert main(["deploy", "measured", "--artifacts", str(tmp_path)]) == 0
    assert capsys.readouterr().out == "deployed measured (test mIoU 0.588)\n"  # rounded, not 0.5877653
