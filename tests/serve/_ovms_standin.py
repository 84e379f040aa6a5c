"""A stand-in for OpenVINO Model Server in tests: a v2 server of an IR's own tensors, nothing more.

OVMS cannot run on this machine. What a client of OVMS sees for a ``seg-export --ovms-repo`` model
is the raw IR over standard v2: the input ``image`` at the model's size, the outputs ``logits`` and
``attention_*`` at the model's resolution, no masks, no attnseg parameters. This script serves
exactly that (kserve's model server, OpenVINO's compiled model called directly) so the raw mode of
``RemoteSegmenter`` can be checked end to end. It is not OVMS: its decoding of BYTES, batching and
error texts are not OVMS's, and nothing here proves OVMS accepts the same requests.

    python tests/serve/_ovms_standin.py MODEL.xml NAME HTTP_PORT
"""

from __future__ import annotations

import json
import sys

import numpy as np
import openvino as ov
from kserve import Model

from attnseg.runtime import v2
from attnseg.serve import _kserve  # noqa: F401 - kserve imported without our argv
from attnseg.serve.errors import RequestError
from attnseg.serve.model import RestAnswer
from attnseg.serve.server import SegModelServer, ServeOptions


class RawIR(Model):
    version = "1"

    def __init__(self, name: str, xml: str) -> None:
        super().__init__(name)
        self.xml = xml

    def load(self) -> bool:
        # f32, as attnseg's Segmenter computes on this CPU (OVMS would use the device default).
        self.compiled = ov.Core().compile_model(self.xml, "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                                     "PERFORMANCE_HINT": "LATENCY"})
        self.ready = True
        return True

    @staticmethod
    def _describe(port) -> dict:
        ps = port.get_partial_shape()
        dtype = np.dtype(port.get_element_type().to_dtype())
        return {"name": port.get_any_name(), "datatype": v2.datatype_of(np.empty(0, dtype)),
                "shape": [d.get_length() if d.is_static else -1 for d in ps]}

    def get_input_types(self):
        return [self._describe(p) for p in self.compiled.inputs]

    def get_output_types(self):
        return [self._describe(p) for p in self.compiled.outputs]

    def metadata(self) -> dict:
        return {"name": self.name, "versions": [self.version], "platform": "openvino",
                "inputs": self.get_input_types(), "outputs": self.get_output_types()}

    def predict(self, payload, headers=None, response_headers=None):
        """A checked v2 request (seg-serve's ``WireRequest``) in, the IR's raw outputs out (binary)."""
        inp = payload.inputs[0]
        want = self.get_input_types()[0]
        if inp.datatype != want["datatype"] or inp.shape != want["shape"]:
            raise RequestError(f"expected {want}, got {inp.datatype} {inp.shape}")
        dtype = v2.DTYPES[inp.datatype]
        try:
            x = (np.frombuffer(inp.raw, dtype) if inp.raw is not None else np.asarray(inp.data, dtype)).reshape(inp.shape)
        except ValueError as exc:
            raise RequestError(f"input data does not match its shape: {exc}") from None
        results = self.compiled(x)
        asked = {name for name, _ in payload.outputs}
        outputs, parts = [], []
        for port in self.compiled.outputs:
            if asked and port.get_any_name() not in asked:
                continue
            arr = np.ascontiguousarray(results[port])
            raw = arr.tobytes()
            outputs.append({"name": port.get_any_name(), "datatype": v2.datatype_of(arr), "shape": list(arr.shape),
                            "parameters": {"binary_data_size": len(raw)}})
            parts.append(raw)
        head = json.dumps({"model_name": self.name, "id": payload.request_id, "outputs": outputs}).encode()
        return RestAnswer(b"".join([head, *parts]), len(head))


def main() -> None:
    xml, name, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    model = RawIR(name, xml)
    model.load()
    SegModelServer(ServeOptions(host="127.0.0.1", http_port=port, enable_grpc=False)).start([model])


if __name__ == "__main__":
    main()
