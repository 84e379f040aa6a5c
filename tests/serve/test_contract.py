"""The shared front-end contract (tests/runtime/frontend_base.py) on seg-serve + RemoteSegmenter.

Each IR of the contract is served by a real ``seg-serve`` on 127.0.0.1 (one per IR, started once
for the class); images go through ``RemoteSegmenter.stream`` and must equal the independent
reference reader pixel for pixel, in order, with the same probabilities.
"""

from __future__ import annotations

import pytest

from attnseg.runtime import RemoteSegmenter
from tests.runtime.frontend_base import FrontEndContract

from ._server import start_server


@pytest.fixture(scope="class")
def servers(tmp_path_factory):
    """One seg-serve per IR, started on first use and stopped after the class."""
    started: dict = {}
    yield started, tmp_path_factory
    for srv in started.values():
        srv.stop()


class TestServeContract(FrontEndContract):
    @pytest.fixture(autouse=True)
    def _use_servers(self, servers):
        self._servers, self._tmp = servers

    def segment(self, xml, images, return_probabilities=False):
        srv = self._servers.get(xml)
        if srv is None:
            srv = self._servers[xml] = start_server(xml, self._tmp.mktemp("contract") / "server.log")
        remote = RemoteSegmenter(srv.url, xml.parent.name, attention=False)  # served under its folder's name
        return list(remote.stream(images, max_in_flight=3, return_probabilities=return_probabilities))
