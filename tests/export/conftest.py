"""Shared exports for the export tests (module helpers live in export_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("openvino")

from tests.export.export_helpers import SIZE, make_checkpoint


@pytest.fixture(scope="session")
def export_tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="session")
def att_export(export_tmp):
    """AttU_Net, 2 classes, mask output, attention maps, OVMS layout, real Kvasir images for parity."""
    from attnseg.export import AdvancedExportParameters, export

    shared = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "kvasir-seg" / "images"
    ckpt = make_checkpoint(export_tmp, "AttU_Net", output_ch=2)
    return export(ckpt, output_dir=export_tmp / "att", input_size=SIZE, attention_maps=True,
                  samples=shared if shared.is_dir() else None,
                  advanced=AdvancedExportParameters(output="mask", ovms_repo=export_tmp / "ovms",
                                                    model_name="polyp"))
