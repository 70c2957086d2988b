import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the builders beside the tests

import training  # noqa: E402,F401  (applies the import-time environment first)
from cityscapes_builder import build_tiny_dataset  # noqa: E402


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
