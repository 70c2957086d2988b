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


def _fits(frame) -> None:
    """Issue 25: "unet_scratch_cce-dice (dep", "params (M", "sm_linknet (resn" were cut. Every shown
    header is short (the help says the rest) and whole; every text cell whole in its column; the
    run pinned at the left while the others scroll."""
    from dashboard.views.leaderboard import HEADER_LIMIT, NUMBER_FORMATS
    from dashboard.views.numbers import text_width

    config = json.loads(frame.proto.columns)
    board = frame.value
    for column in frame.proto.column_order:
        header, width = config[column]["label"], config[column]["width"]
        assert len(header) <= HEADER_LIMIT and width >= text_width(header), (column, header, width)
        if column not in NUMBER_FORMATS:
            longest = max((str(v) for v in board[column]), key=len)
            assert width >= text_width(longest), (column, longest, width)
        else:
            assert config[column].get("help"), column
    assert config["name"]["pinned"] is True and config["name"]["width"] >= text_width(max(board["name"], key=len))


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
    _fits(frame)
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


def test_long_run_names_fit_their_columns_and_the_per_image_switch_says_what_stays_pooled(dashboard_store_copy):
    """A store of long run names (the issue's "unet_scratch_cce-dice_v1_256x512"); in the per-image
    mode the validation mIoU, which training measured pooled, says so wherever it is shown."""
    import shutil

    store = dashboard_store_copy
    runs = store.artifacts / "runs"
    long_names = {"tiny_simple": "unet_scratch_cce-dice_v1_256x512", "tiny_unet": "sm_linknet_resnet34_dice_v2_256x512"}
    for old, new in long_names.items():
        shutil.move(runs / old, runs / new)
        metrics = json.loads((runs / new / "metrics.json").read_text())
        metrics["run"] = new
        (runs / new / "metrics.json").write_text(json.dumps(metrics))
    (store.artifacts / "deployed.json").unlink()
    at = open_page("overview")
    assert not at.exception, at.exception
    board = at.dataframe[0]
    assert sorted(board.value["run"]) == sorted(long_names.values())
    _fits(board)
    # selectors name runs by their short names, their help by their full ones
    from dashboard.views.run_names import short_names

    short = short_names(list(long_names.values()))
    reference = at.selectbox(key="overview_reference")
    assert sorted(reference.options) == sorted(short.values()) and all(s != r for r, s in short.items())
    assert all(f"{short[run]}: `{run}`" in reference.help for run in long_names.values())
    gallery = open_page("gallery")
    chips = gallery.multiselect(key="gallery_runs")
    assert sorted(chips.options) == sorted(short.values())
    assert all(f"{short[run]}: `{run}`" in chips.help for run in long_names.values())
    at.radio(key="miou_mode").set_value("per-image").run()
    config = json.loads(at.dataframe[0].proto.columns)
    assert config["val_miou"]["label"] == "val mIoU (pooled)" and "pooled" in config["val_miou"]["help"]
    assert config["miou"]["label"] == "mIoU/image (all classes)"
    _fits(at.dataframe[0])
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert "val mIoU (pooled)" in json.dumps([trace.get("hovertemplate", "") for trace in chart["data"]])


def test_latencies_measured_while_busy_are_marked_on_the_trade_off(dashboard_store_copy):
    """Issue 25: a time measured while other processes took the CPU was plotted like a quiet one."""
    store = dashboard_store_copy
    quiet, busy = store.runs
    for run, others in ((quiet, 0.0), (busy, 1.8)):
        path = store.artifacts / "runs" / run / "latency.json"
        record = json.loads(path.read_text())
        record.update(others_cpu_cores=others, cpu_cores=2)
        path.write_text(json.dumps(record))
    at = open_page("overview")
    assert not at.exception
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    [marked] = [trace for trace in chart["data"] if trace.get("name") == "measured while busy"]
    assert marked.get("showlegend", True) and marked["mode"] == "markers"
    assert [row[0] for row in marked["customdata"]] == [busy]
    assert "machine busy (other processes used 1.8 of 2 cores)" in marked["customdata"][0][1]
    assert "measured while busy" in marked["hovertemplate"]
    others = [trace for trace in chart["data"] if trace.get("name") != "measured while busy"]
    hovers = json.dumps(others)
    assert "latency measured" in hovers  # every point says how its time was measured
    assert "red cross: measured while busy" in "\n".join(c.value for c in at.caption)


def test_the_leaderboard_has_a_tc_column_only_where_runs_have_one(dashboard_env):
    """Temporal consistency (the Drive page's number) joins the leaderboard for runs that predicted a
    drive, and stays out of it while no run has one."""
    import pandas as pd

    from dashboard.views import leaderboard

    at = _app().run()
    shown = at.dataframe[0].value.assign(interval="", significance="")
    names = {run: run for run in shown["run"]}
    without = leaderboard.leaderboard_frame(shown, names, {})
    assert "tc" not in leaderboard.shown_columns(without)[0]
    first, second = list(shown["run"])[:2]
    frame = leaderboard.leaderboard_frame(shown, names, {}, {first: 0.912, second: None})
    assert "tc" in leaderboard.shown_columns(frame)[0]
    assert frame.loc[frame["run"] == first, "tc"].item() == pytest.approx(0.912)
    assert pd.isna(frame.loc[frame["run"] == second, "tc"].item())
    assert leaderboard.headers(False)["tc"] == "TC" and leaderboard.NUMBER_FORMATS["tc"] == "%.3f"
    assert "tc" not in [column for column in at.dataframe[0].proto.column_order]  # the tiny store has no drive
