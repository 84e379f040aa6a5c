"""Property-based fuzzing of the real seg-serve (hypothesis, a bounded number of cases).

Valid v2 requests (JPEG/PNG bytes, UINT8 pixels as JSON or binary) are mutated: datatypes,
shapes, lengths, parameters (any JSON value), output lists, nesting, the binary header length,
and the encoded image's header bytes. Each case is a batch of REST requests plus gRPC ones.
Asserted for every request: no 5xx (gRPC: no INTERNAL/UNKNOWN), an ``{"error": ...}`` body for
every 4xx; after each batch: the server is alive, its RSS is under ``RSS_BOUND`` and a good
request still gets Segmenter's mask.
"""

from __future__ import annotations

import http.client
import json

import cv2
import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from attnseg.runtime import v2

from .conftest import MODEL_NAME

#: The documented bound on the server's memory (docs/deploy/README.md; the manifest's limit is 2 GiB).
RSS_BOUND = 2 * 1024**3
BATCHES = 12
PER_BATCH = 6

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10)
SHAPES = st.lists(st.integers(-3, 2**40) | st.sampled_from([0, 1, 2, 3, 4, 16]), max_size=9)
DATATYPES = st.sampled_from(["UINT8", "BYTES", "FP32", "INT64", "BOOL", "uint8", "", "UINT8\x00", "\u00e9"])
MUTATIONS = ["datatype", "shape", "data", "request_parameters", "input_parameters", "output_parameters",
             "outputs", "nesting", "binary_size", "header_length", "second_input", "drop_field", "image_header",
             "truncate_image", "length_prefix", "id"]


def _images() -> tuple[bytes, bytes]:
    from pathlib import Path

    jpeg = sorted((Path(__file__).resolve().parents[3] / "shared" / "data" / "kvasir-seg" / "images").glob("*.jpg"))
    img = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    png = cv2.imencode(".png", img)[1].tobytes()
    small_jpeg = cv2.imencode(".jpg", cv2.resize(cv2.imread(str(jpeg[0])), (64, 48)))[1].tobytes() if jpeg else png
    return small_jpeg, png


JPEG, PNG = _images()


