"""RemoteSegmenter against a server of the raw IR (what OVMS serves): client-side pre/post, same masks.

The server is ``_ovms_standin.py``, not OVMS (which cannot run here); see its docstring and
docs/deploy/README.md for what this does and does not show about OVMS.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from attnseg.runtime import RemoteSegmenter, Segmenter

from ._server import free_port
from .test_remote import assert_same

STANDIN = Path(__file__).with_name("_ovms_standin.py")


@pytest.fixture(scope="module")
def raw_server(zoo_export, tmp_path_factory):
    port = free_port()
    xml = zoo_export["repo"] / "kvasir" / "1" / "model.xml"  # the file OVMS would load
    log = tmp_path_factory.mktemp("standin") / "standin.log"
    proc = subprocess.Popen([sys.executable, str(STANDIN), str(xml), "kvasir", str(port)],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    probe = RemoteSegmenter(url, "kvasir")
    deadline = time.monotonic() + 240
    while not probe.ready():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.25)
    yield url
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_raw_ir_server_gives_segmenters_results(raw_server, zoo_export, jpegs):
    meta_json = zoo_export["repo"] / "kvasir" / "1" / "model.json"
    remote = RemoteSegmenter(raw_server, "kvasir", metadata=meta_json)
    names = [o["name"] for o in remote.metadata()["outputs"]]
    assert "mask" not in names and "logits" in names  # really the raw IR, not seg-serve
    local = Segmenter(zoo_export["xml"], device="CPU", inference_precision="f32")
    assert remote.attention_names == local.attention_names
    for p in jpegs[:2]:
        assert_same(remote.predict(p, return_probabilities=True), local.predict(p, return_probabilities=True))
    got = list(remote.stream(jpegs[2:5], max_in_flight=2))
    for g, p in zip(got, jpegs[2:5]):
        assert_same(g, local.predict(p))


def test_without_metadata_the_client_says_what_to_pass(raw_server, jpegs):
    from attnseg.runtime import RemoteError

    with pytest.raises(RemoteError, match=r"no 'mask' output \(it has: logits, attention_Att5.*metadata="):
        RemoteSegmenter(raw_server, "kvasir").predict(jpegs[0])
