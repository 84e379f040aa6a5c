"""What attnseg puts in front of kserve's REST app: a guard, its own v2 routes and JSON errors.

* ``Guard`` (ASGI middleware): the bearer token (every route but ``/v2/health/live``), the body
  size limit (413 before reading), the body deadline (408 when a body arrives too slowly or
  never: a request shorter than its Content-Length), and 503 for a request cut off by the end
  of the shutdown grace period.
* ``guarded_protocol``: uvicorn's httptools protocol with a header deadline (slowloris and idle
  sockets that never send a request get 408 and are closed), a header size limit (431) and a
  connection limit (503 + close at accept). Malformed HTTP gets a JSON 400.
* Routes, registered before kserve's own: infer (kserve 0.21's handler turns binary inputs into
  Python lists and rejects JPEG bytes), model metadata with versions and both inputs, versioned
  ready, the repository index, and load/unload (403 unless model control is on).
* Every error body is ``{"error": "..."}``, unknown routes and methods included.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import socket
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from kserve.constants.constants import INFERENCE_CONTENT_LENGTH_HEADER
from kserve.errors import ModelNotFound, ModelNotReady
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from attnseg.errors import AttnsegError
from attnseg.serve.errors import Forbidden, NotFound, RequestError
from attnseg.serve.request import Limits, parse_rest

log = logging.getLogger("attnseg.serve")

PUBLIC_PATHS = frozenset({"/v2/health/live"})
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only
MAX_HEADER_BYTES = 64 * 1024
#: A JSON part over this many bytes is parsed on a worker thread, not on the event loop.
PARSE_INLINE_BYTES = 256 * 1024


def json_error(status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None,
               close: bool = True) -> tuple[dict, dict]:
    import json

    body = json.dumps({"error": message}).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    start = {"type": "http.response.start", "status": status, "headers": headers + list(extra or [])}
    return start, {"type": "http.response.body", "body": body}


def raw_json_response(status: int, message: str, extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 response (written by the protocol, outside any ASGI cycle)."""
    start, body = json_error(status, message)
    reason = HTTPStatus(status).phrase.encode()
    head = b"".join(k + b": " + v + b"\r\n" for k, v in start["headers"])
    return b"HTTP/1.1 %d %s\r\n" % (status, reason) + head + extra + b"\r\n" + body["body"]


class _TooLarge(Exception):
    pass


class _BodyTimeout(Exception):
    pass