@st.composite
def mutated_request(draw) -> tuple[bytes, dict[str, str]]:
    kind = draw(st.sampled_from(["bytes", "uint8_json", "uint8_binary"]))
    mutations = set(draw(st.lists(st.sampled_from(MUTATIONS), max_size=3)))
    raw = b""
    if kind == "bytes":
        image = draw(st.sampled_from([JPEG, PNG]))
        if "image_header" in mutations:
            pos = draw(st.integers(0, 40))
            patch = draw(st.binary(min_size=1, max_size=8))
            image = image[:pos] + patch + image[pos + len(patch):]
        if "truncate_image" in mutations:
            image = image[:draw(st.integers(0, len(image)))]
        raw = v2.pack_bytes([image])
        if "length_prefix" in mutations:
            raw = draw(st.binary(min_size=4, max_size=4)) + raw[4:]
        spec: dict = {"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(raw)}}
    else:
        h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
        values = draw(st.lists(st.integers(0, 255), min_size=h * w * 3, max_size=h * w * 3))
        spec = {"name": "image", "datatype": "UINT8", "shape": [1, h, w, 3]}
        if kind == "uint8_json":
            spec["data"] = values
        else:
            raw = bytes(values)
            spec["parameters"] = {"binary_data_size": len(raw)}
    req: dict = {"inputs": [spec], "outputs": [{"name": "mask"}]}
    if "datatype" in mutations:
        spec["datatype"] = draw(DATATYPES)
    if "shape" in mutations:
        spec["shape"] = draw(SHAPES | JSON_VALUES)
    if "data" in mutations:
        spec["data"] = draw(JSON_VALUES)
    if "nesting" in mutations and "data" in spec:
        depth = draw(st.integers(1, 3000))
        spec["data"] = json.loads("[" * depth + "1" + "]" * depth) if depth < 900 else "deep"
    if "request_parameters" in mutations:
        req["parameters"] = draw(JSON_VALUES)
    if "input_parameters" in mutations:
        spec["parameters"] = draw(JSON_VALUES)
    if "output_parameters" in mutations:
        req["outputs"][0]["parameters"] = draw(JSON_VALUES)
    if "outputs" in mutations:
        req["outputs"] = draw(st.lists(st.fixed_dictionaries({"name": st.sampled_from(
            ["mask", "probabilities", "attention", "overlay", "attention_Att2", "logits", ""])}), max_size=4)
                              | JSON_VALUES)
    if "binary_size" in mutations and isinstance(spec.get("parameters"), dict):
        spec["parameters"]["binary_data_size"] = draw(JSON_VALUES | st.integers(-5, 2**33))
    if "second_input" in mutations:
        req["inputs"].append(dict(spec))
    if "drop_field" in mutations:
        spec.pop(draw(st.sampled_from(["name", "datatype", "shape", "parameters", "data"])), None)
    if "id" in mutations:
        req["id"] = draw(JSON_VALUES)
    head = json.dumps(req).encode()
    if spec.get("data") == "deep":
        head = head.replace(b'"deep"', b"[" * 3000 + b"1" + b"]" * 3000)
    headers = {"Content-Type": "application/octet-stream"}
    if raw or "header_length" in mutations:
        headers[v2.BINARY_HEADER] = str(len(head))
    if "header_length" in mutations:
        headers[v2.BINARY_HEADER] = draw(st.sampled_from(["-1", "0", "abc", "99999999999", str(len(head) + 3), "1e3"]))
    return head + raw, headers


@st.composite
def mutated_grpc(draw) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name=MODEL_NAME, model_version=draw(st.sampled_from(["", "", "1", "2", "x"])))
    if draw(st.booleans()):  # a valid request, one field possibly changed
        datatype, shape, choice = "BYTES", [1], "raw_jpeg"
        field = draw(st.sampled_from(["none", "datatype", "shape", "choice"]))
        datatype = draw(DATATYPES) if field == "datatype" else datatype
        shape = draw(st.lists(st.integers(-3, 2**40), max_size=6)) if field == "shape" else shape
        choice = draw(st.sampled_from(["raw_random", "bytes_contents"])) if field == "choice" else choice
    else:
        datatype, shape = draw(DATATYPES), draw(st.lists(st.integers(-3, 2**40) | st.integers(0, 8), max_size=6))
        choice = draw(st.sampled_from(["raw_jpeg", "raw_random", "uint_contents", "bytes_contents", "none"]))
    t = req.inputs.add(name=draw(st.sampled_from(["image", "", "x"])), datatype=datatype, shape=shape)
    if choice == "raw_jpeg":
        req.raw_input_contents.append(v2.pack_bytes([draw(st.sampled_from([JPEG, PNG]))]))
    elif choice == "raw_random":
        req.raw_input_contents.append(draw(st.binary(max_size=64)))
    elif choice == "uint_contents":
        t.contents.uint_contents.extend(draw(st.lists(st.integers(0, 2**32 - 1), max_size=64)))
    elif choice == "bytes_contents":
        t.contents.bytes_contents.extend(draw(st.lists(st.binary(max_size=64) | st.just(PNG), max_size=3)))
    for name in draw(st.lists(st.sampled_from(["mask", "overlay", "nope", "attention"]), max_size=2)):
        req.outputs.add(name=name)
    if draw(st.booleans()):
        req.parameters["binary_data_output"].string_param = draw(st.text(max_size=5))
    return req


def post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("POST", f"/v2/models/{MODEL_NAME}/infer", body=body, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def stub(server):
    channel = grpc.insecure_channel(server.grpc_target)
    yield pb_grpc.GRPCInferenceServiceStub(channel)
    channel.close()


@pytest.fixture(scope="module")
def good(server, reference, jpegs):
    """One good request and its expected mask, checked after every batch."""
    body, n = v2.encode_request([("image", "BYTES", [1], v2.pack_bytes([jpegs[0].read_bytes()]))], ["mask"])
    return body, {"Content-Type": "application/octet-stream", v2.BINARY_HEADER: str(n)}, \
        reference.predict(jpegs[0]).mask


@settings(max_examples=BATCHES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(batch=st.lists(mutated_request(), min_size=PER_BATCH, max_size=PER_BATCH),
       grpc_batch=st.lists(mutated_grpc(), min_size=3, max_size=3))
def test_fuzzed_requests_never_get_a_5xx(server, stub, good, batch, grpc_batch):
    import psutil

    for body, headers in batch:
        status, _, data = post(server.http_port, body, headers)
        assert status < 500, (status, data[:300], headers, body[:300])
        if status >= 400:
            assert isinstance(json.loads(data).get("error"), str), data[:300]
    for req in grpc_batch:
        try:
            stub.ModelInfer(req, timeout=300)
        except grpc.RpcError as exc:
            assert exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  grpc.StatusCode.NOT_FOUND), (exc.code(), exc.details(), str(req)[:300])
    # After each batch: alive, memory bounded, and a good inference is still right.
    assert server.proc.poll() is None
    rss = psutil.Process(server.proc.pid).memory_info().rss
    assert rss < RSS_BOUND, f"server RSS {rss / 2**20:.0f} MiB over the documented bound"
    body, headers, expected = good
    status, h, data = post(server.http_port, body, headers)
    assert status == 200, data[:300]
    _, outs = v2.decode_response(data, int(h[v2.BINARY_HEADER.lower()]))
    np.testing.assert_array_equal(outs["mask"][0], expected)
