"""``seg-serve``: serve exported models over KServe v2 (REST + gRPC). Parsing only; see attnseg.serve."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from attnseg.cli.common import add_dataclass_flags
from attnseg.cli.common import options_from_args as runtime_from_args
from attnseg.errors import AttnsegError
from attnseg.runtime.options import RuntimeOptions


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="seg-serve",
        description="Serve exported attnseg models over the Open Inference Protocol (KServe v2): "
                    "POST /v2/models/NAME/infer with UINT8 [N,H,W,3] BGR pixels or BYTES [N] JPEG/PNG files.",
    )
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help="an IR .xml, a folder holding one (or model.xml), or an OVMS repository "
                        "written by seg-export --ovms-repo (every model in its config.json)")
    p.add_argument("--name", help="the name to serve a single model under (default: the OVMS config name, "
                                  "else the file or folder name)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; pass 0.0.0.0 to expose it, "
                        "with a token)")
    p.add_argument("--http-port", type=int, default=8080, help="REST port (default 8080)")
    p.add_argument("--grpc-port", type=int, default=8081, help="gRPC port (default 8081)")
    p.add_argument("--no-grpc", action="store_true", help="serve REST only")
    p.add_argument("--threads", type=int, help="worker threads per model for decoding, pre/post-processing "
                                                "and waiting on the device (default 2 x infer requests + 2)")
    g = p.add_argument_group("limits (checked before anything large is allocated)")
    g.add_argument("--max-request-mb", type=float, default=64.0,
                   help="largest request body, MiB (default 64; larger gets HTTP 413 / gRPC RESOURCE_EXHAUSTED)")
    g.add_argument("--max-image-pixels", type=int, default=4096 * 4096,
                   help="most pixels one image may declare in its shape or file header (default 16777216 = "
                        "4096x4096; 413)")
    g.add_argument("--max-request-pixels", type=int, default=64 * 1024 * 1024,
                   help="most pixels of all images of one request (default 67108864; 413)")
    g.add_argument("--max-inflight-mb", type=float, default=1024.0,
                   help="memory the requests being served may hold together (decoded images and outputs, "
                        "estimated before decoding), MiB; more wait their turn (default 1024)")
    g.add_argument("--max-inflight-body-mb", type=float, default=256.0,
                   help="request bodies being received at once, MiB; more get 429 and retry (default 256)")
    g.add_argument("--max-response-mb", type=float, default=256.0,
                   help="largest response, MiB, estimated before inference (default 256; 413)")
    g.add_argument("--max-json-values", type=int, default=1 << 20,
                   help="most values of one output sent as a JSON array (default 1048576); larger outputs must "
                        "be asked for as binary data")
    g.add_argument("--max-json-mb", type=float, default=16.0,
                   help="largest JSON part of a request, MiB (default 16); send pixels as binary data")
    g.add_argument("--header-timeout", type=float, default=10.0,
                   help="seconds a connection gets to send complete request headers (default 10; 408 and close)")
    g.add_argument("--body-timeout", type=float, default=60.0,
                   help="seconds a request body gets to arrive in full (default 60; 408)")
    g.add_argument("--idle-timeout", type=int, default=65,
                   help="seconds an idle keep-alive connection stays open (default 65, longer than the usual "
                        "proxy idle timeout)")
    g.add_argument("--max-connections", type=int, default=128,
                   help="open HTTP connections at once; more are answered 503 and closed (default 128)")
    a = p.add_argument_group("access")
    a.add_argument("--auth-token-file",
                   help="file whose first line is a bearer token every request must send (Authorization: "
                        "Bearer TOKEN), except /v2/health/live; default: $SEG_SERVE_TOKEN if set, else no token")
    a.add_argument("--model-control", choices=["none", "explicit"], default="none",
                   help="none (default): models are loaded at start, load/unload answer 403; explicit: "
                        "POST /v2/repository/models/NAME/load|unload are allowed (with the token)")
    p.add_argument("--grace-period", type=int, default=30,
                   help="seconds requests in flight get to finish after SIGTERM (default 30); those still "
                        "running then get 503")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--text-logs", action="store_true", help="plain text logs instead of JSON lines")
    add_dataclass_flags(p, RuntimeOptions, "runtime (every served model; --hint default throughput: several "
                                           "requests in parallel)")
    return p


def options_from_args(args: argparse.Namespace):
    from attnseg.serve.server import ServeOptions, read_token

    for flag, value in (("--http-port", args.http_port), ("--grpc-port", args.grpc_port)):
        if not 0 < value < 65536:
            raise AttnsegError(f"{flag} must be a port number 1-65535, got {value}.")
    if args.threads is not None and args.threads < 1:
        raise AttnsegError(f"--threads must be >= 1, got {args.threads}.")
    options = ServeOptions(
        models=list(args.models), name=args.name, host=args.host, http_port=args.http_port,
        grpc_port=args.grpc_port, enable_grpc=not args.no_grpc, runtime=runtime_from_args(RuntimeOptions, args),
        threads=args.threads, max_request_mb=args.max_request_mb, max_image_pixels=args.max_image_pixels,
        max_request_pixels=args.max_request_pixels, max_inflight_mb=args.max_inflight_mb,
        max_inflight_body_mb=args.max_inflight_body_mb,
        max_response_mb=args.max_response_mb, max_json_values=args.max_json_values, max_json_mb=args.max_json_mb,
        header_timeout_s=args.header_timeout, body_timeout_s=args.body_timeout, idle_timeout_s=args.idle_timeout,
        max_connections=args.max_connections, model_control=args.model_control,
        auth_token=read_token(args.auth_token_file), grace_period_s=args.grace_period,
        log_level=args.log_level, json_logs=not args.text_logs,
    )
    options.check()
    return options


def _run(args: argparse.Namespace) -> int:
    try:
        from attnseg.serve import serve
    except ImportError as exc:
        raise AttnsegError(f"seg-serve needs the serve extra ({exc.name} is missing): "
                           "pip install -c constraints.txt 'attnseg[serve]'") from None
    serve(options_from_args(args))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from attnseg.cli.common import run_command

    return run_command(_run, build_parser(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
