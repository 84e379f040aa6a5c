"""The Open Inference Protocol (KServe v2) as attnseg speaks it: names, parameters and byte layouts.

One place for what the server (``attnseg.serve``) and the client (``RemoteSegmenter``) must agree
on, so neither guesses. Standard library + numpy only (the runtime never imports kserve).

Inputs of an infer request (the first input is the image input, whatever its name):

* ``UINT8`` ``[N, H, W, 3]``: BGR pixels, any H and W (``[N, H, W, 1]`` grayscale too);
* ``BYTES`` ``[N]``: encoded image files (JPEG, PNG, BMP, TIFF...), the binary-input convention
  of OpenVINO Model Server.

Outputs are chosen by the request's standard ``outputs`` list (default: ``mask`` only):

* ``mask``: ``UINT8`` ``[N, H, W]`` class ids at each image's own size;
* ``probabilities``: ``FP32`` ``[N, K, H, W]`` (K = number of classes);
* ``attention`` (all gates) or ``attention_<gate>`` (e.g. ``attention_Att5``): ``FP32`` ``[N, H, W]``;
* ``overlay``: ``BYTES`` ``[N]``, PNG files of the mask drawn over the image.

When the images of one request differ in size (a batch of JPEGs), a tensor cannot hold them all:
every per-image output is then returned once per image with the index appended, ``mask_0``
``[1, H0, W0]``, ``mask_1`` ``[1, H1, W1]``, ... (the response parameter ``ragged`` is true).

Response parameters: ``classes`` (JSON list, the name of each mask value), ``background`` (mask
value of the background, -1 if none), ``attention_names`` (JSON list of gate names) and
``binary`` (true for a binary model, whose mask files are 0/255).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

MASK = "mask"
PROBABILITIES = "probabilities"
ATTENTION = "attention"
OVERLAY = "overlay"
OUTPUT_NAMES = (MASK, PROBABILITIES, ATTENTION, OVERLAY)

#: The HTTP header of the v2 binary tensor extension: length of the JSON part of the body.
BINARY_HEADER = "Inference-Header-Content-Length"

#: v2 datatype name -> numpy dtype (BYTES is handled by ``pack_bytes`` / ``unpack_bytes``).
DTYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(bool), "UINT8": np.dtype(np.uint8), "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32), "UINT64": np.dtype(np.uint64), "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16), "INT32": np.dtype(np.int32), "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16), "FP32": np.dtype(np.float32), "FP64": np.dtype(np.float64),
}


def datatype_of(array: np.ndarray) -> str:
    """The v2 datatype name of a numpy array (object arrays of bytes are BYTES)."""
    if array.dtype == object or array.dtype.kind == "S":
        return "BYTES"
    for name, dtype in DTYPES.items():
        if array.dtype == dtype:
            return name
    raise ValueError(f"no v2 datatype for numpy dtype {array.dtype}")


def pack_bytes(items: Iterable[bytes]) -> bytes:
    """BYTES elements -> one buffer, each element preceded by its length (uint32 little endian)."""
    return b"".join(struct.pack("<I", len(b)) + bytes(b) for b in items)


def unpack_bytes(buffer: bytes | memoryview, count: int | None = None) -> list[bytes]:
    """The inverse of ``pack_bytes``; ``ValueError`` if the lengths do not add up."""
    view = memoryview(buffer)
    out: list[bytes] = []
    pos = 0
    while pos < len(view):
        if pos + 4 > len(view):
            raise ValueError("BYTES data ends inside an element's 4-byte length")
        (n,) = struct.unpack_from("<I", view, pos)
        pos += 4
        if pos + n > len(view):
            raise ValueError(f"BYTES element {len(out)} claims {n} bytes but only {len(view) - pos} remain")
        out.append(bytes(view[pos:pos + n]))
        pos += n
    if count is not None and len(out) != count:
        raise ValueError(f"BYTES data holds {len(out)} elements, the shape says {count}")
    return out


def ragged_name(name: str, index: int) -> str:
    """The name of image ``index``'s output when a request mixes image sizes."""
    return f"{name}_{index}"


