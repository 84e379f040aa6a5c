"""A real seg-serve on 127.0.0.1 serving the shipped Kvasir model, exported once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from ._server import start_server

MODEL_NAME = "kvasir"


@pytest.fixture(scope="session")
def zoo_export(tmp_path_factory) -> dict[str, Path]:
    """The shipped AttU_Net w16 exported with attention maps, plus its OVMS repository layout."""
    from attnseg.export import AdvancedExportParameters, export

    root = tmp_path_factory.mktemp("serve_model")
    res = export(None, output_dir=root / "ir", attention_maps=True,
                 advanced=AdvancedExportParameters(parity_batches=1, ovms_repo=root / "ovms", model_name=MODEL_NAME))
    return {"xml": res.xml_path, "repo": root / "ovms"}


@pytest.fixture(scope="session")
def server(zoo_export, tmp_path_factory):
    """seg-serve on the OVMS repository (as in the manifest), stopped with SIGTERM at the end."""
    log = tmp_path_factory.mktemp("serve_logs") / "server.log"
    srv = start_server(zoo_export["repo"], log)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def reference(zoo_export):
    """The in-process Segmenter with the server's settings (CPU, throughput, precision auto)."""
    from attnseg.runtime import Segmenter

    return Segmenter(zoo_export["xml"], device="CPU", hint="throughput")


@pytest.fixture(scope="session")
def jpegs(shared_data) -> list[Path]:
    images = sorted((shared_data / "kvasir-seg" / "images").glob("*.jpg"))[:8]
    assert len(images) == 8, "Kvasir-SEG images are missing from the shared data"
    return images
