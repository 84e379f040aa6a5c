"""``serve()``: KServe's ``ModelServer`` around ``SegmentationModel`` objects, hardened for untrusted clients.

KServe gives the v2 REST and gRPC endpoints, health, readiness, model metadata, Prometheus
``/metrics`` and a graceful shutdown (uvicorn finishes requests in flight on SIGTERM, then the
gRPC server stops with a grace period). attnseg adds (``ServeOptions`` holds every knob):

1. **Binary tensors over REST and budgets.** Its own infer route (``rest.py``) keeps binary
   inputs as bytes; every request is checked field by field and against the per-image,
   per-request and response budgets before anything large is allocated (``request.py``), and a
   server-wide in-flight pixel budget makes further requests wait.
2. **Safe defaults.** Listens on 127.0.0.1 unless told; model control (load/unload) off unless
   ``--model-control explicit``; readiness false while any model is not ready; an optional
   bearer token on every route but liveness (REST and gRPC).
3. **Timeouts and limits.** Header, body and idle (keep-alive) deadlines, a header size limit, a
   connection limit, gRPC message sizes; a request cut off by the shutdown grace period gets 503.
4. **Conventions.** Every error is ``{"error": ...}`` (gRPC: a status code) and never a 5xx
   for request content; the repository index is served (REST and gRPC); versions are the same
   over REST and gRPC; response parameters are real JSON values over REST.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import socket
from concurrent import futures
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import grpc
from grpc import aio
from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor, LoggingInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.rest.server import RESTServer

from attnseg.errors import AttnsegError
from attnseg.runtime.options import Hint, RuntimeOptions
from attnseg.runtime.remote import TOKEN_ENV  # one name for the server and the client

log = logging.getLogger("attnseg.serve")

DEFAULT_MAX_REQUEST_MB = 64.0
#: The environment variable that holds the bearer token when --auth-token-file is not given.


class ServeError(AttnsegError):
    """The server cannot start as asked (port taken, bad option)."""


@dataclass
class ServeOptions:
    """Everything ``seg-serve`` can be told; ``models`` are ``.xml`` files or folders.

    Budgets are checked per request before anything large is allocated; the defaults keep one
    process under about 2 GiB (see docs/deploy/README.md, "Limits").
    """

    models: list[str] = field(default_factory=list)
    name: str | None = None
    host: str = "127.0.0.1"
    http_port: int = 8080
    grpc_port: int = 8081
    enable_grpc: bool = True
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)  # hint None: throughput here
    threads: int | None = None  # per model; default 2 x infer requests + 2
    max_request_mb: float = DEFAULT_MAX_REQUEST_MB
    max_image_pixels: int = 4096 * 4096
    max_request_pixels: int = 64 * 1024 * 1024
    max_inflight_mb: float = 1024.0  # memory held by requests being served, all together
    max_inflight_body_mb: float = 256.0  # request bodies being received, all together
    max_response_mb: float = 256.0
    max_json_values: int = 1 << 20
    max_json_mb: float = 16.0
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    idle_timeout_s: int = 65
    max_connections: int = 128
    model_control: str = "none"  # none | explicit
    auth_token: str | None = field(default=None, repr=False)
    grace_period_s: int = 30
    log_level: str = "INFO"
    json_logs: bool = True

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * 1024 * 1024)

    @property
    def limits(self) -> Any:
        from attnseg.serve.request import Limits

        return Limits(max_image_pixels=int(self.max_image_pixels), max_request_pixels=int(self.max_request_pixels),
                      max_response_bytes=int(self.max_response_mb * 1024 * 1024),
                      max_json_values=int(self.max_json_values), max_json_bytes=int(self.max_json_mb * 1024 * 1024))

    def check(self) -> None:
        """One clear error for a value that cannot work."""
        positive = {"--max-request-mb": self.max_request_mb, "--max-image-pixels": self.max_image_pixels,
                    "--max-request-pixels": self.max_request_pixels, "--max-response-mb": self.max_response_mb,
                    "--max-json-values": self.max_json_values, "--max-json-mb": self.max_json_mb,
                    "--header-timeout": self.header_timeout_s, "--body-timeout": self.body_timeout_s,
                    "--idle-timeout": self.idle_timeout_s, "--max-connections": self.max_connections}
        positive["--max-inflight-mb"] = self.max_inflight_mb
        positive["--max-inflight-body-mb"] = self.max_inflight_body_mb
        for flag, value in positive.items():
            if not value > 0:
                raise ServeError(f"{flag} must be > 0, got {value}.")
        if self.model_control not in ("none", "explicit"):
            raise ServeError(f"--model-control must be none or explicit, got {self.model_control!r}.")
        if self.auth_token is not None and not self.auth_token.strip():
            raise ServeError("The bearer token is empty; put the token in --auth-token-file or $SEG_SERVE_TOKEN.")


def read_token(path: str | None) -> str | None:
    """The bearer token: the file's first line if given, else ``$SEG_SERVE_TOKEN``, else None (no auth)."""
    if path is not None:
        p = Path(path).expanduser()
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ServeError(f"Cannot read --auth-token-file {p}: {exc.strerror or exc}.") from None
        token = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not token:
            raise ServeError(f"--auth-token-file {p} is empty; write the token on its first line.")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None


