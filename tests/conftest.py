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
