"""seg-serve against a hostile or careless client (issue 23): every answer a 4xx, never a 5xx.

The request set of the issue (decompression bombs, malformed JSON fields, huge declared shapes,
slow clients, unload without a token) against the real server on 127.0.0.1, REST and gRPC; after
each, a good request still gets Segmenter's mask.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time

import cv2
import grpc
import numpy as np
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from attnseg.runtime import RemoteSegmenter, v2
from attnseg.runtime.remote import RemoteError

from ._server import start_server
from .conftest import MODEL_NAME

TOKEN = "t0ken-for-tests"
INFER = f"/v2/models/{MODEL_NAME}/infer"


def request(port: int, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            timeout: float = 120) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def binary_body(inputs, outputs=(), **kw) -> tuple[bytes, dict]:
    body, n = v2.encode_request(inputs, outputs, **kw)
    return body, {"Content-Type": "application/octet-stream", v2.BINARY_HEADER: str(n)}


def png_bomb(side: int = 10000) -> bytes:
    """An all-black side x side PNG: a few hundred KB that decode to side^2 pixels."""
    ok, buf = cv2.imencode(".png", np.zeros((side, side), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    assert ok
    return buf.tobytes()


def declared_png(width: int, height: int) -> bytes:
    """A valid 4x4 PNG whose IHDR is rewritten to declare width x height."""
    png = bytearray(cv2.imencode(".png", np.zeros((4, 4), np.uint8))[1].tobytes())
    png[16:20] = width.to_bytes(4, "big")
    png[20:24] = height.to_bytes(4, "big")
    return bytes(png)


def good_mask_check(port: int, reference, jpeg, headers: dict | None = None) -> None:
    body, h = binary_body([("image", "BYTES", [1], v2.pack_bytes([jpeg.read_bytes()]))], ["mask"])
    status, rh, data = request(port, "POST", INFER, body, {**h, **(headers or {})})
    assert status == 200, data[:300]
    _, outs = v2.decode_response(data, int(rh[v2.BINARY_HEADER.lower()]))
    np.testing.assert_array_equal(outs["mask"][0], reference.predict(jpeg).mask)


def json_input(data, shape=(1, 1, 1, 3), datatype="UINT8", **extra) -> bytes:
    return json.dumps({"inputs": [{"name": "image", "datatype": datatype, "shape": list(shape), "data": data}],
                       **extra}).encode()


# --------------------------------------------------------------------------- the request set
def _bad_requests(jpeg: bytes) -> dict[str, tuple[bytes, dict, int, str]]:
    j = {"Content-Type": "application/json"}
    bomb = png_bomb()
    two_bombs = v2.pack_bytes([bomb, bomb])
    # The request: two 10000x10000 PNGs, the mask asked for as JSON.
    head = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [2],
                                   "parameters": {"binary_data_size": len(two_bombs)}}],
                       "outputs": [{"name": "mask"}]}).encode()
    bds_abc = json.dumps({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 1, 1, 3],
                                      "parameters": {"binary_data_size": "abc"}}]}).encode()
    cases = {
        "png_bomb_json_mask": (head + two_bombs, {v2.BINARY_HEADER: str(len(head))}, 413, "16,777,216"),
        "declared_70000x70000": (*binary_body([("image", "BYTES", [1], v2.pack_bytes([declared_png(70000, 70000)]))]),
                                 413, "it was not decoded"),
        "huge_uint8_shape": (*binary_body([("image", "UINT8", [1, 100000, 100000, 3], b"\0" * 12)]), 413,
                             "--max-image-pixels"),
        "request_pixels": (*binary_body([("image", "UINT8", [5, 4000, 4000, 1], b"\0")]), 413,
                           "--max-request-pixels"),
        "json_mask_of_large_image": (*binary_body([("image", "UINT8", [1, 1100, 1000, 1], bytes(1100 * 1000))],
                                                  parameters={"binary_data_output": False}), 413, "binary"),
        "uint8_300": (json_input([300, 1, 2]), j, 400, "0-255"),
        "uint8_minus_1": (json_input([-1, 1, 2]), j, 400, "0-255"),
        "uint8_float": (json_input([1.5, 1, 2]), j, 400, "integers"),
        "data_null": (json_input(None), j, 400, "list of integers"),
        "data_strings": (json_input(["a", "b", "c"]), j, 400, "integers"),
        "non_ascii_bytes": (json_input(["h\u00e9llo \u4e16\u754c"], shape=[1], datatype="BYTES"), j, 400,
                            "header"),
        "parameters_5": (json_input([1, 2, 3], parameters=5), j, 400, '"parameters" must be a JSON object'),
        "binary_data_size_abc": (bds_abc, {v2.BINARY_HEADER: str(len(bds_abc))}, 400, "binary_data_size"),
        "deep_nesting": (b'{"inputs":[{"name":"i","datatype":"UINT8","shape":[1,1,1,3],"data":' + b"[" * 5000
                         + b"]" * 5000 + b"}]}", j, 400, "not valid JSON"),
        "ragged_nesting": (json_input([[1, 2], [3]]), j, 400, "list of integers"),
        "negative_shape": (json_input([1], shape=[1, -1, 1, 3]), j, 400, "negative"),
        "shape_of_strings": (json_input([1], shape=["a"]), j, 400, "shape"),
        "inputs_not_list": (b'{"inputs": 7}', j, 400, "inputs"),
        "outputs_not_list": (json_input([1, 2, 3], outputs={"name": "mask"}), j, 400, "outputs"),
        "binary_data_not_bool": (json_input([1, 2, 3], outputs=[{"name": "mask", "parameters": {"binary_data": 3}}]),
                                 j, 400, "true or false"),
        "id_not_string": (json_input([1, 2, 3], id=[1]), j, 400, '"id"'),
        "header_length_not_number": (b"{}", {v2.BINARY_HEADER: "x"}, 400, "not a number"),
        "header_length_too_long": (b"{}", {v2.BINARY_HEADER: "99"}, 400, v2.BINARY_HEADER),
        "bytes_shape_2d": (*binary_body([("image", "BYTES", [1, 1], v2.pack_bytes([jpeg]))]), 400, "BYTES [N]"),
        "bytes_empty_element": (*binary_body([("image", "BYTES", [1], v2.pack_bytes([b""]))]), 400, "empty"),
        "unknown_format": (*binary_body([("image", "BYTES", [1], v2.pack_bytes([b"GIF8" + b"x" * 40]))]), 400,
                           "header"),
    }
    return cases


@pytest.fixture(scope="module")
def bad_requests(jpegs):
    return _bad_requests(jpegs[0].read_bytes())


BAD = ["png_bomb_json_mask", "declared_70000x70000", "huge_uint8_shape", "request_pixels", "json_mask_of_large_image",
       "uint8_300", "uint8_minus_1", "uint8_float", "data_null", "data_strings", "non_ascii_bytes", "parameters_5",
       "binary_data_size_abc", "deep_nesting", "ragged_nesting", "negative_shape", "shape_of_strings",
       "inputs_not_list", "outputs_not_list", "binary_data_not_bool", "id_not_string", "header_length_not_number",
       "header_length_too_long", "bytes_shape_2d", "bytes_empty_element", "unknown_format"]


def test_the_bad_request_list_is_complete(bad_requests):
    assert sorted(BAD) == sorted(bad_requests)


@pytest.mark.parametrize("case", BAD)
def test_bad_request_is_a_4xx_with_a_json_error(server, reference, jpegs, bad_requests, case):
    body, headers, expected, needle = bad_requests[case]
    status, _, data = request(server.http_port, "POST", INFER, body, headers)
    assert status == expected, data[:400]
    error = json.loads(data)["error"]
    assert needle in error, error
    good_mask_check(server.http_port, reference, jpegs[0])


def test_grpc_bad_requests_are_statuses_not_internal(server, reference, jpegs):
    channel = grpc.insecure_channel(server.grpc_target, options=[("grpc.max_receive_message_length", -1)])
    stub = pb_grpc.GRPCInferenceServiceStub(channel)

    def infer(datatype, shape, raw=None, contents=None, version=""):
        req = pb.ModelInferRequest(model_name=MODEL_NAME, model_version=version)
        t = req.inputs.add(name="image", datatype=datatype, shape=shape)
        if raw is not None:
            req.raw_input_contents.append(raw)
        if contents is not None:
            t.contents.uint_contents.extend(contents)
        return stub.ModelInfer(req, timeout=120)

    bomb = v2.pack_bytes([png_bomb()])
    cases = [
        (("BYTES", [1], bomb), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (("UINT8", [1, 100000, 100000, 3], b"\0"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (("BYTES", [1], b"\x01\x02"), grpc.StatusCode.INVALID_ARGUMENT),
        (("UINT8", [1, 1, 1, 3], None, [300, 1, 2]), grpc.StatusCode.INVALID_ARGUMENT),
        (("FP32", [1, 1, 1, 3], b"\0" * 12), grpc.StatusCode.INVALID_ARGUMENT),
    ]
    try:
        for args, code in cases:
            with pytest.raises(grpc.RpcError) as err:
                infer(*args)
            assert err.value.code() == code, (args[:2], err.value.details())
        with pytest.raises(grpc.RpcError) as err:
            infer("BYTES", [1], v2.pack_bytes([jpegs[0].read_bytes()]), version="2")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        resp = infer("BYTES", [1], v2.pack_bytes([jpegs[0].read_bytes()]), version="1")
        assert resp.model_version == "1"
        mask = np.frombuffer(resp.raw_output_contents[0], np.uint8).reshape(list(resp.outputs[0].shape))[0]
        np.testing.assert_array_equal(mask, reference.predict(jpegs[0]).mask)
        # Model control is off by default: unloading is refused and the model stays ready.
        with pytest.raises(grpc.RpcError) as err:
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=MODEL_NAME))
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert stub.ServerReady(pb.ServerReadyRequest()).ready
        meta = stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL_NAME))
        assert list(meta.versions) == ["1"] and {(i.name, i.datatype) for i in meta.inputs} == {
            ("image", "UINT8"), ("image_bytes", "BYTES")}
    finally:
        channel.close()


# --------------------------------------------------------------------------- conventions
def test_conventions(server, jpegs):
    port = server.http_port
    # Unknown route and method: {"error": ...}, not FastAPI's {"detail": ...}.
    status, _, data = request(port, "GET", "/no/such/route")
    assert status == 404 and "error" in json.loads(data)
    status, _, data = request(port, "DELETE", f"/v2/models/{MODEL_NAME}")
    assert status == 405 and "error" in json.loads(data)
    # Metadata: versions, and the BYTES input as well as the UINT8 one.
    status, _, data = request(port, "GET", f"/v2/models/{MODEL_NAME}")
    meta = json.loads(data)
    assert status == 200 and meta["versions"] == ["1"]
    assert {(i["name"], i["datatype"]) for i in meta["inputs"]} == {("image", "UINT8"), ("image_bytes", "BYTES")}
    assert json.loads(request(port, "GET", f"/v2/models/{MODEL_NAME}/versions/1")[2]) == meta
    assert request(port, "GET", f"/v2/models/{MODEL_NAME}/versions/7")[0] == 404
    assert request(port, "GET", f"/v2/models/{MODEL_NAME}/versions/1/ready")[0] == 200
    # Versions: REST /versions/1/infer is served like gRPC model_version "1"; others are 404 on both.
    body, h = binary_body([("image", "BYTES", [1], v2.pack_bytes([jpegs[0].read_bytes()]))])
    status, _, data = request(port, "POST", f"/v2/models/{MODEL_NAME}/versions/1/infer", body, h)
    assert status == 200, data[:300]
    status, _, data = request(port, "POST", f"/v2/models/{MODEL_NAME}/versions/2/infer", body, h)
    assert status == 404 and "version" in json.loads(data)["error"]
    # The repository extension is advertised and implemented (index).
    server_meta = json.loads(request(port, "GET", "/v2")[2])
    assert "model_repository" in server_meta["extensions"]
    status, _, data = request(port, "POST", "/v2/repository/index", b"{}")
    assert status == 200 and json.loads(data) == [{"name": MODEL_NAME, "version": "1", "state": "READY",
                                                   "reason": ""}]
    from attnseg.serve.server import _repository_index_messages

    Req, Res = _repository_index_messages()
    channel = grpc.insecure_channel(server.grpc_target)
    try:
        call = channel.unary_unary("/inference.GRPCInferenceService/RepositoryIndex",
                                   request_serializer=Req.SerializeToString, response_deserializer=Res.FromString)
        res = call(Req(), timeout=30)
        assert [(m.name, m.version, m.state) for m in res.models] == [(MODEL_NAME, "1", "READY")]
    finally:
        channel.close()


def test_unload_without_control_is_refused_and_readiness_stays(server, reference, jpegs):
    status, _, data = request(server.http_port, "POST", f"/v2/repository/models/{MODEL_NAME}/unload")
    assert status == 403 and "--model-control explicit" in json.loads(data)["error"]
    status, _, data = request(server.http_port, "POST", f"/v2/repository/models/{MODEL_NAME}/load")
    assert status == 403
    assert request(server.http_port, "GET", "/v2/health/ready")[0] == 200
    good_mask_check(server.http_port, reference, jpegs[1])


def test_health_answers_while_a_large_request_is_served(server, jpegs):
    """Decoding, inference and response encoding run off the event loop: liveness answers while a
    request of 24 images with overlays is in flight (checked by order, not by a time limit)."""
    many = [p.read_bytes() for p in jpegs] * 3
    body, h = binary_body([("image", "BYTES", [len(many)], v2.pack_bytes(many))], ["mask", "overlay"])
    done = threading.Event()
    answer: dict = {}

    def big() -> None:
        answer["status"] = request(server.http_port, "POST", INFER, body, h, timeout=900)[0]
        done.set()

    t = threading.Thread(target=big)
    t.start()
    lives_during = 0
    for _ in range(2000):  # bounded; stops as soon as the big request is done
        if done.is_set():
            break
        if request(server.http_port, "GET", "/v2/health/live", timeout=60)[0] == 200 and not done.is_set():
            lives_during += 1
        time.sleep(0.05)
    t.join(900)
    assert answer.get("status") == 200
    assert lives_during >= 3, "liveness did not answer while the large request was in flight"


# --------------------------------------------------------------------------- token, control, timeouts
@pytest.fixture(scope="module")
def guarded(zoo_export, tmp_path_factory):
    """seg-serve with a token file, model control on, short timeouts and a small connection limit."""
    root = tmp_path_factory.mktemp("guarded")
    (root / "token").write_text(TOKEN + "\n", encoding="utf-8")
    srv = start_server(zoo_export["repo"], root / "server.log", [
        "--auth-token-file", str(root / "token"), "--model-control", "explicit", "--header-timeout", "2",
        "--body-timeout", "3", "--idle-timeout", "3", "--max-connections", "12", "--max-inflight-body-mb", "1"])
    yield srv
    srv.stop()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_token_is_needed_on_every_route_but_liveness(guarded, reference, jpegs):
    port = guarded.http_port
    assert guarded.first_ready_status == 401  # readiness needs the token too
    assert request(port, "GET", "/v2/health/live")[0] == 200
    for method, path in [("GET", "/v2/health/ready"), ("GET", f"/v2/models/{MODEL_NAME}"), ("GET", "/metrics"),
                         ("POST", INFER), ("POST", f"/v2/repository/models/{MODEL_NAME}/unload"),
                         ("POST", "/v2/repository/index"), ("GET", "/v2")]:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            status, h, data = request(port, method, path, b"{}" if method == "POST" else None, headers)
            assert status == 401, (method, path, headers, data[:200])
            assert "Bearer" in json.loads(data)["error"] and h.get("www-authenticate", "").startswith("Bearer")
    assert request(port, "GET", f"/v2/models/{MODEL_NAME}/ready", headers=AUTH)[0] == 200
    remote = RemoteSegmenter(guarded.url, MODEL_NAME, token=TOKEN, attention=False)
    np.testing.assert_array_equal(remote.predict(jpegs[0]).mask, reference.predict(jpegs[0]).mask)
    remote.close()
    no_token = RemoteSegmenter(guarded.url, MODEL_NAME, token="", attention=False)
    with pytest.raises(RemoteError, match="bearer token") as err:
        no_token.predict(jpegs[0])
    assert err.value.status == 401


def test_grpc_token(guarded, jpegs):
    channel = grpc.insecure_channel(guarded.grpc_target)
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    try:
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=30).live  # liveness needs no token
        with pytest.raises(grpc.RpcError) as err:
            stub.ServerReady(pb.ServerReadyRequest(), timeout=30)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as err:
            stub.RepositoryModelUnload(pb.RepositoryModelUnloadRequest(model_name=MODEL_NAME), timeout=30,
                                       metadata=[("authorization", "Bearer nope")])
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=30,
                                metadata=[("authorization", f"Bearer {TOKEN}")]).ready
    finally:
        channel.close()


def test_model_control_when_enabled_and_readiness_follows(guarded, reference, jpegs):
    port = guarded.http_port
    status, _, data = request(port, "POST", f"/v2/repository/models/{MODEL_NAME}/unload", headers=AUTH)
    assert status == 200, data
    try:
        assert request(port, "GET", "/v2/health/ready", headers=AUTH)[0] == 503  # not ready while a model is not
        index = json.loads(request(port, "POST", "/v2/repository/index", b"", AUTH)[2])
        assert index[0]["state"] == "UNAVAILABLE"
        body, h = binary_body([("image", "BYTES", [1], v2.pack_bytes([jpegs[0].read_bytes()]))])
        status, _, data = request(port, "POST", INFER, body, {**h, **AUTH})
        assert status == 503 and "not ready" in json.loads(data)["error"]
    finally:
        status, _, data = request(port, "POST", f"/v2/repository/models/{MODEL_NAME}/load", headers=AUTH)
    assert status == 200, data
    assert request(port, "GET", "/v2/health/ready", headers=AUTH)[0] == 200
    good_mask_check(port, reference, jpegs[0], AUTH)


def _read_until_closed(sock: socket.socket, limit_s: float = 60.0) -> bytes:
    sock.settimeout(limit_s)  # a safety net so a broken server cannot hang the test, not a measured figure
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            out += chunk
    except (TimeoutError, ConnectionResetError):
        return out + b"<not closed>"


def test_slow_clients_are_answered_and_closed(guarded):
    port = guarded.http_port
    # A slowloris: headers that never end.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
    out = _read_until_closed(s)
    assert out.startswith(b"HTTP/1.1 408") and b'"error"' in out and not out.endswith(b"<not closed>")
    # A socket that never sends anything.
    s = socket.create_connection(("127.0.0.1", port))
    out = _read_until_closed(s)
    assert out.startswith(b"HTTP/1.1 408") and not out.endswith(b"<not closed>")
    # A body shorter than its Content-Length.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST " + INFER.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
              + b"\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"inputs\":")
    out = _read_until_closed(s)
    assert out.startswith(b"HTTP/1.1 408") and b"--body-timeout" in out and not out.endswith(b"<not closed>")
    # An idle keep-alive connection after a request is closed by the idle timeout.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
    out = _read_until_closed(s)
    assert out.startswith(b"HTTP/1.1 200") and not out.endswith(b"<not closed>")
    # Malformed HTTP: a JSON 400.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
    out = _read_until_closed(s)
    assert out.startswith(b"HTTP/1.1 400") and b'"error"' in out
    # Headers over 64 KiB: 431.
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000)
    out = _read_until_closed(s)
    assert out.startswith(b"HTTP/1.1 431"), out[:100]


def test_bodies_being_received_are_bounded(guarded, reference, jpegs):
    """--max-inflight-body-mb 1: while 1.5 MB of one body is still coming, a second body gets 429."""
    port = guarded.http_port
    slow = socket.create_connection(("127.0.0.1", port))
    try:
        slow.sendall(b"POST " + INFER.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
                     + b"\r\nContent-Length: 1500000\r\n\r\n{")
        for _ in range(100):  # bounded: until the server has seen the first request
            time.sleep(0.05)
            status, h, data = request(port, "POST", INFER, b"{}" * 50_000, AUTH)
            if status == 429:
                break
        assert status == 429 and "--max-inflight-body-mb" in json.loads(data)["error"] and h["retry-after"] == "1"
    finally:
        slow.close()
    # Accepted again once the server has noticed that body is gone (bounded retries, as Retry-After asks).
    for _ in range(100):
        if request(port, "POST", INFER, b"{}" * 50_000, AUTH)[0] != 429:
            break
        time.sleep(0.1)
    good_mask_check(port, reference, jpegs[0], AUTH)


def test_connection_limit(guarded):
    port = guarded.http_port
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(12)]
    try:
        time.sleep(0.5)  # let the server accept them
        extra = socket.create_connection(("127.0.0.1", port))
        out = _read_until_closed(extra)
        assert out.startswith(b"HTTP/1.1 503") and b"--max-connections" in out
    finally:
        for s in held:
            s.close()
    # Once they are gone, connections are accepted again (bounded retries while the server notices).
    for _ in range(100):
        if request(port, "GET", "/v2/health/live")[0] == 200:
            break
        time.sleep(0.1)
    assert request(port, "GET", "/v2/health/live")[0] == 200


def test_safe_defaults():
    from attnseg.cli.serve import build_parser
    from attnseg.serve import ServeOptions

    assert ServeOptions().host == "127.0.0.1" and ServeOptions().model_control == "none"
    args = build_parser().parse_args(["model.xml"])
    assert args.host == "127.0.0.1" and args.model_control == "none" and args.auth_token_file is None
