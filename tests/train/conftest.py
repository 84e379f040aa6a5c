from __future__ import annotations

import pytest

from tests.conftest import copy_kvasir_pairs


@pytest.fixture(scope="session")
def tiny_kvasir(shared_data, tmp_path_factory):
    """16 real Kvasir-SEG pairs in the images/ + masks/ layout."""
    return copy_kvasir_pairs(shared_data, tmp_path_factory.mktemp("kvasir_tiny"), 16)