def encode_request(
    inputs: Sequence[tuple[str, str, Sequence[int], bytes]],
    outputs: Sequence[str] = (),
    parameters: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> tuple[bytes, int]:
    """A binary-extension request body: JSON header + raw tensors; returns (body, JSON length).

    ``inputs``: (name, datatype, shape, raw bytes) each; every output is asked in binary form.
    """
    header: dict[str, Any] = {
        "inputs": [
            {"name": n, "datatype": d, "shape": [int(s) for s in shape],
             "parameters": {"binary_data_size": len(raw)}}
            for n, d, shape, raw in inputs
        ],
        "outputs": [{"name": o, "parameters": {"binary_data": True}} for o in outputs],
        "parameters": {"binary_data_output": True, **(parameters or {})},
    }
    if request_id is not None:
        header["id"] = request_id
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    return b"".join([head, *(raw for *_, raw in inputs)]), len(head)


def decode_response(body: bytes, json_length: int | None) -> tuple[dict[str, Any], dict[str, np.ndarray | list]]:
    """A v2 REST response (JSON or binary extension) -> (its JSON header, outputs by name).

    Numeric outputs become numpy arrays of their shape; BYTES outputs lists of ``bytes``.
    """
    if json_length is None:
        header = json.loads(body)
        tail = memoryview(b"")
    else:
        header = json.loads(bytes(body[:json_length]))
        tail = memoryview(body)[json_length:]
    outputs: dict[str, np.ndarray | list] = {}
    pos = 0
    for out in header.get("outputs", []):
        name, dtype, shape = out["name"], out["datatype"], [int(s) for s in out["shape"]]
        params = out.get("parameters") or {}
        count = int(np.prod(shape)) if shape else 1
        if "binary_data_size" in params:
            size = int(params["binary_data_size"])
            raw = tail[pos:pos + size]
            if len(raw) != size:
                raise ValueError(f"output {name}: {size} bytes announced, {len(raw)} present")
            pos += size
            if dtype == "BYTES":
                outputs[name] = unpack_bytes(raw, count)
            else:
                outputs[name] = np.frombuffer(raw, dtype=DTYPES[dtype]).reshape(shape)
        else:
            data = out.get("data", [])
            if dtype == "BYTES":
                outputs[name] = [d.encode("utf-8") if isinstance(d, str) else bytes(d) for d in data]
            else:
                outputs[name] = np.asarray(data, dtype=DTYPES[dtype]).reshape(shape)
    return header, outputs


def response_parameters(classes: Sequence[str], background: int | None,
                        attention_names: Sequence[str], ragged: bool, binary: bool | None = None) -> dict[str, Any]:
    """What the server tells the client besides the tensors (see the module docstring); the
    arguments come from the served model's codec (``Segmenter.codec``: ``classes``,
    ``background``, ``binary``)."""
    params = {
        "classes": json.dumps(list(classes)),
        "background": -1 if background is None else int(background),
        "attention_names": json.dumps(list(attention_names)),
        "ragged": bool(ragged),
    }
    if binary is not None:
        params["binary"] = bool(binary)
    return params


def parse_binary(params: dict[str, Any], classes: Sequence[str], background: int | None) -> bool:
    """Whether the served model is binary (its masks are written 0/255): the ``binary`` response
    parameter; servers that do not send it serve binary models as two classes, background first."""
    if "binary" in params:
        return bool(params["binary"])
    return len(classes) == 2 and background == 0


def parse_response_parameters(params: dict[str, Any]) -> tuple[list[str], int | None, list[str], bool]:
    """The inverse of ``response_parameters`` (missing entries: no classes, no background)."""
    classes = json.loads(params.get("classes", "[]"))
    background = int(params.get("background", -1))
    names = json.loads(params.get("attention_names", "[]"))
    return list(classes), (None if background < 0 else background), list(names), bool(params.get("ragged", False))
