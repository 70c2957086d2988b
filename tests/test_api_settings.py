"""The API's settings are checked when the app is created: a wrong value stops the start with a
message naming the variable and its value (it made every upload a 500, once)."""

import re
import subprocess

import pytest
from api_fixtures import GUNICORN, REPO, free_port, server_environment

from api import create_app
from api.settings import SettingsError

BAD = [
    ("SEGAPI_MAX_CONTENT_LENGTH", "abc", "'abc'"),
    ("SEGAPI_MAX_CONTENT_LENGTH", "0", "0"),
    ("SEGAPI_MAX_UPLOAD_PIXELS", "x", "'x'"),
    ("SEGAPI_MAX_UPLOAD_PIXELS", "1.5", "1.5"),
    ("SEGAPI_CACHE_BYTES", "-1", "-1"),
    ("SEGAPI_INPUT_CACHE_BYTES", "true", "True"),
    ("SEGAPI_MAX_DECODING_UPLOADS", "0", "0"),
    ("SEGAPI_UPLOAD_QUEUE_SECONDS", "soon", "'soon'"),
    ("SEGAPI_DATA_ROOT", "5", "5"),
    ("SEGAPI_WARM_UP", "maybe", "'maybe'"),
    ("SEGAPI_RUN", "[1, 2]", "[1, 2]"),
]


@pytest.mark.parametrize("variable, text, shown", BAD)
def test_a_wrong_setting_stops_the_app_naming_it(monkeypatch, tmp_path, variable, text, shown):
    monkeypatch.setenv("SEGAPI_ARTIFACTS_DIR", str(tmp_path))
    monkeypatch.setenv(variable, text)
    with pytest.raises(SettingsError) as raised:
        create_app()
    assert f"{variable}={shown}" in str(raised.value)


def test_a_data_root_that_is_not_a_folder_is_refused(tmp_path):
    file = tmp_path / "a-file"
    file.write_text("")
    for root in (tmp_path / "missing", file):
        with pytest.raises(SettingsError, match=re.escape(f"SEGAPI_DATA_ROOT='{root}': not a folder")):
            create_app({"ARTIFACTS_DIR": str(tmp_path), "DATA_ROOT": str(root)})


def test_every_problem_is_named_at_once(tmp_path):
    with pytest.raises(SettingsError) as raised:
        create_app({"ARTIFACTS_DIR": str(tmp_path), "MAX_CONTENT_LENGTH": "abc", "MAX_UPLOAD_PIXELS": -5})
    assert "SEGAPI_MAX_CONTENT_LENGTH='abc'" in str(raised.value) and "SEGAPI_MAX_UPLOAD_PIXELS=-5" in str(raised.value)


def test_good_settings_from_the_environment_are_used(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGAPI_MAX_CONTENT_LENGTH", "1234")
    monkeypatch.setenv("SEGAPI_DATA_ROOT", str(tmp_path))
    monkeypatch.setenv("SEGAPI_UPLOAD_QUEUE_SECONDS", "2.5")
    app = create_app({"ARTIFACTS_DIR": str(tmp_path)})
    assert (app.config["MAX_CONTENT_LENGTH"], app.config["DATA_ROOT"]) == (1234, str(tmp_path))
    assert app.config["UPLOAD_QUEUE_SECONDS"] == 2.5


@pytest.mark.slow
@pytest.mark.parametrize("variable, text", [("SEGAPI_MAX_CONTENT_LENGTH", "abc"), ("SEGAPI_DATA_ROOT", "5")])
def test_gunicorn_refuses_to_start_with_a_wrong_setting(tmp_path, variable, text):
    """The real server exits non-zero with the message (no worker is started, no traceback)."""
    env = server_environment({"SEGAPI_ARTIFACTS_DIR": str(tmp_path), variable: text}, free_port(), workers=1,
                             threads=1)
    result = subprocess.run(GUNICORN, cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert f"{variable}=" in output and text in output, output[-3000:]
    assert "Traceback" not in output and "Booting worker" not in output, output[-3000:]
