"""Tiny models for benchmark tests: an AttU_Net of base_width 4 at 64x64, as a checkpoint,
as an IR exported by attnseg.export, as a bare IR (no metadata) and as a dynamic-shape IR."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SIZE = (64, 64)


@pytest.fixture(scope="session")
def bench_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("benchmarks")


@pytest.fixture(scope="session")
def tiny_model():
    import torch

    from attnseg.models import create_model

    torch.manual_seed(0)
    return create_model("AttU_Net", base_width=4).eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(bench_root, tiny_model) -> Path:
    from attnseg.models import save_checkpoint

    return save_checkpoint(bench_root / "tiny.pt", tiny_model, input_size=SIZE)


@pytest.fixture(scope="session")
def exported_ir(bench_root, tiny_checkpoint) -> Path:
    """The IR an attnseg user benchmarks: exported, metadata in rt_info, NCHW float input."""
    from attnseg.export import AdvancedExportParameters, export

    res = export(checkpoint=tiny_checkpoint, output_dir=bench_root / "exported", input_size=list(SIZE),
                 advanced=AdvancedExportParameters(embed_preprocessing=False, parity_batches=1))
    return Path(res.xml_path)


def _convert(tiny_model, path: Path, shape: list[int]) -> Path:
    import openvino as ov
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    m = ov.convert_model(tiny_model, example_input=torch.zeros(1, 3, *SIZE), input=[ov.PartialShape(shape)])
    ov.save_model(m, str(path))
    return path


@pytest.fixture(scope="session")
def bare_ir(bench_root, tiny_model) -> Path:
    """Any IR benchmark_app accepts: no attnseg metadata, static shape."""
    return _convert(tiny_model, bench_root / "bare" / "model.xml", [1, 3, *SIZE])


@pytest.fixture(scope="session")
def dynamic_ir(bench_root, tiny_model) -> Path:
    return _convert(tiny_model, bench_root / "dynamic" / "model.xml", [-1, 3, -1, -1])


@pytest.fixture(scope="session")
def few_images(bench_root, shared_data) -> Path:
    """Three real Kvasir-SEG JPEGs (variable sizes)."""
    folder = bench_root / "images"
    folder.mkdir(exist_ok=True)
    for src in sorted((shared_data / "kvasir-seg" / "images").glob("*.jpg"))[:3]:
        shutil.copy(src, folder / src.name)
    return folder
