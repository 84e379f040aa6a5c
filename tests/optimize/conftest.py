"""Session-wide tiny models and real Kvasir-SEG images for the optimize tests.

One FP32 IR (AttU_Net, base_width 4, 64x64, preprocessing embedded) and one INT8 run over a
dozen real calibration images are shared by the tests that read their results.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import pytest

pytest.importorskip("nncf")
pytest.importorskip("torch")

from tests.optimize._optimize_models import build_ir, copy_ir

CALIBRATION_COUNT = 12
VALIDATION_COUNT = 6


@pytest.fixture(scope="session")
def kvasir(shared_data) -> Path:
    root = shared_data / "kvasir-seg"
    assert (root / "images").is_dir(), "Kvasir-SEG is missing from the shared data"
    return root


@pytest.fixture(scope="session")
def opt_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("optimize")


@pytest.fixture(scope="session")
def kvasir_names(kvasir) -> list[str]:
    return sorted(p.name for p in (kvasir / "images").glob("*.jpg"))


@pytest.fixture(scope="session")
def calib_dir(opt_root, kvasir, kvasir_names) -> Path:
    """A dozen real Kvasir images (various sizes, all resized to 64x64 for calibration)."""
    d = opt_root / "calibration"
    d.mkdir()
    for name in kvasir_names[:CALIBRATION_COUNT]:
        shutil.copy2(kvasir / "images" / name, d / name)
    return d


@pytest.fixture(scope="session")
def fp32_ir(opt_root, calib_dir) -> Path:
    return build_ir(opt_root / "fp32" / "model.xml", sorted(calib_dir.iterdir()))


@pytest.fixture(scope="session")
def agreement_dir(opt_root, kvasir, kvasir_names, fp32_ir) -> Path:
    """Validation images whose masks are the FP32 IR's own masks (f32 arithmetic): the FP32 IR
    scores Dice 1.0 on them, so Dice of the INT8 IR = its agreement with the FP32 masks."""
    from attnseg.runtime import Segmenter

    d = opt_root / "agreement"
    (d / "images").mkdir(parents=True)
    (d / "masks").mkdir()
    seg = Segmenter(fp32_ir, config={"INFERENCE_PRECISION_HINT": "f32"})
    for name in kvasir_names[CALIBRATION_COUNT:CALIBRATION_COUNT + VALIDATION_COUNT]:
        shutil.copy2(kvasir / "images" / name, d / "images" / name)
        mask = seg.predict(d / "images" / name).mask
        assert 0 < mask.mean() < 1, "the test model must give non-trivial masks"
        cv2.imwrite(str(d / "masks" / (Path(name).stem + ".png")), mask * 255)
    return d


@pytest.fixture(scope="session")
def int8_run(opt_root, fp32_ir, calib_dir, agreement_dir):
    """One plain INT8 quantization with validation and a short latency figure."""
    from attnseg.optimize import AdvancedQuantizationParameters, quantize

    xml = copy_ir(fp32_ir, opt_root / "int8")
    return quantize(xml, calibration=calib_dir, validation=agreement_dir, quiet=True,
                    advanced=AdvancedQuantizationParameters(latency_runs=3))