def check_port_free(host: str, port: int, flag: str) -> None:
    """Fail now, with one line, rather than after compiling the models with a uvicorn traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ServeError(f"Cannot listen on {host}:{port} ({flag}): {exc.strerror}. "
                             "Is another server running there? Choose another port.") from None


def load_models(options: ServeOptions) -> list[Any]:
    """Resolve and compile every model (the server starts listening only after this)."""
    from attnseg.serve.model import MemoryBudget, SegmentationModel
    from attnseg.serve.repository import resolve_models

    # a server answers many clients at once: throughput unless a hint is given
    runtime = replace(options.runtime, hint=options.runtime.hint or Hint.THROUGHPUT)
    budget = MemoryBudget(int(options.max_inflight_mb * 1024 * 1024))
    limits = options.limits
    models = []
    for m in resolve_models(options.models, options.name):
        version = m.xml.parent.name if m.xml.parent.name.isdigit() else "1"
        model = SegmentationModel(m.name, m.xml, runtime, threads=options.threads, limits=limits, budget=budget,
                                  version=version)
        model.load()
        models.append(model)
    return models


def serve(options: ServeOptions) -> None:
    """Compile the models, then serve them until SIGTERM/SIGINT (requests in flight finish)."""
    from attnseg.serve.logs import configure_logging

    options.check()
    configure_logging(options.log_level, options.json_logs)
    ports = [("--http-port", options.http_port)] + ([("--grpc-port", options.grpc_port)] if options.enable_grpc else [])
    for flag, port in ports:
        check_port_free(options.host, port, flag)
    models = load_models(options)
    server = SegModelServer(options)
    limits = options.limits
    log.info("serving", extra={"models": [m.name for m in models], "host": options.host,
                               "http_port": options.http_port,
                               "grpc_port": options.grpc_port if options.enable_grpc else None,
                               "auth": options.auth_token is not None, "model_control": options.model_control,
                               "max_request_bytes": options.max_request_bytes,
                               "max_image_pixels": limits.max_image_pixels,
                               "max_request_pixels": limits.max_request_pixels,
                               "max_response_bytes": limits.max_response_bytes,
                               "max_connections": options.max_connections})
    if options.host not in ("127.0.0.1", "localhost", "::1") and options.auth_token is None:
        log.warning("listening on %s without a bearer token: anyone who can reach the port can use the models "
                    "(set --auth-token-file or $%s)", options.host, TOKEN_ENV)
    server.start(models)
    log.info("stopped")


class SegDataPlane(DataPlane):
    """kserve's DataPlane; ready only while every served model is ready; extensions as served."""

    async def ready(self) -> bool:
        models = self.model_registry.get_models()
        return bool(models) and all(m.ready for m in models.values())

    def metadata(self) -> dict:
        meta = super().metadata()
        meta["extensions"] = ["model_repository", "binary_tensor_data"]
        return meta


def _token_ok(token: bytes | None, value: str | bytes | None) -> bool:
    if token is None:
        return True
    if value is None:
        return False
    given = value.encode("utf-8") if isinstance(value, str) else value
    return hmac.compare_digest(given, token)


class TokenInterceptor(aio.ServerInterceptor):
    """gRPC: the same bearer token, in the ``authorization`` metadata, on every method but ServerLive."""

    def __init__(self, token: str | None) -> None:
        self._token = None if not token else ("Bearer " + token).encode("utf-8")

        async def deny(request: Any, context: Any) -> None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                                "This server needs a bearer token: send the metadata 'authorization: Bearer TOKEN'.")

        self._deny = grpc.unary_unary_rpc_method_handler(deny)

    async def intercept_service(self, continuation: Any, details: Any) -> Any:
        if self._token is None or details.method.endswith("/ServerLive"):
            return await continuation(details)
        value = next((v for k, v in (details.invocation_metadata or ()) if k == "authorization"), None)
        if _token_ok(self._token, value):
            return await continuation(details)
        return self._deny


