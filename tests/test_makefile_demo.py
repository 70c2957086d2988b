"""``make models`` (the demo's training step) says which model of how many it trains and the time
so far. The real Makefile runs in a scratch copy of the repository's layout with a stand-in
Python that records its commands, so nothing is trained and the real ``artifacts/`` is untouched."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

STAND_IN = """#!/bin/sh
echo "$@" >> "{log}"
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_models_counts_the_models_and_the_time(tmp_path):
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    shutil.copytree(REPO / "configs" / "demo", tmp_path / "configs" / "demo")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "commands.log"
    python = venv / "bin" / "python"
    python.write_text(STAND_IN.format(log=log))
    python.chmod(0o755)
    (tmp_path / "requirements.txt").write_text("")
    (venv / ".requirements-installed").touch()  # newer than requirements.txt: nothing to install
    data = tmp_path / "cityscapes"
    data.mkdir()

    result = subprocess.run(["make", "--no-print-directory", "models", f"VENV={venv}", f"CITYSCAPES_DATASET={data}"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    demo = tmp_path / "configs" / "demo"
    configs = sorted(path.relative_to(tmp_path).as_posix() for path in demo.glob("[!_]*.yaml"))
    progress = re.findall(r"^model (\d+) of (\d+): (\S+) \(elapsed (\d\d):(\d\d)\)$", result.stdout, re.MULTILINE)
    assert [(int(i), int(n), config) for i, n, config, _, _ in progress] == [
        (number, len(configs), config) for number, config in enumerate(configs, 1)]
    assert re.search(rf"^trained {len(configs)} models in \d\d:\d\d$", result.stdout, re.MULTILINE)
    trained = [line for line in log.read_text().splitlines() if line.startswith("-m training train ")]
    assert [line.split()[3] for line in trained] == configs  # each config trained once, in order
    assert "-m training deploy --best" in log.read_text()
