"""SIGTERM while a request is in flight: the request completes, then the server exits cleanly."""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time

import numpy as np
import pytest

from attnseg.runtime import v2

from ._server import start_server
from .conftest import MODEL_NAME


def post_then_sigterm(srv, many: list, settle_s: float) -> dict:
    """POST ``many`` JPEGs (masks and overlays) in one request, send SIGTERM once it is on the wire
    and ``settle_s`` has passed, and return the client's answer (status, headers, body or error)."""
    body, n = v2.encode_request([("image", "BYTES", [len(many)], v2.pack_bytes([p.read_bytes() for p in many]))],
                                ["mask", "overlay"])
    answer: dict = {}
    sent = threading.Event()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=900)
        try:
            conn.request("POST", f"/v2/models/{MODEL_NAME}/infer", body=body,
                         headers={"Content-Type": "application/octet-stream", v2.BINARY_HEADER: str(n)})
            sent.set()
            r = conn.getresponse()
            answer.update(status=r.status, headers={k.lower(): v for k, v in r.getheaders()}, body=r.read())
        except OSError as exc:
            answer["error"] = repr(exc)
        finally:
            conn.close()

    t = threading.Thread(target=client)
    t.start()
    assert sent.wait(60), answer
    time.sleep(settle_s)  # let uvicorn accept it
    srv.proc.send_signal(signal.SIGTERM)
    t.join(900)
    return answer


@pytest.mark.slow
def test_sigterm_lets_the_request_in_flight_finish(zoo_export, reference, jpegs, tmp_path):
    # A long grace period: on a loaded machine this request can take longer than the default 30 s.
    srv = start_server(zoo_export["repo"], tmp_path / "server.log", ["--grace-period", "600"])
    try:
        # One big request (the JPEGs six times over, with overlays) keeps the server busy for seconds even
        # on an idle machine, so SIGTERM lands while it is in flight.
        many = list(jpegs) * 6
        answer = post_then_sigterm(srv, many, 0.3)  # the log order below proves it was in flight
        code = srv.proc.wait(300)
    finally:
        srv.stop()
    assert answer.get("status") == 200, answer
    _, outs = v2.decode_response(answer["body"], int(answer["headers"][v2.BINARY_HEADER.lower()]))
    for i, p in enumerate(many):
        np.testing.assert_array_equal(outs[f"mask_{i}"][0], reference.predict(p).mask)
    assert code == 0, srv.log_text()[-2000:]
    log = srv.log_text()
    # The answer went out after the shutdown began, not before.
    assert log.index("Shutting down") < log.index('"path": "/v2/models/kvasir/infer"')
    assert "Traceback" not in log



@pytest.mark.slow
def test_a_request_cut_off_by_the_grace_period_gets_a_json_503(zoo_export, jpegs, tmp_path):
    """--grace-period 1: uvicorn cancels what is still running; the client gets 503 {"error"}, not a text 500."""
    srv = start_server(zoo_export["repo"], tmp_path / "server.log", ["--grace-period", "1"])
    try:
        answer = post_then_sigterm(srv, list(jpegs) * 6, 0.5)
        srv.proc.wait(300)
    finally:
        srv.stop()
    log = srv.log_text()
    if answer.get("status") == 200:  # the machine finished 48 images within the second: nothing was cut off
        pytest.skip("the request finished within the grace period")
    assert answer.get("status") == 503, answer
    assert "--grace-period" in json.loads(answer["body"])["error"] and answer["headers"]["retry-after"] == "1"
    assert "timeout graceful shutdown exceeded" in log
