import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the builders beside the tests

from cityscapes_builder import build_tiny_dataset  # noqa: E402

import training  # noqa: E402,F401  (applies the import-time environment first)


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
    from training.runs.store import deploy

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
    monkeypatch.setenv("ARTIFACTS_DIR", str(dashboard_store.artifacts))
    monkeypatch.setenv("CITYSCAPES_DATASET", str(dashboard_store.data_root))
    monkeypatch.setenv("SEGMENTATION_API_URL", "http://127.0.0.1:9")
    return dashboard_store
