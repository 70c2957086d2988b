"""The dashboard's embedded exports, with Streamlit's AppTest: the Embedded exports page (a run's
exports beside its Keras model, per-class delta bars) and the explorer's flip map, on the tiny
store with a run exported as float32 and int8; and their readers in the TensorFlow-free venv."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from dashboard_fixtures import image_captions, point_dashboard_at
from export_fixtures import FLOAT32, INT8, exported_store
from PIL import Image
from streamlit.testing.v1 import AppTest

from dashboard.readers.exports import EXPORT_COMMAND
from training.data.labels import get_class_set
from training.runs.reader import get_run

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "dashboard" / "app.py")
EXPORTS_PAGE, EXPLORER = "app_pages/exports.py", "app_pages/explorer.py"
FLIPPED_COLUMNS = 3


@pytest.fixture(scope="module")
def store(tmp_path_factory, dashboard_store):
    return exported_store(tmp_path_factory, dashboard_store)


def _page(page: str, query_params: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.query_params.update(query_params or {})
    at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _same(shown, expected) -> bool:
    if expected is None:
        return shown is None or np.isnan(shown)
    return shown == pytest.approx(expected, abs=1e-9)


def test_exports_page_shows_the_exports_beside_the_keras_model(store, monkeypatch):
    point_dashboard_at(monkeypatch, store.artifacts, store.data_root)
    at = _page(EXPORTS_PAGE)
    metrics = get_run(store.run, store.artifacts).metrics
    table = at.dataframe[0].value.set_index("model")
    assert list(table.index) == ["Keras (model.keras)", FLOAT32, INT8]
    assert table.loc["Keras (model.keras)", "mIoU (all classes)"] == pytest.approx(metrics["miou"])
    for name, report in store.reports.items():
        assert table.loc[name, "size (MB)"] == pytest.approx(report["file_bytes"] / 1e6)
        assert table.loc[name, "latency (ms)"] == pytest.approx(report["latency"]["ms_per_image"])
        assert table.loc[name, "mIoU (all classes)"] == pytest.approx(report["miou"])
        assert table.loc[name, "mIoU (all classes) - Keras"] == pytest.approx(report["delta_miou"])
        assert table.loc[name, "pixels changed"] == pytest.approx(report["changed_pixels"]["share"])

    def bars():
        return json.loads(at.get("plotly_chart")[0].proto.spec)["data"]

    assert [bar["name"] for bar in bars()] == [FLOAT32, INT8]
    for bar in bars():
        assert bar["x"] == metrics["class_names"]
        assert all(_same(y, store.reports[bar["name"]]["delta"][c]) for c, y in zip(bar["x"], bar["y"]))
    at.toggle(key="exports_official").set_value(True).run()
    for bar in bars():
        assert all(_same(y, store.reports[bar["name"]]["delta_official"][c]) for c, y in zip(bar["x"], bar["y"]))
    changed = at.dataframe[1].value
    assert changed.loc["flat", INT8] == pytest.approx(store.reports[INT8]["changed_pixels"]["by_keras_class"]["flat"])
    assert not at.exception


def test_the_keras_row_shows_the_latency_json_figure_and_how_it_was_measured(store, tmp_path, monkeypatch):
    from training.runs.latency import BENCHMARK_PASS, write_latency

    artifacts = shutil.copytree(store.artifacts, tmp_path / "artifacts")
    point_dashboard_at(monkeypatch, artifacts, store.data_root)
    record = {"median_ms": 12.345, "p10_ms": 12.0, "p90_ms": 13.0, "repeats": 30, "rounds": 5,
              "round_medians_ms": [12.3, 12.4, 12.345, 12.2, 12.5], "warmup": 3, "batch": 1, "input_size": [16, 32],
              "device": "CPU", "cpu_cores": 2, "intra_op_threads": 0, "inter_op_threads": 0, "load_average": 0.1,
              "others_cpu_cores": 0.0, "host": "box", "tensorflow": "2.21.0",
              "measured_at": "2026-12-02T15:00:00+00:00", "how": BENCHMARK_PASS, "busy": False}
    write_latency(get_run(store.run, artifacts).path, record)
    at = _page(EXPORTS_PAGE)
    table = at.dataframe[0].value.set_index("model")
    assert table.loc["Keras (model.keras)", "latency (ms)"] == pytest.approx(12.345)  # not metrics.json's
    assert table.loc["Keras (model.keras)", "latency measured"] == "benchmark"
    assert set(table.loc[[FLOAT32, INT8], "latency measured"]) == {"at export"}
    caption = next(c.value for c in at.caption if c.value.startswith("Exports on the"))
    assert ("the Keras row's is the run's own measurement with TensorFlow: median of 5 rounds x 30 calls, "
            "batch 1, 16x32, 2 CPU cores, benchmark pass 2026-12-02") in caption


def _valid_command(command: str, run: str) -> bool:
    """Whether the command a page suggests parses with the CLI's own parser for ``run``."""
    from training.cli import build_parser

    words = command.replace("RUN", run).split()
    assert words[:3] == ["python", "-m", "training"], command
    args = build_parser().parse_args(words[3:])
    return args.command == "export" and args.run == run and args.quantize == "int8" and args.format == "tflite"


