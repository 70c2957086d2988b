import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the builders beside the tests

from cityscapes_builder import build_tiny_dataset  # noqa: E402

import training  # noqa: E402,F401  (applies the import-time environment first)

PYTEST_MAIN = sys.modules["__main__"]


@pytest.fixture(autouse=True)
def _main_module_restored():
    """Each test ends with pytest's ``__main__`` back. Streamlit's AppTest runs a page as
    ``__main__`` and leaves it there; a later ``spawn`` worker (the dataset generator's, once
    TensorFlow is loaded) re-runs that module in the child, and an ``AppTest.from_function`` script
    dies there (NameError), which multiprocessing.Pool answers by starting another worker, forever."""
    yield
    sys.modules["__main__"] = PYTEST_MAIN


@pytest.fixture
def tiny_root(tmp_path) -> Path:
    """14 pairs of 16x32 real PNGs: train cities alpha and beta, val city gamma."""
    return build_tiny_dataset(tmp_path / "cityscapes")


@pytest.fixture(scope="session")
def api_store(tmp_path_factory):
    """A tiny dataset with one trained and deployed run (built once per session)."""
    from api_fixtures import tiny_store

    return tiny_store(tmp_path_factory)


@pytest.fixture
def app(api_store):
    from api import create_app

    return create_app({"TESTING": True, "ARTIFACTS_DIR": str(api_store.artifacts),
                       "DATA_ROOT": str(api_store.data_root)})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def dashboard_store(tmp_path_factory, api_store):
    """A run store with two tiny runs of different models (the first deployed), on the API's
    tiny dataset: enough for every dashboard page, comparisons included."""
    from types import SimpleNamespace

    from api_fixtures import TINY

    from training.fit import runner as train_module
    from training.fit.config import load_config
    from training.runs.deployment import deploy

    artifacts = tmp_path_factory.mktemp("dashboard_store") / "artifacts"
    runs = []
    unet = ["model.name=unet", "model.options={base_filters: 4, depth: 2}", "loss.name=cce_dice", "train.epochs=2"]
    for name, extra in (("tiny_simple", []), ("tiny_unet", unet)):
        config = load_config(None, TINY + [f"data.root={api_store.data_root}", f"name={name}", *extra])
        runs.append(train_module.train(config, artifacts, verbose=0).name)
    deploy(runs[0], artifacts)
    return SimpleNamespace(artifacts=artifacts, data_root=api_store.data_root, runs=runs)


@pytest.fixture
def dashboard_env(dashboard_store, monkeypatch):
    """Environment of a dashboard test: the tiny store, no API (a closed port)."""
    from dashboard_fixtures import point_dashboard_at

    point_dashboard_at(monkeypatch, dashboard_store.artifacts, dashboard_store.data_root)
    return dashboard_store


@pytest.fixture
def dashboard_store_copy(dashboard_store, tmp_path, monkeypatch):
    """A copy of ``dashboard_store``'s run store in this test's folder, for a test to change or
    damage (the dataset is shared, read-only); the environment of ``dashboard_env`` pointing at it."""
    import shutil
    from types import SimpleNamespace

    artifacts = shutil.copytree(dashboard_store.artifacts, tmp_path / "copied" / "artifacts")
    from dashboard_fixtures import point_dashboard_at

    point_dashboard_at(monkeypatch, artifacts, dashboard_store.data_root)
    return SimpleNamespace(artifacts=artifacts, data_root=dashboard_store.data_root, runs=list(dashboard_store.runs))


@pytest.fixture(scope="session")
def class_sets_store(tmp_path_factory, dashboard_store):
    """A run store with runs of two class sets on the tiny dataset: ``tiny_simple`` of
    ``dashboard_store`` (categories8, copied, deployed) and ``tiny_city19`` (cityscapes19)."""
    import shutil
    from types import SimpleNamespace

    from api_fixtures import TINY

    from training.fit import runner as train_module
    from training.fit.config import load_config
    from training.runs.deployment import deploy

    artifacts = tmp_path_factory.mktemp("class_sets_store") / "artifacts"
    first = dashboard_store.runs[0]
    shutil.copytree(dashboard_store.artifacts / "runs" / first, artifacts / "runs" / first)
    config = load_config(None, TINY + [f"data.root={dashboard_store.data_root}", "name=tiny_city19",
                                       "data.classes=cityscapes19"])
    second = train_module.train(config, artifacts, verbose=0).name
    deploy(first, artifacts)
    return SimpleNamespace(artifacts=artifacts, data_root=dashboard_store.data_root, runs=[first, second],
                           classes=["categories8", "cityscapes19"])


@pytest.fixture(scope="session")
def imported_store(tmp_path_factory, dashboard_store):
    """``dashboard_store``'s runs (``tiny_simple`` deployed, ``tiny_unet``), copied, and two runs
    imported from another tool's prediction PNGs written from the ground truth with known mistakes
    (``dashboard_fixtures.add_imported_runs``): ``imported_c8`` (categories8, 3 of the 4 test
    images, inference time given) and ``imported_c19`` (cityscapes19, 2 of 4, "no class" pixels)."""
    import shutil
    from types import SimpleNamespace

    from dashboard_fixtures import add_imported_runs

    base = tmp_path_factory.mktemp("imported_store")
    artifacts = shutil.copytree(dashboard_store.artifacts, base / "artifacts")
    covered = add_imported_runs(artifacts, dashboard_store.data_root, base / "predictions")
    return SimpleNamespace(artifacts=artifacts, data_root=dashboard_store.data_root, trained=list(dashboard_store.runs),
                           imported=list(covered), covered=covered)


@pytest.fixture
def imported_env(imported_store, monkeypatch):
    """Environment of a dashboard test on ``imported_store``: no API (a closed port)."""
    from dashboard_fixtures import point_dashboard_at

    point_dashboard_at(monkeypatch, imported_store.artifacts, imported_store.data_root)
    return imported_store


@pytest.fixture(scope="session")
def known_outputs_store(tmp_path_factory, dashboard_store):
    """``dashboard_store``'s runs, copied, their test images' outputs rewritten with known contents
    (``dashboard_fixtures.write_known_outputs``): ``tiny_simple`` predicts the ground truth,
    ``tiny_unet`` gets the leftmost columns wrong (how many: ``wrong``, by image id), and its
    confidence rises from left to right, its calibration block recomputed from those files. Plus
    ``imported``: ``tiny_unet``'s predictions imported and scored by ``import_predictions`` (every
    file of the run agrees with them; its pooled and per-image mIoU differ)."""
    import shutil
    from types import SimpleNamespace

    from dashboard_fixtures import add_imported_worse, write_known_outputs

    base = tmp_path_factory.mktemp("known_outputs")
    artifacts = shutil.copytree(dashboard_store.artifacts, base / "artifacts")
    wrong = write_known_outputs(artifacts, dashboard_store.data_root, *dashboard_store.runs)
    imported = add_imported_worse(artifacts, dashboard_store.data_root, base / "predictions")
    return SimpleNamespace(artifacts=artifacts, data_root=dashboard_store.data_root, runs=list(dashboard_store.runs),
                           wrong=wrong, imported=imported)


@pytest.fixture
def known_outputs_env(known_outputs_store, monkeypatch):
    """Environment of a dashboard test on ``known_outputs_store``: no API (a closed port)."""
    from dashboard_fixtures import point_dashboard_at

    point_dashboard_at(monkeypatch, known_outputs_store.artifacts, known_outputs_store.data_root)
    return known_outputs_store
