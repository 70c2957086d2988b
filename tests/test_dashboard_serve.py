"""``python -m dashboard.serve``: the libraries and the core imported before the server listens,
none of the dashboard's own modules (their Streamlit caches belong to the running server) and no
TensorFlow; Streamlit's REPL check marked done. The served app itself is what the browser tests
start (tests/test_dashboard_browser.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = os.environ.get("DASHBOARD_PYTHON", sys.executable)

CHECK = """
import json, sys
import dashboard.serve as serve
failed = serve.import_early()
import streamlit.delta_generator as delta_generator
repl_check_before = delta_generator._use_warning_has_been_displayed
serve.skip_repl_check()
print(json.dumps({"repl_check": [repl_check_before, delta_generator._use_warning_has_been_displayed],
                  "failed": failed, "missing": serve.import_early(("no_such_module_for_the_test",)),
                  "loaded": [name for name in serve.EARLY_IMPORTS if name not in sys.modules],
                  "dashboard": sorted(m for m in sys.modules if m.startswith("dashboard.") and m != "dashboard.serve"),
                  "tensorflow": "tensorflow" in sys.modules}))
"""


def test_the_libraries_are_imported_early_and_nothing_of_the_dashboard():
    done = subprocess.run([PYTHON, "-c", CHECK], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["failed"] == [] and found["loaded"] == []
    assert found["missing"] == ["no_such_module_for_the_test"]  # named, not raised: the page says it later
    assert found["dashboard"] == []
    assert not found["tensorflow"]
    # Streamlit's once-per-process REPL check (inspect.stack(), ~50 ms of the first page) is marked done
    assert found["repl_check"] == [False, True]

