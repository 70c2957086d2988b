"""The Overview page and the app shell, with Streamlit's AppTest."""

import json
from pathlib import Path

import pytest
from dashboard_fixtures import IMPORTED_C8, IMPORTED_C8_MS, IMPORTED_C19, open_page
from streamlit.testing.v1 import AppTest

from training.runs.latency import read_latency
from training.runs.reader import get_run

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")


REPO = Path(__file__).resolve().parent.parent
PAGES = ("app_pages/explorer.py", "app_pages/gallery.py", "app_pages/comparison.py", "app_pages/calibration.py",
         "app_pages/anatomy.py", "app_pages/labels_check.py", "app_pages/exports.py")


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60)


def test_overview_shows_the_deployed_model_and_every_run(dashboard_env):
    at = _app().run()
    assert not at.exception
    deployed = dashboard_env.runs[0]
    metrics = get_run(deployed, dashboard_env.artifacts).metrics
    assert any(deployed in s.value for s in at.subheader)
    shown = {m.label: m.value for m in at.metric}
    assert shown["Test mIoU (all classes)"] == f"{metrics['miou']:.3f}"
    assert shown["Test mIoU (official)"] == f"{metrics['miou_official']:.3f}"
    assert shown["Parameters"] == f"{metrics['params'] / 1e6:.2f} M"
    board = at.dataframe[0].value
    assert sorted(board["run"]) == sorted(dashboard_env.runs)
    for run in dashboard_env.runs:
        row = board[board["run"] == run].iloc[0]
        assert row["miou"] == pytest.approx(get_run(run, dashboard_env.artifacts).metrics["miou"])
    assert list(board["miou"]) == sorted(board["miou"], reverse=True)  # best first
    how = next(m for m in at.metric if m.label == "Inference").proto.help  # the figure says how it was measured
    latency = read_latency(get_run(deployed, dashboard_env.artifacts))
    assert shown["Inference"] == f"{latency['median_ms']:.1f} ms"
    assert how.startswith(f"Per image. median of 30, batch 1, 16x32, {latency['cpu_cores']} CPU cores, after training")


def test_an_empty_store_explains_how_to_train(tmp_path, monkeypatch, dashboard_env):
    from dashboard.readers.store import HOW_TO_TRAIN, TRAIN_HINT

    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "empty"))
    at = _app().run()
    assert not at.exception
    assert [info.value for info in at.info] == [TRAIN_HINT]  # nothing else: no empty leaderboard, no warning
    assert not at.dataframe and not at.warning and not at.error and not at.get("plotly_chart")
    # the hint names a config that exists, in a command the CLI accepts
    config = HOW_TO_TRAIN.split("python -m training train ")[1].split("`")[0]
    assert (REPO / config).is_file(), config
    from training.cli import build_parser
    assert build_parser().parse_args(["train", config]).config == config
    for page in PAGES:  # every page of runs says the same, and shows nothing else
        at.switch_page(page).run()
        assert not at.exception, page
        assert [info.value for info in at.info] == [TRAIN_HINT], page
        assert not at.dataframe and not at.image and not at.get("plotly_chart"), page


def test_the_dashboard_never_imports_tensorflow(dashboard_env):
    import subprocess
    import sys

    code = ("import sys; from streamlit.testing.v1 import AppTest;"
            f"at = AppTest.from_file({APP!r}, default_timeout=60).run(); assert not at.exception;"
            "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=".").returncode == 0


LEADERBOARD_WIDTH = 1150  # px left to the table by a 1600 px window with the sidebar open


def test_the_leaderboard_fits_shows_how_latency_was_measured_and_never_none(imported_env):
    at = open_page("overview")
    assert not at.exception
    frame = at.dataframe[0]
    board = frame.value.set_index("run")
    shown = list(frame.proto.column_order)
    config = json.loads(frame.proto.columns)
    headers = [config[column]["label"] for column in shown]
    assert headers[0] == "run"
    assert {"ms/image", "measured", "mIoU (all classes)", "mIoU (official)", "B - A"} <= set(headers)
    assert sum(config[column]["width"] for column in shown) <= LEADERBOARD_WIDTH
    for column in shown:  # what a person reads: no "None" or "nan" anywhere, empty cells instead
        texts = [str(v) for v in board[column].dropna()] if column != "run" else list(board.index)
        assert not [t for t in texts if t in ("None", "nan", "NaN")], column
    measured = board["latency_measured"].str.replace(", busy", "")  # busy: the load was high then
    assert measured.to_dict() == {"tiny_simple": "after training", "tiny_unet": "after training",
                                  IMPORTED_C8: "given at import", IMPORTED_C19: ""}
    assert board.loc[IMPORTED_C8, "inference_ms"] == pytest.approx(IMPORTED_C8_MS)
    assert board.loc["tiny_simple", "name"] == "tiny_simple (deployed)"
    assert board.loc[IMPORTED_C8, "name"] == f"{IMPORTED_C8} (imported, 3 of 4 images)"
    details = at.expander[0]
    assert details.label == "How each latency was measured"
    text = details.markdown[0].value
    assert f"**{board.loc[IMPORTED_C8, 'name']}**: 7.5 ms, given at import, not measured here" in text
    assert "**tiny_unet**: " in text and "median of 30, batch 1, 16x32" in text
    assert "python -m training benchmark" in text