class StatusInterceptor(ExceptionToStatusInterceptor):
    """kserve's mapping plus attnseg's request errors (413 -> RESOURCE_EXHAUSTED, 403, 404...)."""

    async def handle_exception(self, ex: Exception, request_or_iterator: Any, context: Any, method_name: str) -> None:
        from attnseg.serve.errors import RequestError

        if isinstance(ex, RequestError):
            await context.abort(ex.grpc_code, str(ex))
        elif isinstance(ex, AttnsegError):
            code = {413: grpc.StatusCode.RESOURCE_EXHAUSTED, 404: grpc.StatusCode.NOT_FOUND}.get(
                int(getattr(ex, "http_status", 400)), grpc.StatusCode.INVALID_ARGUMENT)
            await context.abort(code, str(ex))
        else:
            await super().handle_exception(ex, request_or_iterator, context, method_name)


class SegServicer(InferenceServicer):
    """kserve's servicer with attnseg's infer path, versions, both inputs in metadata and model control."""

    def __init__(self, data_plane: Any, extension: Any, model_control: bool) -> None:
        super().__init__(data_plane, extension)
        self._model_control = model_control

    def _model(self, name: str, version: str = "", need_ready: bool = True) -> Any:
        from attnseg.serve.rest import _model

        return _model(self._data_plane, name, version or None, need_ready)

    async def ModelReady(self, request: Any, context: Any) -> Any:
        return pb.ModelReadyResponse(ready=bool(self._model(request.name, request.version, need_ready=False).ready))

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        meta = self._model(request.name, request.version).metadata()
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in meta["inputs"]],
            outputs=[tensor(name=t["name"], datatype=t["datatype"], shape=t["shape"]) for t in meta["outputs"]])

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        from attnseg.serve.request import parse_grpc

        self._model(request.model_name, request.model_version)
        wire = parse_grpc(request)
        response, _ = await self._data_plane.infer(model_name=request.model_name, request=wire, headers=None)
        return response

    def _control(self, name: str) -> Any:
        from attnseg.serve.errors import Forbidden

        if not self._model_control:
            raise Forbidden("Model control is off: models are loaded at start and cannot be loaded or unloaded over "
                            "the network. Start seg-serve with --model-control explicit to allow it.")
        return self._model(name, need_ready=False)

    async def RepositoryModelLoad(self, request: Any, context: Any) -> Any:
        model = self._control(request.model_name)
        if not model.ready:
            await asyncio.get_running_loop().run_in_executor(None, model.load)
        return pb.RepositoryModelLoadResponse(model_name=request.model_name, isLoaded=True)

    async def RepositoryModelUnload(self, request: Any, context: Any) -> Any:
        self._control(request.model_name).unload()
        return pb.RepositoryModelUnloadResponse(model_name=request.model_name, isUnloaded=True)


