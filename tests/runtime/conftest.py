"""Session-wide tiny IRs (AttU_Net, base_width 4, 64x64) and real Kvasir images for runtime tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _irs import build_ir  # noqa: E402


@pytest.fixture(scope="session")
def ir_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runtime_irs")


@pytest.fixture(scope="session")
def binary_ir(ir_root) -> Path:
    """Binary, f32 NCHW input (normalization done by the runtime), no attention outputs."""
    return build_ir(ir_root / "binary" / "model.xml")


@pytest.fixture(scope="session")
def embedded_att_ir(ir_root) -> Path:
    """Binary, preprocessing embedded (u8 NHWC BGR input), attention maps Att5..Att2."""
    return build_ir(ir_root / "embedded_att" / "model.xml", embedded=True, attention=True, seed=1)


@pytest.fixture(scope="session")
def multiclass_ir(ir_root) -> Path:
    """Three classes, f32 NCHW input, embedded preprocessing."""
    return build_ir(ir_root / "multiclass" / "model.xml", classes=("background", "polyp", "tool"),
                    embedded=True, seed=2)


@pytest.fixture(scope="session")
def dynamic_ir(ir_root) -> Path:
    """Binary with dynamic height/width: the runtime pads to a multiple of 16 and crops back."""
    return build_ir(ir_root / "dynamic" / "model.xml", dynamic=True, seed=3)


@pytest.fixture(scope="session")
def kvasir_images(shared_data) -> list[Path]:
    images = sorted((shared_data / "kvasir-seg" / "images").glob("*.jpg"))[:8]
    assert len(images) == 8, "Kvasir-SEG images are missing from the shared data"
    return images
