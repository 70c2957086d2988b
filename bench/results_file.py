"""One results file of a benchmark, stamped with when, where and how it was measured.

Every ``bench/results/*.json`` is committed and read by the docs build (``docs/hooks/``), which
prints under each table the stamp written here: ``"measured": {"date", "machine", "command"}``.
A payload is a dict (a list of rows goes under ``"rows"``), so the stamp has a place beside it.
"""

from __future__ import annotations

import os
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

from training.files import write_json_atomic
from training.runs.results import machine_text  # the demo runs' results file says it alike

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def this_command() -> str:
    """The command line that is running, as a reader would type it from the repository root."""
    script = Path(sys.argv[0]).resolve()
    shown = script.relative_to(REPO) if script.is_relative_to(REPO) else script
    return shlex.join([".venv/bin/python", str(shown), *sys.argv[1:]])


def stamp(command: str | None = None, when: datetime | None = None, machine: str | None = None) -> dict:
    """When, where and how; with the load average when the results are written (measured now): the
    machines these run on are shared, and a load above the core count slows every figure."""
    measured = {"date": (when or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds"),
                "machine": machine or machine_text(), "command": command or this_command()}
    if when is None:
        measured["load_average"] = round(os.getloadavg()[0], 1)
    return measured


def write_results(name: str, payload: dict | list, command: str | None = None, out: Path | None = None) -> Path:
    """Write ``bench/results/<name>.json`` (or ``out``) atomically with a fresh ``measured`` stamp."""
    body = {"rows": payload} if isinstance(payload, list) else {k: v for k, v in payload.items() if k != "measured"}
    path = out or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, {**body, "measured": stamp(command)})
