"""The docs' generated tables (docs/hooks/): a results file becomes its table, numbers and stamp
included, and every table of benchmarks.md changes when its committed results file does; an
unknown marker or a missing or damaged results file fails the build naming it; the API's page
lists every route the app serves. (The whole site is built by `make test` itself.)"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "docs" / "hooks"))  # as mkdocs loads the hook: its folder importable

import bench_tables  # noqa: E402
import generated  # noqa: E402
from mkdocs.exceptions import PluginError  # noqa: E402

MEASURED = {"date": "2026-01-02T03:04:05+00:00", "machine": "2 cores, Test CPU, no GPU",
            "command": ".venv/bin/python bench/bench_compare.py"}
ROWS = [{"classes": "categories8", "matrix": "8x8", "images": 500, "resamples": 1000, "compare_runs_ms": 22.74,
         "paired_bootstrap_ms": 16.31, "miou_difference": 0.01174, "ci95": [0.00985, 0.01373], "significant": True}]


def write_compare(root: Path, rows=ROWS, measured=MEASURED) -> Path:
    path = root / "bench" / "results" / "compare.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rows": rows, "measured": measured}))
    return path


def page(root: Path, markdown: str) -> str:
    return generated.expand(markdown, "benchmarks.md", root)


def test_a_results_file_becomes_its_table_and_follows_it(tmp_path):
    write_compare(tmp_path)
    text = page(tmp_path, "# Paired bootstrap\n\n<!-- generated: paired-bootstrap -->\n\nAfter.\n")
    row = next(line for line in text.splitlines() if line.startswith("| categories8"))
    assert [cell.strip() for cell in row.strip("|").split("|")] == [
        "categories8", "8x8", "500", "1,000", "22.7", "16.3", "+0.0117", "[+0.0098, +0.0137]"]
    assert ("Measured on 2026-01-02 03:04 UTC, 2 cores, Test CPU, no GPU, by "
            "`.venv/bin/python bench/bench_compare.py`.") in text
    assert "generated:" not in text and text.startswith("# Paired bootstrap") and text.endswith("After.\n")

    write_compare(tmp_path, [{**ROWS[0], "compare_runs_ms": 99.96}], {**MEASURED, "load_average": 3.5})
    changed = page(tmp_path, "<!-- generated: paired-bootstrap -->")
    assert "| 100.0 | 16.3 |" in changed and "| 22.7 |" not in changed
    assert "(load average 3.5 at the end)" in changed


def test_an_unknown_marker_fails_naming_it_and_the_page(tmp_path):
    with pytest.raises(PluginError, match=r"benchmarks\.md: <!-- generated: no-such-table -->: unknown"):
        page(tmp_path, "text\n<!-- generated: no-such-table -->\n")


def test_a_missing_results_file_fails_naming_it(tmp_path):
    missing = tmp_path / "bench" / "results" / "compare.json"
    with pytest.raises(PluginError, match=re.escape(f"no such results file: {missing}")) as failure:
        page(tmp_path, "<!-- generated: paired-bootstrap -->")
    assert "paired-bootstrap" in str(failure.value)


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not readable JSON"),
    (json.dumps({"rows": ROWS}), 'no "measured" stamp'),
    (json.dumps({"rows": [{"classes": "categories8"}], "measured": MEASURED}), "damaged results (KeyError"),
])
def test_a_damaged_results_file_fails_naming_it(tmp_path, content, reason):
    path = write_compare(tmp_path)
    path.write_text(content)
    with pytest.raises(PluginError, match=re.escape(reason)) as failure:
        page(tmp_path, "<!-- generated: paired-bootstrap -->")
    assert str(path) in str(failure.value)


def test_every_marker_of_the_pages_is_registered():
    names = {name for md in (REPO / "docs").rglob("*.md")
             for name in generated.MARKER.findall(md.read_text())}
    assert names <= set(generated.registry())


def test_the_api_page_lists_every_route_the_app_serves():
    import api

    with tempfile.TemporaryDirectory() as empty_store:
        app = api.create_app({"ARTIFACTS_DIR": empty_store, "TESTING": True})
        served = {(method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)) for rule in app.url_map.iter_rules()
                  if rule.endpoint != "static" for method in rule.methods - {"HEAD", "OPTIONS"}}
    markdown = bench_tables.TABLES["openapi"](REPO)
    overview = {(m, p) for m, p in re.findall(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \|", markdown, re.M)}
    assert overview == served
    for method, path in served:
        assert f"### `{method} {path}`" in markdown
    assert "| `200` |" in markdown and "| `404` |" in markdown


def perturbed(value):
    """Every number of a results file changed (the stamp's text kept), to see the page follow."""
    if isinstance(value, dict):
        return {key: (item if key == "measured" else perturbed(item)) for key, item in value.items()}
    if isinstance(value, list):
        return [perturbed(item) for item in value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return value + 1 if isinstance(value, int) else value * 1.37 + 0.5


def data_rows(markdown: str) -> list[str]:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    return [line for i, line in enumerate(lines) if not line.startswith("|---")
            and not (i + 1 < len(lines) and lines[i + 1].startswith("|---"))]


BENCHMARK_MARKERS = sorted(set(generated.MARKER.findall((REPO / "docs" / "benchmarks.md").read_text())))


@pytest.mark.parametrize("name", BENCHMARK_MARKERS)
def test_every_benchmark_table_follows_its_results_file(tmp_path, name):
    """Each table of benchmarks.md, from a copy of the committed results: every row with a number
    changes when the file's numbers do."""
    shutil.copytree(REPO / "bench" / "results", tmp_path / "bench" / "results")
    before = generated.expand(f"<!-- generated: {name} -->", "benchmarks.md", tmp_path)
    read = list(dict.fromkeys(generated.render.files_read))
    assert read and all(str(path).startswith(str(tmp_path)) for path in read)
    for path in read:
        path.write_text(json.dumps(perturbed(json.loads(path.read_text()))))
    after = generated.expand(f"<!-- generated: {name} -->", "benchmarks.md", tmp_path)
    rows_before, rows_after = data_rows(before), data_rows(after)
    assert rows_before and len(rows_before) == len(rows_after)
    unchanged = [row for row, new in zip(rows_before, rows_after) if row == new and re.search(r"\d", row)]
    assert not unchanged
    assert before.splitlines()[-1].startswith("Measured on ")
