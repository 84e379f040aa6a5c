from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def tiny_kvasir(shared_data, tmp_path_factory):
    """16 real Kvasir-SEG pairs in the images/ + masks/ layout."""
    root = tmp_path_factory.mktemp("kvasir_tiny")
    src = shared_data / "kvasir-seg"
    names = sorted(p.stem for p in (src / "images").glob("*.jpg"))[:16]
    for sub in ("images", "masks"):
        (root / sub).mkdir()
        for n in names:
            shutil.copy(src / sub / f"{n}.jpg", root / sub / f"{n}.jpg")
    return root