class Guard:
    """ASGI middleware: token, body size, body deadline, shutdown cut-off (see the module docstring)."""

    def __init__(self, app: Any, max_bytes: int, token: str | None = None, body_timeout_s: float = 60.0,
                 max_inflight_bytes: int | None = None, dataplane: Any = None, limits: Limits | None = None) -> None:
        self.app = app
        self.dataplane, self.limits = dataplane, limits
        self.max_bytes = int(max_bytes)
        self.max_inflight = int(max_inflight_bytes or 4 * max_bytes)
        self.inflight = 0  # bytes of bodies of requests in progress (declared, or seen when chunked)
        self.token = None if not token else ("Bearer " + token).encode("utf-8")
        self.body_timeout_s = float(body_timeout_s)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        async def reply(status: int, message: str, extra: list | None = None) -> None:
            if not started:
                start, body = json_error(status, message, extra)
                await send(start)
                await send(body)

        headers = dict(scope.get("headers") or [])
        if self.token is not None and scope.get("path") not in PUBLIC_PATHS:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.token):
                what = "no" if not given else "a wrong"
                await reply(401, f"This server needs a bearer token and the request has {what} Authorization "
                                 "header; send 'Authorization: Bearer TOKEN'.",
                            [(b"www-authenticate", b'Bearer realm="seg-serve"')])
                return
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await reply(400, "Content-Length is not a number.")
                return
            if size > self.max_bytes:
                log.warning("request too large", extra={"path": scope.get("path"), "bytes": size,
                                                        "limit": self.max_bytes})
                await reply(413, self._too_large(size))
                return
        else:
            size = 0
        if size and self.inflight and self.inflight + size > self.max_inflight:
            await reply(429, f"The server is receiving {self.inflight} bytes of other requests, near its limit of "
                             f"{self.max_inflight} (seg-serve --max-inflight-body-mb); retry shortly.",
                        [(b"retry-after", b"1")])
            return
        self.inflight += size
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        seen = counted = 0
        done = False

        async def guarded_receive() -> dict:
            nonlocal seen, done, counted
            if done:  # the body is in: later calls only wait for a disconnect
                return await receive()
            remaining = deadline - loop.time()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0.001))
            except asyncio.TimeoutError:
                raise _BodyTimeout from None
            if message["type"] == "http.request":
                chunk = len(message.get("body", b""))
                seen += chunk
                if seen > self.max_bytes:
                    raise _TooLarge
                if not size:  # chunked: counted as it arrives
                    self.inflight += chunk
                    counted += chunk
                done = not message.get("more_body", False)
            return message

        try:
            match = (_INFER_PATH.match(scope.get("path", "")) if self.dataplane is not None
                     and scope.get("method") == "POST" else None)
            if match is None:
                await self.app(scope, guarded_receive, tracking_send)
            else:
                await self._infer(match, headers, guarded_receive, tracking_send)
        except _TooLarge:
            await reply(413, self._too_large(seen))
        except ClientDisconnect:
            log.info("client went away before sending its whole body", extra={"path": scope.get("path"), "bytes": seen})
        except _BodyTimeout:
            await reply(408, f"The request body did not arrive within {self.body_timeout_s:g} s (seg-serve "
                             f"--body-timeout); {seen} bytes came. Send the whole body promptly, as many bytes as "
                             "Content-Length says.")
        except asyncio.CancelledError:
            if started:
                raise
            # uvicorn cancels what is still running when the shutdown grace period ends.
            await reply(503, "The server shut down before this request finished (seg-serve --grace-period); "
                             "send it again to another replica.", [(b"retry-after", b"1")])
        finally:
            self.inflight -= size or counted

    async def _infer(self, match: re.Match, headers: dict, receive: Any, send: Any) -> None:
        """``POST /v2/models/NAME[/versions/V]/infer`` answered here, without the web framework's
        routing, dependency solving and exception layers: the Python work per request on the event
        loop (which holds the GIL the inference threads need) drops by about half."""
        chunks = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        header_len = headers.get(INFERENCE_CONTENT_LENGTH_HEADER.lower().encode())
        try:
            status, extra, content = await infer_bytes(
                self.dataplane, self.limits, unquote(match.group(1)),
                None if match.group(2) is None else unquote(match.group(2)), body,
                None if header_len is None else header_len.decode("latin-1"))
        except Exception as exc:
            answer = error_answer(exc)
            if answer is None:
                raise
            if answer[0] < 500:
                log.info("request refused", extra={"status": answer[0], "error": answer[1][:300]})
            start, message = json_error(answer[0], answer[1], close=False)
            await send(start)
            await send(message)
            return
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra]
                    + [(b"content-length", str(len(content)).encode())]})
        await send({"type": "http.response.body", "body": content})

    def _too_large(self, size: int) -> str:
        return (f"Request body of {size} bytes is over the server's limit of {self.max_bytes} bytes "
                "(seg-serve --max-request-mb); send fewer or smaller images per request.")


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type:
    """uvicorn's httptools protocol with a header deadline, a header size limit and a connection limit."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedProtocol(HttpToolsProtocol):
        _header_timer: asyncio.TimerHandle | None = None
        _awaiting_headers = True
        _header_bytes = 0
        _quickack: Any = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                log.warning("connection refused", extra={"connections": len(self.connections),
                                                         "limit": max_connections})
                transport.write(raw_json_response(
                    503, f"The server has {max_connections} open connections, its limit (seg-serve "
                         "--max-connections); try again shortly.", b"retry-after: 1\r\n"))
                transport.close()
                return
            self._arm()
            sock = transport.get_extra_info("socket")
            self._quickack = sock if (_QUICKACK is not None and sock is not None) else None

        def _ack_now(self) -> None:
            """ACK what was read at once (Linux TCP_QUICKACK). Many clients (Python's http.client among
            them) send the headers and the body in two writes without TCP_NODELAY: Nagle holds the body
            until the headers are acknowledged, and a delayed ACK made every such request wait up to 40 ms."""
            try:
                self._quickack.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
            except (OSError, AttributeError):
                self._quickack = None

        def _arm(self) -> None:
            self._awaiting_headers = True
            if self._header_timer is None:
                self._header_timer = self.loop.call_later(header_timeout_s, self._headers_late)

        def _disarm(self) -> None:
            self._awaiting_headers = False
            self._header_bytes = 0
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_late(self) -> None:
            self._header_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                self._header_timer = self.loop.call_later(header_timeout_s, self._headers_late)
                return
            self.transport.write(raw_json_response(
                408, f"No complete request headers within {header_timeout_s:g} s (seg-serve --header-timeout)."))
            self.transport.close()

        def data_received(self, data: bytes) -> None:
            if self._awaiting_headers:
                self._header_bytes += len(data)
            super().data_received(data)
            if self._quickack is not None:
                self._ack_now()
            if (self._awaiting_headers and self._header_bytes > MAX_HEADER_BYTES
                    and not self.transport.is_closing()):
                self.transport.write(raw_json_response(
                    431, f"The request headers are over {MAX_HEADER_BYTES} bytes."))
                self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm()

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            self.transport.write(raw_json_response(400, f"Malformed HTTP request: {msg}"))
            self.transport.close()

    return GuardedProtocol


# ------------------------------------------------------------------------------------------ routes
def _model(dataplane: Any, name: str, version: str | None = None, need_ready: bool = True) -> Any:
    model = dataplane.model_registry.get_model(name)
    if model is None:
        raise ModelNotFound(name)
    if version is not None and str(version) != str(getattr(model, "version", "1")):
        raise NotFound(f"Model {name} has no version {version[:32]!r}; it serves version "
                       f"{getattr(model, 'version', '1')} (or leave the version out).")
    if need_ready and not model.ready:
        raise ModelNotReady(name)
    return model


def make_routes(dataplane: Any, limits: Limits, model_control: bool) -> dict[str, Any]:
    """The handlers attnseg serves itself (see ``install_routes`` in server.py)."""

    async def infer(request: Request, model_name: str, model_version: str | None = None) -> Response:
        body = await request.body()
        status, headers, content = await infer_bytes(dataplane, limits, model_name, model_version, body,
                                                     request.headers.get(INFERENCE_CONTENT_LENGTH_HEADER))
        return Response(content=content, status_code=status, headers=dict(headers))

    async def metadata(model_name: str, model_version: str | None = None) -> JSONResponse:
        return JSONResponse(_model(dataplane, model_name, model_version).metadata())

    async def ready(model_name: str, model_version: str) -> JSONResponse:
        model = _model(dataplane, model_name, model_version, need_ready=False)
        if not model.ready:
            raise ModelNotReady(model_name)
        return JSONResponse({"name": model_name, "ready": True})

    async def index(request: Request) -> JSONResponse:
        body = await request.body()
        ready_only = False
        if body.strip():
            import orjson

            try:
                spec = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise RequestError('The index request is a JSON object such as {"ready": true}, or empty.') from None
            if not isinstance(spec, dict) or not isinstance(spec.get("ready", False), bool):
                raise RequestError('The index request is a JSON object such as {"ready": true}, or empty.')
            ready_only = spec.get("ready", False)
        return JSONResponse(repository_index(dataplane, ready_only))

    async def load(model_name: str) -> JSONResponse:
        model = _control(model_name)
        if not model.ready:
            await asyncio.get_running_loop().run_in_executor(None, model.load)
        return JSONResponse({"name": model_name, "load": True})

    async def unload(model_name: str) -> JSONResponse:
        _control(model_name).unload()
        return JSONResponse({"name": model_name, "unload": True})

    def _control(model_name: str) -> Any:
        if not model_control:
            raise Forbidden("Model control is off: models are loaded at start and cannot be loaded or unloaded "
                            "over the network. Start seg-serve with --model-control explicit to allow it.")
        return _model(dataplane, model_name, need_ready=False)

    return {"infer": infer, "metadata": metadata, "ready": ready, "index": index, "load": load, "unload": unload}


async def infer_bytes(dataplane: Any, limits: Limits, model_name: str, model_version: str | None, body: bytes,
                      header_len: str | None) -> tuple[int, list[tuple[str, str]], bytes]:
    """One v2 REST infer: (status, headers, body). Request errors are raised (the caller answers them)."""
    _model(dataplane, model_name, model_version)
    try:
        json_length = None if header_len is None else int(header_len)
    except ValueError:
        raise RequestError(f"{INFERENCE_CONTENT_LENGTH_HEADER} is not a number: {header_len[:32]!r}.") from None
    if (json_length or len(body)) > PARSE_INLINE_BYTES:
        wire = await asyncio.get_running_loop().run_in_executor(None, parse_rest, body, json_length, limits)
    else:
        wire = parse_rest(body, json_length, limits)
    answer, _ = await dataplane.infer(model_name=model_name, request=wire, headers=None)
    if answer.json_length is None:
        return 200, [("content-type", "application/json")], answer.body
    return 200, [("content-type", "application/octet-stream"),
                 (INFERENCE_CONTENT_LENGTH_HEADER.lower(), str(answer.json_length))], answer.body


_INFER_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")


def error_answer(exc: BaseException) -> tuple[int, str] | None:
    """(status, message) of an error a request can cause; None for a bug (the caller lets it raise)."""
    if isinstance(exc, RequestError):
        return exc.status, str(exc)
    if isinstance(exc, ModelNotFound):
        return 404, str(exc)
    if isinstance(exc, ModelNotReady):
        return 503, str(exc)
    if isinstance(exc, AttnsegError):
        return int(getattr(exc, "http_status", 400)), str(exc)
    return None


def repository_index(dataplane: Any, ready_only: bool = False) -> list[dict[str, str]]:
    out = []
    for name, model in dataplane.model_registry.get_models().items():
        if model.ready or not ready_only:
            out.append({"name": name, "version": str(getattr(model, "version", "1")),
                        "state": "READY" if model.ready else "UNAVAILABLE",
                        "reason": "" if model.ready else "unloaded"})
    return out


# ------------------------------------------------------------------------------------------ errors
async def request_error_handler(_: Request, exc: RequestError) -> JSONResponse:
    log.info("request refused", extra={"status": exc.status, "error": str(exc)[:300]})
    return JSONResponse(status_code=exc.status, content={"error": str(exc)})


async def attnseg_error_handler(_: Request, exc: AttnsegError) -> JSONResponse:
    status = int(getattr(exc, "http_status", 400))
    return JSONResponse(status_code=status, content={"error": str(exc)})


async def http_exception_handler(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404:
        message = f"No route {request.method} {request.url.path[:200]}; the v2 routes are under /v2 (see /v2/models)."
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path[:200]}."
    return JSONResponse(status_code=exc.status_code, content={"error": message}, headers=exc.headers)


async def validation_error_handler(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()[:5])
    return JSONResponse(status_code=400, content={"error": f"Malformed request: {errors}"})


__all__ = ["Guard", "guarded_protocol", "make_routes", "repository_index"]