def _repository_index_messages() -> tuple[Any, Any]:
    """Triton's ``RepositoryIndexRequest`` / ``RepositoryIndexResponse``, which kserve's proto lacks,
    built from their field numbers in a private descriptor pool."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="attnseg_repository_index.proto", package="inference",
                                             syntax="proto3")
    F = descriptor_pb2.FieldDescriptorProto
    req = fdp.message_type.add(name="RepositoryIndexRequest")
    req.field.add(name="repository_name", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    req.field.add(name="ready", number=2, type=F.TYPE_BOOL, label=F.LABEL_OPTIONAL)
    res = fdp.message_type.add(name="RepositoryIndexResponse")
    idx = res.nested_type.add(name="ModelIndex")
    for i, n in enumerate(("name", "version", "state", "reason"), 1):
        idx.field.add(name=n, number=i, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    res.field.add(name="models", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                  type_name=".inference.RepositoryIndexResponse.ModelIndex")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    Request = message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.RepositoryIndexRequest"))
    Response = message_factory.GetMessageClass(pool.FindMessageTypeByName("inference.RepositoryIndexResponse"))
    return Request, Response


def _repository_index_handler(data_plane: Any) -> Any:
    """gRPC ``RepositoryIndex`` on the v2 service (kserve's servicer has no such method)."""
    Request, Response = _repository_index_messages()

    async def index(request: Any, context: Any) -> Any:
        from attnseg.serve.rest import repository_index

        out = Response()
        for m in repository_index(data_plane, bool(request.ready)):
            out.models.add(**m)
        return out

    handler = grpc.unary_unary_rpc_method_handler(index, request_deserializer=Request.FromString,
                                                  response_serializer=Response.SerializeToString)
    return grpc.method_handlers_generic_handler("inference.GRPCInferenceService", {"RepositoryIndex": handler})


class BoundGRPCServer(GRPCServer):
    """kserve's gRPC server on ``host``, with attnseg's servicer, token, statuses and limits."""

    def __init__(self, options: ServeOptions, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._options = options

    async def start(self, max_workers: int) -> None:
        o = self._options
        servicer = SegServicer(self._data_plane, self._model_repository_extension, o.model_control == "explicit")
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(TokenInterceptor(o.auth_token), LoggingInterceptor(), StatusInterceptor()),
            options=[("grpc.max_send_message_length", o.limits.max_response_bytes + (1 << 20)),
                     ("grpc.max_receive_message_length", o.max_request_bytes),
                     ("grpc.max_connection_idle_ms", int(o.idle_timeout_s * 1000)),
                     ("grpc.max_concurrent_streams", 64)],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        self._server.add_generic_rpc_handlers((_repository_index_handler(self._data_plane),))
        host = f"[{o.host}]" if ":" in o.host else o.host
        self._server.add_insecure_port(f"{host}:{self._port}")
        log.info("gRPC server listening", extra={"host": o.host, "port": self._port})
        await self._server.start()
        await self._server.wait_for_termination()


class SegModelServer(ModelServer):
    """kserve's ``ModelServer`` (one worker) with attnseg's routes, guard, protocol and listen address."""

    def __init__(self, options: ServeOptions) -> None:
        super().__init__(http_port=options.http_port, grpc_port=options.grpc_port, workers=1,
                         enable_grpc=options.enable_grpc, enable_docs_url=False,
                         enable_latency_logging=False, grace_period=options.grace_period_s,
                         timeout_keep_alive=int(options.idle_timeout_s))
        self.options = options
        self.dataplane = SegDataPlane(model_registry=self.registered_models)

    def start(self, models: list[Any]) -> None:
        from attnseg.serve.rest import guarded_protocol

        self._register_and_check_atleast_one_model_is_ready(models)
        install_routes(self.dataplane, self.options)
        self._rest_server = RESTServer(
            FASTAPI_APP_IMPORT_STRING, self.dataplane, self.model_repository_extension, self.http_port,
            workers=1, grace_period=self.grace_period, event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
        )
        config = self._rest_server.config
        config.host = self.options.host
        config.http = guarded_protocol(self.options.header_timeout_s, self.options.max_connections)
        self.servers.append(self._rest_server.start())
        if self.enable_grpc:
            self._grpc_server = BoundGRPCServer(self.options, self.grpc_port, self.dataplane,
                                                self.model_repository_extension, kwargs={},
                                                grace_period=self.grace_period)
            self.servers.append(self._grpc_server.start(self.max_threads))
        self.setup_event_loop()
        self.register_signal_handler()
        _use_uvloop()
        asyncio.run(self._serve())


def _use_uvloop() -> None:
    """uvloop when installed (uvicorn's own choice for "auto"): kserve runs its servers under
    ``asyncio.run``, which would otherwise give uvicorn the pure-Python selector loop."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def install_routes(dataplane: Any, options: ServeOptions) -> None:
    """attnseg's routes, error handlers and guard, in front of kserve's app (before kserve adds its own)."""
    from fastapi.exceptions import RequestValidationError
    from kserve.model_server import app
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from attnseg.serve import rest
    from attnseg.serve.errors import RequestError

    if getattr(app.state, "attnseg_installed", False):
        return
    h = rest.make_routes(dataplane, options.limits, options.model_control == "explicit")
    # Routes match in order: these are added before kserve registers its own in start().
    add = app.add_api_route
    for path in ("/v2/models/{model_name}/infer", "/v2/models/{model_name}/versions/{model_version}/infer"):
        add(path, h["infer"], methods=["POST"], include_in_schema=False)
    for path in ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}"):
        add(path, h["metadata"], methods=["GET"], include_in_schema=False)
    add("/v2/models/{model_name}/versions/{model_version}/ready", h["ready"], methods=["GET"], include_in_schema=False)
    add("/v2/repository/index", h["index"], methods=["POST"], include_in_schema=False)
    add("/v2/repository/models/{model_name}/load", h["load"], methods=["POST"], include_in_schema=False)
    add("/v2/repository/models/{model_name}/unload", h["unload"], methods=["POST"], include_in_schema=False)
    app.add_exception_handler(RequestError, rest.request_error_handler)
    app.add_exception_handler(AttnsegError, rest.attnseg_error_handler)
    app.add_exception_handler(StarletteHTTPException, rest.http_exception_handler)
    app.add_exception_handler(RequestValidationError, rest.validation_error_handler)
    app.add_middleware(rest.Guard, max_bytes=options.max_request_bytes, token=options.auth_token,
                       body_timeout_s=options.body_timeout_s,
                       max_inflight_bytes=int(options.max_inflight_body_mb * 1024 * 1024),
                       dataplane=dataplane, limits=options.limits)
    app.state.attnseg_installed = True
