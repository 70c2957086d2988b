"""``make models`` (issue 25): after training the demo set, one ``python -m training benchmark``
pass measures every run again on a quiet machine; on the embedded dataset every run then predicts
the drives; run again, it trains and measures nothing. The
Makefile's recipe runs with a stand-in for the environment's Python that records its calls."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).resolve().parent.parent / "Makefile"
RECORDER = """#!{python}
import pathlib, sys
args = sys.argv[1:]
with open("calls.txt", "a") as calls:
    calls.write(" ".join(args) + "\\n")
if args[:3] == ["-m", "training", "train"]:
    run = pathlib.Path("artifacts/runs") / pathlib.Path(args[3]).stem
    run.mkdir(parents=True, exist_ok=True)
    (run / "metrics.json").write_text("{{}}")
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="no make")
def test_make_models_ends_with_one_benchmark_pass_and_is_idempotent(tmp_path):
    (tmp_path / "configs" / "demo").mkdir(parents=True)
    for name in ("a_model", "b_model", "_base"):  # "_" files are bases, never trained
        (tmp_path / "configs" / "demo" / f"{name}.yaml").write_text("name: x\n")
    (tmp_path / "requirements.txt").write_text("")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(RECORDER.format(python=sys.executable))
    python.chmod(0o755)
    stamp = venv / ".requirements-installed"
    stamp.write_text("")
    os.utime(stamp, (os.path.getmtime(tmp_path / "requirements.txt") + 10,) * 2)  # the venv is up to date
    environment = {**os.environ, "CITYSCAPES_DATASET": str(tmp_path / "data")}

    def make() -> list[str]:
        (tmp_path / "calls.txt").unlink(missing_ok=True)
        subprocess.run(["make", "-s", "-f", str(MAKEFILE), "models", f"VENV={venv}"], cwd=tmp_path, check=True,
                       env=environment, capture_output=True, text=True)
        return [line.split(" ", 2)[2] if line.startswith("-m training ") else line
                for line in (tmp_path / "calls.txt").read_text().splitlines()]

    first = [call.split(" ")[0] for call in make()]
    assert first == ["data", "train", "train", "deploy", "benchmark", "table", "results"]  # results: for the docs
    assert [call.split(" ")[0] for call in make()] == ["data", "table", "results"]  # trained already: nothing again

    # on the embedded dataset every run also predicts the drive and the snippets, once
    shutil.rmtree(tmp_path / "artifacts")
    del environment["CITYSCAPES_DATASET"]
    calls = [call for call in make() if not call.startswith("data ")]  # the embedded dataset's making
    assert [call.split(" ")[0] for call in calls] == [
        "train", "train", "deploy", "benchmark", "predict-sequence", "predict-sequence", "table", "results"]
    assert {call.split(" ")[1] for call in calls if call.startswith("predict-sequence")} == {"a_model", "b_model"}
    assert all("--all" in call for call in calls if call.startswith("predict-sequence"))
    assert [call.split(" ")[0] for call in make() if not call.startswith("data ")] == ["table", "results"]
