"""The shared front-end contract on RemoteSegmenter's raw-IR path (what an OVMS client does): the
client builds the model's ModelCodec from ``model.json`` and the server's v2 port shapes, prepares
the model-sized tensor and decodes the IR's logits itself. Served by ``_ovms_standin.py`` (f32)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attnseg.runtime import RemoteSegmenter
from tests.runtime.frontend_base import FrontEndContract

from ._server import free_port

STANDIN = Path(__file__).with_name("_ovms_standin.py")


@pytest.fixture(scope="class")
def standins(tmp_path_factory):
    """One raw-IR server per contract IR, started on first use and stopped after the class."""
    started: dict = {}
    yield started, tmp_path_factory
    for proc, _ in started.values():
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


class TestRawRemoteContract(FrontEndContract):
    @pytest.fixture(autouse=True)
    def _use_standins(self, standins):
        self._standins, self._tmp = standins

    def precision(self, xml):
        return "f32"  # the stand-in compiles in f32

    def _url(self, xml: Path) -> str:
        if xml not in self._standins:
            port = free_port()
            log = self._tmp.mktemp("standin") / "standin.log"
            proc = subprocess.Popen([sys.executable, str(STANDIN), str(xml), "m", str(port)], stdout=log.open("wb"),
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}"
            self._standins[xml] = (proc, url)
            probe, deadline = RemoteSegmenter(url, "m"), time.monotonic() + 240
            while not probe.ready():
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.25)
        return self._standins[xml][1]

    def segment(self, xml, images, return_probabilities=False):
        remote = RemoteSegmenter(self._url(xml), "m", attention=False, metadata=xml.with_suffix(".json"))
        return list(remote.stream(images, max_in_flight=2, return_probabilities=return_probabilities))
