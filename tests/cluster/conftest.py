"""A tiny exported IR and 60 real Kvasir-SEG images for the cluster tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

RUNTIME_TESTS = Path(__file__).resolve().parents[1] / "runtime"


@pytest.fixture(scope="session")
def cluster_ir(tmp_path_factory) -> Path:
    """Binary AttU_Net (base width 4, 64x64), preprocessing embedded, attention outputs: export's layout."""
    sys.path.insert(0, str(RUNTIME_TESTS))
    try:
        from _irs import base_model, derive
    finally:
        sys.path.remove(str(RUNTIME_TESTS))
    return derive(base_model(), tmp_path_factory.mktemp("cluster_ir") / "model.xml", embedded=True, attention=True)


@pytest.fixture(scope="session")
def kvasir_60(shared_data, tmp_path_factory) -> Path:
    """A folder of 60 real Kvasir-SEG images (symlinks)."""
    images = sorted((shared_data / "kvasir-seg" / "images").glob("*.jpg"))[:60]
    assert len(images) == 60, "Kvasir-SEG images are missing from the shared data"
    folder = tmp_path_factory.mktemp("kvasir60")
    for p in images:
        (folder / p.name).symlink_to(p)
    return folder
