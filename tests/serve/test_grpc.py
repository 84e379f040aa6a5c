"""v2 gRPC (kserve's own stubs) against the same server: health, metadata, JPEG bytes in, masks equal."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from .conftest import MODEL_NAME


@pytest.fixture(scope="module")
def stub(server):
    channel = grpc.insecure_channel(server.grpc_target, options=[("grpc.max_receive_message_length", -1),
                                                                 ("grpc.max_send_message_length", -1)])
    yield pb_grpc.GRPCInferenceServiceStub(channel)
    channel.close()


def infer(stub, raw: list[bytes], outputs=("mask",), datatype="BYTES", shape=None):
    req = pb.ModelInferRequest(model_name=MODEL_NAME, id="t1")
    req.inputs.add(name="image", datatype=datatype, shape=shape or [len(raw)])
    for o in outputs:
        req.outputs.add(name=o)
    if datatype == "BYTES":
        req.raw_input_contents.append(b"".join(len(b).to_bytes(4, "little") + b for b in raw))
    else:
        req.raw_input_contents.append(raw[0])
    return stub.ModelInfer(req, timeout=120)


def test_grpc_health_and_metadata(stub):
    assert stub.ServerLive(pb.ServerLiveRequest()).live
    assert stub.ServerReady(pb.ServerReadyRequest()).ready
    assert stub.ModelReady(pb.ModelReadyRequest(name=MODEL_NAME)).ready
    meta = stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL_NAME))
    assert meta.name == MODEL_NAME and meta.outputs[0].name == "mask"


def test_grpc_jpegs_give_segmenters_masks(stub, reference, jpegs):
    files = jpegs[3:5]
    resp = infer(stub, [p.read_bytes() for p in files], outputs=("mask", "attention"))
    outs = {o.name: (o, raw) for o, raw in zip(resp.outputs, resp.raw_output_contents)}
    assert resp.parameters["classes"].string_param == '["background", "polyp"]'
    ragged = resp.parameters["ragged"].bool_param
    for i, p in enumerate(files):
        ref = reference.predict(p)
        name = f"mask_{i}" if ragged else "mask"
        o, raw = outs[name]
        mask = np.frombuffer(raw, np.uint8).reshape(list(o.shape))[0 if ragged else i]
        np.testing.assert_array_equal(mask, ref.mask)
        gate = f"attention_Att2_{i}" if ragged else "attention_Att2"
        o, raw = outs[gate]
        amap = np.frombuffer(raw, np.float32).reshape(list(o.shape))[0 if ragged else i]
        np.testing.assert_array_equal(amap, ref.attention["Att2"])


def test_grpc_errors_are_statuses_and_server_keeps_serving(stub, reference, jpegs):
    with pytest.raises(grpc.RpcError) as bad:
        infer(stub, [b"definitely not an image"])
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "cannot be decoded" in bad.value.details()
    with pytest.raises(grpc.RpcError) as wrong:
        infer(stub, [np.zeros((2, 2, 3), np.float32).tobytes()], datatype="FP32", shape=[1, 2, 2, 3])
    assert wrong.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as unknown:
        stub.ModelInfer(pb.ModelInferRequest(model_name="nope"), timeout=30)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    # Over the 64 MiB limit (the manifest's --max-request-mb): refused, nothing crashes.
    with pytest.raises(grpc.RpcError) as big:
        infer(stub, [bytes(65 * 1024 * 1024)])
    assert big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    resp = infer(stub, [jpegs[0].read_bytes()])
    mask = np.frombuffer(resp.raw_output_contents[0], np.uint8).reshape(list(resp.outputs[0].shape))[0]
    np.testing.assert_array_equal(mask, reference.predict(jpegs[0]).mask)
