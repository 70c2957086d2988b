"""What every generated table shares: reading a stamped results file, a Markdown table, and the
line under it saying when, on what machine and by what command it was measured.

A results file is a JSON object with ``"measured": {"date", "machine", "command"}`` (written by
``bench/results_file.py``); one that is missing, not JSON or unstamped raises ``ResultsError``,
which the hook (``generated.py``) turns into a failed build naming the page, the marker and the file.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

STAMP_KEYS = ("date", "machine", "command")

# Every results file read while one marker renders: a table that then trips on a missing key
# (a damaged file) is reported with the files it read.
files_read: list[Path] = []


class ResultsError(Exception):
    """A results file is missing or damaged."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def read_results(path: Path) -> dict:
    """A stamped results file's contents."""
    files_read.append(path)
    if not path.is_file():
        raise ResultsError(path, "no such results file")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ResultsError(path, f"not readable JSON ({error})") from None
    measured = data.get("measured") if isinstance(data, dict) else None
    if not isinstance(measured, dict) or not all(isinstance(measured.get(key), str) for key in STAMP_KEYS):
        raise ResultsError(path, 'no "measured" stamp with date, machine and command')
    return data


def bench_results(root: Path, name: str) -> dict:
    """``bench/results/<name>.json`` of the repository at ``root``."""
    return read_results(root / "bench" / "results" / f"{name}.json")


def cell(value, digits: int = 1) -> str:
    """A number as a table shows it: fixed decimals, thousands separated; None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value).replace("|", "\\|")


def times(ratio: float | None, digits: int = 2) -> str:
    return "-" if ratio is None else f"{ratio:.{digits}f}x"


def percent(share: float | None, digits: int = 0) -> str:
    return "-" if share is None else f"{100 * share:.{digits}f} %"


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table; each cell is shown by ``cell`` unless it is already text."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(c if isinstance(c, str) else cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def measured_line(measured: dict) -> str:
    """``Measured on 2026-12-04 02:06 UTC, 2 cores, AMD EPYC, no GPU, by `command`.``"""
    when = datetime.fromisoformat(measured["date"]).strftime("%Y-%m-%d %H:%M UTC")
    load = f" (load average {measured['load_average']} at the end)" if "load_average" in measured else ""
    return f"Measured on {when}, {measured['machine']}{load}, by `{measured['command']}`."


def measured_table(headers: list[str], rows: list[list], results: dict) -> str:
    """A table followed by the stamp of the results it shows."""
    return table(headers, rows) + "\n\n" + measured_line(results["measured"])
