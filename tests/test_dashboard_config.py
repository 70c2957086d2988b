"""The dashboard's Streamlit settings (.streamlit/config.toml): a local tool listens on loopback
only, whichever way it is started (`make dashboard` or `python -m streamlit run ...`)."""

from __future__ import annotations

import tomllib
from pathlib import Path

CONFIG = Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml"


def test_the_dashboard_listens_on_loopback_only():
    config = tomllib.loads(CONFIG.read_text())
    assert config["server"]["address"] == "127.0.0.1"


def test_the_other_settings_are_kept():
    config = tomllib.loads(CONFIG.read_text())
    assert config["server"]["headless"] is True
    assert config["browser"]["gatherUsageStats"] is False
    assert config["theme"]["base"] == "light"
    assert config["client"]["toolbarMode"] == "minimal"


def test_streamlit_reads_the_address_from_the_repository():
    """`python -m streamlit run dashboard/app.py` from the repository: Streamlit's own
    reading of its options (a fresh process, so no option set by another test leaks in)."""
    import subprocess
    import sys

    code = ("from streamlit import config; config.get_config_options(force_reparse=True);"
            "print(config.get_option('server.address'))")
    result = subprocess.run([sys.executable, "-c", code], cwd=CONFIG.parent.parent, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "127.0.0.1"
