"""``serve()``: KServe's ``ModelServer`` around ``SegmentationModel`` objects, with three fixes.

KServe gives the v2 REST and gRPC endpoints, health, readiness, model metadata, Prometheus
``/metrics`` and a graceful shutdown (uvicorn finishes requests in flight on SIGTERM, then
the gRPC server stops with a grace period). attnseg adds what kserve 0.21 lacks here:

1. **Binary tensors over REST.** kserve's own ``/v2/models/{name}/infer`` turns binary-extension
   inputs into Python lists (3 million ints for one 1 MP image) and rejects BYTES that are not
   UTF-8 (every JPEG). ``_infer`` replaces that one route: it keeps binary inputs as bytes and
   then calls the same ``DataPlane`` (same model lookup, metrics, errors and response encoding).
2. **A request size limit.** ``BodyLimit`` answers 413 before a too-large body is read;
   gRPC gets the same limit as its max receive message length (RESOURCE_EXHAUSTED).
3. **The listen address.** kserve binds 0.0.0.0 and [::]; ``host`` chooses (tests use 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

from grpc import aio
from kserve import ModelServer
from kserve.constants.constants import FASTAPI_APP_IMPORT_STRING
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor, LoggingInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.rest.server import RESTServer

from attnseg.errors import AttnsegError

log = logging.getLogger("attnseg.serve")

DEFAULT_MAX_REQUEST_MB = 64.0


class ServeError(AttnsegError):
    """The server cannot start as asked (port taken, bad option)."""


@dataclass
class ServeOptions:
    """Everything ``seg-serve`` can be told; ``models`` are ``.xml`` files or folders."""

    models: list[str] = field(default_factory=list)
    name: str | None = None
    host: str = "0.0.0.0"
    http_port: int = 8080
    grpc_port: int = 8081
    enable_grpc: bool = True
    device: str = "CPU"
    hint: str = "throughput"
    num_streams: int | None = None
    cache_dir: str | None = None
    inference_precision: str | None = "auto"
    threads: int | None = None  # per model; default 2 x infer requests + 2
    max_request_mb: float = DEFAULT_MAX_REQUEST_MB
    grace_period_s: int = 30
    log_level: str = "INFO"
    json_logs: bool = True

    @property
    def max_request_bytes(self) -> int:
        return int(self.max_request_mb * 1024 * 1024)


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
    from attnseg.serve.model import SegmentationModel, SegmenterSettings
    from attnseg.serve.repository import resolve_models

    settings = SegmenterSettings(device=options.device, hint=options.hint, num_streams=options.num_streams,
                                 cache_dir=options.cache_dir, inference_precision=options.inference_precision)
    models = []
    for m in resolve_models(options.models, options.name):
        model = SegmentationModel(m.name, m.xml, settings, threads=options.threads)
        model.load()
        models.append(model)
    return models


def serve(options: ServeOptions) -> None:
    """Compile the models, then serve them until SIGTERM/SIGINT (requests in flight finish)."""
    from attnseg.serve.logs import configure_logging

    configure_logging(options.log_level, options.json_logs)
    ports = [("--http-port", options.http_port)] + ([("--grpc-port", options.grpc_port)] if options.enable_grpc else [])
    for flag, port in ports:
        check_port_free(options.host, port, flag)
    models = load_models(options)
    server = SegModelServer(options)
    log.info("serving", extra={"models": [m.name for m in models], "host": options.host,
                               "http_port": options.http_port,
                               "grpc_port": options.grpc_port if options.enable_grpc else None,
                               "max_request_bytes": options.max_request_bytes})
    server.start(models)
    log.info("stopped")


class BoundGRPCServer(GRPCServer):
    """kserve's gRPC server, listening on ``host`` instead of every interface."""

    def __init__(self, host: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._host = host

    async def start(self, max_workers: int) -> None:
        servicer = InferenceServicer(self._data_plane, self._model_repository_extension)
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(LoggingInterceptor(), ExceptionToStatusInterceptor()),
            options=[("grpc.max_send_message_length", self._kwargs["grpc_max_send_message_length"]),
                     ("grpc.max_receive_message_length", self._kwargs["grpc_max_receive_message_length"])],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        host = f"[{self._host}]" if ":" in self._host else self._host
        self._server.add_insecure_port(f"{host}:{self._port}")
        log.info("gRPC server listening", extra={"host": self._host, "port": self._port})
        await self._server.start()
        await self._server.wait_for_termination()


class SegModelServer(ModelServer):
    """kserve's ``ModelServer`` (one worker) with our infer route, size limit and listen address."""

    def __init__(self, options: ServeOptions) -> None:
        super().__init__(http_port=options.http_port, grpc_port=options.grpc_port, workers=1,
                         enable_grpc=options.enable_grpc, enable_docs_url=False,
                         enable_latency_logging=False, grace_period=options.grace_period_s)
        self.options = options

    def start(self, models: list[Any]) -> None:
        self._register_and_check_atleast_one_model_is_ready(models)
        install_routes(self.dataplane, self.options.max_request_bytes)
        self._rest_server = RESTServer(
            FASTAPI_APP_IMPORT_STRING, self.dataplane, self.model_repository_extension, self.http_port,
            workers=1, grace_period=self.grace_period, event_loop=self.event_loop,
            timeout_keep_alive=self.timeout_keep_alive,
        )
        self._rest_server.config.host = self.options.host
        self.servers.append(self._rest_server.start())
        if self.enable_grpc:
            self._grpc_server = BoundGRPCServer(
                self.options.host, self.grpc_port, self.dataplane, self.model_repository_extension,
                kwargs={"grpc_max_send_message_length": -1,
                        "grpc_max_receive_message_length": self.options.max_request_bytes},
                grace_period=self.grace_period,
            )
            self.servers.append(self._grpc_server.start(self.max_threads))
        self.setup_event_loop()
        self.register_signal_handler()
        asyncio.run(self._serve())


def install_routes(dataplane: Any, max_request_bytes: int) -> None:
    """Put the size limit and the binary-safe infer route in front of kserve's app."""
    from kserve.model_server import app

    from attnseg.serve.rest import BodyLimit, make_infer_route

    if getattr(app.state, "attnseg_installed", False):
        return
    handler = make_infer_route(dataplane)
    # Routes match in order: these are added before kserve registers its own in start().
    app.add_api_route("/v2/models/{model_name}/infer", handler, methods=["POST"], include_in_schema=False)
    app.add_api_route("/v2/models/{model_name}/versions/{model_version}/infer", handler, methods=["POST"],
                      include_in_schema=False)
    app.add_middleware(BodyLimit, max_bytes=max_request_bytes)
    app.state.attnseg_installed = True
