"""The dashboard without TensorFlow: every page works in the environment of
``requirements-dashboard.txt`` (and ``requirements-dashboard-nodeps.txt``, installed with
``--no-deps``) on a run store trained elsewhere.

The store of ``dashboard_store`` (two tiny runs trained with TensorFlow in the main venv, the first
deployed) and its dataset are copied to a fresh folder, as if from a GPU machine: the copied run
configs name a data root that does not exist here, and ``CITYSCAPES_DATASET`` points at the copied
dataset. A script run by the dashboard-only python (``$DASHBOARD_PYTHON``, which ``make test``
sets; ``make dashboard-venv`` builds it) opens the app with Streamlit's AppTest, switches to every
page and checks what it shows, with an import hook that refuses TensorFlow, Keras,
segmentation-models, Albumentations and the Keras side of ``training`` even where they are
installed (OpenCV is allowed: the core computes with it). The two requirement files must pin what
``requirements.txt`` pins, and the environment must stay under ``MAX_ENVIRONMENT_MB``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "dashboard" / "app.py"
MAIN_REQUIREMENTS = REPO / "requirements.txt"
DASHBOARD_REQUIREMENTS = REPO / "requirements-dashboard.txt"
# Installed with --no-deps (cityscapesscripts: its matplotlib & co are not needed for what we import).
NO_DEPS_REQUIREMENTS = REPO / "requirements-dashboard-nodeps.txt"
MAKEFILE = REPO / "Makefile"
MAX_ENVIRONMENT_MB = 800  # the dashboard's site-packages, in MiB
TIMEOUT = 300  # seconds: a bound on the whole subprocess (four pages, cold imports), not a measurement
CLOSED_API = "http://127.0.0.1:9"  # nothing listens on the discard port
GPU_BOX_ROOT = "/gpu-box/datasets/cityscapes"  # the data root the copied configs name (absent here)

# Distributions that have no place in the dashboard's requirements.
NOT_FOR_THE_DASHBOARD = {"tensorflow", "tensorflow-cpu", "tensorflow-gpu", "tf-keras", "keras", "segmentation-models",
                         "albumentations", "flask", "gunicorn"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path, *, strict: bool) -> dict[str, str]:
    """``name -> version`` of the ``name==version`` lines (comments stripped). ``strict``: every
    requirement line must be such a pin."""
    pins = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        requirement = line.split("#", 1)[0].strip()
        if not requirement:
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;,]+)", requirement)
        if match is None:
            assert not strict, f"{path.name}:{number}: {requirement!r} is not pinned as name==version"
            continue
        name = _normalise(match.group(1))
        assert name not in pins, f"{path.name}:{number}: {name} listed twice"
        pins[name] = match.group(2)
    return pins


def _dashboard_pins() -> dict[str, str]:
    """The pins of both dashboard requirement files (a package in only one of them)."""
    pins = _pins(DASHBOARD_REQUIREMENTS, strict=True)
    no_deps = _pins(NO_DEPS_REQUIREMENTS, strict=True)
    twice = set(pins) & set(no_deps)
    assert not twice, f"{sorted(twice)} in both {DASHBOARD_REQUIREMENTS.name} and {NO_DEPS_REQUIREMENTS.name}"
    return pins | no_deps


def test_dashboard_requirements_pin_the_versions_of_requirements_txt():
    main = _pins(MAIN_REQUIREMENTS, strict=False)
    dashboard = _dashboard_pins()
    needed = {"streamlit", "plotly", "numpy", "pillow", "pyyaml", "tqdm", "cityscapesscripts", "pyquaternion",
              "opencv-python-headless", "requests"}
    assert needed <= set(dashboard), f"requirements-dashboard.txt lacks {sorted(needed - set(dashboard))}"
    assert not set(dashboard) & NOT_FOR_THE_DASHBOARD, "requirements-dashboard.txt must stay free of TensorFlow & co"
    drift = {name: (version, main[name]) for name, version in dashboard.items()
             if name in main and main[name] != version}
    assert not drift, f"requirements-dashboard.txt and requirements.txt pin different versions: {drift}"
    # A pin requirements.txt leaves to the resolver (pandas, via streamlit): the main venv's version,
    # so that the two environments run the same code.
    for name in set(dashboard) - set(main):
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            pytest.fail(f"requirements-dashboard.txt pins {name}, which the main environment does not have")
        assert installed == dashboard[name], (
            f"requirements-dashboard.txt pins {name}=={dashboard[name]}, the main environment has {installed}")


def test_cityscapesscripts_is_installed_without_its_dependencies():
    """Its matplotlib & co would take ~75 MB; the modules we import need only numpy, Pillow and
    pyquaternion, which requirements-dashboard.txt pins."""
    assert set(_pins(NO_DEPS_REQUIREMENTS, strict=True)) == {"cityscapesscripts"}
    assert "pyquaternion" in _pins(DASHBOARD_REQUIREMENTS, strict=True)
    makefile = MAKEFILE.read_text()
    assert f"pip install --quiet --no-deps -r {NO_DEPS_REQUIREMENTS.name}" in makefile


# ---------------------------------------------------------------------------- every page

def _dashboard_python() -> str:
    """``$DASHBOARD_PYTHON``: skipped where unset (outside CI), a failure in CI or where it is missing."""
    python = os.environ.get("DASHBOARD_PYTHON")
    if not python:
        reason = ("DASHBOARD_PYTHON is not set: `make test` sets it to the dashboard-only venv's python "
                  "(built by `make dashboard-venv` from requirements-dashboard.txt)")
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run this test")
        pytest.skip(reason)
    # abspath, not resolve(): a venv's python is a symlink to the base interpreter, and following
    # it would leave the venv.
    python = os.path.abspath(python)
    if not os.path.isfile(python) or not os.access(python, os.X_OK):
        pytest.fail(f"DASHBOARD_PYTHON={python} is not an executable file: build it with `make dashboard-venv`")
    return python


def test_the_dashboard_environment_stays_under_800_mb():
    """What ``requirements-dashboard.txt`` installs (the site-packages of ``$DASHBOARD_PYTHON``,
    bytes of every file) stays under ``MAX_ENVIRONMENT_MB``: a laptop's environment, not a GPU box's."""
    python = _dashboard_python()
    found = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=True)
    site_packages = Path(found.stdout.strip())
    assert site_packages.is_dir(), f"{python} names {site_packages} as its site-packages, which is not a folder"
    total = sum(path.lstat().st_size for path in site_packages.rglob("*") if not path.is_symlink() and path.is_file())
    megabytes = total / 2**20
    assert megabytes < MAX_ENVIRONMENT_MB, (
        f"{site_packages} holds {megabytes:.0f} MB, more than {MAX_ENVIRONMENT_MB} MB: look for a dependency "
        f"that brings what the dashboard never imports (requirements-dashboard-nodeps.txt shows how to leave it out)")


def _copy_from_gpu_box(store, box: Path) -> tuple[Path, Path]:
    """The store and its dataset copied to ``box``; the runs' configs name a root absent here."""
    artifacts = shutil.copytree(store.artifacts, box / "artifacts")
    data_root = shutil.copytree(store.data_root, box / "cityscapes")
    originals = {str(store.data_root): GPU_BOX_ROOT, str(store.artifacts): "/gpu-box/artifacts"}
    rewritten = []
    for path in artifacts.rglob("*"):
        if path.suffix in {".yaml", ".yml", ".json", ".csv", ".txt"} and path.is_file():
            text = path.read_text()
            new = text
            for old, replacement in originals.items():
                new = new.replace(old, replacement)
            if new != text:
                path.write_text(new)
                rewritten.append(path.relative_to(artifacts))
    assert any(path.name == "config.yaml" for path in rewritten), (
        f"no run config named the data root {store.data_root}: the premise of this test changed")
    assert not Path(GPU_BOX_ROOT).exists()
    for path in [*artifacts.rglob("*"), *data_root.rglob("*")]:  # nothing leads back to the originals
        if path.suffix in {".yaml", ".yml", ".json", ".csv", ".txt"} and path.is_file():
            text = path.read_text()
            assert not any(old in text for old in originals), f"{path} still names the original store"
    return artifacts, data_root


