"""A v2 infer request, read from REST or gRPC, checked field by field and against the budgets.

``parse_rest`` and ``parse_grpc`` turn the wire form into a ``WireRequest`` (types checked, no
image touched); ``plan`` then checks it against the model and the ``Limits`` *before* anything
large is allocated: image sizes come from the shape (UINT8) or the encoded header (BYTES, read by
``attnseg.imaging.check_image_size``), so a decompression bomb or a huge declared shape is refused
with 413 without being decoded. Every problem raises a ``RequestError`` (400) or ``TooLarge``
(413) whose message says what to send instead.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from attnseg import imaging
from attnseg.runtime import v2
from attnseg.serve.errors import RequestError, TooLarge

MAX_RANK = 8
MAX_NAME = 256


@dataclass(frozen=True)
class Limits:
    """The per-request budgets (``ServeOptions`` holds the user's values)."""

    max_image_pixels: int = 4096 * 4096
    max_request_pixels: int = 64 * 1024 * 1024
    max_response_bytes: int = 256 * 1024 * 1024
    max_json_values: int = 1 << 20
    max_json_bytes: int = 16 * 1024 * 1024


@dataclass
class WireInput:
    name: str
    datatype: str
    shape: list[int]
    raw: bytes | memoryview | None = None  # binary data (REST binary extension, gRPC raw contents)
    data: Any = None  # JSON data / typed gRPC contents


@dataclass
class WireRequest:
    """A v2 infer request as received; ``outputs`` maps requested names to binary (None: default)."""

    inputs: list[WireInput]
    outputs: list[tuple[str, bool | None]] = field(default_factory=list)
    request_id: str = ""
    binary_default: bool = False
    grpc: bool = False
    model_version: str = ""
    light: bool = False  # cheap to check on the event loop (binary data, few images)


@dataclass
class Plan:
    """What will be computed: images (arrays or encoded files with their declared sizes) and outputs."""

    images: list[np.ndarray | bytes]
    sizes: list[tuple[int, int]]
    wanted: list[str]
    binary: dict[str, bool]
    pixels: int
    memory: int = 0  # bytes this request will hold while served (decoded images + outputs, estimated)


# ---------------------------------------------------------------------------------------- REST
def parse_rest(body: bytes, json_length: int | None, limits: Limits) -> WireRequest:
    """A REST body (JSON, or JSON + binary tensors) -> ``WireRequest``; binary parts stay views."""
    header = "Inference-Header-Content-Length"
    if json_length is not None and not 0 < json_length <= len(body):
        raise RequestError(f"{header} is {json_length} but the body has {len(body)} bytes; it must be the length "
                           "of the JSON part at the start of the body.")
    head_len = len(body) if json_length is None else json_length
    if head_len > limits.max_json_bytes:
        raise TooLarge(f"The JSON part of the request is {head_len:,} bytes, over the limit of "
                       f"{limits.max_json_bytes:,} (seg-serve --max-json-mb); send pixels or files as binary data "
                       f"(the binary tensor extension, {header}).")
    view = memoryview(body)
    try:
        req = orjson.loads(view[:head_len])
    except orjson.JSONDecodeError as exc:
        hint = "" if json_length is not None or "trailing" not in str(exc) else (
            f" (binary data after the JSON needs the {header} header)")
        raise RequestError(f"The request is not valid JSON{hint}: {exc}") from None
    if not isinstance(req, dict):
        raise RequestError('A v2 infer request is a JSON object with an "inputs" list.')
    params = _params(req.get("parameters"), "the request's \"parameters\"")
    binary_default = _bool(params.get("binary_data_output", False), "binary_data_output")
    request_id = req.get("id", "")
    if not isinstance(request_id, str) or len(request_id) > MAX_NAME:
        raise RequestError('"id" must be a string (up to 256 characters).')
    specs = req.get("inputs")
    if not isinstance(specs, list) or not specs:
        raise RequestError('A v2 infer request needs a non-empty "inputs" list.')
    inputs: list[WireInput] = []
    pos = head_len
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict):
            raise RequestError(f"Input {i} must be a JSON object with name, datatype, shape and data.")
        name, datatype, shape = _tensor_head(spec, f"Input {i}")
        p = _params(spec.get("parameters"), f"input {name!r} parameters")
        if "binary_data_size" in p:
            size = p["binary_data_size"]
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise RequestError(f"Input {name!r}: binary_data_size must be a non-negative integer, got {size!r}.")
            if "data" in spec:
                raise RequestError(f"Input {name!r} has both \"data\" and binary_data_size; send one of them.")
            if json_length is None or pos + size > len(body):
                raise RequestError(f"Input {name!r}: binary_data_size {size} runs past the end of the body "
                                   f"({len(body) - pos} bytes follow the JSON).")
            inputs.append(WireInput(name, datatype, shape, raw=view[pos:pos + size]))
            pos += size
        elif "data" in spec:
            inputs.append(WireInput(name, datatype, shape, data=spec["data"]))
        else:
            raise RequestError(f'Input {name!r} has neither "data" nor a binary_data_size parameter.')
    outputs: list[tuple[str, bool | None]] = []
    out_specs = req.get("outputs")
    if out_specs is not None:
        if not isinstance(out_specs, list):
            raise RequestError('"outputs" must be a list of {"name": ...} objects.')
        for j, o in enumerate(out_specs):
            if not isinstance(o, dict) or not isinstance(o.get("name"), str) or not o["name"]:
                raise RequestError(f'Output {j} must be an object with a "name" string.')
            op = _params(o.get("parameters"), f"output {o['name']!r} parameters")
            binary = _bool(op["binary_data"], "binary_data") if "binary_data" in op else None
            outputs.append((o["name"][:MAX_NAME], binary))
    return WireRequest(inputs, outputs, request_id, binary_default, grpc=False,
                       light=head_len <= 64 * 1024 and _light(inputs))


