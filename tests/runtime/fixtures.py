"""Session-wide tiny IRs (AttU_Net, base_width 4, 64x64) and real Kvasir images: the runtime
fixtures every front end's tests use (``tests/conftest.py`` loads them for the whole suite).

All IRs derive from one torch conversion (see _irs.py); each fixture writes one variant.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.runtime._irs import base_model, derive, shipped


@pytest.fixture(scope="session")
def ir_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runtime_irs")


@pytest.fixture(scope="session")
def base_ov_model():
    return base_model()


@pytest.fixture(scope="session")
def binary_ir(base_ov_model, ir_root) -> Path:
    """Binary, f32 NCHW input (normalization done by the runtime), no attention outputs."""
    return derive(base_ov_model, ir_root / "binary" / "model.xml")


@pytest.fixture(scope="session")
def embedded_att_ir(base_ov_model, ir_root) -> Path:
    """Binary, preprocessing embedded (u8 NHWC BGR input), attention maps Att5..Att2."""
    return derive(base_ov_model, ir_root / "embedded_att" / "model.xml", embedded=True, attention=True)


@pytest.fixture(scope="session")
def multiclass_ir(base_ov_model, ir_root) -> Path:
    """Three classes (background, polyp, tool), embedded preprocessing."""
    return derive(base_ov_model, ir_root / "multiclass" / "model.xml",
                  classes=("background", "polyp", "tool"), embedded=True)


@pytest.fixture(scope="session")
def threshold_ir(base_ov_model, ir_root) -> Path:
    """Binary exported with threshold 0.3 (``seg-export --threshold 0.3``), embedded preprocessing; its
    logit is shifted so Kvasir images are about a third foreground at 0.3 and under 2% at 0.5."""
    return derive(base_ov_model, ir_root / "threshold" / "model.xml", embedded=True, threshold=0.3, shift=-1.2)


@pytest.fixture(scope="session")
def letterbox_ir(base_ov_model, ir_root) -> Path:
    """Binary with ``resize_policy: letterbox``: non-square images are padded to the square input."""
    return derive(base_ov_model, ir_root / "letterbox" / "model.xml", embedded=True, resize_policy="letterbox")


@pytest.fixture(scope="session")
def named_binary_ir(base_ov_model, ir_root) -> Path:
    """Binary whose classes are ``normal`` / ``lesion`` (no class named background), raw f32 input."""
    return derive(base_ov_model, ir_root / "named_binary" / "model.xml", classes=("normal", "lesion"), task="binary")


@pytest.fixture(scope="session")
def dynamic_ir(base_ov_model, ir_root) -> Path:
    """Binary with dynamic batch/height/width: the runtime pads to a multiple of 16 and crops back."""
    return derive(base_ov_model, ir_root / "dynamic" / "model.xml", dynamic=True)


@pytest.fixture(scope="session")
def mask_ir(base_ov_model, ir_root) -> Path:
    """Export's mask head: u8 (N, H, W) class ids; embedded preprocessing and attention kept."""
    return derive(base_ov_model, ir_root / "mask" / "model.xml", embedded=True, attention=True, output="mask")


@pytest.fixture(scope="session")
def probabilities_ir(base_ov_model, ir_root) -> Path:
    """Export's softmax head on the three-class model."""
    return derive(base_ov_model, ir_root / "probabilities" / "model.xml",
                  classes=("background", "polyp", "tool"), embedded=True, output="probabilities")


@pytest.fixture(scope="session")
def kvasir_images(shared_data) -> list[Path]:
    images = sorted((shared_data / "kvasir-seg" / "images").glob("*.jpg"))[:8]
    assert len(images) == 8, "Kvasir-SEG images are missing from the shared data"
    return images


@pytest.fixture(scope="session")
def shipped_ir(ir_root) -> Path:
    """The shipped Kvasir AttU_Net (256x256, trained with stretch), converted once per session."""
    return shipped(ir_root / "shipped" / "model.xml")


@pytest.fixture(scope="session")
def shipped_letterbox_ir(shipped_ir, ir_root) -> Path:
    """The same weights with ``resize_policy: letterbox`` recorded in their metadata."""
    import openvino as ov

    from attnseg.metadata import ModelMetadata
    from tests.runtime._irs import save

    meta = ModelMetadata.read_json(shipped_ir.with_suffix(".json"))
    meta.resize_policy = "letterbox"
    return save(ov.Core().read_model(str(shipped_ir)), meta, ir_root / "shipped_letterbox" / "model.xml")
