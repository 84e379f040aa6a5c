"""The cluster tests' model and 60 real Kvasir-SEG images; the IR fixtures come from tests/runtime/fixtures.py."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cluster_ir(embedded_att_ir) -> Path:
    """Binary AttU_Net (base width 4, 64x64), preprocessing embedded, attention outputs: export's layout."""
    return embedded_att_ir


@pytest.fixture(scope="session")
def kvasir_60(shared_data, tmp_path_factory) -> Path:
    """A folder of 60 real Kvasir-SEG images (symlinks)."""
    images = sorted((shared_data / "kvasir-seg" / "images").glob("*.jpg"))[:60]
    assert len(images) == 60, "Kvasir-SEG images are missing from the shared data"
    folder = tmp_path_factory.mktemp("kvasir60")
    for p in images:
        (folder / p.name).symlink_to(p)
    return folder
