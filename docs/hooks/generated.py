"""MkDocs hook: a line ``<!-- generated: NAME -->`` becomes the Markdown that NAME's function makes.

The functions are registered by name in ``bench_tables.TABLES`` (benchmarks, the API's routes) and
``demo_tables.TABLES`` (the demo runs); each takes the repository root and reads committed results
files, so no measured number is ever typed into a page. An unknown name, or a results file that is
missing or damaged, fails the build with the page, the marker and the file named.
"""

from __future__ import annotations

import re
from pathlib import Path

import bench_tables
import demo_tables
import render
from mkdocs.exceptions import PluginError

MARKER = re.compile(r"^<!-- generated: ([\w.-]+) -->[ \t]*$", re.MULTILINE)


def registry() -> dict:
    both = {**bench_tables.TABLES, **demo_tables.TABLES}
    shared = set(bench_tables.TABLES) & set(demo_tables.TABLES)
    if shared:
        raise PluginError(f"generated tables registered twice (bench_tables and demo_tables): {sorted(shared)}")
    return both


def expand(markdown: str, page_path: str, root: Path, tables: dict | None = None) -> str:
    """``markdown`` with every marker replaced by its generated Markdown."""
    tables = registry() if tables is None else tables

    def generated(match: re.Match) -> str:
        name = match.group(1)
        where = f"{page_path}: <!-- generated: {name} -->"
        if name not in tables:
            raise PluginError(f"{where}: unknown generated table {name!r} (known: {', '.join(sorted(tables))})")
        render.files_read.clear()
        try:
            return tables[name](root).strip()
        except render.ResultsError as error:
            raise PluginError(f"{where}: {error.reason}: {error.path}") from None
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
            read = ", ".join(str(path) for path in render.files_read) or "no results file"
            raise PluginError(f"{where}: damaged results ({type(error).__name__}: {error}) in {read}") from None

    return MARKER.sub(generated, markdown)


def on_page_markdown(markdown: str, page, config, files) -> str:
    return expand(markdown, page.file.src_path, Path(config.config_file_path).resolve().parent)