def _tensor_head(spec: dict, what: str) -> tuple[str, str, list[int]]:
    name, datatype, shape = spec.get("name"), spec.get("datatype"), spec.get("shape")
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise RequestError(f'{what} needs a "name" and a "datatype" string.')
    if not isinstance(shape, list) or len(shape) > MAX_RANK or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in shape):
        raise RequestError(f'{what} ({name[:MAX_NAME]!r}): "shape" must be a list of up to {MAX_RANK} integers.')
    if any(s < 0 for s in shape):
        raise RequestError(f"{what} ({name[:MAX_NAME]!r}): shape {shape} has a negative dimension.")
    return name[:MAX_NAME], datatype, shape


def _params(value: Any, what: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(f"{what} must be a JSON object, got {type(value).__name__}.")
    return value


def _bool(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise RequestError(f"{what} must be true or false, got {value!r}.")
    return value


# ---------------------------------------------------------------------------------------- gRPC
def parse_grpc(request: Any) -> WireRequest:
    """A ``ModelInferRequest`` -> ``WireRequest`` (raw_input_contents or typed contents)."""
    raw = list(request.raw_input_contents)
    if raw and len(raw) != len(request.inputs):
        raise RequestError(f"{len(request.inputs)} inputs but {len(raw)} raw_input_contents; send one per input.")
    if not request.inputs:
        raise RequestError("A ModelInferRequest needs one input (the images).")
    inputs = []
    for i, t in enumerate(request.inputs):
        shape = [int(s) for s in t.shape]
        if len(shape) > MAX_RANK or any(s < 0 for s in shape):
            raise RequestError(f"Input {t.name!r}: shape {shape} must have up to {MAX_RANK} non-negative dimensions.")
        if raw:
            if t.HasField("contents"):
                raise RequestError(f"Input {t.name!r}: send contents or raw_input_contents, not both.")
            inputs.append(WireInput(t.name[:MAX_NAME], t.datatype, shape, raw=raw[i]))
        elif t.datatype == "BYTES":
            inputs.append(WireInput(t.name[:MAX_NAME], t.datatype, shape, data=list(t.contents.bytes_contents)))
        elif t.datatype == "UINT8":
            inputs.append(WireInput(t.name[:MAX_NAME], t.datatype, shape, data=t.contents.uint_contents))
        else:
            inputs.append(WireInput(t.name[:MAX_NAME], t.datatype, shape, data=[]))
    outputs = [(o.name[:MAX_NAME], True) for o in request.outputs]
    return WireRequest(inputs, outputs, request.id[:MAX_NAME], True, grpc=True, model_version=request.model_version,
                       light=_light(inputs))


def _light(inputs: list[WireInput]) -> bool:
    """Cheap enough to check on the event loop: binary data only, a few MiB, a few images."""
    return (all(i.raw is not None for i in inputs) and sum(len(i.raw) for i in inputs) <= 4 * 1024 * 1024
            and all(i.shape and 0 <= i.shape[0] <= 64 for i in inputs))


# ---------------------------------------------------------------------------------------- plan
def plan(req: WireRequest, limits: Limits, classes: int, attention_names: list[str],
         has_scores: bool = True) -> Plan:
    """Check a request against the model and the budgets, before any image is decoded."""
    if len(req.inputs) != 1:
        raise RequestError(f"Send exactly one input (the images), got {len(req.inputs)}: UINT8 [N,H,W,3] BGR pixels "
                           "or BYTES [N] encoded image files.")
    inp = req.inputs[0]
    if inp.datatype == "BYTES":
        images, sizes = _bytes_images(inp, limits)
    elif inp.datatype == "UINT8":
        images, sizes = _uint8_images(inp, limits)
    else:
        raise RequestError(f"Input {inp.name!r} is {inp.datatype[:32]!r}; send UINT8 [N,H,W,3] BGR pixels or BYTES [N] "
                           "encoded image files.")
    wanted = requested_outputs([n for n, _ in req.outputs], attention_names)
    if v2.PROBABILITIES in wanted and not has_scores:
        raise RequestError("This model does not output scores, so it has no probabilities output.")
    asked = dict(req.outputs)
    binary: dict[str, bool] = {}
    for name in wanted:
        choice = asked.get(name)
        if choice is None and name.startswith(v2.ATTENTION + "_"):
            choice = asked.get(v2.ATTENTION)
        binary[name] = True if (req.grpc or name == v2.OVERLAY) else (req.binary_default if choice is None else choice)
    pixels = sum(h * w for h, w in sizes)
    per_pixel = {v2.MASK: 1 if classes <= 256 else 2, v2.PROBABILITIES: 4 * classes, v2.OVERLAY: 4}
    json_cost = {v2.MASK: 4, v2.PROBABILITIES: 12 * classes}
    response = 0
    for name in wanted:
        if binary[name]:
            response += pixels * per_pixel.get(name, 4)
        else:
            values = pixels * (classes if name == v2.PROBABILITIES else 1)
            if values > limits.max_json_values:
                raise TooLarge(
                    f"Output {name!r} would hold {values:,} values as a JSON array, over the limit of "
                    f"{limits.max_json_values:,} (seg-serve --max-json-values). Ask for binary output: "
                    '"parameters": {"binary_data": true} on the output, or "binary_data_output": true on the request.')
            response += values * json_cost.get(name, 12)
    if response > limits.max_response_bytes:
        raise TooLarge(f"The response would be about {response:,} bytes, over the limit of "
                       f"{limits.max_response_bytes:,} (seg-serve --max-response-mb); ask for fewer outputs "
                       "(mask only is the smallest) or send fewer or smaller images per request.")
    # Decoded BGR + mask per pixel, the outputs twice (arrays, then the encoded response).
    return Plan(images, sizes, wanted, binary, pixels, memory=4 * pixels + 2 * response)


def _check_request_pixels(total: int, limits: Limits) -> None:
    if total > limits.max_request_pixels:
        raise TooLarge(f"The request's images hold {total:,} pixels, over the limit of {limits.max_request_pixels:,} "
                       "per request (seg-serve --max-request-pixels); send fewer or smaller images per request.")


def _bytes_images(inp: WireInput, limits: Limits) -> tuple[list[bytes], list[tuple[int, int]]]:
    if len(inp.shape) != 1 or inp.shape[0] < 1:
        raise RequestError(f"Input {inp.name!r} is BYTES with shape {inp.shape}; encoded files are BYTES [N], N >= 1.")
    count = inp.shape[0]
    if inp.raw is not None:
        try:
            items = v2.unpack_bytes(inp.raw, count)
        except (ValueError, struct.error) as exc:
            raise RequestError(f"Input {inp.name!r}: malformed BYTES data ({exc}); each element is a 4-byte "
                               "little-endian length followed by that many bytes.") from None
    else:
        data = inp.data
        if not isinstance(data, list) or len(data) != count:
            raise RequestError(f"Input {inp.name!r}: BYTES data must be a flat list of {count} elements.")
        items = []
        for d in data:
            if isinstance(d, str):
                items.append(d.encode("utf-8", "surrogatepass"))
            elif isinstance(d, (bytes, bytearray)):
                items.append(bytes(d))
            else:
                raise RequestError(f"Input {inp.name!r}: BYTES elements must be strings, got {type(d).__name__}.")
    sizes = []
    for i, item in enumerate(items):
        if not item:
            raise RequestError(f"Input {inp.name!r}: image {i} is empty (0 bytes).")
        size = imaging.declared_image_size(item)
        if size is None:
            raise RequestError(f"Image {i} of the request cannot be decoded: its header gives no image size (corrupt, "
                               "or not a JPEG, PNG, BMP, TIFF, WebP, GIF or PNM file).")
        h, w = size
        if h * w > limits.max_image_pixels:
            raise TooLarge(f"Image {i} of the request declares {w}x{h} = {h * w:,} pixels, over the limit of "
                           f"{limits.max_image_pixels:,} per image (seg-serve --max-image-pixels); it was not decoded. "
                           "Send a smaller image.")
        if h < 1 or w < 1:
            raise RequestError(f"Image {i} of the request declares a size of {w}x{h}; it is not an image.")
        sizes.append(size)
    _check_request_pixels(sum(h * w for h, w in sizes), limits)
    return items, sizes


def _uint8_images(inp: WireInput, limits: Limits) -> tuple[list[np.ndarray], list[tuple[int, int]]]:
    shape = inp.shape
    if len(shape) != 4 or shape[3] not in (1, 3) or min(shape) < 1:
        raise RequestError(f"Input {inp.name!r} has shape {shape}; UINT8 images must be [N,H,W,3] (BGR) or [N,H,W,1].")
    n, h, w, c = shape
    if h * w > limits.max_image_pixels:
        raise TooLarge(f"Input {inp.name!r}: each image is {w}x{h} = {h * w:,} pixels, over the limit of "
                       f"{limits.max_image_pixels:,} (seg-serve --max-image-pixels); send a smaller image.")
    _check_request_pixels(n * h * w, limits)
    count = n * h * w * c
    if inp.raw is not None:
        if len(inp.raw) != count:
            raise RequestError(f"Input {inp.name!r}: shape {shape} needs {count:,} bytes, the binary data has "
                               f"{len(inp.raw):,}.")
        batch = np.frombuffer(inp.raw, dtype=np.uint8).reshape(shape)
    else:
        batch = _json_uint8(inp, count)
    return [batch[i] for i in range(n)], [(h, w)] * n


def _json_uint8(inp: WireInput, count: int) -> np.ndarray:
    data = inp.data
    if isinstance(data, np.ndarray) or not isinstance(data, (list, tuple)) and hasattr(data, "__len__"):
        values = np.asarray(data)  # gRPC uint_contents
    elif isinstance(data, list):
        try:
            values = np.asarray(data)
        except (ValueError, TypeError, OverflowError, RecursionError):
            values = None
        if values is None or values.dtype == object:
            raise RequestError(f"Input {inp.name!r}: \"data\" must be a flat (or evenly nested) list of integers "
                               "0-255.") from None
    else:
        raise RequestError(f"Input {inp.name!r}: \"data\" must be a list of integers 0-255, got "
                           f"{type(data).__name__}.")
    if values.size != count:
        raise RequestError(f"Input {inp.name!r}: shape {inp.shape} needs {count:,} values, \"data\" has {values.size:,}.")
    if values.dtype.kind not in "iub":
        raise RequestError(f"Input {inp.name!r}: UINT8 \"data\" must hold integers 0-255, got {values.dtype.name} "
                           "values.")
    if values.size and (int(values.min()) < 0 or int(values.max()) > 255):
        raise RequestError(f"Input {inp.name!r}: UINT8 \"data\" must be in 0-255, got values "
                           f"{int(values.min())}..{int(values.max())}.")
    return values.astype(np.uint8).reshape(inp.shape)


def requested_outputs(asked: list[str], attention_names: list[str]) -> list[str]:
    """Output names the request asks for (default ``mask``), ``attention`` expanded to every gate."""
    asked = asked or [v2.MASK]
    gates = [f"{v2.ATTENTION}_{a}" for a in attention_names]
    wanted: list[str] = []
    for name in asked:
        if name == v2.ATTENTION:
            if not gates:
                raise RequestError("This model has no attention outputs (export it with attention maps).")
            wanted += gates
        elif name in (v2.MASK, v2.PROBABILITIES, v2.OVERLAY) or name in gates:
            wanted.append(name)
        else:
            choices = ", ".join([v2.MASK, v2.PROBABILITIES, v2.OVERLAY] + ([v2.ATTENTION] + gates if gates else []))
            raise RequestError(f"Unknown output {name[:64]!r}; this model has: {choices}.")
    return list(dict.fromkeys(wanted))


__all__ = ["Limits", "Plan", "WireInput", "WireRequest", "parse_grpc", "parse_rest", "plan", "requested_outputs"]
