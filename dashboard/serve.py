"""``python -m dashboard.serve [options of streamlit run]``: the dashboard's server, its libraries
imported before it listens.

``streamlit run dashboard/app.py`` imports pandas, plotly and the project's core during the first
visitor's first script run: about a second of a cold first page on 2 cores. Started this way, the
server process has imported them before it answers, so the first visitor waits for the page alone.
Only modules that make no Streamlit calls are imported early: the dashboard's own modules declare
Streamlit caches, which belong to the running server, so they are imported by the first run as
before (imported here, they were measured to spare the first page nothing it noticed).

Streamlit also checks once per process, at the first element a page sends, whether it runs in a
Python REPL: ``inspect.stack()`` reads the source of every frame and resolves the path of every
loaded module, about 50 ms of the first page here. A server started here never is one, so the
check is marked done (``skip_repl_check``).

Everything else is ``streamlit run``: the same options, the same ``.streamlit/config.toml``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent / "app.py"
REPO = APP.parent.parent
# What a first page imports that needs no server: the libraries, then the core the readers use.
EARLY_IMPORTS = (
    "training",  # first: the libraries' import-time environment
    "numpy", "pandas", "PIL.Image", "cv2", "plotly.graph_objects", "plotly.express", "yaml",
    "training.data.index", "training.data.labels", "training.runs.reader", "training.runs.health",
    "training.runs.summary", "training.evaluation.variants", "training.evaluation.significance",
)


def import_early(names: tuple[str, ...] = EARLY_IMPORTS) -> list[str]:
    """Import ``names``; returns those that failed (each then imports, and fails, where a page needs it)."""
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError:
            failed.append(name)
    return failed


def skip_repl_check() -> None:
    """Mark Streamlit's once-per-process REPL check done (see the module's docstring); a Streamlit
    without the flag is left as it is."""
    import streamlit.delta_generator as delta_generator

    if hasattr(delta_generator, "_use_warning_has_been_displayed"):
        delta_generator._use_warning_has_been_displayed = True


def main(argv: list[str] | None = None) -> None:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import_early()
    skip_repl_check()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *(sys.argv[1:] if argv is None else argv)]
    cli.main()  # click: exits with the server


if __name__ == "__main__":
    main()
