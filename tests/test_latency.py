"""Latency measured apart and recorded with its conditions: latency.json in the run store, the
``benchmark`` command on real tiny runs, and TensorFlow's start-up noise kept off the terminal."""

import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from dashboard_fixtures import IMPORTED_C8, IMPORTED_C8_MS, IMPORTED_C19

from training import runtime_env
from training.runs.latency import BENCHMARK_PASS, read_latency, write_latency
from training.runs.layout import LATENCY, ArtifactError
from training.runs.reader import get_run, store_version
from training.runs.summary import run_summary

REPO = Path(__file__).resolve().parent.parent
RECORD = {"median_ms": 19.7, "p10_ms": 19.1, "p90_ms": 21.04, "repeats": 30, "warmup": 3, "batch": 1,
          "input_size": [128, 256], "device": "CPU", "cpu_cores": 2, "intra_op_threads": 0, "inter_op_threads": 0,
          "load_average": 0.3, "host": "box", "tensorflow": "2.21.0", "measured_at": "2026-12-02T15:00:00+00:00",
          "how": BENCHMARK_PASS, "busy": False}


@pytest.fixture
def store(imported_store, tmp_path):
    """A copy of the imported store: ``tiny_simple`` and ``tiny_unet`` trained, two runs imported."""
    return shutil.copytree(imported_store.artifacts, tmp_path / "artifacts")


def test_latency_json_round_trips_atomically_and_changes_the_store_version(store, monkeypatch):
    run = get_run("tiny_simple", store)
    written = read_latency(run)  # training measured it after the evaluation, with its conditions
    assert written["how"] == "after training" and written["repeats"] == 30 and written["batch"] == 1
    assert written["input_size"] == [16, 32] and written["cpu_cores"] == len(os.sched_getaffinity(0))
    assert written["p10_ms"] <= written["median_ms"] <= written["p90_ms"]
    assert run.metrics["inference_ms"] == written["median_ms"]  # metrics.json keeps the figure

    before = store_version(store)
    write_latency(run.path, RECORD)
    assert read_latency(get_run("tiny_simple", store)) == RECORD and store_version(store) != before

    def interrupted(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(OSError):
        write_latency(run.path, {**RECORD, "median_ms": 1.0})
    monkeypatch.undo()
    assert read_latency(get_run("tiny_simple", store)) == RECORD  # the old file, whole
    assert [p.name for p in run.path.iterdir() if p.name.startswith(".")] == []  # no temporary left
    with pytest.raises(ValueError, match="needs median_ms"):
        write_latency(run.path, {k: v for k, v in RECORD.items() if k != "median_ms"})


def test_a_damaged_latency_json_falls_back_to_the_training_figure_and_says_so(store):
    run = get_run("tiny_unet", store)
    (run.path / LATENCY).write_text('{"median_ms": ')
    with pytest.raises(ArtifactError, match=f"run tiny_unet: {LATENCY} is not valid JSON"):
        read_latency(run)
    summary = run_summary(get_run("tiny_unet", store))
    assert summary["inference_ms"] == run.metrics["inference_ms"]
    assert summary["latency_how"].startswith("measured once during training (run tiny_unet: latency.json")


def test_a_benchmark_pass_says_its_rounds_and_a_wrong_count_of_rounds_names_the_file(store):
    from training.runs.latency import how_text

    run = get_run("tiny_unet", store)
    passes = {**RECORD, "how": BENCHMARK_PASS, "rounds": 9, "round_medians_ms": [19.7] * 9}
    assert how_text(passes).startswith("median of 9 rounds x 30 calls, batch 1, ")
    assert how_text({**passes, "rounds": 1}).startswith("median of 30, batch 1, ")
    write_latency(run.path, {**passes, "rounds": "many"})
    with pytest.raises(ArtifactError, match=f"run tiny_unet: {LATENCY}: rounds is 'many', not a whole number"):
        read_latency(get_run("tiny_unet", store))


def test_benchmark_measures_each_run_skips_imported_and_names_a_broken_model(store):
    (store / "runs" / "tiny_unet" / "model.keras").write_bytes(b"not a zip")
    before = read_latency(get_run("tiny_simple", store))
    completed = subprocess.run([sys.executable, "-m", "training", "-q", "benchmark", "--repeats", "5",
                                "--rounds", "3", "--artifacts", str(store)], capture_output=True, text=True, cwd=REPO,
                               timeout=300)
    out = completed.stdout
    assert completed.returncode == 1, completed.stderr[-2000:]  # one run could not be measured
    assert f"{IMPORTED_C8}: skipped, imported predictions have no model" in out
    assert f"{IMPORTED_C19}: skipped" in out
    assert "tiny_unet: not measured: run tiny_unet: model.keras cannot be loaded" in out
    assert "failed call to cuInit" not in completed.stderr and "I0000" not in completed.stderr
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("run "))
    assert lines[header].split("  ")[0].strip() == "run" and "p10-p90 ms" in lines[header]
    row = lines[header + 2]
    after = read_latency(get_run("tiny_simple", store))
    assert row.startswith("tiny_simple") and f"{before['median_ms']:.1f} (after training" in row
    assert f"{after['median_ms']:.1f}" in row and "median of 3 rounds x 5 calls, batch 1, 16x32" in row
    assert after["how"] == BENCHMARK_PASS and after["repeats"] == 5 and after["measured_at"] >= before["measured_at"]
    # the runs were timed in turns: the figure is the median of the rounds' medians
    assert after["rounds"] == 3 and len(after["round_medians_ms"]) == 3
    assert after["median_ms"] == pytest.approx(sorted(after["round_medians_ms"])[1], abs=1e-3)
    assert after["p10_ms"] <= after["median_ms"] <= after["p90_ms"]
    assert read_latency(get_run(IMPORTED_C8, store)) is None  # untouched
    summary = run_summary(get_run("tiny_simple", store))
    assert summary["inference_ms"] == after["median_ms"] and summary["latency_measured"].startswith("benchmark")
    when = after["measured_at"][:10]
    assert summary["latency_how"].startswith(f"median of 3 rounds x 5 calls, batch 1, 16x32, "
                                             f"{after['cpu_cores']} CPU cores, benchmark pass {when}")
    imported = run_summary(get_run(IMPORTED_C8, store))
    assert (imported["inference_ms"], imported["latency_how"]) == (IMPORTED_C8_MS, "given at import, not measured here")