# Run by the dashboard-only python with the repository as its working directory; argv[1] is JSON.
PAGES_SCRIPT = r'''
import importlib.abc
import json
import re
import sys
import traceback
from importlib import metadata

params = json.loads(sys.argv[1])
BLOCKED = ("tensorflow", "keras", "tf_keras", "segmentation_models", "albumentations",
           "training.fit", "training.models", "training.losses")
attempts = []


def blocked(name):
    return any(name == b or name.startswith(b + ".") for b in BLOCKED)


class RefuseTensorFlow(importlib.abc.MetaPathFinder):
    """Refuses the modules the dashboard must not import, installed or not."""

    def find_spec(self, name, path=None, target=None):
        if blocked(name):
            attempts.append(f"import {name}\n" + "".join(traceback.format_stack(limit=12)[:-1]))
            raise ImportError(f"{name} imported in the dashboard-only environment")
        return None


problems = []

# The environment is the one requirements-dashboard.txt describes.
for name, version in params["pins"].items():
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        installed = None
    if installed != version:
        problems.append(f"environment: {name} is {installed}, requirements-dashboard.txt pins {version} "
                        f"(rebuild it: make dashboard-venv)")
present = sorted({re.sub(r"[-_.]+", "-", d.metadata["Name"] or "").lower() for d in metadata.distributions()}
                 & set(params["not_installed"]))
if present:
    problems.append(f"environment: {sys.prefix} has {', '.join(present)}: DASHBOARD_PYTHON must be the "
                    f"TensorFlow-free venv (make dashboard-venv)")
already = sorted(m for m in sys.modules if blocked(m))
if already:
    problems.append(f"environment: imported before the app ran: {already}")

sys.meta_path.insert(0, RefuseTensorFlow())

from streamlit.testing.v1 import AppTest  # noqa: E402

APP, RUNS, DEPLOYED = params["app"], params["runs"], params["deployed"]


def opened(page=None):
    at = AppTest.from_file(APP, default_timeout=params["timeout"]).run()
    if page is not None:
        at.switch_page(page).run()
    return at


def overview(at):
    board = at.dataframe[0].value
    assert sorted(board["run"]) == sorted(RUNS), f"leaderboard runs: {list(board['run'])}"
    assert any(DEPLOYED in s.value for s in at.subheader), f"deployed run not shown: {[s.value for s in at.subheader]}"
    shown = {m.label: m.value for m in at.metric}
    assert "Test mIoU (all classes)" in shown, f"metrics shown: {shown}"
    assert at.get("plotly_chart"), "no chart"


def explorer(at):
    import json

    captions = [c for image in at.image for c in image.captions]
    charts = {chart.key: json.loads(chart.proto.spec) for chart in at.get("plotly_chart")}
    panels = (charts.get("explorer_compare_chart", {}).get("layout", {}).get("meta") or {}).get("panels", [])
    for expected in ["photo", "ground truth"] + [f"{run}: prediction" for run in RUNS]:
        assert expected in captions + panels, f"no picture titled {expected!r}; images: {captions}, panels: {panels}"
    figure = charts.get("explorer_compare_chart", {})
    hover = [t for t in figure.get("data", []) if t.get("type") == "heatmap"]
    pictured = {image.get("xref") for image in figure.get("layout", {}).get("images", []) if image.get("source")}
    assert len(hover) == len(panels) and pictured == {t.get("xaxis", "x") for t in hover}, "a panel without its picture"
    assert all(url for image in at.image for url in image.value), "an image without a URL"
    assert at.dataframe, "no per-class IoU table"
    at.toggle(key="explorer_hover_open").set_value(True).run()  # on demand under the side-by-side view
    assert not at.exception, [e.message for e in at.exception]
    assert "explorer_hover_chart" in [chart.key for chart in at.get("plotly_chart")], "no zoom-and-hover figure"


def comparison(at):
    charts = at.get("plotly_chart")
    assert charts, "no chart"
    bars = json.loads(charts[0].proto.spec)["data"]
    assert [bar["name"] for bar in bars] == RUNS, f"bars: {[bar.get('name') for bar in bars]}"
    assert list(at.dataframe[0].value.columns) == RUNS


def anatomy(at):
    frames = [frame.value for frame in at.dataframe]
    assert any(list(frame.index) == RUNS for frame in frames), "no table of the runs' error anatomy"
    assert at.get("plotly_chart"), "no chart"


def labels_check(at):
    text = " ".join(str(m.value) for m in at.markdown)
    assert "candidate region" in text and "images scanned" in text, f"no scan shown: {text!r}"


def gallery(at):
    captions = [c for image in at.image for c in image.captions]
    assert captions and all(re.match(r"\d+ · ", c) for c in captions), f"thumbnails: {captions}"
    assert any("Page 1 of" in c.value for c in at.caption), "no page position"


def tags(at):
    assert any("No image is tagged" in i.value for i in at.info), f"infos: {[i.value for i in at.info]}"


def exports(at):
    assert any("No run has an embedded export" in i.value for i in at.info), f"infos: {[i.value for i in at.info]}"


def drive(at):
    shown = " ".join(i.value for i in at.info)
    assert "no drive sequence" in shown or "without predictions of" in shown, f"infos: {shown!r}"


def deployed(at):
    message = " ".join(error.value for error in at.error)
    assert "unreachable" in message and params["api_url"] + "/health" in message, f"errors: {message!r}"
    assert not at.image and not at.file_uploader


for page, check in [(None, overview), ("app_pages/overview.py", overview), ("app_pages/explorer.py", explorer),
                    ("app_pages/comparison.py", comparison), ("app_pages/anatomy.py", anatomy),
                    ("app_pages/labels_check.py", labels_check), ("app_pages/gallery.py", gallery),
                    ("app_pages/tags.py", tags), ("app_pages/exports.py", exports),
                    ("app_pages/deployed.py", deployed), ("app_pages/drive.py", drive)]:
    label = page or "the app's landing page"
    try:
        at = opened(page)
        if at.exception:
            raise AssertionError("the page raised:\n" + "\n".join(
                e.message + "\n" + "\n".join(e.stack_trace) for e in at.exception))
        if check is not deployed and at.error:
            raise AssertionError(f"errors shown: {[e.value for e in at.error]}")
        check(at)
        print(f"ok: {label}")
    except Exception as error:  # every page is tried; all failures are reported
        problems.append(f"{label}: {type(error).__name__}: {error}")

loaded = sorted(m for m in sys.modules if blocked(m))
if loaded:
    problems.append(f"modules loaded: {loaded}")
problems += [f"import attempted:\n{attempt}" for attempt in attempts]
print("\n\n".join(problems) if problems else "every page works without TensorFlow")
sys.exit(1 if problems else 0)
'''


