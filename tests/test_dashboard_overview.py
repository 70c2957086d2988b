"""The Overview page and the app shell, with Streamlit's AppTest."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from training.runs.store import get_run

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "streamlit_app.py")


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


def test_an_empty_store_explains_how_to_train(tmp_path, monkeypatch, dashboard_env):
    monkeypatch.setenv("ARTIFACTS_DIR", str(tmp_path / "empty"))
    at = _app().run()
    assert not at.exception
    assert any("make demo" in info.value for info in at.info)
    assert not at.dataframe


def test_the_dashboard_never_imports_tensorflow(dashboard_env):
    import subprocess
    import sys

    code = ("import sys; from streamlit.testing.v1 import AppTest;"
            f"at = AppTest.from_file({APP!r}, default_timeout=60).run(); assert not at.exception;"
            "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=".").returncode == 0