def test_tensorflow_start_noise_is_dropped_and_real_errors_pass(capfd, monkeypatch):
    lines = (b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
             b"I0000 00:00:1 port.cc:153] oneDNN custom operations are on.\n"
             b"E0000 00:00:1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: UNKNOWN ERROR (303)\n"
             b"E0000 00:00:1 allocator.cc:10] a real error\n")
    for driver, cuinit_shown in ((False, False), (True, True)):
        monkeypatch.setattr(runtime_env, "has_nvidia_driver", lambda driver=driver: driver)
        with runtime_env.quiet_tensorflow_start():
            os.write(2, lines)
        err = capfd.readouterr().err
        assert "a real error" in err and "oneDNN" not in err and "absl::InitializeLog" not in err
        assert ("failed call to cuInit" in err) == cuinit_shown


def test_busy_is_what_other_processes_took_while_the_calls_were_timed():
    from training.fit.latency import others_cores
    from training.runs.latency import how_text, record_busy, short_text

    # 10 s of timed calls: the machine was busy 12 CPU-s, this process 9 of them: others 0.3 cores
    assert others_cores((100.0, 5.0), (112.0, 14.0), 10.0) == 0.3
    assert others_cores((100.0, 5.0), (108.0, 14.0), 10.0) == 0.0  # never below 0 (tick rounding)
    assert others_cores((None, 5.0), (None, 14.0), 10.0) is None  # no /proc/stat
    # right after training the load average is the training's own: what counts is the others' CPU
    quiet_after_training = {**RECORD, "load_average": 1.9, "others_cpu_cores": 0.1}
    assert not record_busy(quiet_after_training) and "busy" not in how_text(quiet_after_training)
    shared = {**RECORD, "load_average": 0.2, "others_cpu_cores": 0.8}
    assert record_busy(shared) and short_text(shared) == "benchmark, busy"
    assert how_text(shared).endswith(", machine busy (other processes used 0.8 of 2 cores)")
    assert record_busy({**RECORD, "load_average": 1.9})  # an older record: its load average decides


@pytest.mark.parametrize("option, value, said", [
    ("--repeats", "0", "--repeats: must be a whole number from 1 to 1000, got '0'"),
    ("--repeats", "1001", "--repeats: must be a whole number from 1 to 1000, got '1001'"),
    ("--repeats", "many", "--repeats: must be a whole number from 1 to 1000, got 'many'"),
    ("--rounds", "0", "--rounds: must be a whole number from 1 to 100, got '0'"),
    ("--rounds", "101", "--rounds: must be a whole number from 1 to 100, got '101'"),
])
def test_benchmark_refuses_counts_out_of_range_before_loading_anything(option, value, said, capsys):
    from training.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["benchmark", option, value, "--artifacts", "/nonexistent"])
    assert exit_info.value.code == 2 and said in capsys.readouterr().err


def test_interleaved_rounds_time_every_model_in_turns():
    from training.fit import latency

    class Model:
        def __init__(self, name, log):
            self.name, self.log = name, log

        def predict_on_batch(self, x):
            self.log.append(self.name)

    log = []
    models = {"a": (Model("a", log), (4, 8)), "b": (Model("b", log), (4, 8))}
    conditions = {"batch": 1, "input_size": [4, 8], "device": "CPU", "cpu_cores": 2, "how": BENCHMARK_PASS,
                  "measured_at": "2026-12-02T15:00:00+00:00"}
    with mock.patch.object(latency, "conditions", lambda size, how: dict(conditions)):  # no TensorFlow here
        records = latency.measure_interleaved(models, repeats=2, rounds=3, warmup=1)
    # warm-up (an untimed call and a timed one, not kept) each, then per round: one untimed call and
    # 2 timed ones per model, in turns
    assert log == ["a", "a", "b", "b"] + (["a"] * 3 + ["b"] * 3) * 3
    assert set(records) == {"a", "b"} and all(r["rounds"] == 3 and r["repeats"] == 2 for r in records.values())
    assert all(len(r["round_medians_ms"]) == 3 and r["p10_ms"] <= r["median_ms"] <= r["p90_ms"]
               for r in records.values())
    with pytest.raises(ValueError, match="--rounds must be between 1 and 100"):
        latency.measure_interleaved(models, repeats=2, rounds=0)