def test_every_page_works_without_tensorflow_on_a_copied_store(request, tmp_path):
    python = _dashboard_python()  # before the store: a skip trains nothing
    dashboard_store = request.getfixturevalue("dashboard_store")
    artifacts, data_root = _copy_from_gpu_box(dashboard_store, tmp_path / "from_the_gpu_box")
    params = {
        "app": str(APP), "runs": list(dashboard_store.runs), "deployed": dashboard_store.runs[0],
        "api_url": CLOSED_API, "timeout": 120, "pins": _dashboard_pins(),
        "not_installed": sorted(NOT_FOR_THE_DASHBOARD - {"flask", "gunicorn"}),
    }
    env = {name: value for name, value in os.environ.items()
           if name not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}}
    env.update({"ARTIFACTS_DIR": str(artifacts), "CITYSCAPES_DATASET": str(data_root),
                "SEGMENTATION_API_URL": CLOSED_API, "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        result = subprocess.run([python, "-c", PAGES_SCRIPT, json.dumps(params)], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as expired:
        def text(output) -> str:  # bytes whatever text= says
            return output.decode(errors="replace") if isinstance(output, bytes) else (output or "")

        pytest.fail(f"the dashboard-only run took over {TIMEOUT} s; its output:\n--- stdout\n"
                    f"{text(expired.stdout)}\n--- stderr\n{text(expired.stderr)}")
    assert result.returncode == 0, (f"{python} (exit {result.returncode}):\n--- stdout\n{result.stdout}\n"
                                    f"--- stderr\n{result.stderr}")
    assert "every page works without TensorFlow" in result.stdout