def test_exports_page_without_exports_says_how_to_make_one(dashboard_env):
    at = _page(EXPORTS_PAGE)
    assert not at.exception
    assert [info.value for info in at.info] == [
        f"No run has an embedded export yet. `{EXPORT_COMMAND}` converts a run's model (float32: `--quantize none`, "
        "`float16`, `int8`) and measures it."]
    assert _valid_command(EXPORT_COMMAND, dashboard_env.runs[0])
    assert not at.dataframe and not at.get("plotly_chart") and not at.selectbox  # the page stops there


@pytest.fixture
def flipped_store(store, tmp_path, monkeypatch):
    """A copy whose int8 export's prediction of the first test image is the run's with the
    ``FLIPPED_COLUMNS`` leftmost columns one class on; returns (store copy, image id, expected)."""
    artifacts = shutil.copytree(store.artifacts, tmp_path / "artifacts")
    point_dashboard_at(monkeypatch, artifacts, store.data_root)
    run = get_run(store.run, artifacts)
    image_id = int(run.per_image()[0]["id"])
    keras = run.prediction(image_id)
    export = keras.copy()
    export[:, :FLIPPED_COLUMNS] = (keras[:, :FLIPPED_COLUMNS] + 1) % 8
    image = Image.fromarray(export, mode="P")
    image.putpalette(get_class_set("categories8").palette().reshape(-1).tolist())
    image.save(run.path / "exports" / INT8 / "predictions" / f"{image_id}.png")
    names = get_class_set("categories8").names
    expected = {names[c]: int(np.count_nonzero(keras[:, :FLIPPED_COLUMNS] == c)) for c in range(8)}
    return artifacts, image_id, keras, expected


def test_explorer_flip_map_counts_the_changed_pixels_by_keras_class(store, flipped_store):
    _, image_id, keras, expected = flipped_store
    at = _page(EXPLORER, {"id": str(image_id)})
    assert at.selectbox(key="explorer_flip_run").value == store.run  # the only selected run with exports
    at.selectbox(key="explorer_flip_export").set_value(INT8).run()
    assert not at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["Pixels changed"] == f"{FLIPPED_COLUMNS * keras.shape[0] / keras.size:.2%}"
    assert f"{store.run} vs {INT8}: pixels whose class changed, in the Keras class's colour" in image_captions(at)
    table = next(frame.value for frame in at.dataframe if "Keras class" in frame.value.columns).set_index("Keras class")
    assert {name: int(row["changed"]) for name, row in table.iterrows() if row["changed"]} == \
        {name: count for name, count in expected.items() if count}
    assert all(int(table.loc[name, "pixels"]) == int(np.count_nonzero(keras == c))
               for c, name in enumerate(get_class_set("categories8").names) if name in table.index)


def test_explorer_without_exports_says_so(dashboard_env):
    at = _page(EXPLORER)
    assert not at.exception
    said = [caption.value for caption in at.caption if "embedded export" in caption.value]
    assert said == [f"No selected run with a prediction of this image has an embedded export (`{EXPORT_COMMAND}` "
                    "makes one)."]
    assert _valid_command(EXPORT_COMMAND, dashboard_env.runs[0])
    keys = {widget.key for widget in at.selectbox}
    assert "explorer_flip_run" not in keys and "explorer_flip_export" not in keys  # no flip map to choose
    assert not any("vs" in caption and "pixels whose class changed" in caption for caption in image_captions(at))


READERS_WITHOUT_TENSORFLOW = r"""
import importlib.abc, json, sys
BLOCKED = ("tensorflow", "keras", "segmentation_models", "albumentations", "training.fit")

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"{name} refused")

sys.meta_path.insert(0, Refuse())
import dashboard.readers.exports, dashboard.pictures.flips, dashboard.app_pages  # noqa: F401  (what the pages import)
from training.runs.tflite_exports import export_names, export_prediction, read_export
from training.runs.reader import get_run
from training.viz import flip_counts, flip_map
from dashboard.readers.exports import EXPORT_COMMAND
from training.data.labels import get_class_set

run = get_run(sys.argv[1], sys.argv[2])
names = export_names(run)
image_id = int(run.per_image()[0]["id"])
changed, pixels = flip_counts(run.prediction(image_id), export_prediction(run, names[-1], image_id), 8)
flip_map(run.prediction(image_id), export_prediction(run, names[-1], image_id), get_class_set("categories8"))
print(json.dumps({"names": names, "miou": read_export(run, names[-1])["miou"], "pixels": int(pixels.sum())}))
"""


def test_export_readers_work_in_the_dashboard_only_environment(store):
    python = Path(os.environ.get("DASHBOARD_PYTHON") or REPO / ".venv-dashboard" / "bin" / "python")
    if not python.exists():
        pytest.skip("no dashboard-only venv (DASHBOARD_PYTHON, or make dashboard-venv)")
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    result = subprocess.run([str(python), "-c", READERS_WITHOUT_TENSORFLOW, store.run, str(store.artifacts)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["names"] == [FLOAT32, INT8] and shown["miou"] == store.reports[INT8]["miou"]
    assert shown["pixels"] > 0
