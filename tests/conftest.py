"""Fixtures every test package shares."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = (REPO.parent / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets beside the repository (CI has them at ../shared/data)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"The shared data sets are missing: expected them at {SHARED_DATA}")
    return SHARED_DATA


def load_script(relative: str):
    """A repository script (``benchmarks/x.py``, ``tools/x.py``) as a module, for its functions.
    ``tools/`` goes on ``sys.path`` so the tools' imports of each other resolve."""
    import importlib.util
    import sys

    path = REPO / relative
    if path.parent.name == "tools" and str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_kvasir_pairs(shared_data: Path, root: Path, count: int) -> Path:
    """The first ``count`` real Kvasir-SEG image / mask pairs copied into ``root`` (images/ + masks/)."""
    import shutil

    src = shared_data / "kvasir-seg"
    names = sorted(p.stem for p in (src / "images").glob("*.jpg"))[:count]
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True, exist_ok=True)
        for n in names:
            shutil.copy(src / sub / f"{n}.jpg", root / sub / f"{n}.jpg")
    return root


@pytest.fixture(autouse=True, scope="session")
def _private_user_cache(tmp_path_factory):
    """Measured decisions (``attnseg.user_cache``) go to a folder of this session, not the user's cache."""
    patch = pytest.MonkeyPatch()
    patch.setenv("ATTNSEG_CACHE_DIR", str(tmp_path_factory.mktemp("attnseg-user-cache")))
    yield
    patch.undo()


# The runtime's IR fixtures (binary_ir, multiclass_ir, ..., kvasir_images) for every test package:
# front ends (serve, cluster, tiler) run tests.runtime.frontend_base.FrontEndContract on them.
from tests.runtime.fixtures import *
