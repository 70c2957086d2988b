"""The Drive page, with Streamlit's AppTest on a copy of the tiny store whose dataset has a 5-frame
drive and a 5-frame snippet: run ``tiny`` predicted both (in a real process), ``tiny_b`` (a copy
of it under another uid) predicted none."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from dashboard_fixtures import notes, point_dashboard_at
from sequence_fixtures import DRIVE, SNIPPET, SNIPPET_FRAMES, copy_store, predict_sequence_command
from streamlit.testing.v1 import AppTest

from dashboard.views.drives import FLICKER, TC, flicker_frame, predict_command, tc_markdown, tc_table

APP = str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py")
PAGE = "app_pages/drive.py"


@pytest.fixture(scope="module")
def drive_store(api_store, tmp_path_factory):
    store = copy_store(api_store, tmp_path_factory.mktemp("dashboard_drive"))
    other = shutil.copytree(store.artifacts / "runs" / store.run, store.artifacts / "runs" / "tiny_b")
    metrics = json.loads((other / "metrics.json").read_text())
    (other / "metrics.json").write_text(json.dumps({**metrics, "uid": "another-uid"}))
    done = predict_sequence_command(store, store.run, "--all")
    assert done.returncode == 0, done.stderr
    return store


@pytest.fixture
def drive_env(drive_store, monkeypatch):
    point_dashboard_at(monkeypatch, drive_store.artifacts, drive_store.data_root)
    return drive_store


def _open(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(query or {})
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _videos(at: AppTest) -> list:
    return at.get("video")


def _charts(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if 'class="line-chart-svg"' in m.value]


def _tc_tables(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("| class |")]


def test_the_page_lists_sequences_plays_the_drive_and_shows_its_numbers(drive_env):
    at = _open({"sequence": DRIVE})
    sequence = at.selectbox(key="drive_sequence")
    assert sequence.options == [f"{SNIPPET} (snippet, 5 frames, annotated frame)", f"{DRIVE} (drive, 5 frames)"]
    assert sequence.value == DRIVE
    assert at.multiselect(key="drive_runs").options == ["tiny"]  # only the run with predictions
    assert predict_command("tiny_b", DRIVE) in [block.value for block in at.code]
    assert "1 run without predictions" in notes(at)
    [video] = _videos(at)
    assert video.proto.autoplay and video.proto.muted and video.proto.loop  # a demo plays by itself
    videos = list((drive_env.artifacts / ".videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0
    charts = _charts(at)
    assert len(charts) == 1 and charts[0].count("<circle") == 4  # the run's 4 consecutive pairs
    assert not at.get("plotly_chart") and not at.dataframe  # neither loads its scripts before the video plays
    [table] = _tc_tables(at)
    assert table.splitlines()[0] == "| class | tiny |" and f"| **{TC}** |" in table and f"| **{FLICKER}** |" in table
    assert len(at.image) == 2  # the photo and the run's prediction of one frame
    # a second viewer: the video kept on disk is shown, nothing rendered again
    stamp = videos[0].stat().st_mtime_ns
    again = _open({"sequence": DRIVE})
    assert again.selectbox(key="drive_sequence").value == DRIVE
    assert len(_videos(again)) == 1 and videos[0].stat().st_mtime_ns == stamp
    assert len(list((drive_env.artifacts / ".videos").glob("*.mp4"))) == 1


def test_the_annotated_frame_links_to_the_explorer(drive_env):
    at = _open({"sequence": SNIPPET})
    assert at.selectbox(key="drive_sequence").value == SNIPPET
    assert at.select_slider(key="drive_frame").value == SNIPPET_FRAMES[-1]  # starts on the annotated frame
    links = [m.value for m in at.markdown if "Image explorer" in m.value]
    assert links and "(explorer?id=" in links[0] and "runs=tiny" in links[0]
    at.select_slider(key="drive_frame").set_value(SNIPPET_FRAMES[0]).run()
    assert not at.exception
    assert not [m.value for m in at.markdown if "Image explorer" in m.value]
    assert f"The annotated frame is {SNIPPET_FRAMES[-1]}" in notes(at)
    at.selectbox(key="drive_sequence").set_value(DRIVE).run()  # the frame and runs chosen carry over or reset
    assert not at.exception and not at.warning
    assert at.select_slider(key="drive_frame").value == 1 and at.multiselect(key="drive_runs").value == ["tiny"]


def test_a_store_without_predictions_says_the_command(drive_store, tmp_path, monkeypatch):
    artifacts = shutil.copytree(drive_store.artifacts, tmp_path / "artifacts")
    shutil.rmtree(artifacts / "runs" / "tiny" / "sequences")
    shutil.rmtree(artifacts / ".videos", ignore_errors=True)
    point_dashboard_at(monkeypatch, artifacts, drive_store.data_root)
    at = _open({"sequence": DRIVE})
    commands = "\n".join(block.value for block in at.code)
    assert predict_command("tiny", DRIVE) in commands and predict_command("tiny_b", DRIVE) in commands
    assert not _videos(at) and not _charts(at) and not _tc_tables(at)


def test_a_damaged_temporal_file_is_named(drive_store, tmp_path, monkeypatch):
    artifacts = shutil.copytree(drive_store.artifacts, tmp_path / "artifacts")
    (artifacts / "runs" / "tiny" / "sequences" / DRIVE / "temporal.json").write_text("{")
    point_dashboard_at(monkeypatch, artifacts, drive_store.data_root)
    at = _open({"sequence": DRIVE})
    assert f"sequences/{DRIVE}/temporal.json is not valid JSON" in notes(at)
    assert str(tmp_path) not in notes(at)


def test_the_tables_from_temporal_documents():
    documents = {"a": {"frames": [1, 2, 3], "class_names": ["road", "car"], "temporal_consistency": 0.75,
                       "flicker_rate": 0.1, "temporal_consistency_per_class": {"road": 1.0, "car": 0.5},
                       "pairs": [{"flicker_rate": 0.2, "miou": 0.7}, {"flicker_rate": 0.0, "miou": 0.8}]},
                 "b": {"frames": [1, 2, 3], "class_names": ["road", "car"], "temporal_consistency": None,
                       "flicker_rate": None, "temporal_consistency_per_class": {"road": None, "car": None},
                       "pairs": [{"flicker_rate": None, "miou": None}, {"flicker_rate": None, "miou": None}]}}
    flicker = flicker_frame(documents)
    assert flicker[flicker["run"] == "a"][["frame", FLICKER]].values.tolist() == [[2, 0.2], [3, 0.0]]
    table = tc_table(documents)
    assert table.loc["car", "a"] == 0.5 and table.loc[TC, "a"] == 0.75 and table[["b"]].isna().all().all()
    assert tc_markdown(table, {"b": "b_2 [imported]"}).splitlines() == [
        "| class | a | b_2 \\[imported\\] |", "|---|---:|---:|", "| road | 1.000 | - |", "| car | 0.500 | - |",
        f"| **{TC}** | 0.750 | - |", f"| **{FLICKER}** | 0.100 | - |"]


def test_a_frame_wider_than_the_display_is_shown_shrunk_and_says_so(drive_env, monkeypatch):
    from dashboard.pictures.drawing import DISPLAY_WIDTH_ENV

    monkeypatch.setenv(DISPLAY_WIDTH_ENV, "32")  # the drive's 128x64 frames shown at a quarter
    at = _open({"sequence": DRIVE})
    assert "Shown at 32x16 (the frame is 128x64)" in " ".join(c.value for c in at.caption)
    assert len(at.image) == 2 and not at.warning  # the photo and the run's frame, shrunk alike
    monkeypatch.delenv(DISPLAY_WIDTH_ENV)
    assert "Shown at" not in " ".join(c.value for c in _open({"sequence": DRIVE}).caption)  # 128 <= 512: as it is
