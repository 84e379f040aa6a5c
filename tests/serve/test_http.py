"""v2 REST against the real server: masks equal Segmenter's, every input kind, ragged batches, JSON."""

from __future__ import annotations

import http.client
import json

import cv2
import numpy as np
import pytest

from attnseg.runtime import v2

from .conftest import MODEL_NAME


def post(server, body: bytes, headers: dict[str, str], model: str = MODEL_NAME) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=120)
    try:
        conn.request("POST", f"/v2/models/{model}/infer", body=body, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def post_binary(server, inputs, outputs=(), model: str = MODEL_NAME):
    body, n = v2.encode_request(inputs, outputs)
    return post(server, body, {"Content-Type": "application/octet-stream", v2.BINARY_HEADER: str(n)}, model)


def decoded(status, headers, data):
    assert status == 200, data[:500]
    n = headers.get(v2.BINARY_HEADER.lower())
    return v2.decode_response(data, None if n is None else int(n))


def test_ready_only_once_compiled_and_metadata(server):
    # The ports open after compile, so the very first answer is already "ready".
    assert server.first_ready_status == 200
    status, body = server.get(f"/v2/models/{MODEL_NAME}")
    meta = json.loads(body)
    assert status == 200 and meta["name"] == MODEL_NAME
    names = [o["name"] for o in meta["outputs"]]
    assert names[:3] == ["mask", "probabilities", "overlay"]
    assert {"attention_Att5", "attention_Att2"} <= set(names)
    assert server.get(f"/v2/models/{MODEL_NAME}/ready")[0] == 200
    assert server.get("/v2/health/live")[0] == 200


def test_posted_jpegs_give_segmenters_masks(server, reference, jpegs):
    """BYTES [3] of three differently sized JPEGs: one output per image, each equal to Segmenter's."""
    files = jpegs[:3]
    sizes = [cv2.imread(str(p)).shape[:2] for p in files]
    assert len(set(sizes)) > 1, "the test needs images of different sizes"
    raw = v2.pack_bytes([p.read_bytes() for p in files])
    header, outs = decoded(*post_binary(server, [("image", "BYTES", [3], raw)], ["mask", "probabilities"]))
    params = header["parameters"]  # real JSON values, not JSON strings inside JSON
    assert params["ragged"] is True and params["classes"] == reference.classes and params["background"] == 0
    assert params["attention_names"] == reference.attention_names
    for i, p in enumerate(files):
        ref = reference.predict(p, return_probabilities=True)
        mask = outs[f"mask_{i}"]
        assert mask.shape == (1, *sizes[i]) and mask.dtype == np.uint8
        np.testing.assert_array_equal(mask[0], ref.mask)
        np.testing.assert_array_equal(outs[f"probabilities_{i}"][0], ref.probabilities)


def test_uint8_batch_is_one_tensor(server, reference, jpegs):
    """UINT8 [2,H,W,3] BGR: same size, so mask is [2,H,W]; attention maps equal too."""
    img = cv2.imread(str(jpegs[0]))
    flipped = np.ascontiguousarray(img[:, ::-1])
    batch = np.stack([img, flipped])
    header, outs = decoded(*post_binary(server, [("image", "UINT8", list(batch.shape), batch.tobytes())],
                                        ["mask", "attention"]))
    assert header["parameters"]["ragged"] is False
    assert outs["mask"].shape == (2, *img.shape[:2])
    for k, im in enumerate((img, flipped)):
        ref = reference.predict(im)
        np.testing.assert_array_equal(outs["mask"][k], ref.mask)
        for gate, amap in ref.attention.items():
            np.testing.assert_array_equal(outs[f"attention_{gate}"][k], amap)


def test_plain_json_request_and_response(server, reference, jpegs):
    """No binary extension at all: a small UINT8 image as a JSON list, the mask back as JSON."""
    img = cv2.resize(cv2.imread(str(jpegs[1])), (48, 40), interpolation=cv2.INTER_AREA)
    body = json.dumps({"inputs": [{"name": "image", "datatype": "UINT8", "shape": [1, 40, 48, 3],
                                   "data": img.reshape(-1).tolist()}]}).encode()
    status, headers, data = post(server, body, {"Content-Type": "application/json"})
    assert status == 200 and v2.BINARY_HEADER.lower() not in headers
    header, outs = v2.decode_response(data, None)
    assert header["outputs"][0]["name"] == "mask" and "data" in header["outputs"][0]
    np.testing.assert_array_equal(outs["mask"][0], reference.predict(img).mask)


def test_overlay_png(server, reference, jpegs):
    from attnseg.runtime import overlay

    raw = v2.pack_bytes([jpegs[2].read_bytes()])
    _, outs = decoded(*post_binary(server, [("image", "BYTES", [1], raw)], ["overlay"]))
    png = outs["overlay"][0]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    picture = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    img = cv2.imread(str(jpegs[2]))
    expected = overlay.overlay(img, reference.predict(jpegs[2]).mask, len(reference.classes))
    np.testing.assert_array_equal(picture, expected)


@pytest.mark.parametrize("case", ["undecodable", "fp32", "bad_shape", "unknown_output", "two_inputs",
                                  "not_json", "truncated_bytes", "unknown_model"])
def test_bad_requests_get_4xx_and_server_keeps_serving(server, reference, jpegs, case):
    good = v2.pack_bytes([jpegs[0].read_bytes()])
    expected = 400
    if case == "undecodable":
        res = post_binary(server, [("image", "BYTES", [1], v2.pack_bytes([b"\xff\xd8 not a jpeg" * 10]))])
        needle = "cannot be decoded"
    elif case == "fp32":
        res = post_binary(server, [("image", "FP32", [1, 4, 4, 3], np.zeros((1, 4, 4, 3), np.float32).tobytes())])
        needle = "UINT8"
    elif case == "bad_shape":
        res = post_binary(server, [("image", "UINT8", [4, 4, 3], np.zeros((4, 4, 3), np.uint8).tobytes())])
        needle = "[N,H,W,3]"
    elif case == "unknown_output":
        res = post_binary(server, [("image", "BYTES", [1], good)], ["logits"])
        needle = "Unknown output 'logits'"
    elif case == "two_inputs":
        res = post_binary(server, [("a", "BYTES", [1], good), ("b", "BYTES", [1], good)])
        needle = "exactly one input"
    elif case == "not_json":
        res = post(server, b"{not json", {"Content-Type": "application/json"})
        needle = "not valid JSON"
    elif case == "truncated_bytes":
        res = post_binary(server, [("image", "BYTES", [1], good[:-10])])
        needle = "BYTES"
    else:
        res = post_binary(server, [("image", "BYTES", [1], good)], model="no-such-model")
        expected, needle = 404, "no-such-model"
    status, _, data = res
    assert status == expected, data[:300]
    assert needle in json.loads(data)["error"]
    # The server is unharmed: a good request right after gets the right mask.
    _, outs = decoded(*post_binary(server, [("image", "BYTES", [1], good)]))
    np.testing.assert_array_equal(outs["mask"][0], reference.predict(jpegs[0]).mask)


def test_oversized_request_is_refused_before_it_is_read(server):
    limit = 64 * 1024 * 1024  # the manifest's --max-request-mb 64
    conn = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=30)
    try:
        conn.putrequest("POST", f"/v2/models/{MODEL_NAME}/infer")
        conn.putheader("Content-Type", "application/octet-stream")
        conn.putheader("Content-Length", str(limit + 1))
        conn.endheaders()
        conn.send(b"x" * 1024)  # the rest is never sent: the answer comes first
        r = conn.getresponse()
        status, body = r.status, r.read()
    finally:
        conn.close()
    assert status == 413
    assert "limit of 67108864 bytes" in json.loads(body)["error"]
    assert server.get("/v2/health/ready")[0] == 200


def test_prometheus_metrics_and_json_logs(server, jpegs):
    decoded(*post_binary(server, [("image", "BYTES", [1], v2.pack_bytes([jpegs[0].read_bytes()]))]))
    status, body = server.get("/metrics")
    text = body.decode()
    assert status == 200
    assert f'request_predict_seconds_count{{model_name="{MODEL_NAME}"}}' in text
    records = server.log_records()
    ready = [r for r in records if r.get("message") == "model ready"]
    assert ready and ready[0]["model"] == MODEL_NAME and ready[0]["infer_requests"] >= 1
    access = [r for r in records if r.get("logger") == "uvicorn.access" and r.get("path", "").endswith("/infer")]
    assert access and {"client", "method", "status", "time", "level"} <= set(access[0])
