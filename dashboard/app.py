"""Street-scene segmentation dashboard: ``streamlit run dashboard/app.py``. The page list, nothing more.

Pages (``app_pages/``): Overview (the stakeholder landing), Image explorer, Gallery (many images at
once, sorted and filtered by their numbers), Tags and notes (what analysts marked), Model
comparison, Calibration, Error anatomy, Check labels, Drive (a sequence played with several runs side
by side, and their temporal consistency), Embedded exports, Deployed model. Each page
arranges ``sections/`` (what several pages share, and the explorer's fragments), which show
``pictures/`` and tables shaped by ``views/`` from what ``readers/`` read of the run store
(``$ARTIFACTS_DIR`` or ``artifacts/``) and of the API (``$SEGMENTATION_API_URL``, or ``api_url`` in
Streamlit secrets). It never imports TensorFlow.

Nothing is fetched from the internet: the browser tab's icon is a file of the repository
(``static/page_icon.png``; a ``:material/...:`` page icon would be fetched from a font CDN), and the
pages' ``:material/...:`` icons come from the font Streamlit serves itself.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import streamlit as st  # noqa: E402

import training  # noqa: E402,F401  (the libraries' import-time environment)
from dashboard.sections.page import problems_sidebar  # noqa: E402

PAGE_ICON = str(Path(__file__).resolve().parent / "static" / "page_icon.png")  # a traffic light, drawn with PIL
st.set_page_config(page_title="Street-scene segmentation", page_icon=PAGE_ICON, layout="wide")

OVERVIEW = st.Page("app_pages/overview.py", title="Overview", icon=":material/leaderboard:", default=True)
PAGES = [
    OVERVIEW,
    st.Page("app_pages/explorer.py", title="Image explorer", icon=":material/image_search:",
            url_path="explorer"),
    st.Page("app_pages/gallery.py", title="Gallery", icon=":material/photo_library:", url_path="gallery"),
    st.Page("app_pages/tags.py", title="Tags and notes", icon=":material/sell:", url_path="tags"),
    st.Page("app_pages/comparison.py", title="Model comparison", icon=":material/compare:",
            url_path="comparison"),
    st.Page("app_pages/calibration.py", title="Calibration", icon=":material/insights:", url_path="calibration"),
    st.Page("app_pages/anatomy.py", title="Error anatomy", icon=":material/troubleshoot:", url_path="anatomy"),
    st.Page("app_pages/labels_check.py", title="Check labels", icon=":material/rule:", url_path="labels"),
    st.Page("app_pages/exports.py", title="Embedded exports", icon=":material/memory:", url_path="exports"),
    st.Page("app_pages/deployed.py", title="Deployed model", icon=":material/cloud:", url_path="deployed"),
    st.Page("app_pages/drive.py", title="Drive", icon=":material/directions_car:", url_path="drive"),
]


@st.cache_resource
def _frozen() -> dict[str, int]:
    """How many modules were loaded when the objects were last frozen (one count for the process)."""
    return {"modules": 0}


def freeze_loaded_modules() -> None:
    """Move what the imports made (modules, classes, functions: about 150 000 objects) out of the
    garbage collector's sight once they are loaded. Streamlit collects after every script run
    (``runner.postScriptGC``), a full pass over every object that holds the GIL, 0.1-0.2 s on this
    machine, just as the run's last messages are to be sent; frozen objects are skipped. Called at
    the start of a run, so the last run's garbage is collected by then and only what lives is
    frozen (refcounting still frees frozen objects); again only when a page imported new modules."""
    frozen = _frozen()
    if len(sys.modules) != frozen["modules"]:
        gc.freeze()
        frozen["modules"] = len(sys.modules)


freeze_loaded_modules()
page = st.navigation(PAGES)
if page.url_path != OVERVIEW.url_path:  # the Overview lists the damage in full
    problems_sidebar()
page.run()
