"""The REST pieces attnseg puts in front of kserve's app: a body size limit and a binary-safe infer route.

kserve 0.21's ``/v2/models/{name}/infer`` decodes binary-extension inputs with
``set_data_from_numpy(binary_data=False)``: numeric tensors become Python lists and BYTES must be
UTF-8, so a posted JPEG fails with a 500. ``make_infer_route`` parses the body itself (JSON, or
JSON + binary tensors when ``Inference-Header-Content-Length`` is set), keeps binary data as bytes,
and from there uses kserve's ``DataPlane`` exactly like kserve's own handler.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import Response
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.errors import InvalidInput, ModelNotReady
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput

log = logging.getLogger("attnseg.serve")


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413, before reading them.

    A declared ``Content-Length`` is checked up front; a chunked body is counted as it arrives.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _reply(send, 400, "Content-Length is not a number.")
                return
            if size > self.max_bytes:
                log.warning("request too large", extra={"path": scope.get("path"), "bytes": size,
                                                        "limit": self.max_bytes})
                await _reply(send, 413, self._message(size))
                return
            await self.app(scope, receive, send)
            return
        seen = 0
        started = False

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _reply(send, 413, self._message(seen))

    def _message(self, size: int) -> str:
        return (f"Request body of {size} bytes is over the server's limit of {self.max_bytes} bytes "
                "(seg-serve --max-request-mb); send fewer or smaller images per request.")


class _TooLarge(Exception):
    pass


async def _reply(send: Any, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode("utf-8")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def parse_infer_body(body: bytes, json_length: int | None, model_name: str) -> InferRequest:
    """A v2 REST infer body -> ``InferRequest``, binary inputs kept as raw bytes (no list conversion)."""
    if json_length is not None and not 0 < json_length <= len(body):
        raise InvalidInput(f"{INFERENCE_CONTENT_LENGTH_HEADER} is {json_length} but the body has {len(body)} bytes.")
    head = body if json_length is None else body[:json_length]
    try:
        req = json.loads(head)
    except (ValueError, UnicodeDecodeError) as exc:
        hint = "" if json_length is not None else (
            f" (binary tensors after the JSON need the {INFERENCE_CONTENT_LENGTH_HEADER} header)")
        raise InvalidInput(f"The request is not valid JSON{hint}: {exc}") from None
    if not isinstance(req, dict) or not isinstance(req.get("inputs"), list):
        raise InvalidInput('A v2 infer request is a JSON object with an "inputs" list.')
    inputs: list[InferInput] = []
    raw: list[bytes | None] = []
    pos = json_length or 0
    for i, spec in enumerate(req["inputs"]):
        try:
            name, datatype, shape = str(spec["name"]), str(spec["datatype"]), [int(s) for s in spec["shape"]]
        except (KeyError, TypeError, ValueError):
            raise InvalidInput(f'Input {i} needs "name", "datatype" and an integer "shape".') from None
        params = spec.get("parameters") or {}
        inp = InferInput(name=name, shape=shape, datatype=datatype, parameters=params)
        if "data" in spec:
            inp.data = spec["data"]
            raw.append(None)
        elif "binary_data_size" in params:
            size = int(params["binary_data_size"])
            if json_length is None or size < 0 or pos + size > len(body):
                raise InvalidInput(f"Input {name!r}: binary_data_size {size} runs past the end of the body.")
            raw.append(body[pos:pos + size])
            pos += size
        else:
            raise InvalidInput(f'Input {name!r} has neither "data" nor a binary_data_size parameter.')
        inputs.append(inp)
    for inp, data in zip(inputs, raw):
        if data is not None:
            inp._raw_data = data  # what kserve's gRPC path does with raw_input_contents
    outputs = None
    if req.get("outputs") is not None:
        try:
            outputs = [RequestedOutput(name=str(o["name"]), parameters=o.get("parameters") or {})
                       for o in req["outputs"]]
        except (KeyError, TypeError):
            raise InvalidInput('Each entry of "outputs" needs a "name".') from None
    return InferRequest(model_name=model_name, infer_inputs=inputs, request_id=req.get("id"),
                        parameters=req.get("parameters"), request_outputs=outputs)


def make_infer_route(dataplane: Any):
    """``POST /v2/models/{model_name}/infer``: kserve's handler with ``parse_infer_body`` as decoder."""

    async def infer(request: Request, model_name: str, model_version: str | None = None) -> Response:
        if model_version:
            raise NotImplementedError("Model versions are not supported; use /v2/models/{name}/infer.")
        if not await dataplane.model_ready(model_name, True):  # unknown name -> ModelNotFound (404)
            raise ModelNotReady(model_name)
        headers = dict(request.headers)
        header_len = headers.get(INFERENCE_CONTENT_LENGTH_HEADER)
        try:
            json_length = None if header_len is None else int(header_len)
        except ValueError:
            raise InvalidInput(f"{INFERENCE_CONTENT_LENGTH_HEADER} is not a number: {header_len!r}.") from None
        infer_request = parse_infer_body(await request.body(), json_length, model_name)
        response, response_headers = await dataplane.infer(model_name=model_name, request=infer_request,
                                                           headers=headers)
        encoded, extra = dataplane.encode(model_name=model_name, response=response, headers=headers,
                                          req_attributes={})
        response_headers = {**response_headers, **extra}
        response_headers.pop("content-length", None)
        response_headers.pop("content-type", None)
        if isinstance(encoded, bytes):
            return Response(content=encoded, media_type="application/octet-stream", headers=response_headers)
        return Response(content=orjson.dumps(encoded, option=orjson.OPT_SERIALIZE_NUMPY),
                        media_type="application/json", headers=response_headers)

    return infer


__all__ = ["BodyLimit", "make_infer_route", "parse_infer_body"]
